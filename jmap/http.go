package jmap

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"

	"github.com/jmapd/jmapd/store"
)

// AuthFunc authenticates a request. On failure it returns an error and, when
// the client is being throttled, how long it should wait.
type AuthFunc func(r *http.Request) (*Caller, time.Duration, error)

// Server serves the JMAP HTTP endpoints of RFC 8620 §2, §3 and §6.
type Server struct {
	Registry *Registry
	// BaseURL is the public URL prefix the session advertises, without a
	// trailing slash.
	BaseURL string
	Auth    AuthFunc
	// Uploaded, when set, is told of each upload to the upload endpoint,
	// before the client is answered; an error fails the upload.
	Uploaded func(ctx context.Context, acct store.AccountID, who store.PrincipalID, id store.BlobID) error
	// OpenBlob opens blobs for download; nil means the store's blobs.
	// Data types with blobs of their own (body parts) resolve them here.
	OpenBlob func(ctx context.Context, acct store.AccountID, id store.BlobID, off, n int64) (store.BlobInfo, io.ReadSeekCloser, error)
	// Extra routes (push endpoints) mounted under the authenticated JMAP
	// prefix, keyed by path below /jmap/.
	Extra map[string]http.Handler

	mu        sync.Mutex
	inFlight  map[store.PrincipalID]int
	uploading map[store.PrincipalID]int
}

// Paths of the endpoints, relative to the base URL.
const (
	PathSession     = "/jmap/session"
	PathAPI         = "/jmap/api"
	PathUpload      = "/jmap/upload/"
	PathDownload    = "/jmap/download/"
	PathEventSource = "/jmap/eventsource"
)

// Routes adds the JMAP endpoints to r.
func (s *Server) Routes(r *mux.Router) {
	s.inFlight = map[store.PrincipalID]int{}
	s.uploading = map[store.PrincipalID]int{}
	r.Handle("/.well-known/jmap", s.authed(http.HandlerFunc(s.session))).Methods(http.MethodGet)
	r.Handle(PathSession, s.authed(http.HandlerFunc(s.session))).Methods(http.MethodGet)
	r.Handle(PathAPI, s.authed(http.HandlerFunc(s.api))).Methods(http.MethodPost)
	r.Handle(PathUpload+"{accountId}/", s.authed(http.HandlerFunc(s.upload))).Methods(http.MethodPost)
	r.Handle(PathUpload+"{accountId}", s.authed(http.HandlerFunc(s.upload))).Methods(http.MethodPost)
	r.Handle(PathDownload+"{accountId}/{blobId}/{name}", s.authed(http.HandlerFunc(s.download))).Methods(http.MethodGet, http.MethodHead)
	for p, h := range s.Extra {
		r.Handle("/jmap/"+p, s.authed(h))
	}
}

// WriteProblem writes an RFC 7807 problem details response.
func WriteProblem(w http.ResponseWriter, p *Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// marshal encodes v without HTML escaping: URL templates keep their "&".
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeJSON(w http.ResponseWriter, v any) { writeJSONStatus(w, http.StatusOK, v) }

// writeJSONStatus writes v as JSON with the given status; the headers are
// set before the status goes out.
func writeJSONStatus(w http.ResponseWriter, status int, v any) {
	if r, ok := v.(*Response); ok {
		writeResponse(w, status, r)
		return
	}
	b, err := marshal(v)
	if err != nil {
		WriteProblem(w, &Problem{Type: "about:blank", Status: http.StatusInternalServerError, Detail: "internal error"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

type requestIDKey struct{}

// RequestID returns the request id the logging middleware gave ctx.
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey{}).(string)
	return s
}

// WithRequestID returns ctx carrying a new request id, and the id.
func WithRequestID(ctx context.Context) (context.Context, string) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	return context.WithValue(ctx, requestIDKey{}, id), id
}

func (s *Server) authed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, retry, err := s.Auth(r)
		if err != nil {
			if retry > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
				WriteProblem(w, &Problem{Type: "about:blank", Status: http.StatusTooManyRequests,
					Detail: "too many failed logins; try again later"})
				return
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="jmapd", charset="UTF-8"`)
			w.Header().Add("WWW-Authenticate", `Bearer realm="jmapd"`)
			WriteProblem(w, &Problem{Type: "about:blank", Status: http.StatusUnauthorized,
				Detail: "authentication required"})
			return
		}
		ctx := WithCaller(r.Context(), caller)
		zerolog.Ctx(ctx).UpdateContext(func(c zerolog.Context) zerolog.Context {
			return c.Str("user", caller.Username)
		})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// SessionResource is the Session object (RFC 8620 §2).
type SessionResource struct {
	Capabilities    map[string]any      `json:"capabilities"`
	Accounts        map[string]*Account `json:"accounts"`
	PrimaryAccounts map[string]string   `json:"primaryAccounts"`
	Username        string              `json:"username"`
	APIURL          string              `json:"apiUrl"`
	DownloadURL     string              `json:"downloadUrl"`
	UploadURL       string              `json:"uploadUrl"`
	EventSourceURL  string              `json:"eventSourceUrl"`
	State           string              `json:"state"`
}

// Session builds the Session object for the caller.
func (s *Server) Session(ctx context.Context, c *Caller) (*SessionResource, error) {
	accts, primary, state, err := s.Registry.Accounts.Session(ctx, c)
	if err != nil {
		return nil, err
	}
	res := &SessionResource{
		Capabilities:    s.Registry.Capabilities(),
		Accounts:        map[string]*Account{},
		PrimaryAccounts: map[string]string{},
		Username:        c.Username,
		APIURL:          s.BaseURL + PathAPI,
		DownloadURL:     s.BaseURL + PathDownload + "{accountId}/{blobId}/{name}?type={type}",
		UploadURL:       s.BaseURL + PathUpload + "{accountId}/",
		EventSourceURL:  s.BaseURL + PathEventSource + "?types={types}&closeafter={closeafter}&ping={ping}",
		State:           state,
	}
	for _, a := range accts {
		res.Accounts[string(a.ID)] = a
	}
	for k, v := range primary {
		res.PrimaryAccounts[k] = string(v)
	}
	return res, nil
}

func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	res, err := s.Session(r.Context(), CallerFrom(r.Context()))
	if err != nil {
		zerolog.Ctx(r.Context()).Error().Err(err).Msg("session")
		WriteProblem(w, &Problem{Type: "about:blank", Status: http.StatusInternalServerError, Detail: "internal error"})
		return
	}
	writeJSON(w, res)
}

// acquire counts one more request of kind for the caller, refusing past max.
func (s *Server) acquire(m map[store.PrincipalID]int, id store.PrincipalID, max int) (release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m[id] >= max {
		return nil, false
	}
	m[id]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if m[id]--; m[id] <= 0 {
			delete(m, id)
		}
	}, true
}

func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	caller := CallerFrom(ctx)
	lim := s.Registry.Limits
	release, ok := s.acquire(s.inFlight, caller.Principal, lim.MaxConcurrentRequests)
	if !ok {
		WriteProblem(w, &Problem{Type: ProblemLimit, Status: http.StatusTooManyRequests, Limit: "maxConcurrentRequests",
			Detail: "too many concurrent requests"})
		return
	}
	released := false
	defer func() {
		if !released {
			release()
		}
	}()
	// RFC 8620 §3.6.1: a content type other than application/json is
	// notJSON. A request without one is read as JSON.
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			WriteProblem(w, &Problem{Type: ProblemNotJSON, Status: http.StatusBadRequest,
				Detail: "the request must be application/json"})
			return
		}
	}
	body, err := readBody(http.MaxBytesReader(w, r.Body, lim.MaxSizeRequest+1), r.ContentLength, lim.MaxSizeRequest)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || int64(len(body)) > lim.MaxSizeRequest {
		WriteProblem(w, &Problem{Type: ProblemLimit, Status: http.StatusBadRequest, Limit: "maxSizeRequest",
			Detail: "the request is larger than the server accepts"})
		return
	}
	if err != nil {
		WriteProblem(w, &Problem{Type: ProblemNotJSON, Status: http.StatusBadRequest, Detail: "the request body could not be read"})
		return
	}
	resp, p := s.run(ctx, caller, body)
	// The work is done: the slot frees before the answer is written, so a
	// client that sends its next request as soon as it has read this
	// answer is never refused for one that has ended.
	released = true
	release()
	if p != nil {
		WriteProblem(w, p)
		return
	}
	writeJSON(w, resp)
}

// readBody reads a request body whose length the client announced (n, or
// -1) into one buffer of that size, rather than into one that doubles as
// it fills; an announced length above max is not trusted for the buffer.
func readBody(r io.Reader, n, max int64) ([]byte, error) {
	if n < 0 || n > max {
		return io.ReadAll(r)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	// The body must end where announced (net/http enforces it too).
	var one [1]byte
	if k, err := r.Read(one[:]); k > 0 {
		rest, err := io.ReadAll(r)
		return append(append(buf, one[0]), rest...), err
	} else if err != nil && err != io.EOF {
		return nil, err
	}
	return buf, nil
}

// RunRequest runs an API request body for the caller exactly as the API
// endpoint does, counted against the caller's maxConcurrentRequests with
// the requests in flight there (RFC 8887 §4.3.2). It returns the encoded
// Response object, or the request-level problem to answer instead.
// Members of body beyond those of a Request are ignored.
func (s *Server) RunRequest(ctx context.Context, caller *Caller, body []byte) ([]byte, *Problem) {
	release, ok := s.acquire(s.inFlight, caller.Principal, s.Registry.Limits.MaxConcurrentRequests)
	if !ok {
		return nil, &Problem{Type: ProblemLimit, Status: http.StatusTooManyRequests, Limit: "maxConcurrentRequests",
			Detail: "too many concurrent requests"}
	}
	defer release()
	resp, p := s.run(ctx, caller, body)
	if p != nil {
		return nil, p
	}
	b, err := encodeResponse(resp)
	if err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Msg("encode response")
		return nil, &Problem{Type: "about:blank", Status: http.StatusInternalServerError, Detail: "internal error"}
	}
	return b, nil
}

// run decodes and executes a request body already read within the limits.
func (s *Server) run(ctx context.Context, caller *Caller, body []byte) (*Response, *Problem) {
	req, err := DecodeRequest(body, s.Registry.Limits, s.Registry.KnownCapability)
	if err != nil {
		var p *Problem
		if errors.As(err, &p) {
			return nil, p
		}
		return nil, notRequest(err.Error())
	}
	state, err := s.Registry.Accounts.SessionState(ctx, caller)
	if err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Msg("session state")
		return nil, &Problem{Type: "about:blank", Status: http.StatusInternalServerError, Detail: "internal error"}
	}
	names := make([]string, len(req.MethodCalls))
	for i, c := range req.MethodCalls {
		names[i] = c.Name
	}
	zerolog.Ctx(ctx).UpdateContext(func(c zerolog.Context) zerolog.Context {
		return c.Strs("methods", names)
	})
	return s.Registry.Execute(ctx, caller, req, state), nil
}

// UploadResponse is the answer to an upload (RFC 8620 §6.1).
type UploadResponse struct {
	AccountID string `json:"accountId"`
	BlobID    string `json:"blobId"`
	Type      string `json:"type"`
	Size      int64  `json:"size"`
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	caller := CallerFrom(ctx)
	lim := s.Registry.Limits
	acctID, err := url.PathUnescape(mux.Vars(r)["accountId"])
	if err != nil {
		acctID = ""
	}
	acct, err := s.Registry.Accounts.Lookup(ctx, caller, store.AccountID(acctID))
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			WriteProblem(w, &Problem{Type: "about:blank", Status: http.StatusNotFound, Detail: "no such account"})
			return
		}
		zerolog.Ctx(ctx).Error().Err(err).Msg("upload account")
		WriteProblem(w, &Problem{Type: "about:blank", Status: http.StatusInternalServerError, Detail: "internal error"})
		return
	}
	if acct.IsReadOnly {
		WriteProblem(w, &Problem{Type: "about:blank", Status: http.StatusForbidden, Detail: "the account is read-only"})
		return
	}
	release, ok := s.acquire(s.uploading, caller.Principal, lim.MaxConcurrentUpload)
	if !ok {
		WriteProblem(w, &Problem{Type: ProblemLimit, Status: http.StatusTooManyRequests, Limit: "maxConcurrentUpload",
			Detail: "too many concurrent uploads"})
		return
	}
	defer release()
	tooLarge := &Problem{Type: ProblemLimit, Status: http.StatusRequestEntityTooLarge, Limit: "maxSizeUpload",
		Detail: fmt.Sprintf("uploads are limited to %d octets", lim.MaxSizeUpload)}
	if r.ContentLength > lim.MaxSizeUpload {
		WriteProblem(w, tooLarge)
		return
	}
	typ := r.Header.Get("Content-Type")
	if typ == "" {
		typ = "application/octet-stream"
	}
	info, err := s.Registry.Store.Blobs().Upload(ctx, acct.ID, typ, http.MaxBytesReader(w, r.Body, lim.MaxSizeUpload+1), lim.MaxSizeUpload)
	var mbe *http.MaxBytesError
	if errors.Is(err, store.ErrTooLarge) || errors.As(err, &mbe) {
		WriteProblem(w, tooLarge)
		return
	}
	if err == nil && s.Uploaded != nil {
		err = s.Uploaded(ctx, acct.ID, CallerFrom(ctx).Principal, info.ID)
	}
	if err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Msg("upload")
		WriteProblem(w, &Problem{Type: "about:blank", Status: http.StatusInternalServerError, Detail: "internal error"})
		return
	}
	writeJSONStatus(w, http.StatusCreated, UploadResponse{AccountID: string(acct.ID), BlobID: string(info.ID), Type: typ, Size: info.Size})
}

func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	caller := CallerFrom(ctx)
	v := mux.Vars(r)
	notFound := &Problem{Type: "about:blank", Status: http.StatusNotFound, Detail: "no such blob"}
	// The router matches the escaped path, so that a name holding "%2F"
	// stays one segment (RFC 8620 §6.2: the name is returned as given).
	for k, val := range v {
		u, err := url.PathUnescape(val)
		if err != nil {
			WriteProblem(w, notFound)
			return
		}
		v[k] = u
	}
	acct, err := s.Registry.Accounts.Lookup(ctx, caller, store.AccountID(v["accountId"]))
	if err != nil {
		WriteProblem(w, notFound)
		return
	}
	open := s.Registry.Store.Blobs().Open
	if s.OpenBlob != nil {
		open = s.OpenBlob
	}
	info, body, err := open(ctx, acct.ID, store.BlobID(v["blobId"]), 0, -1)
	if errors.Is(err, store.ErrNotFound) {
		WriteProblem(w, notFound)
		return
	}
	if err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Msg("download")
		WriteProblem(w, &Problem{Type: "about:blank", Status: http.StatusInternalServerError, Detail: "internal error"})
		return
	}
	defer body.Close()
	typ := r.URL.Query().Get("type")
	if typ == "" {
		typ = r.URL.Query().Get("accept")
	}
	if _, _, err := mime.ParseMediaType(typ); typ == "" || err != nil {
		typ = "application/octet-stream"
	}
	name := v["name"]
	w.Header().Set("Content-Type", typ)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	w.Header().Set("Cache-Control", "private, immutable, max-age=31536000")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; sandbox")
	w.Header().Set("ETag", `"`+string(info.ID)+`"`)
	http.ServeContent(w, r, "", time.Time{}, body)
}
