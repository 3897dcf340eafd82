package loadgen

import (
	"os"
	"os/exec"
	"slices"
	"testing"
	"testing/fstest"
	"time"
)

func TestParentOf_CommWithSpacesAndParens(t *testing.T) {
	for stat, want := range map[string]int{
		"1606 (master) S 1 1606 1606 0 -1":        1,
		"1927 (httpd) S 1606 1606 1606 0 -1":      1606,
		"42 (a) b (c) R 7 42 42 0 -1 4194560 100": 7,
	} {
		got, ok := parentOf(stat)
		if !ok || got != want {
			t.Errorf("parentOf(%q) = %d, %v; want %d", stat, got, ok, want)
		}
	}
	for _, bad := range []string{"", "12 (x", "12 (x) S", "12 (x) S y"} {
		if _, ok := parentOf(bad); ok {
			t.Errorf("parentOf(%q) accepted", bad)
		}
	}
}

func TestChildren_FromProcStat(t *testing.T) {
	proc := fstest.MapFS{
		"10/stat":     {Data: []byte("10 (master) S 1 10 10 0 -1")},
		"11/stat":     {Data: []byte("11 (httpd) S 10 10 10 0 -1")},
		"12/stat":     {Data: []byte("12 (httpd) S 10 10 10 0 -1")},
		"13/stat":     {Data: []byte("13 (squatter) S 11 10 10 0 -1")},
		"self/stat":   {Data: []byte("99 (go) S 1 99 99 0 -1")},
		"14/stat":     {Data: []byte("garbage")},
		"cpuinfo/foo": {Data: []byte("x")},
	}
	got := children(proc)
	slices.Sort(got[10])
	if !slices.Equal(got[10], []int{11, 12}) || !slices.Equal(got[11], []int{13}) || !slices.Equal(got[1], []int{10}) {
		t.Errorf("children = %v", got)
	}
	if _, ok := got[99]; ok {
		t.Errorf("non-numeric entry counted: %v", got)
	}
}

// TestReadRSS_CountsChildren: a server that forks (Cyrus) is measured with
// its children; a process with none is measured alone.
func TestReadRSS_CountsChildren(t *testing.T) {
	// The parent measured is an idle shell with an idle child, not this
	// test process, whose own memory moves between two readings.
	cmd := exec.Command("sh", "-c", "sleep 10 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start a child: %v", err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	parent := cmd.Process.Pid
	var kid int
	for deadline := time.Now().Add(5 * time.Second); kid == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if ks := children(os.DirFS("/proc"))[parent]; len(ks) > 0 {
			kid = ks[0]
		}
	}
	if kid == 0 {
		t.Fatal("the shell started no child")
	}
	alone, ok := readStatus(parent)
	if !ok || alone.RSSKB == 0 {
		t.Fatalf("the shell's status: %+v %v", alone, ok)
	}
	child, ok := readStatus(kid)
	if !ok {
		t.Fatal("cannot read the child's status")
	}
	got := ReadRSS(parent)
	if got.Procs < 2 || got.RSSKB < alone.RSSKB+child.RSSKB/2 || got.PSSKB < alone.PSSKB || child.PSSKB == 0 {
		t.Errorf("ReadRSS = %+v; shell alone %+v, child %+v", got, alone, child)
	}
	if c := ReadRSS(kid); c.Procs != 0 || c.RSSKB == 0 {
		t.Errorf("a process without children: %+v", c)
	}
}

func TestParsePSS(t *testing.T) {
	in := "55d0a000-7ffd1000 ---p 00000000 00:00 0 [rollup]\nRss:  3688 kB\nPss:  1234 kB\nPss_Anon:  1000 kB\n"
	if got := parsePSS(in); got != 1234 {
		t.Errorf("parsePSS = %d, want 1234", got)
	}
	if got := parsePSS("Rss: 5 kB\nPss: x kB\n"); got != 0 {
		t.Errorf("parsePSS of a bad line = %d, want 0", got)
	}
}
