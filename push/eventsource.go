package push

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jmapd/jmapd/jmap"
)

// Ping bounds: RFC 8620 §7.3 forbids a minimum above 30 s or a maximum
// below 300 s.
const (
	minPing = 1
	maxPing = 3600
)

// EventSource serves the event-source endpoint (RFC 8620 §7.3) for the
// authenticated caller.
func (b *Broker) EventSource() http.Handler {
	return http.HandlerFunc(b.eventSource)
}

func badRequest(w http.ResponseWriter, detail string) {
	jmap.WriteProblem(w, &jmap.Problem{Type: "about:blank", Status: http.StatusBadRequest, Detail: detail})
}

func (b *Broker) eventSource(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var types map[string]bool
	if t := q.Get("types"); t != "*" && t != "" {
		types = map[string]bool{}
		for _, name := range strings.Split(t, ",") {
			if name = strings.TrimSpace(name); name != "" {
				types[name] = true
			}
		}
	}
	closeAfter := q.Get("closeafter")
	if closeAfter == "" {
		closeAfter = "no"
	}
	if closeAfter != "no" && closeAfter != "state" {
		badRequest(w, `closeafter must be "state" or "no"`)
		return
	}
	ping := 0
	if p := q.Get("ping"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			badRequest(w, "ping must be a non-negative integer")
			return
		}
		ping = n
		if ping > 0 {
			ping = min(max(ping, minPing), maxPing)
		}
	}
	rc := http.NewResponseController(w)
	caller := jmap.CallerFrom(r.Context())
	sub := b.Subscribe(caller.Principal, types)
	defer sub.Close()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache, no-store")
	h.Set("X-Accel-Buffering", "no")
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
	if ping > 0 {
		ticker = time.NewTicker(time.Duration(ping) * time.Second)
		defer ticker.Stop()
		tick = ticker.C
	}
	pingData := fmt.Sprintf(`{"interval":%d}`, ping)
	// RFC 8620 §7.3: a client reconnecting with the last event id it saw
	// gets what it missed at once.
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		if seen, ok := decodeEventID(last); ok {
			now, err := b.visibleStates(r.Context(), caller.Principal)
			if err != nil {
				return
			}
			if missed := missedChanges(seen, now, types); missed != nil {
				if !b.writeState(w, rc, missed, now) || closeAfter == "state" {
					return
				}
			}
		}
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-sub.Done:
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
			if sc == nil {
				continue
			}
			now, err := b.visibleStates(r.Context(), caller.Principal)
			if err != nil {
				return
			}
			if !b.writeState(w, rc, sc, now) {
				return
			}
			if closeAfter == "state" {
				return
			}
			if ticker != nil {
				// A ping is due "whenever this time elapses since the
				// previous event was sent".
				ticker.Reset(time.Duration(ping) * time.Second)
			}
		}
	}
}

// writeState sends a state event followed by the event id that encodes the
// states the user can now see (RFC 8620 §7.3); false when the client is
// gone.
func (b *Broker) writeState(w http.ResponseWriter, rc *http.ResponseController, sc *StateChange, now map[string]map[string]string) bool {
	data, err := json.Marshal(sc)
	if err != nil {
		return false
	}
	if _, err := fmt.Fprintf(w, "event: state\nid: %s\ndata: %s\n\n", encodeEventID(now), data); err != nil {
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
