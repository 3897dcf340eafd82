package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jmapd/jmapd/internal/loadgen"
)

func TestRun_BadFlagsExitTwo(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--session-url", "http://127.0.0.1:1/s"},
		{"--session-url", "http://127.0.0.1:1/s", "--user", "nopassword"},
		{"--session-url", "http://127.0.0.1:1/s", "--user", "a@b:c", "--mix", "open=x"},
		{"--session-url", "http://127.0.0.1:1/s", "--user", "a@b:c", "extra"},
		{"compare", "only-one.json"},
	} {
		var out, errOut strings.Builder
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("jmapload %q: exit %d, want 2 (stderr %q)", args, code, errOut.String())
		}
	}
}

func TestRun_UnreachableServerExitsOne(t *testing.T) {
	var out, errOut strings.Builder
	code := run([]string{"--session-url", "http://127.0.0.1:1/.well-known/jmap", "--user", "a@b.test:pw", "--quiet"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "transport refused") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
}

func TestCompare_PrintsRatios(t *testing.T) {
	dir := t.TempDir()
	a := &loadgen.Report{Label: "jmapd", SessionURL: "http://a", Import: &loadgen.ImportReport{MessagesPerS: 100, MBPerS: 2},
		Workload: &loadgen.WorkloadReport{Ops: map[string]*loadgen.OpStats{"open": {PerSec: 50, P50Ms: 4, P99Ms: 20}}}}
	b := &loadgen.Report{Label: "other", SessionURL: "http://b", Import: &loadgen.ImportReport{MessagesPerS: 50, MBPerS: 1},
		Workload: &loadgen.WorkloadReport{Ops: map[string]*loadgen.OpStats{"open": {PerSec: 100, P50Ms: 2, P99Ms: 20}}}}
	pa, pb := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	if err := a.WriteJSON(pa); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteJSON(pb); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	if code := run([]string{"compare", pa, pb}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	want := map[string][]string{
		"import msg/s": {"100", "50", "0.50", "A"},
		"open ops/s":   {"50", "100", "2.00", "B"},
		"open p50 ms":  {"4", "2", "0.50", "B"},
		"open p99 ms":  {"20", "20", "1.00"},
	}
	for _, line := range strings.Split(out.String(), "\n") {
		for name, fields := range want {
			if strings.HasPrefix(strings.TrimSpace(line), name) {
				got := strings.Fields(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), name)))
				if strings.Join(got, " ") != strings.Join(fields, " ") {
					t.Errorf("%s: got %q, want %q", name, got, fields)
				}
				delete(want, name)
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("rows missing from:\n%s", out.String())
	}
	if code := run([]string{"compare", pa, filepath.Join(dir, "missing.json")}, &out, &errOut); code != 1 {
		t.Errorf("compare with a missing file: exit %d", code)
	}
	if err := os.WriteFile(pb, []byte("{broken"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"compare", pa, pb}, &out, &errOut); code != 1 {
		t.Errorf("compare with a broken file: exit %d", code)
	}
}
