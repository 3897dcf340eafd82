package push_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/jmapd/jmapd/internal/config"
	"github.com/jmapd/jmapd/jmaptest"
	"github.com/jmapd/jmapd/push"
)

// wsURL is the WebSocket URL the session advertises.
func wsURL(t testing.TB, c *jmaptest.Client) string {
	t.Helper()
	s := c.Session(t)
	capa, ok := s.Capabilities[push.CapWebSocket].(map[string]any)
	if !ok {
		t.Fatalf("session has no %s capability: %v", push.CapWebSocket, s.Capabilities)
	}
	u, _ := capa["url"].(string)
	return u
}

// dial opens a JMAP WebSocket as c.
func dial(t testing.TB, c *jmaptest.Client) *websocket.Conn {
	t.Helper()
	conn, resp, err := (&websocket.Dialer{Subprotocols: []string{"jmap"}}).Dial(wsURL(t, c), basic(c))
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial: %v (status %d)", err, status)
	}
	if conn.Subprotocol() != "jmap" {
		t.Fatalf("subprotocol %q, want jmap", conn.Subprotocol())
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// readJSON reads the next text message as a JSON object.
func readJSON(t testing.TB, conn *websocket.Conn, within time.Duration) map[string]any {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(within))
	typ, b, err := conn.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.TextMessage {
		t.Fatalf("message type %d, want text", typ)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("message %s: %v", b, err)
	}
	return m
}

func send(t testing.TB, conn *websocket.Conn, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
}

func echoRequest(id string) map[string]any {
	return map[string]any{"@type": "Request", "id": id, "using": []string{"urn:ietf:params:jmap:core"},
		"methodCalls": []any{[]any{"Core/echo", map[string]any{"hello": true, "id": id}, "b3ff"}}}
}

// RFC 8887 §3: the session advertises the WebSocket URL (ws:// for an
// http:// base URL) and push support.
func testWebSocketCapability(t *testing.T, srv *jmaptest.Server, alice, bob *jmaptest.Client) {
	capa := alice.Session(t).Capabilities[push.CapWebSocket].(map[string]any)
	want := "ws://" + strings.TrimPrefix(srv.URL(), "http://") + "/jmap/ws"
	if capa["url"] != want || capa["supportsPush"] != true {
		t.Errorf("capability %v, want url %s and supportsPush true", capa, want)
	}
}

// RFC 8887 §4.3.2, §4.3.3: a Request gets a Response with its id as
// requestId, and the same answer the API endpoint gives over HTTP.
func testWebSocketRequestResponse(t *testing.T, srv *jmaptest.Server, alice, bob *jmaptest.Client) {
	conn := dial(t, alice)
	createNote(t, alice)
	req := map[string]any{"@type": "Request", "id": "R1", "using": jmaptest.Using,
		"methodCalls": []any{
			[]any{"Note/get", map[string]any{"accountId": alice.Account}, "a"},
			[]any{"Core/echo", map[string]any{"hello": true, "high": 5}, "b"},
			[]any{"Note/get", map[string]any{"accountId": "nope"}, "c"},
		}}
	send(t, conn, req)
	got := readJSON(t, conn, 10*time.Second)
	if got["@type"] != "Response" || got["requestId"] != "R1" {
		t.Fatalf("got %v, want a Response to R1", got)
	}
	delete(req, "@type")
	delete(req, "id")
	body, _ := json.Marshal(req)
	status, b := alice.Post(t, string(body))
	if status != http.StatusOK {
		t.Fatalf("HTTP: %d %s", status, b)
	}
	var want map[string]any
	json.Unmarshal(b, &want)
	delete(got, "@type")
	delete(got, "requestId")
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Errorf("WebSocket answered %s\nHTTP answered %s", gb, wb)
	}
	// Without an id, the Response has no requestId.
	r := echoRequest("")
	delete(r, "id")
	send(t, conn, r)
	if got := readJSON(t, conn, 10*time.Second); got["@type"] != "Response" || got["requestId"] != nil {
		t.Errorf("got %v, want a Response without requestId", got)
	}
}

// RFC 8887 §4.3.2: several requests may be in flight on one connection;
// each gets its own whole Response.
func testWebSocketManyInFlight(t *testing.T, srv *jmaptest.Server, alice, bob *jmaptest.Client) {
	conn := dial(t, alice)
	before := len(alice.One(t, "Note/get", map[string]any{"accountId": alice.Account})["list"].([]any))
	const n = 20
	for i := range n {
		req := map[string]any{"@type": "Request", "id": fmt.Sprint("r", i), "using": jmaptest.Using,
			"methodCalls": []any{[]any{"Note/set", map[string]any{"accountId": alice.Account,
				"create": map[string]any{"n": map[string]any{"title": fmt.Sprint("note ", i)}}}, "s"}}}
		send(t, conn, req)
	}
	seen := map[string]bool{}
	for range n {
		m := readJSON(t, conn, 20*time.Second)
		id, _ := m["requestId"].(string)
		if m["@type"] != "Response" || seen[id] || !strings.HasPrefix(id, "r") {
			t.Fatalf("got %v", m)
		}
		seen[id] = true
		mr := m["methodResponses"].([]any)[0].([]any)
		if mr[0] != "Note/set" || mr[1].(map[string]any)["created"].(map[string]any)["n"] == nil {
			t.Errorf("%s: %v", id, mr)
		}
	}
	res := alice.One(t, "Note/get", map[string]any{"accountId": alice.Account})
	if l := res["list"].([]any); len(l) != before+n {
		t.Errorf("%d notes, want %d", len(l), before+n)
	}
}

// RFC 8887 §4.3.1, §4.3.4: bad messages get a RequestError carrying the
// RFC 7807 problem and the request's id; the connection stays open.
func testWebSocketRequestErrors(t *testing.T, srv *jmaptest.Server, alice, bob *jmaptest.Client) {
	conn := dial(t, alice)
	cases := []struct {
		name, msg, problem string
		id                 any
	}{
		{"not JSON", "The quick brown fox", "urn:ietf:params:jmap:error:notJSON", nil},
		{"not an object", `[1,2]`, "urn:ietf:params:jmap:error:notRequest", nil},
		{"no @type", `{"id":"x1","using":[],"methodCalls":[]}`, "urn:ietf:params:jmap:error:notRequest", "x1"},
		{"unknown @type", `{"@type":"Bogus","id":"x2"}`, "urn:ietf:params:jmap:error:notRequest", "x2"},
		{"id not a string", `{"@type":"Request","id":5,"using":[],"methodCalls":[]}`, "urn:ietf:params:jmap:error:notRequest", nil},
		{"no using", `{"@type":"Request","id":"x3","methodCalls":[]}`, "urn:ietf:params:jmap:error:notRequest", "x3"},
		{"unknown capability", `{"@type":"Request","id":"x4","using":["urn:x"],"methodCalls":[]}`, "urn:ietf:params:jmap:error:unknownCapability", "x4"},
		{"too many calls", `{"@type":"Request","id":"x5","using":["urn:ietf:params:jmap:core"],"methodCalls":[["Core/echo",{},"a"],["Core/echo",{},"b"],["Core/echo",{},"c"],["Core/echo",{},"d"]]}`, "urn:ietf:params:jmap:error:limit", "x5"},
		{"bad dataTypes", `{"@type":"WebSocketPushEnable","id":"x6","dataTypes":"Email"}`, "urn:ietf:params:jmap:error:notRequest", "x6"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := conn.WriteMessage(websocket.TextMessage, []byte(tc.msg)); err != nil {
				t.Fatal(err)
			}
			m := readJSON(t, conn, 10*time.Second)
			if m["@type"] != "RequestError" || m["type"] != tc.problem || m["status"] != float64(400) || m["requestId"] != tc.id {
				t.Errorf("got %v, want RequestError %s for %v", m, tc.problem, tc.id)
			}
			if tc.problem == "urn:ietf:params:jmap:error:limit" && m["limit"] != "maxCallsInRequest" {
				t.Errorf("limit %v", m["limit"])
			}
			// The connection survives.
			send(t, conn, echoRequest("ok"))
			if m := readJSON(t, conn, 10*time.Second); m["@type"] != "Response" || m["requestId"] != "ok" {
				t.Errorf("after the error: %v", m)
			}
		})
	}
}

// closeCode reads until the connection closes and returns the close code.
func closeCode(t *testing.T, conn *websocket.Conn) int {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := conn.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if err != nil {
			t.Fatalf("read: %v, want a close frame", err)
		}
	}
}

// RFC 8887 §4.3.1: a binary frame closes the connection with 1003.
func testWebSocketBinaryFrameCloses1003(t *testing.T, srv *jmaptest.Server, alice, bob *jmaptest.Client) {
	conn := dial(t, alice)
	if err := conn.WriteMessage(websocket.BinaryMessage, []byte(`{"@type":"Request"}`)); err != nil {
		t.Fatal(err)
	}
	if code := closeCode(t, conn); code != websocket.CloseUnsupportedData {
		t.Errorf("close code %d, want 1003", code)
	}
}

// A message larger than maxSizeRequest closes the connection with 1009
// (RFC 6455 §7.4.1) before it is read whole.
func testWebSocketOversizedCloses1009(t *testing.T, srv *jmaptest.Server, alice, bob *jmaptest.Client) {
	conn := dial(t, alice)
	// Exactly the limit is fine.
	small := echoRequest("fits")
	b, _ := json.Marshal(small)
	small["methodCalls"].([]any)[0].([]any)[1].(map[string]any)["pad"] = strings.Repeat("x", 4096-len(b)-len(`,"pad":""`))
	if b, _ = json.Marshal(small); len(b) != 4096 {
		t.Fatalf("padded request is %d bytes", len(b))
	}
	send(t, conn, small)
	if m := readJSON(t, conn, 10*time.Second); m["requestId"] != "fits" {
		t.Fatalf("request of maxSizeRequest: %v", m)
	}
	big := echoRequest("big")
	big["methodCalls"].([]any)[0].([]any)[1].(map[string]any)["pad"] = strings.Repeat("x", 5000)
	send(t, conn, big)
	if code := closeCode(t, conn); code != websocket.CloseMessageTooBig {
		t.Errorf("close code %d, want 1009", code)
	}
}

// RFC 8887 §4.2: the handshake needs the "jmap" subprotocol and
// credentials.
func testWebSocketHandshakeRefusals(t *testing.T, srv *jmaptest.Server, alice, bob *jmaptest.Client) {
	u := wsURL(t, alice)
	auth := basic(alice)
	for _, tc := range []struct {
		name   string
		protos []string
		hdr    http.Header
		want   int
	}{
		{"no subprotocol", nil, auth, http.StatusBadRequest},
		{"other subprotocol", []string{"chat"}, auth, http.StatusBadRequest},
		{"no credentials", []string{"jmap"}, nil, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, resp, err := (&websocket.Dialer{Subprotocols: tc.protos}).Dial(u, tc.hdr)
			if err == nil {
				conn.Close()
				t.Fatal("handshake succeeded")
			}
			if resp == nil || resp.StatusCode != tc.want {
				t.Fatalf("got %v, want status %d", resp, tc.want)
			}
		})
	}
	// Offering jmap among others works.
	conn, _, err := (&websocket.Dialer{Subprotocols: []string{"chat", "jmap"}}).Dial(u, auth)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if conn.Subprotocol() != "jmap" {
		t.Errorf("subprotocol %q", conn.Subprotocol())
	}
}

// RFC 8887 §4.3.5: after WebSocketPushEnable, changes arrive as
// StateChange with a pushState; dataTypes filters them; after
// WebSocketPushDisable nothing more is pushed; other users' changes never
// arrive.
func testWebSocketPush(t *testing.T, srv *jmaptest.Server, alice, bob *jmaptest.Client) {
	conn := dial(t, alice)
	send(t, conn, map[string]any{"@type": "WebSocketPushEnable", "dataTypes": nil})
	// A request answered after the enable shows it was processed.
	send(t, conn, echoRequest("sync"))
	readJSON(t, conn, 10*time.Second)
	createNote(t, bob)
	state := createNote(t, alice)
	m := readJSON(t, conn, 10*time.Second)
	changed, _ := m["changed"].(map[string]any)
	if m["@type"] != "StateChange" || m["pushState"] == "" || m["pushState"] == nil || len(changed) != 1 {
		t.Fatalf("got %v, want a StateChange of alice's account with a pushState", m)
	}
	if got := changed[alice.Account].(map[string]any)["Note"]; got != state {
		t.Errorf("Note state %v, want %s", got, state)
	}
	// Only Mailbox changes: a Note change is not pushed.
	send(t, conn, map[string]any{"@type": "WebSocketPushEnable", "dataTypes": []string{"Mailbox"}})
	send(t, conn, echoRequest("sync2"))
	readJSON(t, conn, 10*time.Second)
	createNote(t, alice)
	send(t, conn, echoRequest("after-filtered"))
	if m := readJSON(t, conn, 10*time.Second); m["requestId"] != "after-filtered" {
		t.Errorf("got %v, want no push for a type not asked for", m)
	}
	// Disabled: nothing.
	send(t, conn, map[string]any{"@type": "WebSocketPushDisable"})
	send(t, conn, echoRequest("sync3"))
	readJSON(t, conn, 10*time.Second)
	createNote(t, alice)
	send(t, conn, echoRequest("after-disable"))
	if m := readJSON(t, conn, 10*time.Second); m["requestId"] != "after-disable" {
		t.Errorf("got %v after WebSocketPushDisable", m)
	}
}

// RFC 8887 §4.3.5.2: WebSocketPushEnable with the last pushState the
// client saw sends what changed since at once; with a current one,
// nothing.
func testWebSocketPushStateCatchUp(t *testing.T, srv *jmaptest.Server, alice, bob *jmaptest.Client) {
	conn := dial(t, alice)
	send(t, conn, map[string]any{"@type": "WebSocketPushEnable", "dataTypes": nil})
	send(t, conn, echoRequest("sync"))
	readJSON(t, conn, 10*time.Second)
	createNote(t, alice)
	m := readJSON(t, conn, 10*time.Second)
	seen, _ := m["pushState"].(string)
	if seen == "" {
		t.Fatalf("no pushState in %v", m)
	}
	conn.Close()
	missed := createNote(t, alice)

	back := dial(t, alice)
	send(t, back, map[string]any{"@type": "WebSocketPushEnable", "dataTypes": []string{"Note"}, "pushState": seen})
	m = readJSON(t, back, 10*time.Second)
	changed, _ := m["changed"].(map[string]any)
	if m["@type"] != "StateChange" || len(changed) != 1 {
		t.Fatalf("catch-up %v", m)
	}
	types := changed[alice.Account].(map[string]any)
	if types["Note"] != missed || len(types) != 1 {
		t.Errorf("catch-up %v, want only Note %s", types, missed)
	}
	now, _ := m["pushState"].(string)

	third := dial(t, alice)
	send(t, third, map[string]any{"@type": "WebSocketPushEnable", "dataTypes": nil, "pushState": now})
	send(t, third, echoRequest("quiet"))
	if m := readJSON(t, third, 10*time.Second); m["requestId"] != "quiet" {
		t.Errorf("got %v although nothing was missed", m)
	}
	// A pushState that is not ours is ignored.
	send(t, third, map[string]any{"@type": "WebSocketPushEnable", "dataTypes": nil, "pushState": "%%%"})
	send(t, third, echoRequest("quiet2"))
	if m := readJSON(t, third, 10*time.Second); m["requestId"] != "quiet2" {
		t.Errorf("got %v for a foreign pushState", m)
	}
}

// The server pings idle connections and drops those that stop answering.
func TestWebSocket_Keepalive(t *testing.T) {
	push.SetWebSocketTiming(t, 100*time.Millisecond, 400*time.Millisecond)
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	conn := dial(t, alice)
	pinged := make(chan struct{}, 1)
	conn.SetPingHandler(func(data string) error {
		select {
		case pinged <- struct{}{}:
		default:
		}
		return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	// Reading runs the ping handler; the connection outlives several read
	// timeouts because the client answers.
	done := make(chan error, 1)
	go func() {
		_, _, err := conn.ReadMessage()
		done <- err
	}()
	select {
	case <-pinged:
	case <-time.After(5 * time.Second):
		t.Fatal("no ping")
	}
	select {
	case err := <-done:
		t.Fatalf("connection ended although the client answered pings: %v", err)
	case <-time.After(time.Second):
	}
	conn.Close()
	<-done

	// A client that never reads (so never answers pings) is dropped.
	mute := dial(t, alice)
	mute.SetReadDeadline(time.Now().Add(5 * time.Second))
	mute.SetPingHandler(func(string) error { return nil }) // no pong
	for {
		if _, _, err := mute.ReadMessage(); err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the server kept a connection that does not answer pings")
			}
			break
		}
	}
}

// The connections of one user are capped, EventSource and WebSocket
// together.
func TestPush_ConnectionCap(t *testing.T) {
	srv := jmaptest.Start(t, func(c *config.Config) { c.Push.MaxConnectionsPerUser = 2 })
	alice := srv.NewUser(t, "alice@example.test")
	bob := srv.NewUser(t, "bob@example.test")
	open(t, srv, alice, "types=*&closeafter=no&ping=0")
	ws := dial(t, alice)
	_, resp, err := (&websocket.Dialer{Subprotocols: []string{"jmap"}}).Dial(wsURL(t, alice), basic(alice))
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("third connection: %v %v, want 429", err, resp)
	}
	r, _ := alice.Do(t, http.MethodGet, "/jmap/eventsource?types=*&closeafter=no&ping=0", nil, nil)
	if r.StatusCode != http.StatusTooManyRequests {
		t.Errorf("third connection (EventSource): %d, want 429", r.StatusCode)
	}
	dial(t, bob) // another user is not affected
	// Closing one frees a place.
	ws.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, _, err := (&websocket.Dialer{Subprotocols: []string{"jmap"}}).Dial(wsURL(t, alice), basic(alice))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the closed connection's place was not freed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func basic(c *jmaptest.Client) http.Header {
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth(c.Email, c.Password)
	return http.Header{"Authorization": {req.Header.Get("Authorization")}}
}

// TestWebSocket runs the tests above on one server, one after another.
func TestWebSocket(t *testing.T) {
	t.Parallel()
	srv := jmaptest.Start(t, func(c *config.Config) { c.Limits.MaxCallsInRequest = 3; c.Limits.MaxSizeRequest = 4096 })
	alice := srv.NewUser(t, "alice@example.test")
	bob := srv.NewUser(t, "bob@example.test")
	t.Run("Capability", func(t *testing.T) { testWebSocketCapability(t, srv, alice, bob) })
	t.Run("RequestResponse", func(t *testing.T) { testWebSocketRequestResponse(t, srv, alice, bob) })
	t.Run("ManyInFlight", func(t *testing.T) { testWebSocketManyInFlight(t, srv, alice, bob) })
	t.Run("RequestErrors", func(t *testing.T) { testWebSocketRequestErrors(t, srv, alice, bob) })
	t.Run("BinaryFrameCloses1003", func(t *testing.T) { testWebSocketBinaryFrameCloses1003(t, srv, alice, bob) })
	t.Run("OversizedCloses1009", func(t *testing.T) { testWebSocketOversizedCloses1009(t, srv, alice, bob) })
	t.Run("HandshakeRefusals", func(t *testing.T) { testWebSocketHandshakeRefusals(t, srv, alice, bob) })
	t.Run("Push", func(t *testing.T) { testWebSocketPush(t, srv, alice, bob) })
	t.Run("PushStateCatchUp", func(t *testing.T) { testWebSocketPushStateCatchUp(t, srv, alice, bob) })
}
