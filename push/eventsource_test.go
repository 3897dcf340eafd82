package push_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jmapd/jmapd/internal/config"
	"github.com/jmapd/jmapd/jmaptest"
)

type event struct{ name, data, id string }

// stream is a real EventSource connection read line by line.
type stream struct {
	resp   *http.Response
	events chan event
}

func open(t *testing.T, srv *jmaptest.Server, c *jmaptest.Client, query string) *stream {
	t.Helper()
	return openFrom(t, srv, c, query, "")
}

// openFrom opens a stream as a client reconnecting after lastID.
func openFrom(t *testing.T, srv *jmaptest.Server, c *jmaptest.Client, query, lastID string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/jmap/eventsource?"+query, nil)
	req.SetBasicAuth(c.Email, c.Password)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := srv.HTTP.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("eventsource: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	s := &stream{resp: resp, events: make(chan event, 16)}
	ready := make(chan struct{})
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		var ev event
		first := true
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, ":") && first:
				first = false
				close(ready)
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[len("data: "):]
			case strings.HasPrefix(line, "id: "):
				ev.id = line[len("id: "):]
			case line == "" && ev.name != "":
				s.events <- ev
				ev = event{}
			}
		}
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("stream did not open")
	}
	return s
}

func (s *stream) next(t *testing.T, within time.Duration) (event, bool) {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		return ev, ok
	case <-time.After(within):
		return event{}, false
	}
}

func createNote(t testing.TB, c *jmaptest.Client) string {
	t.Helper()
	res := c.One(t, "Note/set", map[string]any{"accountId": c.Account, "create": map[string]any{"n": map[string]any{"title": "x"}}})
	return res["newState"].(string)
}

// RFC 8620 §7.1, §7.3: a change pushes a "state" event whose StateChange
// carries the state Foo/get now returns, only to users who can see it.
func testEventSourceStateChange(t *testing.T, srv *jmaptest.Server, alice, bob *jmaptest.Client) {
	as := open(t, srv, alice, "types=*&closeafter=no&ping=0")
	bs := open(t, srv, bob, "types=*&closeafter=no&ping=0")
	state := createNote(t, alice)
	ev, ok := as.next(t, 10*time.Second)
	if !ok || ev.name != "state" {
		t.Fatalf("got %+v, %v; want a state event", ev, ok)
	}
	var sc struct {
		Type    string                       `json:"@type"`
		Changed map[string]map[string]string `json:"changed"`
	}
	if err := json.Unmarshal([]byte(ev.data), &sc); err != nil {
		t.Fatal(err)
	}
	if sc.Type != "StateChange" || sc.Changed[alice.Account]["Note"] != state {
		t.Errorf("StateChange %s, want Note state %s in %s", ev.data, state, alice.Account)
	}
	if got := alice.State(t, alice.Account, "Note"); got != state {
		t.Errorf("Note/get state %s, pushed %s", got, state)
	}
	// Bob sees nothing of Alice's account; his own change arrives.
	bobState := createNote(t, bob)
	ev, ok = bs.next(t, 10*time.Second)
	if !ok || !strings.Contains(ev.data, bob.Account) || strings.Contains(ev.data, alice.Account) || !strings.Contains(ev.data, bobState) {
		t.Errorf("bob's first event %+v, want only his own change", ev)
	}
}

// RFC 8620 §7.3: types limits the pushed types; closeafter=state ends the
// response after one state event.
func testEventSourceTypesAndCloseAfter(t *testing.T, srv *jmaptest.Server, alice, bob *jmaptest.Client) {
	other := open(t, srv, alice, "types=Mailbox&closeafter=no&ping=0")
	once := open(t, srv, alice, "types=Note&closeafter=state&ping=0")
	createNote(t, alice)
	if ev, ok := once.next(t, 10*time.Second); !ok || ev.name != "state" {
		t.Fatalf("closeafter=state: %+v %v", ev, ok)
	}
	if _, open := once.next(t, 10*time.Second); open {
		t.Error("the response did not end after the state event")
	}
	if ev, ok := other.next(t, 300*time.Millisecond); ok {
		t.Errorf("types=Mailbox got %+v for a Note change", ev)
	}
}

// RFC 8620 §7.3: ping sends "ping" events carrying the interval in use.
func testEventSourcePing(t *testing.T, srv *jmaptest.Server, alice, bob *jmaptest.Client) {
	s := open(t, srv, alice, "types=*&closeafter=no&ping=1")
	ev, ok := s.next(t, 5*time.Second)
	if !ok || ev.name != "ping" || ev.data != `{"interval":1}` || ev.id != "" {
		t.Fatalf("got %+v %v, want ping with interval 1", ev, ok)
	}
}

// RFC 8620 §7.3: bad types, closeafter or ping values are refused with a
// problem, not a stream.
func testEventSourceBadArguments(t *testing.T, srv *jmaptest.Server, alice, bob *jmaptest.Client) {
	for _, q := range []string{
		"types=*&closeafter=maybe&ping=0",
		"types=*&closeafter=&ping=0",
		"types=*&closeafter=no&closeafter=state&ping=0",
		"types=*&closeafter=no&ping=-1",
		"types=*&closeafter=no&ping=x",
		"types=*&closeafter=no&ping=1.5",
		"types=*&closeafter=no&ping=",
		"types=&closeafter=no&ping=0",
		"types=Email,,Mailbox&closeafter=no&ping=0",
		"types=Email,&closeafter=no&ping=0",
		"types=Em%20ail&closeafter=no&ping=0",
		"types=*,Email&closeafter=no&ping=0",
	} {
		resp, body := alice.Do(t, http.MethodGet, "/jmap/eventsource?"+q, nil, nil)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s", q, resp.StatusCode, body)
		}
	}
	if resp, _ := alice.Do(t, http.MethodPost, "/jmap/eventsource?types=*&closeafter=no&ping=0", nil, nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
}

// The stream has the event-stream type and headers that keep caches and
// proxies from holding events back.
func testEventSourceHeaders(t *testing.T, srv *jmaptest.Server, alice, bob *jmaptest.Client) {
	s := open(t, srv, alice, "types=Note,Mailbox&closeafter=no&ping=0")
	h := s.resp.Header
	if h.Get("Content-Type") != "text/event-stream" || !strings.Contains(h.Get("Cache-Control"), "no-cache") ||
		h.Get("X-Accel-Buffering") != "no" {
		t.Errorf("headers %v", h)
	}
}

// When the client goes away the server lets go of the connection: with a
// cap of one connection, a new one is accepted once the first is closed.
func TestEventSource_TeardownWhenClientLeaves(t *testing.T) {
	srv := jmaptest.Start(t, func(c *config.Config) { c.Push.MaxConnectionsPerUser = 1 })
	alice := srv.NewUser(t, "alice@example.test")
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/jmap/eventsource?types=*&closeafter=no&ping=0", nil)
	req.SetBasicAuth(alice.Email, alice.Password)
	resp, err := srv.HTTP.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("open: %v %v", err, resp)
	}
	// status opens a stream, reads its status and drops it.
	status := func() int {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/jmap/eventsource?types=*&closeafter=no&ping=0", nil)
		req.SetBasicAuth(alice.Email, alice.Password)
		resp, err := srv.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := status(); s != http.StatusTooManyRequests {
		t.Fatalf("second stream: %d, want 429 while the first is open", s)
	}
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for status() != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the server kept the stream of a client that left")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// RFC 8620 §7.3: each state event is followed by an event id; a client
// that reconnects with the last id it saw gets the changes it missed at
// once, for the types it asks for, and nothing when it missed nothing.
func testEventSourceLastEventIDCatchUp(t *testing.T, srv *jmaptest.Server, alice, bob *jmaptest.Client) {
	s := open(t, srv, alice, "types=*&closeafter=no&ping=0")
	createNote(t, alice)
	ev, ok := s.next(t, 10*time.Second)
	if !ok || ev.name != "state" || ev.id == "" {
		t.Fatalf("state event %+v, want one with an id", ev)
	}
	seen := ev.id
	// Changes while the client is away.
	missed := createNote(t, alice)
	back := openFrom(t, srv, alice, "types=Note&closeafter=no&ping=0", seen)
	ev, ok = back.next(t, 10*time.Second)
	if !ok || ev.name != "state" || !strings.Contains(ev.data, `"Note":"`+missed+`"`) {
		t.Fatalf("catch-up %+v, want Note state %s", ev, missed)
	}
	if strings.Contains(ev.data, "Mailbox") {
		t.Errorf("catch-up %s has a type not asked for", ev.data)
	}
	// Nothing missed since that event's id: nothing is sent.
	quiet := openFrom(t, srv, alice, "types=*&closeafter=no&ping=0", ev.id)
	if ev, ok := quiet.next(t, 300*time.Millisecond); ok {
		t.Errorf("got %+v although nothing was missed", ev)
	}
	// A malformed id is ignored.
	bad := openFrom(t, srv, alice, "types=*&closeafter=no&ping=0", "%%%")
	if ev, ok := bad.next(t, 300*time.Millisecond); ok {
		t.Errorf("got %+v for a malformed Last-Event-ID", ev)
	}
}

// TestEventSource runs the tests above on one server, one after another.
func TestEventSource(t *testing.T) {
	t.Parallel()
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	bob := srv.NewUser(t, "bob@example.test")
	t.Run("StateChange", func(t *testing.T) { testEventSourceStateChange(t, srv, alice, bob) })
	t.Run("TypesAndCloseAfter", func(t *testing.T) { testEventSourceTypesAndCloseAfter(t, srv, alice, bob) })
	t.Run("Ping", func(t *testing.T) { testEventSourcePing(t, srv, alice, bob) })
	t.Run("BadArguments", func(t *testing.T) { testEventSourceBadArguments(t, srv, alice, bob) })
	t.Run("Headers", func(t *testing.T) { testEventSourceHeaders(t, srv, alice, bob) })
	t.Run("LastEventIDCatchUp", func(t *testing.T) { testEventSourceLastEventIDCatchUp(t, srv, alice, bob) })
}
