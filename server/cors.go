package server

import (
	"net/http"
	"strings"

	"github.com/jmapd/jmapd/internal/origin"
)

// corsMaxAge is how long a browser may keep a preflight's answer, in
// seconds.
const corsMaxAge = "600"

// corsHeaders are the request headers a page may send: those of the JMAP
// API, upload and download, and of the EventSource endpoint.
const corsHeaders = "Authorization, Content-Type, Accept, Last-Event-ID, Cache-Control"

// corsExposed are the response headers a page may read: a download's name
// and type, and when to retry (429, 503).
const corsExposed = "Content-Disposition, Content-Length, Content-Type, Retry-After, Location"

// cors lets web pages of the allowed origins use the server from another
// origin (the Fetch standard's CORS protocol): a preflight OPTIONS request
// is answered here, before authentication, since browsers send it without
// credentials; other requests from an allowed origin get the headers that
// let the page read the answer. A page of another origin gets no such
// header, so its browser withholds the answer; a preflight from it gets
// 403.
func cors(allowed *origin.List, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o := r.Header.Get("Origin")
		if o == "" {
			next.ServeHTTP(w, r)
			return
		}
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if !allowed.Allows(o) {
			if preflight {
				http.Error(w, "origin not allowed", http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		// No Access-Control-Allow-Credentials: a page sends its
		// Authorization header itself; the browser's own stored
		// credentials are never lent to another origin.
		h.Set("Access-Control-Allow-Origin", o)
		h.Add("Vary", "Origin")
		if !preflight {
			h.Set("Access-Control-Expose-Headers", corsExposed)
			next.ServeHTTP(w, r)
			return
		}
		switch strings.ToUpper(r.Header.Get("Access-Control-Request-Method")) {
		case http.MethodGet, http.MethodHead, http.MethodPost:
		default:
			http.Error(w, "method not allowed", http.StatusForbidden)
			return
		}
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", corsHeaders)
		h.Set("Access-Control-Max-Age", corsMaxAge)
		w.WriteHeader(http.StatusNoContent)
	})
}
