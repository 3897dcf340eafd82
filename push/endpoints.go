package push

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jmapd/jmapd/internal/origin"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// Paths of the push endpoints, relative to the base URL. The EventSource
// path is jmap.PathEventSource.
const (
	PathWebSocket = "/jmap/ws"
	PathTicket    = "/jmap/ticket"
)

// CapWebSocket is the capability of JMAP over WebSocket (RFC 8887 §3).
const CapWebSocket = "urn:ietf:params:jmap:websocket"

// WebSocketCapability is the session object of CapWebSocket.
type WebSocketCapability struct {
	URL          string `json:"url"`
	SupportsPush bool   `json:"supportsPush"`
}

// Runner runs a JMAP API request for a caller as the API endpoint does;
// *jmap.Server is one.
type Runner interface {
	RunRequest(ctx context.Context, caller *jmap.Caller, body []byte) ([]byte, *jmap.Problem)
}

// Options configures the push endpoints.
type Options struct {
	// BaseURL is the URL prefix the session advertises, without a trailing
	// slash; required. Its origin is always allowed.
	BaseURL string
	// Runner answers API requests sent over a WebSocket; required.
	Runner Runner
	// Limits are the core limits: maxSizeRequest bounds a WebSocket
	// message.
	Limits jmap.Limits
	// AllowedOrigins lists further origins whose pages may connect; "*"
	// allows any. Requests without Origin are always allowed.
	AllowedOrigins []string
	// MaxConnsPerUser bounds the EventSource and WebSocket connections of
	// one user (default 50).
	MaxConnsPerUser int
}

// Endpoints serves the EventSource and WebSocket endpoints and the ticket
// endpoint browsers use to authenticate to them.
type Endpoints struct {
	b       *Broker
	opt     Options
	origins *origin.List
	tickets *Tickets
	done    chan struct{}
	wg      sync.WaitGroup // tracked connections

	mu     sync.Mutex
	conns  map[store.PrincipalID]int
	open   map[closer]struct{} // connections served without an HTTP handler
	closed bool
}

// closer is a push connection the endpoints keep track of, so that Close
// and Revalidate can end it.
type closer interface {
	// Close ends the connection (on server shutdown).
	Close()
	// revoke ends the connection because its credential no longer holds.
	revoke()
	// login is who the connection authenticated as, and how.
	login() *jmap.Caller
}

// NewEndpoints returns the push endpoints fed by b.
func NewEndpoints(b *Broker, opt Options) *Endpoints {
	if opt.MaxConnsPerUser <= 0 {
		opt.MaxConnsPerUser = 50
	}
	e := &Endpoints{b: b, opt: opt, origins: origin.New(opt.BaseURL, opt.AllowedOrigins),
		tickets: NewTickets(), done: make(chan struct{}), conns: map[store.PrincipalID]int{},
		open: map[closer]struct{}{}}
	return e
}

// Capability returns the WebSocket capability's session object: the
// ws:// or wss:// URL of the endpoint (RFC 8887 §3).
func (e *Endpoints) Capability() WebSocketCapability {
	u := e.opt.BaseURL + PathWebSocket
	switch {
	case strings.HasPrefix(u, "https://"):
		u = "wss://" + u[len("https://"):]
	case strings.HasPrefix(u, "http://"):
		u = "ws://" + u[len("http://"):]
	}
	return WebSocketCapability{URL: u, SupportsPush: true}
}

// Routes returns the handlers to mount below /jmap/, keyed by their path
// there; they expect an authenticated caller in the request context.
func (e *Endpoints) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		strings.TrimPrefix(jmap.PathEventSource, "/jmap/"): http.HandlerFunc(e.eventSource),
		strings.TrimPrefix(PathWebSocket, "/jmap/"):        http.HandlerFunc(e.webSocket),
		strings.TrimPrefix(PathTicket, "/jmap/"):           http.HandlerFunc(e.ticket),
	}
}

// Close ends every EventSource and WebSocket connection and waits until
// they are gone, with the requests they had in flight. New connections
// are refused after it.
func (e *Endpoints) Close() {
	e.mu.Lock()
	if !e.closed {
		e.closed = true
		close(e.done)
	}
	open := make([]closer, 0, len(e.open))
	for c := range e.open {
		open = append(open, c)
	}
	e.mu.Unlock()
	for _, c := range open {
		c.Close()
	}
	e.wg.Wait()
}

// Revalidate ends the connections whose credential no longer holds, as
// valid tells, after a password change, the revocation of a token or the
// removal of a principal. A connection opened with a ticket holds the
// credential the ticket was fetched with. valid is asked once per
// principal and credential; a connection whose check fails is kept. It
// returns how many connections it ended.
func (e *Endpoints) Revalidate(ctx context.Context, valid Validator) (int, error) {
	e.mu.Lock()
	open := make([]closer, 0, len(e.open))
	for c := range e.open {
		open = append(open, c)
	}
	e.mu.Unlock()
	v := newVerdicts(valid)
	ended := 0
	for _, c := range open {
		if l := c.login(); l != nil && !v.holds(ctx, l.Principal, l.Credential) {
			c.revoke()
			ended++
		}
	}
	return ended, v.err
}

// verdicts asks a Validator once per principal and credential; a check
// that fails counts as valid and its error is kept.
type verdicts struct {
	valid Validator
	seen  map[[2]string]bool
	err   error
}

func newVerdicts(valid Validator) *verdicts {
	return &verdicts{valid: valid, seen: map[[2]string]bool{}}
}

func (v *verdicts) holds(ctx context.Context, who store.PrincipalID, cred string) bool {
	k := [2]string{string(who), cred}
	if ok, known := v.seen[k]; known {
		return ok
	}
	ok, err := v.valid(ctx, who, cred)
	if err != nil {
		if v.err == nil {
			v.err = err
		}
		ok = true
	}
	v.seen[k] = ok
	return ok
}

// Validator reports whether cred (a jmap.Caller's Credential) still
// authenticates who.
type Validator func(ctx context.Context, who store.PrincipalID, cred string) (bool, error)

// track records a connection that outlives its handler, so that Close
// ends it; false after Close.
func (e *Endpoints) track(c closer) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.open[c] = struct{}{}
	e.wg.Add(1)
	return true
}

// untrack forgets a connection that ended.
func (e *Endpoints) untrack(c closer) {
	e.mu.Lock()
	delete(e.open, c)
	e.mu.Unlock()
	e.wg.Done()
}

// errTicket answers a ticket that is unknown, used or expired.
var errTicket = errors.New("push: invalid ticket")

// Authenticate wraps the HTTP authentication so that the EventSource and
// WebSocket endpoints, which browsers cannot give an Authorization header,
// also accept a ticket (?ticket=) or a bearer token (?access_token=, as
// RFC 6750 §2.3) in the query. A request with an Authorization header is
// authenticated by it alone.
func (e *Endpoints) Authenticate(next jmap.AuthFunc) jmap.AuthFunc {
	return func(r *http.Request) (*jmap.Caller, time.Duration, error) {
		if r.Header.Get("Authorization") != "" || (r.URL.Path != jmap.PathEventSource && r.URL.Path != PathWebSocket) {
			return next(r)
		}
		q := r.URL.Query()
		if t := q.Get("ticket"); t != "" {
			if c := e.tickets.Redeem(t); c != nil {
				return c, 0, nil
			}
			return nil, 0, errTicket
		}
		if tok := q.Get("access_token"); tok != "" {
			r2 := r.Clone(r.Context())
			r2.Header.Set("Authorization", "Bearer "+tok)
			return next(r2)
		}
		return next(r)
	}
}

// acquire counts a connection of who, refusing past the cap or after
// Close.
func (e *Endpoints) acquire(who store.PrincipalID) (release func(), ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.conns[who] >= e.opt.MaxConnsPerUser {
		return nil, false
	}
	e.conns[who]++
	return func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.conns[who]--; e.conns[who] <= 0 {
			delete(e.conns, who)
		}
	}, true
}

// originAllowed checks the Origin header: absent (not a browser), the base
// URL's origin, or one configured.
func (e *Endpoints) originAllowed(r *http.Request) bool {
	o := r.Header.Get("Origin")
	return o == "" || e.origins.Allows(o)
}

// admit answers the checks every push endpoint makes before it streams:
// the origin and the connection cap. It returns the release function of
// the counted connection, or nil after writing the refusal.
func (e *Endpoints) admit(w http.ResponseWriter, r *http.Request) func() {
	if !e.originAllowed(r) {
		jmap.WriteProblem(w, &jmap.Problem{Type: "about:blank", Status: http.StatusForbidden,
			Detail: "this origin may not connect"})
		return nil
	}
	release, ok := e.acquire(jmap.CallerFrom(r.Context()).Principal)
	if !ok {
		jmap.WriteProblem(w, &jmap.Problem{Type: "about:blank", Status: http.StatusTooManyRequests,
			Detail: "too many push connections"})
		return nil
	}
	return release
}
