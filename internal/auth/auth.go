package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jmapd/jmapd/store"
)

// ErrUnauthorized is returned by Authenticate when the credentials are
// missing, malformed or wrong, name no principal, or name one that may not
// log in. The causes are not told apart, so that the answer does not reveal
// which accounts exist.
var ErrUnauthorized = errors.New("auth: unauthorized")

// ErrThrottled is returned by Authenticate, with a positive retry-after
// duration, when the client address or the account had Options.MaxFailures
// failed logins in the current window. It is returned whether or not the
// credentials are right, and before they are checked.
var ErrThrottled = errors.New("auth: too many failed logins")

const (
	// maxCacheEntries bounds the credential cache.
	maxCacheEntries = 100_000
	// maxThrottleEntries bounds each of the two failure counters.
	maxThrottleEntries = 100_000
	// maxCredentialLen bounds the decoded "user:password" of Basic.
	maxCredentialLen = 4096
	// maxTokenLen bounds a bearer token; NewToken makes 49 bytes.
	maxTokenLen = 512
)

// Options configures New. The zero value of every field means its default.
type Options struct {
	// CacheTTL is how long verified credentials are kept, so that a client
	// sending them with every request does not cost an argon2 run each time
	// (default 2m).
	CacheTTL time.Duration
	// MaxFailures is how many failed logins are allowed per Window, for each
	// client address and for each account (default 10).
	MaxFailures int
	// Window is the length of the throttle window; it starts at the first
	// failure (default 1m).
	Window time.Duration
	// Now returns the current time; tests set it (default time.Now).
	Now func() time.Time
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.CacheTTL <= 0 {
		o.CacheTTL = 2 * time.Minute
	}
	if o.MaxFailures <= 0 {
		o.MaxFailures = 10
	}
	if o.Window <= 0 {
		o.Window = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Authenticator checks the credentials of HTTP requests against a store,
// caching verified ones and throttling failures. It is safe for concurrent
// use. Whoever changes a password, removes a principal or revokes a token
// must call Flush.
type Authenticator struct {
	st    store.Store
	opt   Options
	key   []byte        // HMAC key of cache keys, random per Authenticator
	dummy string        // hash verified when there is no real one
	slots chan struct{} // bounds concurrent argon2 runs (19 MiB each)

	byAddr *throttle
	byAcct *throttle

	mu    sync.Mutex
	gen   uint64 // incremented by Flush
	cache map[[sha256.Size]byte]cached
	// flights are the verifications running, by cache key: a request
	// whose credential is being verified waits for that answer instead of
	// being charged and verified again.
	flights  map[flightKey]*flight
	cacheMax int
	swept    time.Time // when expired cache entries were last dropped
}

// cached is a verified credential.
type cached struct {
	login   Login
	expires time.Time
}

// Login is who a request's credentials authenticate, and which credential
// did: Valid tells later whether that credential still holds.
type Login struct {
	Principal store.PrincipalID
	// Credential names the credential without revealing it: "t:" and a
	// token id, or "p:" and a digest of the password hash (so that a new
	// password makes it differ). It can be stored.
	Credential string
}

// New returns an Authenticator over st. Fields of opt left zero take their
// defaults.
func New(st store.Store, opt Options) *Authenticator {
	opt = opt.withDefaults()
	return &Authenticator{
		st:  st,
		opt: opt,
		key: randomBytes(32),
		// A hash of nothing anyone knows, with the current parameters:
		// checking a password against it costs what a real check costs,
		// and never succeeds.
		dummy:    formatHash(defaultParams, randomBytes(saltLen), randomBytes(keyLen)),
		slots:    make(chan struct{}, runtime.GOMAXPROCS(0)),
		byAddr:   newThrottle(opt.MaxFailures, opt.Window, maxThrottleEntries),
		byAcct:   newThrottle(opt.MaxFailures, opt.Window, maxThrottleEntries),
		cache:    make(map[[sha256.Size]byte]cached),
		flights:  make(map[flightKey]*flight),
		cacheMax: maxCacheEntries,
	}
}

// Flush forgets every cached credential, at once: the next request of every
// client is verified against the store again. Call it after a password
// change, the removal of a principal or the revocation of a token.
func (a *Authenticator) Flush() {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.cache)
	a.gen++
}

// Authenticate checks the request's Authorization header and returns the id
// of the principal it authenticates. Two schemes are accepted: "Basic" (RFC
// 7617) with the principal's email address, compared case-insensitively, and
// its password; and "Bearer" (RFC 6750 §2.1) with a token secret from
// NewToken. Only an individual principal that is not a shared mailbox can
// log in.
//
// It returns ErrUnauthorized for every kind of failure, ErrThrottled with
// retryAfter > 0 when the client address (the host part of r.RemoteAddr) or
// the account failed too often, and any other error when the store could not
// answer or ctx ended.
func (a *Authenticator) Authenticate(ctx context.Context, r *http.Request) (id store.PrincipalID, retryAfter time.Duration, err error) {
	l, retryAfter, err := a.Login(ctx, r)
	return l.Principal, retryAfter, err
}

// Login is Authenticate, also naming the credential that authenticated
// the request.
func (a *Authenticator) Login(ctx context.Context, r *http.Request) (l Login, retryAfter time.Duration, err error) {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 {
		// No attempt was made: nothing to count.
		return Login{}, 0, ErrUnauthorized
	}
	addr := clientAddr(r.RemoteAddr)
	if len(vals) > 1 {
		return a.malformed(addr)
	}
	scheme, rest, _ := strings.Cut(vals[0], " ")
	rest = strings.TrimLeft(rest, " ")
	switch {
	case strings.EqualFold(scheme, "Basic"): // RFC 7235 §2.1: case-insensitive
		user, pass, ok := parseBasic(rest)
		if !ok {
			return a.malformed(addr)
		}
		return a.basic(ctx, addr, user, pass)
	case strings.EqualFold(scheme, "Bearer"):
		if !isToken68(rest) || len(rest) > maxTokenLen {
			return a.malformed(addr)
		}
		return a.bearer(ctx, addr, rest)
	default:
		return a.malformed(addr)
	}
}

// malformed answers an Authorization header that cannot be understood. It
// counts as a failure of the client address.
func (a *Authenticator) malformed(addr string) (Login, time.Duration, error) {
	wait, _, ok := a.byAddr.begin(a.opt.Now(), addr)
	if !ok {
		return Login{}, wait, ErrThrottled
	}
	return Login{}, 0, ErrUnauthorized
}

// attempt holds the provisional failures charged to one login attempt.
type attempt struct{ addr, acct charge }

// begin charges a failure to the client address and, when acct is not
// empty, to the account. When either has no failures left it charges
// nothing and returns how long to wait.
func (a *Authenticator) begin(now time.Time, addr, acct string) (attempt, time.Duration, bool) {
	var at attempt
	waitAddr, c, okAddr := a.byAddr.begin(now, addr)
	at.addr = c
	waitAcct, okAcct := time.Duration(0), true
	if acct != "" && okAddr {
		waitAcct, at.acct, okAcct = a.byAcct.begin(now, acct)
	}
	if okAddr && okAcct {
		return at, 0, true
	}
	a.succeeded(at)
	return attempt{}, max(waitAddr, waitAcct), false
}

// allowed reports whether the client address and, when acct is not empty,
// the account may still log in, charging nothing: it is for credentials
// found in the cache, which are known to be right. Charging those would let
// a user's own concurrent requests use up the failures and be throttled.
func (a *Authenticator) allowed(now time.Time, addr, acct string) (time.Duration, bool) {
	if wait, ok := a.byAddr.check(now, addr); !ok {
		return wait, false
	}
	if acct != "" {
		return a.byAcct.check(now, acct)
	}
	return 0, true
}

// succeeded takes back the charges of an attempt that did not fail.
func (a *Authenticator) succeeded(at attempt) {
	a.byAddr.refund(at.addr)
	a.byAcct.refund(at.acct)
}

// testHookVerified, when set by a test, runs after a credential was
// verified against the store and before it is cached.
var testHookVerified func()

// basic authenticates an email address and password.
func (a *Authenticator) basic(ctx context.Context, addr, user, pass string) (Login, time.Duration, error) {
	now := a.opt.Now()
	key := a.cacheKey('b', user, pass)
	if l, ok := a.lookup(key, now); ok {
		if wait, ok := a.allowed(now, addr, user); !ok {
			return Login{}, wait, ErrThrottled
		}
		return l, 0, nil
	}
	return a.once(ctx, key, addr, user, func() (Login, time.Duration, error) { return a.verifyBasic(ctx, now, key, addr, user, pass) })
}

// flight is one verification of a credential that others wait for.
type flight struct {
	done  chan struct{}
	login Login
	wait  time.Duration
	err   error
}

// flightKey names a verification: the credential, and the cache
// generation it started in, so that a request arriving after a Flush (a
// password changed, a token revoked) never takes the answer of a
// verification that began before it.
type flightKey struct {
	cred [sha256.Size]byte
	gen  uint64
}

// once runs verify for the credential named key unless a verification of
// it is running already, in which case it waits for that one's answer.
// A client that opens many connections at once with a credential not
// cached yet (or whose cache entry just expired) then costs one argon2
// run and one provisional failure, not one each: charged together, those
// would use up the client's failures and throttle a user who never sent a
// wrong password. The answer is the credential's; whether this request's
// client address and account (acct, "" for a token) may log in now is
// still checked for it, and a leader that was throttled, or ended without
// an answer, leaves each waiter to verify for itself.
func (a *Authenticator) once(ctx context.Context, key [sha256.Size]byte, addr, acct string, verify func() (Login, time.Duration, error)) (Login, time.Duration, error) {
	for {
		a.mu.Lock()
		fk := flightKey{key, a.gen}
		f, running := a.flights[fk]
		if !running {
			f = &flight{done: make(chan struct{})}
			a.flights[fk] = f
		}
		a.mu.Unlock()
		if !running {
			return a.lead(fk, f, verify)
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return Login{}, 0, ctx.Err()
		}
		if f.err == errRetry || errors.Is(f.err, ErrThrottled) {
			continue
		}
		if wait, ok := a.allowed(a.opt.Now(), addr, acct); !ok {
			return Login{}, wait, ErrThrottled
		}
		return f.login, f.wait, f.err
	}
}

// lead runs verify for the flight f and hands its answer to those waiting;
// if verify panics, they are told to verify for themselves.
func (a *Authenticator) lead(fk flightKey, f *flight, verify func() (Login, time.Duration, error)) (Login, time.Duration, error) {
	f.err = errRetry
	defer func() {
		a.mu.Lock()
		delete(a.flights, fk)
		a.mu.Unlock()
		close(f.done)
	}()
	l, wait, err := verify()
	f.login, f.wait, f.err = l, wait, err
	if err != nil && !errors.Is(err, ErrUnauthorized) && !errors.Is(err, ErrThrottled) {
		// The leader's own trouble (its context ended, the store
		// failed) is no answer for the others.
		f.login, f.err = Login{}, errRetry
	}
	return l, wait, err
}

// errRetry tells those who waited on a verification that ended without an
// answer to try again.
var errRetry = errors.New("auth: verification ended without an answer")

// verifyBasic verifies an email address and password against the store,
// charging a provisional failure, and caches what it verified.
func (a *Authenticator) verifyBasic(ctx context.Context, now time.Time, key [sha256.Size]byte, addr, user, pass string) (Login, time.Duration, error) {
	at, wait, ok := a.begin(now, addr, user)
	if !ok {
		return Login{}, wait, ErrThrottled
	}
	gen := a.generation()
	l, err := a.verifyPassword(ctx, user, pass)
	if errors.Is(err, ErrUnauthorized) {
		return Login{}, 0, err // the charges stand
	}
	a.succeeded(at)
	if err != nil {
		return Login{}, 0, err
	}
	if testHookVerified != nil {
		testHookVerified()
	}
	a.remember(key, l, gen, now)
	return l, 0, nil
}

// verifyPassword checks pass against the stored hash of the principal with
// email address user. An unknown address, a principal that may not log in
// and one without a password cost the same argon2 work as a wrong password,
// and all answer ErrUnauthorized.
func (a *Authenticator) verifyPassword(ctx context.Context, user, pass string) (Login, error) {
	var (
		id   store.PrincipalID
		hash string
	)
	err := a.st.View(ctx, func(tx store.Tx) error {
		id, hash = "", ""
		pt := tx.Principals()
		p, err := pt.ByEmail(user)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		if !mayLogIn(p) {
			return nil
		}
		h, err := pt.PasswordHash(p.ID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		id, hash = p.ID, h
		return nil
	})
	if err != nil {
		return Login{}, fmt.Errorf("auth: look up principal: %w", err)
	}
	if id == "" || hash == "" {
		id, hash = "", a.dummy
	}
	select {
	case a.slots <- struct{}{}:
	case <-ctx.Done():
		return Login{}, ctx.Err()
	}
	ok := CheckPassword(hash, pass)
	<-a.slots
	if !ok || id == "" {
		return Login{}, ErrUnauthorized
	}
	return Login{Principal: id, Credential: passwordCredential(hash)}, nil
}

// passwordCredential names a login by password: a digest of the stored
// hash, which changes with the password and tells nothing about it.
func passwordCredential(hash string) string {
	sum := sha256.Sum256([]byte(hash))
	return "p:" + base64.RawURLEncoding.EncodeToString(sum[:18])
}

// tokenCredential names a login by a bearer token.
func tokenCredential(id string) string { return "t:" + id }

// Valid reports whether cred, a Login's Credential, still authenticates
// who: who may still log in, and the token exists or the password is the
// same. An empty cred (a caller the server made itself) is valid while who
// may log in.
func (a *Authenticator) Valid(ctx context.Context, who store.PrincipalID, cred string) (bool, error) {
	valid := false
	err := a.st.View(ctx, func(tx store.Tx) error {
		valid = false
		pt := tx.Principals()
		p, err := pt.Get(who)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		if !mayLogIn(p) {
			return nil
		}
		switch {
		case cred == "":
			valid = true
		case strings.HasPrefix(cred, "p:"):
			h, err := pt.PasswordHash(who)
			if errors.Is(err, store.ErrNotFound) {
				return nil
			} else if err != nil {
				return err
			}
			valid = h != "" && passwordCredential(h) == cred
		case strings.HasPrefix(cred, "t:"):
			for t, err := range pt.Tokens(who) {
				if err != nil {
					return err
				}
				if tokenCredential(t.ID) == cred {
					valid = true
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("auth: check credential: %w", err)
	}
	return valid, nil
}

// bearer authenticates a token secret.
func (a *Authenticator) bearer(ctx context.Context, addr, secret string) (Login, time.Duration, error) {
	now := a.opt.Now()
	key := a.cacheKey('t', secret, "")
	if l, ok := a.lookup(key, now); ok {
		if wait, ok := a.allowed(now, addr, ""); !ok {
			return Login{}, wait, ErrThrottled
		}
		return l, 0, nil
	}
	return a.once(ctx, key, addr, "", func() (Login, time.Duration, error) { return a.verifyBearer(ctx, now, key, addr, secret) })
}

// verifyBearer verifies a token secret against the store, charging a
// provisional failure, and caches what it verified.
func (a *Authenticator) verifyBearer(ctx context.Context, now time.Time, key [sha256.Size]byte, addr, secret string) (Login, time.Duration, error) {
	at, wait, ok := a.begin(now, addr, "")
	if !ok {
		return Login{}, wait, ErrThrottled
	}
	gen := a.generation()
	var l Login
	err := a.st.View(ctx, func(tx store.Tx) error {
		l = Login{}
		pt := tx.Principals()
		tok, err := pt.TokenBySecret(HashToken(secret))
		if errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		p, err := pt.Get(tok.Principal)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		if mayLogIn(p) {
			l = Login{Principal: p.ID, Credential: tokenCredential(tok.ID)}
		}
		return nil
	})
	if err != nil {
		a.succeeded(at)
		return Login{}, 0, fmt.Errorf("auth: look up token: %w", err)
	}
	if l.Principal == "" {
		return Login{}, 0, ErrUnauthorized
	}
	a.succeeded(at)
	a.remember(key, l, gen, now)
	return l, 0, nil
}

// mayLogIn reports whether p may log in: only individuals that are not
// shared mailboxes do (DESIGN.md: no one logs in as a shared mailbox or a
// group; RFC 9670 §2 resources and locations are not users either).
func mayLogIn(p *store.Principal) bool {
	return p.Type == store.Individual && !p.Shared
}

// cacheKey returns the HMAC of a credential under the Authenticator's key.
// kind separates Basic ('b') from bearer ('t') credentials. s1 (a user or
// a token68) never contains NUL, so the encoding is unambiguous. Writes to
// a hash.Hash never fail.
func (a *Authenticator) cacheKey(kind byte, s1, s2 string) [sha256.Size]byte {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte{kind})
	m.Write([]byte(s1))
	m.Write([]byte{0})
	m.Write([]byte(s2))
	var k [sha256.Size]byte
	m.Sum(k[:0])
	return k
}

// generation returns the current Flush generation.
func (a *Authenticator) generation() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.gen
}

// lookup returns the principal of a cached credential that has not expired.
func (a *Authenticator) lookup(key [sha256.Size]byte, now time.Time) (Login, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.cache[key]
	if !ok {
		return Login{}, false
	}
	if !now.Before(e.expires) {
		delete(a.cache, key)
		return Login{}, false
	}
	return e.login, true
}

// remember caches a credential verified at now, unless Flush ran since gen
// was read: the verification may then have seen a password or token that
// is no longer valid.
func (a *Authenticator) remember(key [sha256.Size]byte, l Login, gen uint64, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gen != gen {
		return
	}
	if now.Sub(a.swept) >= a.opt.CacheTTL || now.Before(a.swept) {
		a.swept = now
		for k, e := range a.cache {
			if !now.Before(e.expires) {
				delete(a.cache, k)
			}
		}
	}
	if _, ok := a.cache[key]; !ok && len(a.cache) >= a.cacheMax {
		for k := range a.cache { // an arbitrary entry
			delete(a.cache, k)
			break
		}
	}
	a.cache[key] = cached{login: l, expires: now.Add(a.opt.CacheTTL)}
}

// cacheLen reports the number of cached credentials.
func (a *Authenticator) cacheLen() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.cache)
}

// parseBasic decodes the credentials of a Basic Authorization header (RFC
// 7617 §2) and returns the user, lower-cased and trimmed as the store
// compares email addresses, and the password. It refuses an empty user or
// password, a user with control characters, and oversized input.
func parseBasic(s string) (user, pass string, ok bool) {
	if s == "" || len(s) > base64.StdEncoding.EncodedLen(maxCredentialLen) {
		return "", "", false
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return "", "", false
	}
	// RFC 7617 §2: the user-id cannot contain a colon; the password can.
	user, pass, ok = strings.Cut(string(b), ":")
	if !ok || pass == "" {
		return "", "", false
	}
	user = strings.ToLower(strings.TrimSpace(user))
	if user == "" || strings.ContainsFunc(user, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", "", false
	}
	return user, pass, true
}

// isToken68 reports whether s is a non-empty token68 (RFC 7235 §2.1), the
// syntax of a bearer token (RFC 6750 §2.1).
func isToken68(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}

// clientAddr returns the host part of a request's RemoteAddr, or all of it
// when it has no port.
func clientAddr(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}
