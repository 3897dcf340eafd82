package push_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/jmapd/jmapd/internal/admin"
	"github.com/jmapd/jmapd/internal/config"
	"github.com/jmapd/jmapd/jmaptest"
	"github.com/jmapd/jmapd/push"
)

// fetchTicket asks the ticket endpoint for a ticket as c.
func fetchTicket(t *testing.T, c *jmaptest.Client) string {
	t.Helper()
	resp, b := c.Do(t, http.MethodPost, push.PathTicket, nil, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("ticket: %s %s", resp.Status, b)
	}
	var tr push.TicketResponse
	if err := json.Unmarshal(b, &tr); err != nil || tr.Ticket == "" {
		t.Fatalf("ticket response %s: %v", b, err)
	}
	if d := time.Until(tr.Expires); d <= 0 || d > push.TicketTTL {
		t.Errorf("ticket expires in %v, want within %v", d, push.TicketTTL)
	}
	return tr.Ticket
}

// dialQuery opens a WebSocket with query parameters and optional headers;
// it returns the connection or the refusal's status.
func dialQuery(t *testing.T, c *jmaptest.Client, q url.Values, h http.Header) (*websocket.Conn, int) {
	t.Helper()
	u := wsURL(t, c) + "?" + q.Encode()
	conn, resp, err := (&websocket.Dialer{Subprotocols: []string{"jmap"}}).Dial(u, h)
	if err != nil {
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		return nil, resp.StatusCode
	}
	t.Cleanup(func() { conn.Close() })
	return conn, http.StatusSwitchingProtocols
}

// esStatus opens the EventSource endpoint without credentials but the
// query, and returns the status.
func esStatus(t *testing.T, srv *jmaptest.Server, q url.Values, h http.Header) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/jmap/eventsource?"+q.Encode(), nil)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := srv.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A ticket fetched with credentials authenticates one WebSocket or
// EventSource connection, once; it authenticates as its owner.
func testTicketSingleUse(t *testing.T, srv *jmaptest.Server, alice, bob *jmaptest.Client) {
	tk := fetchTicket(t, alice)
	conn, status := dialQuery(t, alice, url.Values{"ticket": {tk}}, nil)
	if conn == nil {
		t.Fatalf("ticket refused: %d", status)
	}
	// The connection is alice's: her change is pushed to it.
	send(t, conn, map[string]any{"@type": "WebSocketPushEnable", "dataTypes": nil})
	send(t, conn, echoRequest("sync"))
	readJSON(t, conn, 10*time.Second)
	state := createNote(t, alice)
	m := readJSON(t, conn, 10*time.Second)
	if m["changed"].(map[string]any)[alice.Account].(map[string]any)["Note"] != state {
		t.Errorf("push on the ticket connection: %v", m)
	}
	if _, status := dialQuery(t, alice, url.Values{"ticket": {tk}}, nil); status != http.StatusUnauthorized {
		t.Errorf("second use of a ticket: %d, want 401", status)
	}
	if _, status := dialQuery(t, alice, url.Values{"ticket": {"bogus"}}, nil); status != http.StatusUnauthorized {
		t.Errorf("unknown ticket: %d, want 401", status)
	}
	q := url.Values{"types": {"*"}, "closeafter": {"state"}, "ping": {"0"}, "ticket": {fetchTicket(t, alice)}}
	if s := esStatus(t, srv, q, nil); s != http.StatusOK {
		t.Errorf("EventSource with a ticket: %d", s)
	}
	if s := esStatus(t, srv, q, nil); s != http.StatusUnauthorized {
		t.Errorf("EventSource with a used ticket: %d, want 401", s)
	}
	// Tickets only open push endpoints: the API does not take them.
	resp, err := srv.HTTP.Post(srv.URL()+"/jmap/api?ticket="+fetchTicket(t, alice), "application/json",
		strings.NewReader(`{"using":[],"methodCalls":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("API with a ticket: %d, want 401", resp.StatusCode)
	}
	// Fetching a ticket needs credentials and POST.
	resp, err = srv.HTTP.Post(srv.URL()+push.PathTicket, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("ticket without credentials: %d, want 401", resp.StatusCode)
	}
	if r, _ := alice.Do(t, http.MethodGet, push.PathTicket, nil, nil); r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET ticket: %d, want 405", r.StatusCode)
	}
}

// A bearer token may be given as ?access_token= on the push endpoints.
func testAccessTokenInQuery(t *testing.T, srv *jmaptest.Server, alice, bob *jmaptest.Client) {
	var out bytes.Buffer
	err := admin.Remote(context.Background(), admin.SocketPath(srv.Dir), []string{"token", "create", alice.Email}, nil, &out)
	if err != nil {
		t.Fatal(err)
	}
	var secret string
	for _, w := range strings.Fields(out.String()) {
		if strings.HasPrefix(w, "jmapd_") {
			secret = w
		}
	}
	if secret == "" {
		t.Fatalf("no token in %q", out.String())
	}
	if conn, status := dialQuery(t, alice, url.Values{"access_token": {secret}}, nil); conn == nil {
		t.Errorf("WebSocket with access_token: %d", status)
	}
	q := url.Values{"types": {"*"}, "closeafter": {"state"}, "ping": {"0"}, "access_token": {secret}}
	if s := esStatus(t, srv, q, nil); s != http.StatusOK {
		t.Errorf("EventSource with access_token: %d", s)
	}
	q.Set("access_token", secret+"x")
	if s := esStatus(t, srv, q, nil); s != http.StatusUnauthorized {
		t.Errorf("EventSource with a wrong access_token: %d, want 401", s)
	}
}

// The Origin of browser connections is checked: without a list, only the
// server's own origin (and clients that send none) may connect.
func testOriginChecked(t *testing.T, srv *jmaptest.Server, alice, bob *jmaptest.Client) {
	es := url.Values{"types": {"*"}, "closeafter": {"state"}, "ping": {"0"}}
	for _, tc := range []struct {
		origin string
		want   int
	}{
		{"", http.StatusSwitchingProtocols},
		{srv.URL(), http.StatusSwitchingProtocols},
		{"https://evil.example", http.StatusForbidden},
		{"null", http.StatusForbidden},
	} {
		h := basic(alice)
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		if _, status := dialQuery(t, alice, nil, h); status != tc.want {
			t.Errorf("WebSocket from %q: %d, want %d", tc.origin, status, tc.want)
		}
		wantES := tc.want
		if wantES == http.StatusSwitchingProtocols {
			wantES = http.StatusOK
		}
		if s := esStatus(t, srv, es, h); s != wantES {
			t.Errorf("EventSource from %q: %d, want %d", tc.origin, s, wantES)
		}
	}
}

// Configured origins may connect too, and an EventSource answer lets the
// page read it.
func testOriginAllowList(t *testing.T, srv *jmaptest.Server, alice, bob *jmaptest.Client) {
	h := basic(alice)
	h.Set("Origin", "https://mail.example.test")
	if _, status := dialQuery(t, alice, nil, h); status != http.StatusSwitchingProtocols {
		t.Errorf("WebSocket from the allowed origin: %d", status)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/jmap/eventsource?types=*&closeafter=state&ping=0", nil)
	req.Header = h.Clone()
	resp, err := srv.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "https://mail.example.test" {
		t.Errorf("EventSource from the allowed origin: %d, ACAO %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	h.Set("Origin", "https://other.example.test")
	if _, status := dialQuery(t, alice, nil, h); status != http.StatusForbidden {
		t.Errorf("WebSocket from another origin: %d, want 403", status)
	}
}

// TestPushAuth runs the tests above on one server, one after another.
func TestPushAuth(t *testing.T) {
	t.Parallel()
	srv := jmaptest.Start(t, func(c *config.Config) { c.Push.AllowedOrigins = []string{"https://mail.example.test"} })
	alice := srv.NewUser(t, "alice@example.test")
	bob := srv.NewUser(t, "bob@example.test")
	t.Run("SingleUse", func(t *testing.T) { testTicketSingleUse(t, srv, alice, bob) })
	t.Run("AccessTokenInQuery", func(t *testing.T) { testAccessTokenInQuery(t, srv, alice, bob) })
	t.Run("Checked", func(t *testing.T) { testOriginChecked(t, srv, alice, bob) })
	t.Run("AllowList", func(t *testing.T) { testOriginAllowList(t, srv, alice, bob) })
}
