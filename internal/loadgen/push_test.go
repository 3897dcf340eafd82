package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// pushPeer is a small stand-in for a JMAP server with RFC 8887 WebSocket
// push, for the client side of the push test while jmapd has none: it
// answers the calls the push test makes and sends a StateChange to every
// push-enabled WebSocket after each Email/set.
type pushPeer struct {
	mu      sync.Mutex
	state   int
	conns   []*websocket.Conn
	enabled int
	// noContentES, when set, gives the session an eventSourceUrl that
	// answers 204 No Content, as Cyrus does when it cannot push.
	noContentES bool
	esAsked     int
}

func (p *pushPeer) broadcast() {
	p.mu.Lock()
	defer p.mu.Unlock()
	msg := fmt.Sprintf(`{"@type":"StateChange","changed":{"A":{"Email":"s%d"}}}`, p.state)
	for _, c := range p.conns {
		_ = c.WriteMessage(websocket.TextMessage, []byte(msg))
	}
}

func (p *pushPeer) serve(t *testing.T) *httptest.Server {
	var srv *httptest.Server
	up := websocket.Upgrader{Subprotocols: []string{"jmap"}}
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, pw, ok := r.BasicAuth(); !ok || u != "x@example.test" || pw != "pw" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/session":
			w.Header().Set("Content-Type", "application/json")
			ws := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
			es := ""
			if p.noContentES {
				es = "/es?types={types}&closeafter={closeafter}&ping={ping}"
			}
			fmt.Fprintf(w, `{"capabilities":{%q:{},%q:{},%q:{"url":%q,"supportsPush":true}},
				"accounts":{"A":{}},"primaryAccounts":{%q:"A"},"username":"x","apiUrl":%q,"uploadUrl":"",
				"downloadUrl":"","eventSourceUrl":%q,"state":"1"}`, CapCore, CapMail, CapWebSocket, ws, CapMail, srv.URL+"/api", es)
			return
		case "/es":
			p.mu.Lock()
			p.esAsked++
			p.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
			return
		case "/ws":
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			// RFC 8887 §4.3.5: push starts with WebSocketPushEnable.
			var enable struct {
				Type      string   `json:"@type"`
				DataTypes []string `json:"dataTypes"`
			}
			if err := c.ReadJSON(&enable); err != nil || enable.Type != "WebSocketPushEnable" || enable.DataTypes != nil {
				t.Errorf("first WebSocket message %+v: %v", enable, err)
				c.Close()
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c)
			p.enabled++
			p.mu.Unlock()
			return
		}
		var req struct {
			MethodCalls [][]json.RawMessage `json:"methodCalls"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		var name, id string
		_ = json.Unmarshal(req.MethodCalls[0][0], &name)
		_ = json.Unmarshal(req.MethodCalls[0][2], &id)
		switch name {
		case "Mailbox/get":
			fmt.Fprintf(w, `{"methodResponses":[["Mailbox/get",{"accountId":"A","state":"1","list":[{"id":"in","name":"Inbox","role":"inbox"},{"id":"ar","name":"Archive","role":"archive"}],"notFound":[]},%q]],"sessionState":"1"}`, id)
		case "Email/query":
			fmt.Fprintf(w, `{"methodResponses":[["Email/query",{"accountId":"A","queryState":"1","ids":["m1"],"position":0,"canCalculateChanges":false},%q]],"sessionState":"1"}`, id)
		case "Email/set":
			p.mu.Lock()
			p.state++
			st := p.state
			p.mu.Unlock()
			fmt.Fprintf(w, `{"methodResponses":[["Email/set",{"accountId":"A","oldState":"s%d","newState":"s%d","updated":{"m1":null}},%q]],"sessionState":"1"}`, st-1, st, id)
			go p.broadcast()
		default:
			fmt.Fprintf(w, `{"methodResponses":[["error",{"type":"unknownMethod"},%q]],"sessionState":"1"}`, id)
		}
	}))
	t.Cleanup(func() {
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		srv.Close()
	})
	return srv
}

// TestPush_WebSocket opens RFC 8887 connections with the "jmap"
// subprotocol, enables push, and measures delivery of every change.
func TestPush_WebSocket(t *testing.T) {
	peer := &pushPeer{}
	srv := peer.serve(t)
	cfg := Config{SessionURL: srv.URL + "/session", Users: []User{{"x@example.test", "pw"}},
		Push: 4, PushDuration: 500 * time.Millisecond, Quiet: true, Timeout: 5 * time.Second}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	rep.WriteTable(&table)
	t.Log("\n" + table.String())
	ws := rep.Push.Transports[PushWebSocket]
	if ws == nil {
		t.Fatalf("no WebSocket figures; notices %q", rep.Notices)
	}
	if ws.Opened != 4 || ws.Failed != 0 || ws.Missed != 0 || ws.Dropped != 0 {
		t.Errorf("websocket %+v", ws)
	}
	peer.mu.Lock()
	enabled := peer.enabled
	peer.mu.Unlock()
	if enabled != 4 {
		t.Errorf("%d connections sent WebSocketPushEnable, want 4", enabled)
	}
	if rep.Push.Changes == 0 || ws.Delivery.Count != 4*rep.Push.Changes || ws.FromSend.Count != ws.Delivery.Count {
		t.Errorf("%d changes, %d deliveries: every connection must see every change", rep.Push.Changes, ws.Delivery.Count)
	}
	if _, ok := rep.Push.Transports[PushEventSource]; ok {
		t.Error("EventSource measured although the session has no eventSourceUrl")
	}
	if !strings.Contains(strings.Join(rep.Notices, "\n"), "eventSourceUrl") {
		t.Errorf("notices %q do not say EventSource was skipped", rep.Notices)
	}
}

// TestPush_EventSourceNoContent: a server that answers every event-source
// request with 204 No Content (Cyrus 3.6 built without WebSocket support
// does, having no push at all) gets its EventSource push skipped with a
// notice instead of a row of failures, and the other transport is still
// measured.
func TestPush_EventSourceNoContent(t *testing.T) {
	peer := &pushPeer{noContentES: true}
	srv := peer.serve(t)
	cfg := Config{SessionURL: srv.URL + "/session", Users: []User{{"x@example.test", "pw"}},
		Push: 3, PushDuration: 300 * time.Millisecond, Quiet: true, Timeout: 5 * time.Second}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	peer.mu.Lock()
	asked := peer.esAsked
	peer.mu.Unlock()
	if asked != 3 {
		t.Errorf("event source asked %d times, want 3", asked)
	}
	if es, ok := rep.Push.Transports[PushEventSource]; ok {
		t.Errorf("EventSource reported although the server cannot push over it: %+v", es)
	}
	if !strings.Contains(strings.Join(rep.Notices, "\n"), "204 No Content") {
		t.Errorf("notices %q do not say why EventSource was skipped", rep.Notices)
	}
	ws := rep.Push.Transports[PushWebSocket]
	if ws == nil || ws.Opened != 3 || ws.Missed != 0 || rep.Push.Changes == 0 || ws.Delivery.Count != 3*rep.Push.Changes {
		t.Errorf("WebSocket push not measured as usual: %+v, %d changes", ws, rep.Push.Changes)
	}
}

// TestPush_NoTransportReported: with neither transport usable the report
// says so instead of an empty table.
func TestPush_NoTransportReported(t *testing.T) {
	peer := &pushPeer{noContentES: true}
	srv := peer.serve(t)
	ws := rewriteSession(t, srv.URL)
	cfg := Config{SessionURL: ws.URL + "/session", Users: []User{{"x@example.test", "pw"}},
		Push: 2, PushDuration: 200 * time.Millisecond, Quiet: true, Timeout: 5 * time.Second}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Push == nil || len(rep.Push.Transports) != 0 || rep.Push.Changes != 0 {
		t.Fatalf("push report %+v", rep.Push)
	}
	var table strings.Builder
	rep.WriteTable(&table)
	if !strings.Contains(table.String(), "push: the server has no transport to measure") {
		t.Errorf("table does not say push was not measured:\n%s", table.String())
	}
	dir := t.TempDir()
	if err := rep.WriteHTML(dir + "/r.html"); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(dir + "/r.html")
	if err != nil || !strings.Contains(string(page), "no push transport to measure") {
		t.Errorf("HTML does not say push was not measured (%v)", err)
	}
}

// rewriteSession serves the peer's session without its WebSocket
// capability, as Debian's Cyrus 3.6 does, and passes the rest through.
func rewriteSession(t *testing.T, peer string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequest(r.Method, peer+r.URL.RequestURI(), r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		var body map[string]any
		if r.URL.Path == "/session" && json.NewDecoder(resp.Body).Decode(&body) == nil {
			delete(body["capabilities"].(map[string]any), CapWebSocket)
			body["apiUrl"] = "/api"
			_ = json.NewEncoder(w).Encode(body)
			return
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	return srv
}
