package push

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/jmapd/jmapd/jmap"
)

// TicketTTL is how long a ticket stays usable.
const TicketTTL = 60 * time.Second

// maxTickets bounds the tickets outstanding at once; past it the
// unexpired ones are kept and new ones refused.
const maxTickets = 100_000

// Tickets holds short-lived, single-use credentials for the EventSource
// and WebSocket endpoints: a browser cannot set an Authorization header on
// those, so it fetches a ticket with one first and puts it in the URL.
// Only a hash of each ticket is kept.
type Tickets struct {
	mu    sync.Mutex
	m     map[[sha256.Size]byte]ticket
	now   func() time.Time
	swept time.Time
}

type ticket struct {
	caller  *jmap.Caller
	expires time.Time
}

// NewTickets returns an empty ticket store.
func NewTickets() *Tickets {
	return &Tickets{m: map[[sha256.Size]byte]ticket{}, now: time.Now}
}

// Issue returns a new ticket for the caller and when it expires; ok is
// false when too many tickets are outstanding.
func (t *Tickets) Issue(c *jmap.Caller) (secret string, expires time.Time, ok bool) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	secret = base64.RawURLEncoding.EncodeToString(b[:])
	now := t.now()
	expires = now.Add(TicketTTL)
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= maxTickets/2 && now.Sub(t.swept) > time.Second {
		t.swept = now
		for k, v := range t.m {
			if !now.Before(v.expires) {
				delete(t.m, k)
			}
		}
	}
	if len(t.m) >= maxTickets {
		return "", time.Time{}, false
	}
	t.m[sha256.Sum256([]byte(secret))] = ticket{caller: c, expires: expires}
	return secret, expires, true
}

// Redeem returns the caller a ticket was issued to and forgets the
// ticket; nil when it is unknown, already used or expired.
func (t *Tickets) Redeem(secret string) *jmap.Caller {
	k := sha256.Sum256([]byte(secret))
	t.mu.Lock()
	defer t.mu.Unlock()
	tk, ok := t.m[k]
	if !ok {
		return nil
	}
	delete(t.m, k)
	if !t.now().Before(tk.expires) {
		return nil
	}
	return tk.caller
}

// TicketResponse is the ticket endpoint's answer.
type TicketResponse struct {
	Ticket  string    `json:"ticket"`
	Expires time.Time `json:"expires"`
}

// ticket issues a ticket to the authenticated caller of a POST.
func (e *Endpoints) ticket(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		jmap.WriteProblem(w, &jmap.Problem{Type: "about:blank", Status: http.StatusMethodNotAllowed, Detail: "use POST"})
		return
	}
	secret, exp, ok := e.tickets.Issue(jmap.CallerFrom(r.Context()))
	if !ok {
		jmap.WriteProblem(w, &jmap.Problem{Type: "about:blank", Status: http.StatusServiceUnavailable, Detail: "try again later"})
		return
	}
	b, _ := json.Marshal(TicketResponse{Ticket: secret, Expires: exp.UTC().Truncate(time.Second)})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(b)
}
