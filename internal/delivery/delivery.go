package delivery

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/jmapd/jmapd/internal/mime"
	"github.com/jmapd/jmapd/store"
)

// Status is the delivery status of one recipient (RFC 8621 §7,
// DeliveryStatus).
type Status struct {
	SMTPReply string `json:"smtpReply"`
	Delivered string `json:"delivered"`
	Displayed string `json:"displayed"`
}

// Target is an account that mail to a local address goes into.
type Target struct {
	Account store.AccountID
	// Address is the principal's own address, written in Delivered-To.
	Address string
}

// Host is the mail store the agent delivers into.
type Host interface {
	// Deliver adds the message stored as blob to the Inbox of acct, within
	// tx. raw is its content, or nil when only the blob holds it; msg is
	// the message parsed, or the message it was stamped from (its header
	// and body facts are the same); from is the envelope sender (""
	// for a bounce or an auto-reply).
	Deliver(tx store.Tx, acct store.AccountID, blob store.BlobInfo, raw []byte, msg *Parsed, from string) error
	// Report records new statuses of recipients of the EmailSubmission sub
	// in acct; final makes a pending submission final, and dsn, when not
	// empty, is a DSN received for it.
	Report(tx store.Tx, acct store.AccountID, sub string, status map[string]Status, final bool, dsn store.BlobID) error
}

// Parsed is a message parsed once for the many copies delivered from it.
type Parsed struct {
	Msg *mime.Message
	// HostNote is the Host's own: what it worked out for the delivery
	// before the delivering transaction, or nil.
	HostNote any
	once     sync.Once
	memo     any
}

// NewParsed parses raw.
func NewParsed(raw []byte) (*Parsed, error) {
	m, err := mime.Parse(raw)
	if err != nil {
		return nil, err
	}
	return &Parsed{Msg: m}, nil
}

// Memo returns what f derives from the message, calling f only the first
// time.
func (p *Parsed) Memo(f func(*mime.Message) any) any {
	p.once.Do(func() { p.memo = f(p.Msg) })
	return p.memo
}

// Relay is the SMTP relay for addresses outside this server.
type Relay struct {
	// Addr is host:port.
	Addr string
	// Username and Password log in with AUTH PLAIN when Username is set.
	Username, Password string
	// Insecure talks plain SMTP; otherwise STARTTLS is required.
	Insecure bool
	// TLS is the TLS configuration for STARTTLS (nil: system roots,
	// server name from Addr).
	TLS *tls.Config
	// Timeout bounds one delivery attempt.
	Timeout time.Duration
	// RetryFor is how long temporary failures are retried.
	RetryFor time.Duration
	// RetryFirst is the first wait between attempts; it doubles.
	RetryFirst time.Duration
}

// Options configures an Agent.
type Options struct {
	// Store is where jobs are kept; required.
	Store store.Store
	// Relay, when not nil, takes mail for addresses outside this server.
	Relay *Relay
	// HostName names this server in Received fields, EHLO and the
	// MAILER-DAEMON address of DSNs (default: the system's host name).
	HostName string
	// DKIMDir holds DKIM keys (see LoadKeys); "" signs nothing.
	DKIMDir string
	// Log receives the agent's log lines.
	Log zerolog.Logger
	// Now tells the time (default time.Now); tests move it.
	Now func() time.Time
}

// Agent delivers mail: locally within a caller's transaction, and from the
// durable queue in the background (Run).
type Agent struct {
	st    store.Store
	relay *Relay
	host  Host
	name  string
	log   zerolog.Logger
	now   func() time.Time
	wake  chan struct{}
	keys  *keyring
	once  sync.Once
	// companies caches the company groups for Resolve.
	companies companyCache
	// txBlobs tells whether the store's transactions can store blobs
	// (store.BlobTx): 0 not known yet, 1 yes, 2 no.
	txBlobs atomic.Int32
}

// New returns an agent; SetHost must be called before Run.
func New(opt Options) *Agent {
	a := &Agent{st: opt.Store, relay: opt.Relay, name: opt.HostName, log: opt.Log, now: opt.Now,
		wake: make(chan struct{}, 1), keys: &keyring{dir: opt.DKIMDir}}
	if a.name == "" {
		a.name, _ = os.Hostname()
		if a.name == "" {
			a.name = "localhost"
		}
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a
}

// SetHost sets the mail store deliveries go into.
func (a *Agent) SetHost(h Host) { a.host = h }

// HostName is the name the agent gives this server.
func (a *Agent) HostName() string { return a.name }

// HasRelay reports whether mail to other servers can be sent.
func (a *Agent) HasRelay() bool { return a.relay != nil }

// Now is the agent's clock.
func (a *Agent) Now() time.Time { return a.now() }

// maxGroupDepth bounds the nesting of groups in groups.
const maxGroupDepth = 8

// Resolve returns the accounts mail to addr goes into, and local false
// when no principal of this server has the address. The company groups
// come from the agent's cache, which holds while the principal records
// keep their state.
func (a *Agent) Resolve(tx store.Tx, addr string) (targets []Target, local bool, err error) {
	return resolve(tx, addr, func() ([]*store.Principal, error) { return a.companies.get(tx) })
}

// companyCache holds the company groups as of one state of the principal
// records.
type companyCache struct {
	mu     sync.Mutex
	valid  bool
	state  store.State
	groups []*store.Principal
}

// get returns the company groups seen by tx.
func (c *companyCache) get(tx store.Tx) ([]*store.Principal, error) {
	st, err := tx.State(store.SystemAccount, store.PrincipalRecords)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.valid && c.state == st {
		g := c.groups
		c.mu.Unlock()
		return g, nil
	}
	c.mu.Unlock()
	g, err := companyGroups(tx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if !c.valid || st >= c.state {
		c.valid, c.state, c.groups = true, st, g
	}
	c.mu.Unlock()
	return g, nil
}

// companyGroups returns the groups marked as companies that own an account.
func companyGroups(tx store.Tx) ([]*store.Principal, error) {
	var out []*store.Principal
	for g, err := range tx.Principals().All() {
		if err != nil {
			return nil, err
		}
		if g.Type == store.Group && g.Company && g.Account != "" {
			out = append(out, g)
		}
	}
	return out, nil
}

// resolve is Resolve with the company groups from companies. A group
// expands to its members (and to its own account when it archives); a
// shared mailbox and a user to their own account; and mail to a member of
// a company group also goes to that group's account. Each account appears
// once.
func resolve(tx store.Tx, addr string, companies func() ([]*store.Principal, error)) (targets []Target, local bool, err error) {
	p, err := tx.Principals().ByEmail(strings.ToLower(addr))
	if err != nil {
		if err == store.ErrNotFound {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("look up %s: %w", addr, err)
	}
	seen := map[store.PrincipalID]bool{}
	accts := map[store.AccountID]bool{}
	var walk func(p *store.Principal, depth int) error
	walk = func(p *store.Principal, depth int) error {
		if seen[p.ID] || depth > maxGroupDepth {
			return nil
		}
		seen[p.ID] = true
		if p.Type == store.Group {
			if p.Archive && p.Account != "" && !accts[p.Account] {
				accts[p.Account] = true
				targets = append(targets, Target{Account: p.Account, Address: p.Email})
			}
			for _, m := range p.Members {
				mp, err := tx.Principals().Get(m)
				if err == store.ErrNotFound {
					continue
				}
				if err != nil {
					return err
				}
				if err := walk(mp, depth+1); err != nil {
					return err
				}
			}
			return nil
		}
		if p.Account != "" && !accts[p.Account] {
			accts[p.Account] = true
			targets = append(targets, Target{Account: p.Account, Address: p.Email})
		}
		return nil
	}
	if err := walk(p, 0); err != nil {
		return nil, true, err
	}
	// A company group keeps mail to any of its members in its own
	// account, which every member reads (DESIGN.md: company visibility).
	groups, err := companies()
	if err != nil {
		return nil, true, err
	}
	for _, g := range groups {
		if accts[g.Account] {
			continue
		}
		for _, m := range g.Members {
			if seen[m] {
				accts[g.Account] = true
				targets = append(targets, Target{Account: g.Account, Address: g.Email})
				break
			}
		}
	}
	return targets, true, nil
}

// headerEnd returns the offset of the blank line ending the header of raw
// (len(raw) when there is none) and of the body after it.
func headerEnd(raw []byte) (end, body int) {
	for i := 0; i < len(raw); {
		j := bytes.IndexByte(raw[i:], '\n')
		if j < 0 {
			return len(raw), len(raw)
		}
		line := raw[i : i+j]
		if len(bytes.TrimRight(line, "\r")) == 0 {
			return i, i + j + 1
		}
		i += j + 1
	}
	return len(raw), len(raw)
}

// StripBcc returns raw without its Bcc header fields (RFC 8621 §7.5: "The
// server MUST remove any Bcc header field present on the message during
// delivery"): raw itself when it has none.
func StripBcc(raw []byte) []byte {
	end, _ := headerEnd(raw)
	if !hasBcc(raw[:end]) {
		return raw
	}
	var out bytes.Buffer
	out.Grow(len(raw))
	skip := false
	for i := 0; i < end; {
		j := bytes.IndexByte(raw[i:end], '\n')
		next := end
		if j >= 0 {
			next = i + j + 1
		}
		line := raw[i:next]
		if line[0] != ' ' && line[0] != '\t' {
			name, _, _ := bytes.Cut(line, []byte(":"))
			skip = strings.EqualFold(strings.TrimSpace(string(name)), "bcc")
		}
		if !skip {
			out.Write(line)
		}
		i = next
	}
	out.Write(raw[end:])
	return out.Bytes()
}

// hasBcc reports whether the header section hdr has a Bcc field.
func hasBcc(hdr []byte) bool {
	for line := range bytes.Lines(hdr) {
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		// As StripBcc reads a field name: up to a colon, if any.
		if name, _, _ := bytes.Cut(line, []byte(":")); strings.EqualFold(strings.TrimSpace(string(name)), "bcc") {
			return true
		}
	}
	return false
}

// Stamp returns raw with the trace fields of a final delivery put in front
// (RFC 5321 §4.4): Return-Path, Delivered-To and Received.
func (a *Agent) Stamp(raw []byte, from, rcpt, id string, now time.Time) []byte {
	return append(a.traceFields("JMAP", from, rcpt, id, now, len(raw)), raw...)
}

// traceFields returns the trace fields Stamp puts in front of a message,
// with room for extra more octets; proto is the Received field's "with"
// (RFC 5321 §4.4: how the message reached this server).
func (a *Agent) traceFields(proto, from, rcpt, id string, now time.Time, extra int) []byte {
	var b bytes.Buffer
	b.Grow(extra + 256)
	fmt.Fprintf(&b, "Return-Path: <%s>\r\n", from)
	fmt.Fprintf(&b, "Delivered-To: %s\r\n", rcpt)
	// RFC 5321 §4.4: "by" domain, "with" protocol, optional "id", "for".
	fmt.Fprintf(&b, "Received: by %s with %s", a.name, proto)
	if id != "" {
		fmt.Fprintf(&b, " id %s", id)
	}
	fmt.Fprintf(&b, "\r\n\tfor <%s>; %s\r\n", rcpt, now.Format(time.RFC1123Z))
	return b.Bytes()
}

// Wake makes the background worker look at the queue now.
func (a *Agent) Wake() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// LocalReply is the SMTP reply recorded for a local delivery.
const LocalReply = "250 2.0.0 delivered to the recipient's mailbox"

// Local is the status of a recipient delivered locally.
func Local() Status { return Status{SMTPReply: LocalReply, Delivered: "yes", Displayed: "unknown"} }

// Queued is the status of a recipient whose message waits in the queue.
func Queued(reply string) Status {
	return Status{SMTPReply: reply, Delivered: "queued", Displayed: "unknown"}
}

// ctxErr reports whether ctx ended.
func ctxErr(ctx context.Context) bool { return ctx.Err() != nil }
