package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/push"
)

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (flushes for
// EventSource, hijacks for WebSocket and EventSource).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// endpoint names the route for metrics without ids in it.
func endpoint(path string) string {
	switch {
	case strings.HasPrefix(path, jmap.PathUpload):
		return "upload"
	case strings.HasPrefix(path, jmap.PathDownload):
		return "download"
	case path == jmap.PathAPI:
		return "api"
	case path == jmap.PathSession || path == "/.well-known/jmap":
		return "session"
	case path == jmap.PathEventSource:
		return "eventsource"
	case path == push.PathWebSocket:
		return "websocket"
	case path == push.PathTicket:
		return "ticket"
	case path == "/healthz" || path == "/metrics":
		return path[1:]
	}
	return "other"
}

// logRequests gives each request an id and a logger in its context, and
// logs one line when it ends: never bodies, passwords or tokens, and never
// the query string, which may hold a ticket or an access token.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, id := jmap.WithRequestID(r.Context())
		l := s.log.With().Str("req", id).Logger()
		ctx = l.WithContext(ctx)
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(ctx))
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		d := time.Since(start)
		ep := endpoint(r.URL.Path)
		s.metrics.ObserveRequest(ep, sw.status, d)
		if ep == "metrics" || ep == "healthz" {
			return
		}
		ev := zerolog.Ctx(ctx).Info()
		if sw.status >= 500 {
			ev = zerolog.Ctx(ctx).Error()
		}
		ev.Str("http_method", r.Method).Str("path", ep).Str("remote", r.RemoteAddr).
			Int("status", sw.status).Int("bytes", sw.bytes).
			Float64("dur_ms", float64(d.Microseconds())/1000).Msg("request")
	})
}
