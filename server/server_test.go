package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/jmapd/jmapd/internal/admin"
	"github.com/jmapd/jmapd/internal/config"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/jmaptest"
	"github.com/jmapd/jmapd/store"
)

func get(t *testing.T, srv *jmaptest.Server, path, user, pw string, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	c := &jmaptest.Client{Email: user, Password: pw}
	return jmaptest.Attach(c, srv).Do(t, http.MethodGet, path, nil, hdr)
}

// RFC 8620 §2: the session lists the user's account, the core limits and
// the endpoint templates with their variables.
func TestSession_Resource(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	s := alice.Session(t)
	if s.Username != "alice@example.test" {
		t.Errorf("username = %q", s.Username)
	}
	a, ok := s.Accounts[alice.Account]
	if !ok || !a.IsPersonal || a.IsReadOnly {
		t.Fatalf("accounts = %+v, want personal writable %s", s.Accounts, alice.Account)
	}
	core, ok := s.Capabilities[jmap.CapCore].(map[string]any)
	if !ok {
		t.Fatalf("no core capability: %+v", s.Capabilities)
	}
	for _, k := range []string{"maxSizeUpload", "maxConcurrentUpload", "maxSizeRequest", "maxConcurrentRequests",
		"maxCallsInRequest", "maxObjectsInGet", "maxObjectsInSet", "collationAlgorithms"} {
		if _, ok := core[k]; !ok {
			t.Errorf("core capability lacks %s", k)
		}
	}
	for tmpl, vars := range map[string][]string{
		s.DownloadURL:    {"{accountId}", "{blobId}", "{type}", "{name}"},
		s.UploadURL:      {"{accountId}"},
		s.EventSourceURL: {"{types}", "{closeafter}", "{ping}"},
	} {
		for _, v := range vars {
			if !strings.Contains(tmpl, v) {
				t.Errorf("%s lacks %s", tmpl, v)
			}
		}
	}
	if s.PrimaryAccounts[jmap.CapBlob] != alice.Account {
		t.Errorf("primaryAccounts = %+v", s.PrimaryAccounts)
	}
	if s.State == "" {
		t.Error("empty session state")
	}
	// The well-known URL serves the same session.
	resp, body := alice.Do(t, http.MethodGet, "/.well-known/jmap", nil, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"apiUrl"`)) {
		t.Errorf("/.well-known/jmap: %s %s", resp.Status, body)
	}
}

// The session state changes when the session changes (RFC 8620 §2).
func TestSession_StateChangesWithPrincipals(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	before := alice.Session(t).State
	srv.Admin(t, "user", "add", "bob@example.test", "--password", "pw")
	if after := alice.Session(t).State; after == before {
		t.Errorf("session state stayed %q after a principal was added", after)
	}
}

// A failed login answers 401 with WWW-Authenticate, the same for an unknown
// user and a wrong password.
func TestAuth_FailuresLookAlike(t *testing.T) {
	srv := jmaptest.Start(t)
	srv.NewUser(t, "alice@example.test")
	r1, b1 := get(t, srv, jmap.PathSession, "alice@example.test", "wrong", nil)
	r2, b2 := get(t, srv, jmap.PathSession, "nobody@example.test", "wrong", nil)
	for _, r := range []*http.Response{r1, r2} {
		if r.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", r.StatusCode)
		}
		if r.Header.Get("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
	}
	if !bytes.Equal(b1, b2) {
		t.Errorf("bodies differ: %s vs %s", b1, b2)
	}
	resp, _ := srv.HTTP.Get(srv.URL() + jmap.PathSession)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no credentials: %d", resp.StatusCode)
	}
}

// Repeated failures are throttled with 429 and Retry-After, even when the
// right password follows.
func TestAuth_Throttle(t *testing.T) {
	srv := jmaptest.Start(t, func(c *config.Config) { c.Auth.MaxFailures = 3 })
	alice := srv.NewUser(t, "alice@example.test")
	for range 3 {
		get(t, srv, jmap.PathSession, alice.Email, "wrong", nil)
	}
	resp, _ := alice.Do(t, http.MethodGet, jmap.PathSession, nil, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after failures: %d Retry-After=%q, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// Bearer tokens log in until revoked; revocation through the running
// server's admin socket takes effect at once.
func TestAuth_BearerTokenRevocation(t *testing.T) {
	srv := jmaptest.Start(t)
	srv.NewUser(t, "alice@example.test")
	var out bytes.Buffer
	sock := admin.SocketPath(srv.Dir)
	if err := admin.Remote(context.Background(), sock, []string{"token", "create", "alice@example.test", "--json"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	var tok struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(out.Bytes(), &tok); err != nil || tok.Secret == "" {
		// Plain output: the secret is the word starting with jmapd_.
		for _, w := range strings.Fields(out.String()) {
			if strings.HasPrefix(w, "jmapd_") {
				tok.Secret = w
			}
		}
	}
	if tok.Secret == "" {
		t.Fatalf("no token secret in %q", out.String())
	}
	bearer := http.Header{"Authorization": {"Bearer " + tok.Secret}}
	do := func() int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL()+jmap.PathSession, nil)
		req.Header = bearer.Clone()
		resp, err := srv.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := do(); code != http.StatusOK {
		t.Fatalf("bearer login: %d", code)
	}
	var list bytes.Buffer
	if err := admin.Remote(context.Background(), sock, []string{"token", "list", "alice@example.test", "--json"}, nil, &list); err != nil {
		t.Fatal(err)
	}
	var toks []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(list.Bytes(), &toks); err != nil || len(toks) != 1 {
		t.Fatalf("token list: %v %s", err, list.String())
	}
	if err := admin.Remote(context.Background(), sock, []string{"token", "revoke", toks[0].ID}, nil, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if code := do(); code != http.StatusUnauthorized {
		t.Fatalf("revoked token: %d, want 401", code)
	}
}

// A password changed through the admin socket of the running server takes
// effect at once, although the old one was cached.
func TestAuth_PasswordChangeFlushesCache(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	alice.Session(t) // cache the credential
	sock := admin.SocketPath(srv.Dir)
	if err := admin.Remote(context.Background(), sock, []string{"user", "passwd", alice.Email, "--password", "new-secret"}, nil, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if r, _ := alice.Do(t, http.MethodGet, jmap.PathSession, nil, nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("old password after change: %d, want 401", r.StatusCode)
	}
	if r, _ := get(t, srv, jmap.PathSession, alice.Email, "new-secret", nil); r.StatusCode != http.StatusOK {
		t.Errorf("new password: %d", r.StatusCode)
	}
}

func upload(t *testing.T, c *jmaptest.Client, acct, typ string, body []byte) (int, map[string]any) {
	t.Helper()
	resp, b := c.Do(t, http.MethodPost, jmap.PathUpload+acct+"/", bytes.NewReader(body), http.Header{"Content-Type": {typ}})
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

// RFC 8620 §6.1, §6.2: an upload answers accountId, blobId, type and size;
// the same bytes get the same blobId; a download carries the requested
// type and name and may be cached forever.
func TestBlob_UploadDownload(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	data := []byte("hello, blob")
	code, up := upload(t, alice, alice.Account, "text/plain", data)
	if code != http.StatusCreated {
		t.Fatalf("upload: %d %v", code, up)
	}
	if up["accountId"] != alice.Account || up["type"] != "text/plain" || up["size"] != float64(len(data)) {
		t.Errorf("upload response %v", up)
	}
	id, _ := up["blobId"].(string)
	if _, again := upload(t, alice, alice.Account, "text/plain", data); again["blobId"] != id {
		t.Errorf("same bytes got blobId %v, want %s", again["blobId"], id)
	}
	resp, body := alice.Do(t, http.MethodGet, "/jmap/download/"+alice.Account+"/"+id+"/greeting.txt?type=text/plain", nil, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("download: %s %q", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, `filename=greeting.txt`) {
		t.Errorf("Content-Disposition %q", cd)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") || !strings.Contains(cc, "private") {
		t.Errorf("Cache-Control %q", cc)
	}
	// Range requests work on the immutable content.
	resp, body = alice.Do(t, http.MethodGet, "/jmap/download/"+alice.Account+"/"+id+"/x?type=text/plain", nil, http.Header{"Range": {"bytes=0-4"}})
	if resp.StatusCode != http.StatusPartialContent || string(body) != "hello" {
		t.Errorf("range: %s %q", resp.Status, body)
	}
}

// RFC 8620 §6.1: unreferenced blobs are only accessible to the uploader;
// another user answers like a blob that does not exist.
func TestBlob_OtherUserCannotDownload(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	bob := srv.NewUser(t, "bob@example.test")
	_, up := upload(t, alice, alice.Account, "text/plain", []byte("secret"))
	id := up["blobId"].(string)
	r1, b1 := bob.Do(t, http.MethodGet, "/jmap/download/"+bob.Account+"/"+id+"/x", nil, nil)
	r2, b2 := bob.Do(t, http.MethodGet, "/jmap/download/"+bob.Account+"/G"+strings.Repeat("0", 64)+"/x", nil, nil)
	if r1.StatusCode != http.StatusNotFound || r2.StatusCode != http.StatusNotFound || !bytes.Equal(b1, b2) {
		t.Errorf("foreign blob: %d %s; missing blob: %d %s", r1.StatusCode, b1, r2.StatusCode, b2)
	}
	r3, _ := bob.Do(t, http.MethodGet, "/jmap/download/"+alice.Account+"/"+id+"/x", nil, nil)
	if r3.StatusCode != http.StatusNotFound {
		t.Errorf("download from another's account: %d", r3.StatusCode)
	}
	if code, _ := upload(t, bob, alice.Account, "text/plain", []byte("x")); code != http.StatusNotFound {
		t.Errorf("upload into another's account: %d", code)
	}
}

// An upload over maxSizeUpload is refused with the limit problem and stores
// nothing.
func TestBlob_UploadTooLarge(t *testing.T) {
	srv := jmaptest.Start(t, func(c *config.Config) { c.Limits.MaxSizeUpload = 1000 })
	alice := srv.NewUser(t, "alice@example.test")
	body := bytes.Repeat([]byte("x"), 1001)
	code, p := upload(t, alice, alice.Account, "application/octet-stream", body)
	if code != http.StatusRequestEntityTooLarge || p["type"] != string(jmap.ProblemLimit) || p["limit"] != "maxSizeUpload" {
		t.Fatalf("oversize upload: %d %v", code, p)
	}
	// The same bytes, had they been stored, would be readable by their id.
	sum := jmaptest.BlobID(body)
	err := srv.Store().View(context.Background(), func(tx store.Tx) error {
		_, err := tx.BlobAccess(store.AccountID(alice.Account), sum)
		return err
	})
	if err != store.ErrNotFound {
		t.Errorf("oversize blob is stored: %v", err)
	}
}

// healthz and metrics answer without authentication.
func TestOps_HealthAndMetrics(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	alice.One(t, "Core/echo", map[string]any{"x": 1})
	for path, want := range map[string]string{"/healthz": "ok", "/metrics": `jmapd_method_calls_total{error="",method="Core/echo"} 1`} {
		resp, err := srv.HTTP.Get(srv.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(buf.String(), want) {
			t.Errorf("%s: %d, want %q in body", path, resp.StatusCode, want)
		}
	}
}
