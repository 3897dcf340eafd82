package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/jmapd/jmapd/internal/auth"
	"github.com/jmapd/jmapd/store"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// server is a Serve running in the background for one test.
type server struct {
	path    string
	changes atomic.Int32
	logs    syncBuffer
	cancel  context.CancelFunc
	done    chan struct{}
	err     error // Serve's result, once done is closed
}

// startServer runs Serve on path (a fresh temp dir socket when "") and
// waits until it answers; cleanup stops it and checks it returned nil.
func startServer(t *testing.T, st store.Store, path string) *server {
	t.Helper()
	if path == "" {
		path = SocketPath(t.TempDir())
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{path: path, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.err = Serve(ctx, path, st, zerolog.New(&s.logs), func() { s.changes.Add(1) })
	}()
	t.Cleanup(func() {
		s.stop(t)
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := Remote(context.Background(), path, []string{"user", "list"}, nil, io.Discard)
		if err == nil {
			return s
		}
		if !errors.Is(err, ErrNoServer) {
			t.Fatalf("Remote while waiting for the server: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("admin socket did not come up")
		}
		select {
		case <-s.done:
			t.Fatalf("Serve returned early: %v", s.err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// stop ends Serve and checks that it returned nil.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if s.err != nil {
		t.Errorf("Serve = %v, want nil", s.err)
	}
}

func remote(t *testing.T, path, stdin string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := Remote(context.Background(), path, args, strings.NewReader(stdin), &out)
	return out.String(), err
}

func TestServeRemote_RoundTrip(t *testing.T) {
	st := fixture(t)
	srv := startServer(t, st, "")

	fi, err := os.Stat(srv.path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
	}

	out, err := remote(t, srv.path, "carol-secret-pw\n", "user", "add", "carol@example.test", "--password-stdin", "--data", "ignored")
	if err != nil || out != "" {
		t.Fatalf("remote user add --password-stdin = %q, %v", out, err)
	}
	carol := principal(t, st, "carol@example.test")
	if !auth.CheckPassword(passwordHash(t, st, carol.ID), "carol-secret-pw") {
		t.Error("password sent through the socket does not verify")
	}

	out, err = remote(t, srv.path, "", "user", "add", "dave@example.test")
	if err != nil {
		t.Fatal(err)
	}
	davePW := strings.TrimSpace(out)
	if !auth.CheckPassword(passwordHash(t, st, principal(t, st, "dave@example.test").ID), davePW) {
		t.Errorf("generated password %q from the socket does not verify", out)
	}

	out, err = remote(t, srv.path, "", "token", "create", "carol@example.test")
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.TrimSpace(out)

	out, err = remote(t, srv.path, "", "user", "list")
	if err != nil || !strings.Contains(out, "carol@example.test\tcarol\n") || !strings.Contains(out, "dave@example.test\tdave\n") {
		t.Errorf("remote user list = %q, %v", out, err)
	}
	if n := srv.changes.Load(); n != 3 {
		t.Errorf("onChange called %d times, want 3 (after the three writes)", n)
	}

	// An error reply: the server's text, nothing changed, no onChange.
	before := take(t, st)
	out, err = remote(t, srv.path, "", "user", "add", "alice@example.test", "--password", "hunter2")
	if err == nil || err.Error() != "user add: alice@example.test already exists (a user)" || out != "" {
		t.Errorf("remote add of an existing user = %q, %v", out, err)
	}
	if _, err := remote(t, srv.path, "", "user", "frob"); err == nil || !strings.Contains(err.Error(), `unknown subcommand "frob"`) {
		t.Errorf("remote unknown subcommand: %v", err)
	}
	if after := take(t, st); !reflect.DeepEqual(before, after) {
		t.Error("refused remote command changed the store")
	}
	if n := srv.changes.Load(); n != 3 {
		t.Errorf("onChange called %d times after refused commands, want 3", n)
	}

	srv.stop(t)
	if _, err := os.Lstat(srv.path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after stop: %v", err)
	}
	logs := srv.logs.String()
	for _, secretText := range []string{"carol-secret-pw", davePW, secret, "hunter2"} {
		if strings.Contains(logs, secretText) {
			t.Errorf("log holds a secret %q:\n%s", secretText, logs)
		}
	}
	if !strings.Contains(logs, `"command":"user add"`) || !strings.Contains(logs, `"command":"token create"`) {
		t.Errorf("log does not name the commands:\n%s", logs)
	}
}

// failReader fails the test when read.
type failReader struct{ t *testing.T }

func (r failReader) Read([]byte) (int, error) {
	r.t.Error("stdin read")
	return 0, io.EOF
}

func TestRemote_ReadsStdinOnlyForPasswordStdin(t *testing.T) {
	st := fixture(t)
	srv := startServer(t, st, "")
	if err := Remote(context.Background(), srv.path, []string{"user", "list"}, failReader{t}, io.Discard); err != nil {
		t.Fatal(err)
	}
	// --password as a value is not the flag.
	if err := Remote(context.Background(), srv.path, []string{"user", "passwd", "bob@example.test", "--password", "--password-stdin"},
		failReader{t}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !auth.CheckPassword(passwordHash(t, st, principal(t, st, "bob@example.test").ID), "--password-stdin") {
		t.Error("password that looks like a flag was not stored")
	}
}

func TestRemote_NoServer(t *testing.T) {
	dir := t.TempDir()
	if err := Remote(context.Background(), filepath.Join(dir, "none.sock"), []string{"user", "add", "a@b.c", "--password-stdin"},
		failReader{t}, io.Discard); !errors.Is(err, ErrNoServer) {
		t.Errorf("Remote without socket file = %v, want ErrNoServer", err)
	}
	stale := staleSocket(t, filepath.Join(dir, "stale.sock"))
	if err := Remote(context.Background(), stale, []string{"user", "add", "a@b.c", "--password-stdin"},
		failReader{t}, io.Discard); !errors.Is(err, ErrNoServer) {
		t.Errorf("Remote on a stale socket = %v, want ErrNoServer", err)
	}
}

// staleSocket leaves a socket file at path that nothing listens on.
func staleSocket(t *testing.T, path string) string {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestServe_ReplacesStaleSocket(t *testing.T) {
	st := fixture(t)
	path := staleSocket(t, SocketPath(t.TempDir()))
	srv := startServer(t, st, path)
	if out, err := remote(t, srv.path, "", "user", "list"); err != nil || !strings.Contains(out, "alice@example.test") {
		t.Errorf("user list through the replaced socket = %q, %v", out, err)
	}
}

func TestServe_RefusesLiveSocketAndOtherFiles(t *testing.T) {
	st := fixture(t)
	srv := startServer(t, st, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Serve(ctx, srv.path, st, zerolog.Nop(), nil); err == nil || !strings.Contains(err.Error(), "another server") {
		t.Errorf("second Serve on a live socket = %v", err)
	}
	if _, err := remote(t, srv.path, "", "user", "list"); err != nil {
		t.Errorf("first server stopped answering: %v", err)
	}
	file := filepath.Join(t.TempDir(), "admin.sock")
	if err := os.WriteFile(file, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Serve(ctx, file, st, zerolog.Nop(), nil); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Serve over a regular file = %v", err)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep me" {
		t.Errorf("regular file touched: %q, %v", b, err)
	}
}

// exchange sends one raw line to the socket and returns the reply line.
func exchange(t *testing.T, path, line string) reply {
	t.Helper()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, line+"\n"); err != nil {
		t.Fatal(err)
	}
	b, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		t.Fatalf("read reply: %v", err)
	}
	var rep reply
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("reply %q: %v", b, err)
	}
	return rep
}

func TestServe_AnswersOtherVersionWithError(t *testing.T) {
	st := fixture(t)
	srv := startServer(t, st, "")
	before := take(t, st)
	rep := exchange(t, srv.path, `{"v":2,"args":["user","add","x@example.test","--password","x"]}`)
	if rep.V != 1 || !strings.Contains(rep.Error, "version 2") || rep.Out != "" {
		t.Errorf("reply to version 2 = %+v", rep)
	}
	rep = exchange(t, srv.path, `not json`)
	if rep.V != 1 || rep.Error == "" {
		t.Errorf("reply to garbage = %+v", rep)
	}
	rep = exchange(t, srv.path, `{"v":1,"args":["user","list"]}`)
	if rep.V != 1 || rep.Error != "" || !strings.Contains(rep.Out, "bob@example.test") {
		t.Errorf("reply to version 1 = %+v", rep)
	}
	if after := take(t, st); !reflect.DeepEqual(before, after) {
		t.Error("store changed")
	}
}

func TestRemote_RefusesOtherVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		if _, err := bufio.NewReader(conn).ReadBytes('\n'); err != nil {
			return
		}
		_, _ = io.WriteString(conn, `{"v":2,"out":"should not be shown","error":""}`+"\n")
	}()
	var out bytes.Buffer
	err = Remote(context.Background(), path, []string{"user", "list"}, nil, &out)
	if err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("Remote to a version 2 server = %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("output %q from a server of another version", out.String())
	}
}

func TestRemote_HonoursContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, err := l.Accept()
		if err == nil {
			accepted <- conn // never answers
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Remote(ctx, path, []string{"user", "list"}, nil, io.Discard) }()
	conn := <-accepted
	defer conn.Close()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Remote after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Remote did not return after cancel")
	}
}
