package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
)

// Capability URNs the tool looks for in a session (RFC 8620 §2, RFC 8621
// §1.3.1, RFC 9404 §3, RFC 8887 §4).
const (
	CapCore      = "urn:ietf:params:jmap:core"
	CapMail      = "urn:ietf:params:jmap:mail"
	CapBlob      = "urn:ietf:params:jmap:blob"
	CapWebSocket = "urn:ietf:params:jmap:websocket"
)

// Session is the part of the JMAP Session object (RFC 8620 §2) the tool uses.
type Session struct {
	Capabilities    map[string]json.RawMessage `json:"capabilities"`
	Accounts        map[string]json.RawMessage `json:"accounts"`
	PrimaryAccounts map[string]string          `json:"primaryAccounts"`
	Username        string                     `json:"username"`
	APIURL          string                     `json:"apiUrl"`
	DownloadURL     string                     `json:"downloadUrl"`
	UploadURL       string                     `json:"uploadUrl"`
	EventSourceURL  string                     `json:"eventSourceUrl"`
	State           string                     `json:"state"`
}

// CoreLimits are the limits of the core capability (RFC 8620 §2).
type CoreLimits struct {
	MaxSizeUpload         int64 `json:"maxSizeUpload"`
	MaxConcurrentUpload   int   `json:"maxConcurrentUpload"`
	MaxSizeRequest        int64 `json:"maxSizeRequest"`
	MaxConcurrentRequests int   `json:"maxConcurrentRequests"`
	MaxCallsInRequest     int   `json:"maxCallsInRequest"`
	MaxObjectsInGet       int   `json:"maxObjectsInGet"`
	MaxObjectsInSet       int   `json:"maxObjectsInSet"`
}

// WebSocketCap is the WebSocket capability (RFC 8887 §4).
type WebSocketCap struct {
	URL          string `json:"url"`
	SupportsPush bool   `json:"supportsPush"`
}

// Has reports whether the session advertises capability c.
func (s *Session) Has(c string) bool {
	_, ok := s.Capabilities[c]
	return ok
}

// Core returns the core limits, with conservative values for missing ones.
func (s *Session) Core() CoreLimits {
	l := CoreLimits{}
	if raw, ok := s.Capabilities[CapCore]; ok {
		_ = json.Unmarshal(raw, &l) // a malformed object leaves the defaults below
	}
	if l.MaxSizeRequest <= 0 {
		l.MaxSizeRequest = 4_000_000
	}
	if l.MaxCallsInRequest <= 0 {
		l.MaxCallsInRequest = 16
	}
	if l.MaxObjectsInSet <= 0 {
		l.MaxObjectsInSet = 100
	}
	if l.MaxObjectsInGet <= 0 {
		l.MaxObjectsInGet = 100
	}
	if l.MaxConcurrentRequests <= 0 {
		l.MaxConcurrentRequests = 4
	}
	if l.MaxConcurrentUpload <= 0 {
		l.MaxConcurrentUpload = 1
	}
	return l
}

// WebSocket returns the WebSocket capability, or nil when the server has
// none.
func (s *Session) WebSocket() *WebSocketCap {
	raw, ok := s.Capabilities[CapWebSocket]
	if !ok {
		return nil
	}
	var w WebSocketCap
	if json.Unmarshal(raw, &w) != nil || w.URL == "" {
		return nil
	}
	return &w
}

// MailAccount returns the user's primary mail account id.
func (s *Session) MailAccount() string {
	if id := s.PrimaryAccounts[CapMail]; id != "" {
		return id
	}
	return s.PrimaryAccounts[CapCore]
}

// Client speaks JMAP over HTTP for one user with HTTP Basic auth. Each
// Client has its own connection pool, as a real client program would.
type Client struct {
	SessionURL string
	User       string
	Password   string
	HTTP       *http.Client
	// Session is the last fetched session.
	Session *Session
}

// NewClient returns a client with its own transport and a per-request
// timeout.
func NewClient(sessionURL, user, password string, timeout time.Duration) *Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     90 * time.Second,
		// Mail bodies are already counted in MB/s; keep the wire plain.
		DisableCompression: true,
	}
	return &Client{SessionURL: sessionURL, User: user, Password: password,
		HTTP: &http.Client{Transport: tr, Timeout: timeout}}
}

// Close releases the client's idle connections.
func (c *Client) Close() {
	c.HTTP.CloseIdleConnections()
}

// Error is a failed JMAP exchange, classified for the report.
type Error struct {
	// Kind is "http", "method", "set", "transport", "timeout", "decode" or
	// "missing".
	Kind string
	// Type is the HTTP status, the JMAP error type, or a short cause.
	Type   string
	Detail string
}

func (e *Error) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("%s %s: %s", e.Kind, e.Type, e.Detail)
	}
	return e.Kind + " " + e.Type
}

// Key is the error's bucket in the report, such as "http 500" or
// "method serverFail".
func (e *Error) Key() string { return e.Kind + " " + e.Type }

// ErrorKey returns the report bucket of any error.
func ErrorKey(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Key()
	}
	return classify(err).Key()
}

// classify turns a transport error into an *Error.
func classify(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return &Error{Kind: "transport", Type: "canceled"}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return &Error{Kind: "timeout", Type: "timeout"}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &Error{Kind: "transport", Type: "refused"}
	case errors.Is(err, syscall.ECONNRESET):
		return &Error{Kind: "transport", Type: "reset"}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Kind: "transport", Type: "closed"}
	case errors.Is(err, syscall.EPIPE):
		return &Error{Kind: "transport", Type: "broken-pipe"}
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "server closed"), strings.Contains(msg, "EOF"):
		return &Error{Kind: "transport", Type: "closed", Detail: msg}
	case strings.Contains(msg, "connection reset"):
		return &Error{Kind: "transport", Type: "reset", Detail: msg}
	}
	return &Error{Kind: "transport", Type: "other", Detail: msg}
}

// FetchSession gets the session resource and keeps it in c.Session.
func (c *Client) FetchSession(ctx context.Context) (*Session, error) {
	body, err := c.do(ctx, http.MethodGet, c.SessionURL, "", nil)
	if err != nil {
		return nil, err
	}
	var s Session
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, &Error{Kind: "decode", Type: "session", Detail: err.Error()}
	}
	if s.APIURL == "" {
		return nil, &Error{Kind: "decode", Type: "session", Detail: "no apiUrl"}
	}
	// Relative URLs resolve against the session URL (RFC 8620 §2 allows
	// absolute ones only, but be lenient towards a misconfigured proxy).
	base, err := url.Parse(c.SessionURL)
	if err == nil {
		for _, p := range []*string{&s.APIURL, &s.UploadURL, &s.DownloadURL, &s.EventSourceURL} {
			if *p == "" {
				continue
			}
			if u, err := base.Parse(*p); err == nil {
				*p = strings.NewReplacer("%7B", "{", "%7D", "}").Replace(u.String())
			}
		}
	}
	c.Session = &s
	return &s, nil
}

// do sends one authenticated request and returns the body of a 2xx answer.
func (c *Client) do(ctx context.Context, method, u, ctype string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, &Error{Kind: "transport", Type: "request", Detail: err.Error()}
	}
	req.SetBasicAuth(c.User, c.Password)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, classify(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, classify(err)
	}
	if resp.StatusCode/100 != 2 {
		detail := ""
		var p struct {
			Type   string `json:"type"`
			Detail string `json:"detail"`
		}
		if json.Unmarshal(data, &p) == nil {
			detail = strings.TrimSpace(strings.TrimPrefix(p.Type, "urn:ietf:params:jmap:error:") + " " + p.Detail)
		}
		return nil, &Error{Kind: "http", Type: fmt.Sprint(resp.StatusCode), Detail: detail}
	}
	return data, nil
}

// Call is one method call of a request.
type Call struct {
	Name string
	Args any
	ID   string
}

// MarshalJSON writes the call as the Invocation triple (RFC 8620 §3.2).
func (c Call) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{c.Name, c.Args, c.ID})
}

// Response is one method response of a request.
type Response struct {
	Name string
	Args json.RawMessage
	ID   string
}

// UnmarshalJSON reads the Invocation triple.
func (r *Response) UnmarshalJSON(b []byte) error {
	var t []json.RawMessage
	if err := json.Unmarshal(b, &t); err != nil {
		return err
	}
	if len(t) != 3 {
		return fmt.Errorf("invocation has %d elements", len(t))
	}
	if err := json.Unmarshal(t[0], &r.Name); err != nil {
		return err
	}
	r.Args = t[1]
	return json.Unmarshal(t[2], &r.ID)
}

// Ref is a result reference (RFC 8620 §3.7).
type Ref struct {
	ResultOf string `json:"resultOf"`
	Name     string `json:"name"`
	Path     string `json:"path"`
}

// API sends one JMAP request and returns the responses by call id. A method
// error in any response becomes an *Error of kind "method".
func (c *Client) API(ctx context.Context, using []string, calls ...Call) (map[string]json.RawMessage, error) {
	if c.Session == nil {
		if _, err := c.FetchSession(ctx); err != nil {
			return nil, err
		}
	}
	req, err := json.Marshal(map[string]any{"using": using, "methodCalls": calls})
	if err != nil {
		return nil, err
	}
	body, err := c.do(ctx, http.MethodPost, c.Session.APIURL, "application/json", req)
	if err != nil {
		return nil, err
	}
	var res struct {
		MethodResponses []Response `json:"methodResponses"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, &Error{Kind: "decode", Type: "response", Detail: err.Error()}
	}
	out := make(map[string]json.RawMessage, len(res.MethodResponses))
	for _, r := range res.MethodResponses {
		if r.Name == "error" {
			var me struct {
				Type        string `json:"type"`
				Description string `json:"description"`
			}
			_ = json.Unmarshal(r.Args, &me) // an unreadable error still counts by name
			if me.Type == "" {
				me.Type = "unknown"
			}
			return nil, &Error{Kind: "method", Type: me.Type, Detail: me.Description}
		}
		out[r.ID] = r.Args
	}
	for _, call := range calls {
		if _, ok := out[call.ID]; !ok {
			return nil, &Error{Kind: "missing", Type: call.Name}
		}
	}
	return out, nil
}

// Upload posts data to the session's upload URL (RFC 8620 §6.1) and returns
// the blob id.
func (c *Client) Upload(ctx context.Context, account, ctype string, data []byte) (string, error) {
	if c.Session == nil || c.Session.UploadURL == "" {
		return "", &Error{Kind: "missing", Type: "uploadUrl"}
	}
	u := strings.ReplaceAll(c.Session.UploadURL, "{accountId}", url.PathEscape(account))
	body, err := c.do(ctx, http.MethodPost, u, ctype, data)
	if err != nil {
		return "", err
	}
	var r struct {
		BlobID string `json:"blobId"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.BlobID == "" {
		return "", &Error{Kind: "decode", Type: "upload", Detail: "no blobId"}
	}
	return r.BlobID, nil
}

// SetError is one entry of notCreated/notUpdated (RFC 8620 §5.3).
type SetError struct {
	Type        string `json:"type"`
	Description string `json:"description"`
}

// firstSetError returns an *Error for the first entry of the not* maps of a
// /set-like response, or nil.
func firstSetError(raw json.RawMessage) error {
	var r struct {
		NotCreated   map[string]SetError `json:"notCreated"`
		NotUpdated   map[string]SetError `json:"notUpdated"`
		NotDestroyed map[string]SetError `json:"notDestroyed"`
	}
	if json.Unmarshal(raw, &r) != nil {
		return &Error{Kind: "decode", Type: "set"}
	}
	for _, m := range []map[string]SetError{r.NotCreated, r.NotUpdated, r.NotDestroyed} {
		for _, e := range m {
			return &Error{Kind: "set", Type: e.Type, Detail: e.Description}
		}
	}
	return nil
}
