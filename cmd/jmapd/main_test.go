package main

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary act as jmapd in a child process.
func TestMain(m *testing.M) {
	if os.Getenv("JMAPD_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func jmapd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// Admin errors exit non-zero with one line on stderr and change nothing.
func TestCLI_ErrorsAreOneLine(t *testing.T) {
	dir := t.TempDir()
	if code, out, errs := jmapd(t, "user", "add", "alice@example.test", "--data", dir); code != 0 || !strings.Contains(out, "-") {
		t.Fatalf("user add: %d %q %q", code, out, errs)
	}
	for _, args := range [][]string{
		{"user", "add", "alice@example.test"},                                    // exists
		{"user", "add", "not an address"},                                        // malformed
		{"user", "add", "carol@example.test", "--password", ""},                  // empty password
		{"group", "member", "add", "nogroup@example.test", "alice@example.test"}, // unknown group
		{"frobnicate"},
	} {
		code, _, errs := jmapd(t, append(args, "--data", dir)...)
		if code == 0 || strings.Count(strings.TrimRight(errs, "\n"), "\n") != 0 || errs == "" {
			t.Errorf("jmapd %v: exit %d, stderr %q: want non-zero and one line", args, code, errs)
		}
	}
	// Flags may stand before the positional arguments too.
	if code, out, errs := jmapd(t, "--data", dir, "user", "list"); code != 0 || strings.TrimSpace(out) == "" || strings.Contains(out, "carol") {
		t.Errorf("user list: %d %q %q", code, out, errs)
	}
}

// With a server running on the data directory, admin commands go through
// its socket and take effect at once; SIGTERM stops the server cleanly and
// releases the store.
func TestCLI_AdminWhileServing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child server")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "serve", "--data", dir, "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "JMAPD_TEST_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var base string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "session URL: "); ok {
			base = strings.TrimSuffix(u, "/.well-known/jmap")
			break
		}
	}
	if base == "" {
		t.Fatalf("no session URL; stderr: %s", stderr.String())
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if code, _, errs := jmapd(t, "user", "add", "bob@example.test", "--password", "s3cret", "--data", dir); code != 0 {
		t.Fatalf("user add via socket: %s", errs)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/jmap/session", nil)
	req.SetBasicAuth("bob@example.test", "s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login right after user add: %d", resp.StatusCode)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("server exit after SIGTERM: %v; stderr: %s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop after SIGTERM")
	}
	// The store was closed cleanly: the command opens it directly now.
	if code, out, errs := jmapd(t, "user", "list", "--data", dir); code != 0 || !strings.Contains(out, "bob@example.test") {
		t.Fatalf("user list after shutdown: %d %q %q", code, out, errs)
	}
}
