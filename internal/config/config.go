// Package config holds jmapd's settings: one Config read from a TOML file
// on top of the defaults in Default, then overridden by command line flags
// in cmd/jmapd and checked once by Validate.
//
// The file does not guess: a key the Config does not know is an error, and
// Validate lists every wrong setting at once, each by its key.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the whole configuration of a server. The TOML key of each field
// is in its tag; the default is in its comment and in Default.
type Config struct {
	// Data is the data directory: the store and the admin socket
	// (default "./data").
	Data string `toml:"data"`
	// Listen is the host:port the HTTP server listens on
	// (default "127.0.0.1:8080").
	Listen string `toml:"listen"`
	// BaseURL is the URL prefix the session advertises, for a server behind
	// a proxy (default "": derived from Listen, see Config.URL).
	BaseURL string `toml:"base_url"`
	// TLSCert and TLSKey are the PEM certificate chain and key files; with
	// both set the server speaks HTTPS itself. Both or neither
	// (default "", plain HTTP).
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// LogLevel is the lowest level logged: trace, debug, info, warn or error
	// (default "info").
	LogLevel string `toml:"log_level"`
	// LogFormat is "json", "console", or "auto" for console on a terminal
	// and JSON otherwise (default "auto").
	LogFormat string `toml:"log_format"`
	// MemoryLimitMB is a soft limit of the Go heap in MiB: the garbage
	// collector works harder near it, and memory freed after a burst
	// (an import, a store compaction) goes back to the system at once
	// instead of staying resident for minutes. Set it well above the live
	// heap (about 130 MiB serving a 100,000-message account): near it,
	// collection takes CPU from requests. 0 leaves the runtime's default
	// (default 384; the GOMEMLIMIT environment variable wins).
	MemoryLimitMB int64 `toml:"memory_limit_mb"`
	// MappedBudgetMB bounds, in MiB, the file pages of the store the
	// process keeps resident: the store reads and writes its files through
	// memory mappings, and pages above the budget are handed back to the
	// kernel, logs first (a server with memory to spare may raise it: the
	// pages then stay cached). 0 for no bound (default 128).
	MappedBudgetMB int64 `toml:"mapped_budget_mb"`
	// Limits are the request limits the session advertises.
	Limits Limits `toml:"limits"`
	// Auth tunes authentication.
	Auth Auth `toml:"auth"`
	// Blobs tunes blob storage.
	Blobs Blobs `toml:"blobs"`
	// Submission tunes sending (sending.go).
	Submission Submission `toml:"submission"`
	// Relay is the outbound SMTP relay; none by default (sending.go).
	Relay Relay `toml:"relay"`
	// Push tunes the push channels.
	Push Push `toml:"push"`
	// LMTP takes mail from the Internet, handed over by a mail transfer
	// agent (lmtp.go).
	LMTP LMTP `toml:"lmtp"`
}

// LMTP configures the LMTP listener (RFC 2033), table [lmtp]: the way a
// mail transfer agent (Postfix, Exim, OpenSMTPD) that receives the
// domain's mail from the Internet hands it to jmapd.
type LMTP struct {
	// Listen is a host:port, or "unix:" and a socket path; "" (the
	// default) receives no mail this way. LMTP has no authentication:
	// listen on loopback or a socket only the MTA may use.
	Listen string `toml:"listen"`
	// MaxSize is the largest message accepted, in octets (default
	// 50000000).
	MaxSize int64 `toml:"max_size"`
	// MaxRecipients is the most recipients of one message (default 100).
	MaxRecipients int `toml:"max_recipients"`
}

// Push tunes EventSource, WebSocket and Web Push, table [push].
type Push struct {
	// AllowedOrigins lists the origins ("https://mail.example.com") whose
	// web pages may use the server from a browser: call the API, upload
	// and download across origins (CORS), and open the EventSource and
	// WebSocket endpoints; "*" allows any. Requests without an Origin
	// header are always allowed; an empty list allows only the base URL's
	// own origin (default []).
	AllowedOrigins []string `toml:"allowed_origins"`
	// MaxConnectionsPerUser bounds the EventSource and WebSocket
	// connections one user holds at once (default 50).
	MaxConnectionsPerUser int `toml:"max_connections_per_user"`
	// AllowHTTPSubscriptions lets PushSubscription urls use plain http://
	// and reach loopback and private addresses, for tests and closed
	// networks; RFC 8620 §7.2 and §8.6 ask for https:// and public
	// addresses (default false).
	AllowHTTPSubscriptions bool `toml:"allow_http_subscriptions"`
}

// Limits are the limits of the core capability (RFC 8620 §2), table
// [limits].
type Limits struct {
	// MaxSizeUpload is the largest upload in octets (default 50000000).
	MaxSizeUpload int64 `toml:"max_size_upload"`
	// MaxConcurrentUpload is the number of uploads a user may run at once
	// (default 4).
	MaxConcurrentUpload int `toml:"max_concurrent_upload"`
	// MaxSizeRequest is the largest API request in octets (default 10000000).
	MaxSizeRequest int64 `toml:"max_size_request"`
	// MaxConcurrentRequests is the number of API requests a user may run at
	// once (default 32).
	MaxConcurrentRequests int `toml:"max_concurrent_requests"`
	// MaxCallsInRequest is the most method calls in one request (default 64).
	MaxCallsInRequest int `toml:"max_calls_in_request"`
	// MaxObjectsInGet is the most ids one /get may ask for (default 1000).
	MaxObjectsInGet int `toml:"max_objects_in_get"`
	// MaxObjectsInSet is the most creates, updates and destroys one /set
	// may hold together (default 1000).
	MaxObjectsInSet int `toml:"max_objects_in_set"`
}

// Auth tunes authentication, table [auth].
type Auth struct {
	// CacheTTL is how long a verified credential is remembered before the
	// password hash is checked again; 0 turns the cache off (default "2m").
	// Admin commands flush the cache of a running server at once.
	CacheTTL Duration `toml:"cache_ttl"`
	// MaxFailures is how many failed logins from one client within
	// FailureWindow make the server refuse further attempts until the
	// window has passed (default 10).
	MaxFailures int `toml:"max_failures"`
	// FailureWindow is the span over which failed logins are counted
	// (default "1m").
	FailureWindow Duration `toml:"failure_window"`
}

// Blobs tunes blob storage, table [blobs].
type Blobs struct {
	// Grace is how long an uploaded blob that nothing references stays
	// readable before it may be collected; at least one hour, as RFC 8620
	// §6.1 asks (default "24h").
	Grace Duration `toml:"grace"`
}

// Duration is a span of time written in the file as a Go duration string
// ("90s", "2m", "24h").
//
// Decoding never fails on a value that is not a duration: the text is kept
// and Validate reports it, so that one run lists every wrong setting.
type Duration struct {
	time.Duration
	bad  bool
	text string
}

// UnmarshalText parses a Go duration string; see Duration for what happens
// to one that does not parse.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		*d = Duration{bad: true, text: string(b)}
		return nil
	}
	*d = Duration{Duration: v}
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) {
	if d.bad {
		return []byte(d.text), nil
	}
	return []byte(d.Duration.String()), nil
}

// Default returns the configuration used where the file and the flags say
// nothing.
func Default() Config {
	return Config{
		Data:           "./data",
		Listen:         "127.0.0.1:8080",
		LogLevel:       "info",
		LogFormat:      "auto",
		MemoryLimitMB:  384,
		MappedBudgetMB: 128,
		Limits: Limits{
			MaxSizeUpload:         50_000_000,
			MaxConcurrentUpload:   4,
			MaxSizeRequest:        10_000_000,
			MaxConcurrentRequests: 32,
			MaxCallsInRequest:     64,
			MaxObjectsInGet:       1000,
			MaxObjectsInSet:       1000,
		},
		Auth: Auth{
			CacheTTL:      Duration{Duration: 2 * time.Minute},
			MaxFailures:   10,
			FailureWindow: Duration{Duration: time.Minute},
		},
		Blobs: Blobs{
			Grace: Duration{Duration: 24 * time.Hour},
		},
		Push: Push{
			MaxConnectionsPerUser: 50,
		},
		Submission: defaultSubmission(),
		Relay:      defaultRelay(),
		LMTP:       LMTP{MaxSize: 50_000_000, MaxRecipients: 100},
	}
}

// Problem is one wrong setting.
type Problem struct {
	// Key is the setting's TOML key, with its table ("limits.max_size_upload").
	Key string
	// Msg says what is wrong with it.
	Msg string
}

// ValidationError is returned by Load and Validate: every wrong setting
// found, in the order of the Config fields (unknown keys first).
type ValidationError struct {
	// File is the configuration file, when the problems come from Load.
	File     string
	Problems []Problem
}

// Error lists every problem on one line.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("config")
	if e.File != "" {
		b.WriteString(" ")
		b.WriteString(e.File)
	}
	b.WriteString(": ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Key)
		b.WriteString(": ")
		b.WriteString(p.Msg)
	}
	return b.String()
}

// Load reads the TOML file at path on top of Default and validates the
// result. Keys the Config does not know are problems too, reported with the
// ones Validate finds in a *ValidationError. A syntax error, or a value of
// the wrong TOML type (a string where a number belongs), stops decoding and
// is returned alone, naming its line and key.
func Load(path string) (Config, error) {
	cfg := Default()
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	md, err := toml.Decode(string(b), &cfg)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	var problems []Problem
	unknown := map[string]bool{}
undecoded:
	for _, k := range md.Undecoded() {
		for i := 1; i < len(k); i++ {
			if unknown[k[:i].String()] {
				continue undecoded // inside an unknown table already named
			}
		}
		unknown[k.String()] = true
		problems = append(problems, Problem{Key: k.String(), Msg: "unknown key"})
	}
	if err := cfg.Validate(); err != nil {
		var ve *ValidationError
		if !errors.As(err, &ve) {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
		problems = append(problems, ve.Problems...)
	}
	if len(problems) > 0 {
		return Config{}, &ValidationError{File: path, Problems: problems}
	}
	return cfg, nil
}

// Validate checks every setting and returns a *ValidationError listing all
// that are wrong, or nil.
func (c Config) Validate() error {
	var ps []Problem
	bad := func(key, format string, a ...any) {
		ps = append(ps, Problem{Key: key, Msg: fmt.Sprintf(format, a...)})
	}

	if strings.TrimSpace(c.Data) == "" {
		bad("data", "must name a directory")
	}
	host, err := listenHost(c.Listen)
	if err != nil {
		bad("listen", "%v", err)
	}
	if c.BaseURL != "" {
		if err := checkBaseURL(c.BaseURL); err != nil {
			bad("base_url", "%v", err)
		}
	} else if err == nil && unspecifiedHost(host) {
		// Configuration does not guess which name clients reach us by.
		bad("base_url", "must be set when listen (%q) names no specific host", c.Listen)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		if c.TLSCert == "" {
			bad("tls_cert", "must be set together with tls_key")
		} else {
			bad("tls_key", "must be set together with tls_cert")
		}
	}
	switch c.LogLevel {
	case "trace", "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q is not one of trace, debug, info, warn, error", c.LogLevel)
	}
	switch c.LogFormat {
	case "auto", "json", "console":
	default:
		bad("log_format", "%q is not one of auto, json, console", c.LogFormat)
	}

	positive := func(key string, v int64) {
		if v <= 0 {
			bad(key, "must be at least 1, not %d", v)
		}
	}
	if c.MemoryLimitMB < 0 {
		bad("memory_limit_mb", "must be 0 (no limit) or more, not %d", c.MemoryLimitMB)
	}
	if c.MappedBudgetMB < 0 {
		bad("mapped_budget_mb", "must be 0 (no bound) or more, not %d", c.MappedBudgetMB)
	}
	l := c.Limits
	positive("limits.max_size_upload", l.MaxSizeUpload)
	positive("limits.max_concurrent_upload", int64(l.MaxConcurrentUpload))
	positive("limits.max_size_request", l.MaxSizeRequest)
	positive("limits.max_concurrent_requests", int64(l.MaxConcurrentRequests))
	positive("limits.max_calls_in_request", int64(l.MaxCallsInRequest))
	positive("limits.max_objects_in_get", int64(l.MaxObjectsInGet))
	positive("limits.max_objects_in_set", int64(l.MaxObjectsInSet))

	duration := func(key string, d Duration, least time.Duration) {
		switch {
		case d.bad:
			bad(key, "%q is not a duration such as \"90s\", \"2m\" or \"24h\"", d.text)
		case d.Duration < least:
			bad(key, "must be at least %v, not %v", least, d.Duration)
		}
	}
	duration("auth.cache_ttl", c.Auth.CacheTTL, 0)
	positive("auth.max_failures", int64(c.Auth.MaxFailures))
	duration("auth.failure_window", c.Auth.FailureWindow, time.Second)
	duration("blobs.grace", c.Blobs.Grace, time.Hour) // RFC 8620 §6.1: at least one hour
	positive("push.max_connections_per_user", int64(c.Push.MaxConnectionsPerUser))
	for _, o := range c.Push.AllowedOrigins {
		if err := checkOrigin(o); err != nil {
			bad("push.allowed_origins", "%v", err)
		}
	}
	c.validateSending(bad, positive, duration)
	positive("lmtp.max_size", c.LMTP.MaxSize)
	positive("lmtp.max_recipients", int64(c.LMTP.MaxRecipients))

	if len(ps) > 0 {
		return &ValidationError{Problems: ps}
	}
	return nil
}

// URL returns the base URL the server advertises: BaseURL without a
// trailing slash when set, otherwise http:// (https:// with TLS) and
// Listen. Call it on a Config that validated; a server that listens on port
// 0 derives its URL from the address it was given instead.
func (c Config) URL() string {
	if c.BaseURL != "" {
		return strings.TrimRight(c.BaseURL, "/")
	}
	scheme := "http"
	if c.TLSCert != "" {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return scheme + "://" + c.Listen
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// listenHost checks a host:port to listen on and returns its host.
func listenHost(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("%q has no port number 0 to 65535", addr)
	}
	return host, nil
}

// unspecifiedHost reports whether a listen host stands for every address
// ("", "0.0.0.0", "::").
func unspecifiedHost(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// checkOrigin checks an allowed origin: "*" or scheme://host[:port].
func checkOrigin(s string) error {
	if s == "*" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an origin such as \"https://mail.example.com\"", s)
	}
	return nil
}

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q must start with http:// or https://", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q must be scheme, host and path only", s)
	}
	return nil
}
