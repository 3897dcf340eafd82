// Package jmaptest starts a real jmapd in-process for tests: a Badger store
// in a temporary directory, HTTP on 127.0.0.1 on a free port, and clients
// that speak JMAP to it over real sockets.
package jmaptest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/jmapd/jmapd/internal/admin"
	"github.com/jmapd/jmapd/internal/config"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/server"
	"github.com/jmapd/jmapd/store"
)

// Server is a running test server.
type Server struct {
	*server.Server
	// Dir is the data directory.
	Dir string
	// HTTP is a client with no credentials.
	HTTP *http.Client
}

// Option changes the configuration of a test server.
type Option func(*config.Config)

// Start runs a server for the test's lifetime; it shuts down in t.Cleanup.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.Data = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	log := zerolog.New(io.Discard)
	if testing.Verbose() {
		log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	}
	srv, err := server.New(context.Background(), server.Options{Config: cfg, Log: log, TestTypes: true})
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	s := &Server{Server: srv, Dir: cfg.Data, HTTP: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s
}

// Admin runs an admin command against the server's store, as `jmapd ARGS`
// would, and returns its output.
func (s *Server) Admin(t testing.TB, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	ctx := admin.WithSharer(context.Background(), server.Share)
	if err := admin.Run(ctx, s.Store(), args, strings.NewReader(""), &out); err != nil {
		t.Fatalf("jmapd %s: %v", strings.Join(args, " "), err)
	}
	return out.String()
}

// Client is a logged-in JMAP client.
type Client struct {
	srv      *Server
	Email    string
	Password string
	// Account is the user's personal account id.
	Account string
}

// NewUser creates a user with a password and returns a client logged in as
// them.
func (s *Server) NewUser(t testing.TB, email string) *Client {
	t.Helper()
	pw := "pw-" + email
	s.Admin(t, "user", "add", email, "--password", pw)
	c := &Client{srv: s, Email: email, Password: pw}
	var p *store.Principal
	err := s.Store().View(context.Background(), func(tx store.Tx) error {
		var err error
		p, err = tx.Principals().ByEmail(email)
		return err
	})
	if err != nil {
		t.Fatalf("look up %s: %v", email, err)
	}
	c.Account = string(p.Account)
	// The first session fetch provisions the account (default mailboxes),
	// so tests start from a ready account.
	c.Session(t)
	return c
}

// Do sends an authenticated HTTP request and returns the response with its
// body read.
func (c *Client) Do(t testing.TB, method, path string, body io.Reader, header http.Header) (*http.Response, []byte) {
	t.Helper()
	url := path
	if strings.HasPrefix(path, "/") {
		url = c.srv.URL() + path
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.SetBasicAuth(c.Email, c.Password)
	resp, err := c.srv.HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return resp, b
}

// Session fetches and decodes the session resource.
func (c *Client) Session(t testing.TB) *jmap.SessionResource {
	t.Helper()
	resp, b := c.Do(t, http.MethodGet, jmap.PathSession, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("session: %s: %s", resp.Status, b)
	}
	var s jmap.SessionResource
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("session: %v", err)
	}
	return &s
}

// Post sends a raw API request body and returns the status and body.
func (c *Client) Post(t testing.TB, body string) (int, []byte) {
	t.Helper()
	resp, b := c.Do(t, http.MethodPost, jmap.PathAPI, strings.NewReader(body), http.Header{"Content-Type": {"application/json"}})
	return resp.StatusCode, b
}

// Response is a decoded API response.
type Response struct {
	MethodResponses []Invocation      `json:"methodResponses"`
	CreatedIDs      map[string]string `json:"createdIds"`
	SessionState    string            `json:"sessionState"`
}

// Invocation is one decoded method response.
type Invocation struct {
	Name   string
	Args   map[string]any
	CallID string
}

// UnmarshalJSON reads [name, args, id].
func (i *Invocation) UnmarshalJSON(b []byte) error {
	var parts []json.RawMessage
	if err := json.Unmarshal(b, &parts); err != nil || len(parts) != 3 {
		return fmt.Errorf("bad invocation %s", b)
	}
	if err := json.Unmarshal(parts[0], &i.Name); err != nil {
		return err
	}
	if err := json.Unmarshal(parts[1], &i.Args); err != nil {
		return err
	}
	return json.Unmarshal(parts[2], &i.CallID)
}

// Call is a method call to send.
type Call struct {
	Name string
	Args map[string]any
	ID   string
}

// Using lists the capabilities test requests declare by default.
var Using = []string{jmap.CapCore, jmap.CapBlob, "urn:ietf:params:jmap:mail", "urn:jmapd:params:jmap:test"}

// Call sends method calls (declaring Using) and fails the test unless the
// server answers 200 with a response.
func (c *Client) Call(t testing.TB, calls ...Call) *Response {
	t.Helper()
	return c.CallUsing(t, Using, calls...)
}

// CallUsing is Call declaring the capabilities in using.
func (c *Client) CallUsing(t testing.TB, using []string, calls ...Call) *Response {
	t.Helper()
	mc := make([]any, len(calls))
	for i, call := range calls {
		id := call.ID
		if id == "" {
			id = fmt.Sprintf("c%d", i)
		}
		args := call.Args
		if args == nil {
			args = map[string]any{}
		}
		mc[i] = []any{call.Name, args, id}
	}
	body, err := json.Marshal(map[string]any{"using": using, "methodCalls": mc})
	if err != nil {
		t.Fatal(err)
	}
	status, b := c.Post(t, string(body))
	if status != http.StatusOK {
		t.Fatalf("API status %d: %s", status, b)
	}
	var r Response
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("decode response: %v: %s", err, b)
	}
	return &r
}

// One sends one call and returns its response arguments, failing the test
// if the response is an error or has another name.
func (c *Client) One(t testing.TB, name string, args map[string]any) map[string]any {
	t.Helper()
	r := c.Call(t, Call{Name: name, Args: args})
	if len(r.MethodResponses) == 0 || r.MethodResponses[0].Name != name {
		t.Fatalf("%s: got %+v", name, r.MethodResponses)
	}
	return r.MethodResponses[0].Args
}

// Error sends one call and returns the method error type it answered,
// failing the test if it did not answer an error.
func (c *Client) Error(t testing.TB, name string, args map[string]any) string {
	t.Helper()
	r := c.Call(t, Call{Name: name, Args: args})
	if len(r.MethodResponses) != 1 || r.MethodResponses[0].Name != "error" {
		t.Fatalf("%s: want an error, got %+v", name, r.MethodResponses)
	}
	s, _ := r.MethodResponses[0].Args["type"].(string)
	return s
}

// State returns the current state string of typ in acct, from /get.
func (c *Client) State(t testing.TB, acct, typ string) string {
	t.Helper()
	args := c.One(t, typ+"/get", map[string]any{"accountId": acct, "ids": []string{}})
	s, _ := args["state"].(string)
	return s
}

// Attach binds a client made by hand (say with a wrong password) to srv.
func Attach(c *Client, srv *Server) *Client {
	c.srv = srv
	return c
}

// BlobID returns the blob id the server gives content b.
func BlobID(b []byte) store.BlobID {
	sum := sha256.Sum256(b)
	return store.BlobID("G" + hex.EncodeToString(sum[:]))
}
