// Package origin decides which web origins may use the server from a
// browser: their pages may call the API across origins (CORS) and open
// the EventSource and WebSocket endpoints.
package origin

import (
	"net/url"
	"strings"
)

// List is the set of allowed origins: the server's own, and those
// configured. The zero value allows none.
type List struct {
	own  string
	any  bool
	more map[string]bool
}

// New returns the list of baseURL's origin and the origins given
// ("https://mail.example.com"); "*" among them allows any origin.
func New(baseURL string, allowed []string) *List {
	l := &List{more: map[string]bool{}}
	if u, err := url.Parse(baseURL); err == nil && u.Scheme != "" && u.Host != "" {
		l.own = normal(u.Scheme + "://" + u.Host)
	}
	for _, o := range allowed {
		if o == "*" {
			l.any = true
		}
		l.more[normal(o)] = true
	}
	return l
}

// Allows reports whether a page of origin o (an Origin header's value)
// may use the server. "null" (RFC 6454 §7.3: an opaque origin) is allowed
// only when any origin is.
func (l *List) Allows(o string) bool {
	if l.any {
		return true
	}
	o = normal(o)
	return o != "null" && (o == l.own || l.more[o])
}

// normal lower-cases an origin and drops a trailing slash.
func normal(o string) string {
	return strings.ToLower(strings.TrimSuffix(o, "/"))
}
