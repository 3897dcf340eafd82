package push

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/jmapd/jmapd/jmap"
)

// Ping bounds in seconds: RFC 8620 §7.3 forbids a minimum above 30 s or a
// maximum below 300 s.
const (
	minPing = 1
	maxPing = 3600
)

// clampPing returns the ping interval the server uses for a requested one:
// 0 stays 0 (no pings), others are brought within [minPing, maxPing].
func clampPing(n int) int {
	if n == 0 {
		return 0
	}
	return min(max(n, minPing), maxPing)
}

func badRequest(w http.ResponseWriter, detail string) {
	jmap.WriteProblem(w, &jmap.Problem{Type: "about:blank", Status: http.StatusBadRequest, Detail: detail})
}

// esQuery is the EventSource URL's variables (RFC 8620 §7.3).
type esQuery struct {
	types      map[string]bool // nil: every type
	closeAfter bool
	ping       int // seconds, clamped; 0: none
}

// parseESQuery reads the variables; a value that is present and not one
// the RFC allows is an error. Absent ones take "*", "no" and 0.
func parseESQuery(q url.Values) (esQuery, string) {
	var out esQuery
	if vs, ok := q["types"]; ok {
		if len(vs) != 1 || vs[0] == "" {
			return out, `types must be "*" or a comma-separated list of type names`
		}
		if vs[0] != "*" {
			out.types = map[string]bool{}
			for _, name := range strings.Split(vs[0], ",") {
				if !validTypeName(name) {
					return out, `types must be "*" or a comma-separated list of type names`
				}
				out.types[name] = true
			}
		}
	}
	if vs, ok := q["closeafter"]; ok {
		if len(vs) != 1 || (vs[0] != "state" && vs[0] != "no") {
			return out, `closeafter must be "state" or "no"`
		}
		out.closeAfter = vs[0] == "state"
	}
	if vs, ok := q["ping"]; ok {
		n, err := strconv.Atoi(vs[0])
		if len(vs) != 1 || err != nil || n < 0 || vs[0] != strconv.Itoa(n) {
			return out, "ping must be a non-negative integer"
		}
		out.ping = clampPing(n)
	}
	return out, ""
}

// validTypeName reports whether s can be a data type name: letters and
// digits, starting with a letter ("Email", "CalendarEvent").
func validTypeName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// eventSource streams StateChange events to the authenticated caller
// (RFC 8620 §7.3). Over HTTP/1 the connection is taken from the HTTP
// server and served by an esConn; otherwise (HTTP/2) this goroutine
// streams through the ResponseWriter.
func (e *Endpoints) eventSource(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		jmap.WriteProblem(w, &jmap.Problem{Type: "about:blank", Status: http.StatusMethodNotAllowed, Detail: "use GET"})
		return
	}
	q, bad := parseESQuery(r.URL.Query())
	if bad != "" {
		badRequest(w, bad)
		return
	}
	release := e.admit(w, r)
	if release == nil {
		return
	}
	if r.ProtoMajor == 1 && e.eventSourceConn(w, r, q, release) {
		return
	}
	defer release()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	caller := jmap.CallerFrom(ctx)
	// Tracked, so that Close and Revalidate end it.
	st := &esStream{cancel: cancel, caller: caller}
	if !e.track(st) {
		return
	}
	defer e.untrack(st)
	rc := http.NewResponseController(w)
	sub := e.b.Subscribe(caller.Principal, q.types)
	defer sub.Close()
	cur, err := e.b.newCursor(ctx, caller.Principal)
	if err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Msg("push state")
		jmap.WriteProblem(w, &jmap.Problem{Type: "about:blank", Status: http.StatusInternalServerError, Detail: "internal error"})
		return
	}

	h := w.Header()
	for k, v := range esHeader(r) {
		h[k] = v
	}
	w.WriteHeader(http.StatusOK)
	// A comment opens the stream at once, so the client knows it is
	// subscribed before any change happens.
	if _, err := fmt.Fprint(w, ": jmapd\n\n"); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		return
	}
	var tick <-chan time.Time
	var ticker *time.Ticker
	interval := time.Duration(q.ping) * time.Second
	if q.ping > 0 {
		ticker = time.NewTicker(interval)
		defer ticker.Stop()
		tick = ticker.C
	}
	pingData := fmt.Sprintf(`{"interval":%d}`, q.ping)
	// sent writes a state event; it reports whether the stream goes on.
	sent := func(sc *StateChange) bool {
		if !writeState(w, rc, sc, cur) || q.closeAfter {
			return false
		}
		if ticker != nil {
			// A ping is due "whenever this time elapses since the
			// previous event was sent".
			ticker.Reset(interval)
		}
		return true
	}
	// RFC 8620 §7.3: a client reconnecting with the last event id it saw
	// gets what it missed at once.
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		if seen, ok := decodeEventID(last); ok {
			if missed := missedChanges(seen, cur.states, q.types); missed != nil && !sent(missed) {
				return
			}
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.Done:
			return
		case <-e.done:
			return
		case <-tick:
			if _, err := fmt.Fprintf(w, "event: ping\ndata: %s\n\n", pingData); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		case <-sub.Ready:
			sc := sub.Take()
			if sc == nil || !cur.advance(sc) {
				continue
			}
			if !sent(sc) {
				return
			}
		}
	}
}

// esStream is an EventSource stream served by its HTTP handler (HTTP/2,
// or where the connection cannot be taken).
type esStream struct {
	cancel context.CancelFunc
	caller *jmap.Caller
}

func (s *esStream) Close()              { s.cancel() }
func (s *esStream) revoke()             { s.cancel() }
func (s *esStream) login() *jmap.Caller { return s.caller }

// esHeader is the header of an event stream.
func esHeader(r *http.Request) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache, no-store")
	// Proxies such as nginx must pass events on at once.
	h.Set("X-Accel-Buffering", "no")
	if o := r.Header.Get("Origin"); o != "" {
		// The origin passed the check: let its page read the stream.
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Vary", "Origin")
	}
	return h
}

// writeState sends a state event followed by the event id that encodes the
// states the user now has (RFC 8620 §7.3); false when the client is gone.
func writeState(w http.ResponseWriter, rc *http.ResponseController, sc *StateChange, cur *cursor) bool {
	data, err := json.Marshal(sc)
	if err != nil {
		return false
	}
	if _, err := fmt.Fprintf(w, "event: state\nid: %s\ndata: %s\n\n", cur.id(), data); err != nil {
		return false
	}
	return rc.Flush() == nil
}

// encodeEventID writes visible states as an event id: base64url of their
// JSON, which holds no line breaks.
func encodeEventID(states map[string]map[string]string) string {
	b, _ := json.Marshal(states)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeEventID(id string) (map[string]map[string]string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil {
		return nil, false
	}
	var out map[string]map[string]string
	if json.Unmarshal(b, &out) != nil {
		return nil, false
	}
	return out, true
}

// missedChanges returns a StateChange of the types (of those asked for)
// whose state differs between seen and now, or nil.
func missedChanges(seen, now map[string]map[string]string, types map[string]bool) *StateChange {
	changed := map[string]map[string]string{}
	for acct, states := range now {
		for typ, st := range states {
			if types != nil && !types[typ] {
				continue
			}
			if seen[acct][typ] != st {
				if changed[acct] == nil {
					changed[acct] = map[string]string{}
				}
				changed[acct][typ] = st
			}
		}
	}
	if len(changed) == 0 {
		return nil
	}
	return &StateChange{Type: "StateChange", Changed: changed}
}
