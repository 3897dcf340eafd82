package push

import (
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
			data, err := json.Marshal(sc)
			if err != nil {
				return
			}
			if _, err := fmt.Fprintf(w, "event: state\ndata: %s\n\n", data); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
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
