package main

import (
	"bufio"
	"bytes"
	"encoding/json"
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

// startChild runs `jmapd serve ARGS` in a child process and returns its
// base URL and the stdout lines it printed up to the session URL and the
// logins that follow it.
func startChild(t *testing.T, args ...string) (*exec.Cmd, string, []string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"serve"}, args...)...)
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
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var base string
	var lines []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		lines = append(lines, line)
		if u, ok := strings.CutPrefix(strings.TrimSpace(line), "session URL: "); ok {
			base = strings.TrimSuffix(u, "/.well-known/jmap")
		}
		if strings.HasPrefix(line, "Try:") || strings.HasPrefix(line, "Add a user") {
			break
		}
	}
	if base == "" {
		t.Fatalf("no session URL in %q; stderr: %s", lines, stderr.String())
	}
	go func() {
		for sc.Scan() {
		}
	}()
	return cmd, base, lines
}

// logins returns "email password" pairs from the demo output.
func logins(lines []string) map[string]string {
	out := map[string]string{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 3 && f[1] == "password:" {
			out[f[0]] = f[2]
		}
	}
	return out
}

// The README's first command: serve --demo on a new data directory prints
// logins that work, the users have mail, and a restart prints the same
// logins again.
func TestCLI_Demo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child servers")
	}
	dir := t.TempDir()
	cmd, base, lines := startChild(t, "--demo", "--data", dir, "--listen", "127.0.0.1:0")
	got := logins(lines)
	if len(got) != 2 || got["alice@example.test"] == "" || got["bob@example.test"] == "" {
		t.Fatalf("demo logins %v from %q", got, lines)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/jmap/session", nil)
	req.SetBasicAuth("alice@example.test", got["alice@example.test"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var sess struct {
		PrimaryAccounts map[string]string `json:"primaryAccounts"`
		Accounts        map[string]struct {
			Name       string `json:"name"`
			IsPersonal bool   `json:"isPersonal"`
		} `json:"accounts"`
	}
	err = json.NewDecoder(resp.Body).Decode(&sess)
	resp.Body.Close()
	acct := sess.PrimaryAccounts["urn:ietf:params:jmap:mail"]
	if err != nil || acct == "" {
		t.Fatalf("session: %v %+v", err, sess)
	}
	// The team works in the support mailbox: it is shared with the group
	// and the demo users are subscribed, so it is in the session.
	support := false
	for _, a := range sess.Accounts {
		support = support || (a.Name == "support@example.test" && !a.IsPersonal)
	}
	if !support {
		t.Errorf("alice's session lacks the shared support account: %+v", sess.Accounts)
	}
	q := `{"using":["urn:ietf:params:jmap:core","urn:ietf:params:jmap:mail"],"methodCalls":[["Email/query",{"accountId":"` + acct + `","calculateTotal":true},"q"]]}`
	req, _ = http.NewRequest(http.MethodPost, base+"/jmap/api", strings.NewReader(q))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("alice@example.test", got["alice@example.test"])
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		MethodResponses [][]json.RawMessage `json:"methodResponses"`
	}
	err = json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if err != nil || len(r.MethodResponses) != 1 || !strings.Contains(string(r.MethodResponses[0][1]), `"total":3`) {
		t.Fatalf("alice's mail (welcome, lunch, the share notice): %v %s", err, r.MethodResponses)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	_, _, again := startChild(t, "--demo", "--data", dir, "--listen", "127.0.0.1:0")
	if second := logins(again); second["alice@example.test"] != got["alice@example.test"] || len(second) != 2 {
		t.Errorf("restart printed %v, want %v", second, got)
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
