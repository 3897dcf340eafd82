package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmapd/jmapd/store"
	"github.com/jmapd/jmapd/store/badger"
)

// The tests change package variables (defaultParams, testHookVerified) and
// count argon2 runs globally, so none of them runs in parallel.

// openStore opens a Badger store in a scratch directory and closes it at the
// end of the test.
func openStore(tb testing.TB) *badger.DB {
	tb.Helper()
	st, err := badger.Open(badger.Options{Dir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := st.Close(); err != nil {
			tb.Error(err)
		}
	})
	return st
}

// addPrincipal creates p and, unless password is empty, sets its password.
func addPrincipal(tb testing.TB, st store.Store, p store.Principal, password string) {
	tb.Helper()
	var hash string
	if password != "" {
		var err error
		if hash, err = HashPassword(password); err != nil {
			tb.Fatal(err)
		}
	}
	_, err := st.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.Principals().Create(&p); err != nil {
			return err
		}
		if hash == "" {
			return nil
		}
		return tx.Principals().SetPasswordHash(p.ID, hash)
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func individual(id, email string) store.Principal {
	return store.Principal{ID: store.PrincipalID(id), Type: store.Individual, Email: email, Account: store.AccountID("a" + id)}
}

// setPassword replaces the stored password hash of id.
func setPassword(tb testing.TB, st store.Store, id store.PrincipalID, password string) {
	tb.Helper()
	hash, err := HashPassword(password)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := st.Update(context.Background(), func(tx store.Tx) error {
		return tx.Principals().SetPasswordHash(id, hash)
	}); err != nil {
		tb.Fatal(err)
	}
}

// addToken creates a bearer token for id and returns its secret and id.
func addToken(tb testing.TB, st store.Store, id store.PrincipalID, tokenID string) string {
	tb.Helper()
	secret, hash, err := NewToken()
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := st.Update(context.Background(), func(tx store.Tx) error {
		return tx.Principals().CreateToken(&store.Token{ID: tokenID, Principal: id, Created: time.Now()}, hash)
	}); err != nil {
		tb.Fatal(err)
	}
	return secret
}

func basicReq(user, pass, addr string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/jmap/session", nil)
	r.RemoteAddr = addr
	r.SetBasicAuth(user, pass)
	return r
}

func headerReq(header, addr string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/jmap/session", nil)
	r.RemoteAddr = addr
	r.Header["Authorization"] = []string{header}
	return r
}

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// cheapHashing makes argon2 fast for the rest of the test, for tests that
// need many failed logins. It must run before New, which builds the dummy
// hash from the current parameters.
func cheapHashing(tb testing.TB) {
	old := defaultParams
	defaultParams = argonParams{memory: 64, time: 1, threads: 1}
	tb.Cleanup(func() { defaultParams = old })
}

// authn runs Authenticate and reports the argon2 runs it cost.
func authn(a *Authenticator, r *http.Request) (store.PrincipalID, time.Duration, error, int64) {
	before := argonRuns.Load()
	id, wait, err := a.Authenticate(context.Background(), r)
	return id, wait, err, argonRuns.Load() - before
}

const (
	alicePass = "correct horse battery staple"
	bobPass   = "tr0ub4dor&3"
)

// setup returns a store with alice (p1) and bob (p2) and an Authenticator
// on it using opt, with its clock when opt.Now is nil.
func setup(t *testing.T, opt Options) (*badger.DB, *Authenticator, *clock) {
	t.Helper()
	st := openStore(t)
	addPrincipal(t, st, individual("p1", "alice@example.test"), alicePass)
	addPrincipal(t, st, individual("p2", "bob@example.test"), bobPass)
	c := newClock()
	if opt.Now == nil {
		opt.Now = c.Now
	}
	return st, New(st, opt), c
}

func TestHashPassword_RoundTrip(t *testing.T) {
	h, err := HashPassword(alicePass)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(h) {
		t.Fatalf("hash %q is not a PHC argon2id string with the default parameters", h)
	}
	if !CheckPassword(h, alicePass) {
		t.Error("right password does not match")
	}
	if CheckPassword(h, alicePass+" ") || CheckPassword(h, "") {
		t.Error("wrong password matches")
	}
	h2, err := HashPassword(alicePass)
	if err != nil {
		t.Fatal(err)
	}
	if h2 == h {
		t.Error("two hashes of one password are equal: salt is not random")
	}
}

func TestCheckPassword_ReadsParametersFromHash(t *testing.T) {
	p := argonParams{memory: 256, time: 3, threads: 2}
	salt := []byte("0123456789abcdef")
	h := formatHash(p, salt, derive(p, "pw", salt, 24))
	if !strings.Contains(h, "$m=256,t=3,p=2$") {
		t.Fatalf("hash %q lacks its parameters", h)
	}
	if !CheckPassword(h, "pw") {
		t.Error("hash with non-default parameters and key length does not verify")
	}
	if CheckPassword(h, "pW") {
		t.Error("wrong password matches")
	}
}

func TestHashPassword_RefusesEmptyPassword(t *testing.T) {
	if _, err := HashPassword(""); err == nil {
		t.Error("empty password was hashed")
	}
}

func TestCheckPassword_MalformedHashMatchesNothing(t *testing.T) {
	salt := b64.EncodeToString([]byte("0123456789abcdef"))
	key := b64.EncodeToString(make([]byte, 32))
	tests := []struct{ name, hash string }{
		{"empty", ""},
		{"plain text", "secret"},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"old version", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key},
		{"no version", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key},
		{"params out of order", "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key},
		{"missing param", "$argon2id$v=19$m=64,t=1$" + salt + "$" + key},
		{"zero memory", "$argon2id$v=19$m=0,t=1,p=1$" + salt + "$" + key},
		{"memory below 8 KiB per lane", "$argon2id$v=19$m=15,t=1,p=2$" + salt + "$" + key},
		{"huge memory", "$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key},
		{"memory overflows", "$argon2id$v=19$m=99999999999,t=1,p=1$" + salt + "$" + key},
		{"zero time", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key},
		{"huge time", "$argon2id$v=19$m=64,t=100000,p=1$" + salt + "$" + key},
		{"zero lanes", "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key},
		{"lanes overflow", "$argon2id$v=19$m=4096,t=1,p=256$" + salt + "$" + key},
		{"negative", "$argon2id$v=19$m=-64,t=1,p=1$" + salt + "$" + key},
		{"leading zero", "$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key},
		{"bad salt", "$argon2id$v=19$m=64,t=1,p=1$!!!!$" + key},
		{"short salt", "$argon2id$v=19$m=64,t=1,p=1$YWJj$" + key},
		{"padded salt", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key},
		{"bad key", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$%%%"},
		{"empty key", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$"},
		{"short key", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + b64.EncodeToString(make([]byte, 8))},
		{"extra field", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$x"},
		{"no leading dollar", "argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := argonRuns.Load()
			if CheckPassword(tc.hash, "") || CheckPassword(tc.hash, "secret") {
				t.Errorf("CheckPassword(%q) matched", tc.hash)
			}
			if n := argonRuns.Load() - before; n != 0 {
				t.Errorf("malformed hash cost %d argon2 runs, want 0", n)
			}
		})
	}
}

func TestNewToken(t *testing.T) {
	secret, hash, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^jmapd_[A-Za-z0-9_-]{43}$`).MatchString(secret) {
		t.Errorf("secret %q is not jmapd_ and 32 bytes of base64url", secret)
	}
	if hash != HashToken(secret) || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(hash) {
		t.Errorf("hash %q is not the hex SHA-256 of the secret", hash)
	}
	// sha256("abc"), FIPS 180-2 appendix B.1.
	if got := HashToken("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("HashToken(abc) = %s", got)
	}
	other, _, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if other == secret {
		t.Error("two tokens are equal")
	}
}

func TestGeneratePassword_ReadableAndRandom(t *testing.T) {
	re := regexp.MustCompile(`^[a-z2-9]{5}(-[a-z2-9]{5}){3}$`)
	seen := map[string]bool{}
	for range 200 {
		pw := GeneratePassword()
		if !re.MatchString(pw) || strings.ContainsAny(pw, "01oli") {
			t.Fatalf("password %q is not four groups of five unambiguous characters", pw)
		}
		if seen[pw] {
			t.Fatalf("password %q generated twice", pw)
		}
		seen[pw] = true
	}
}

func TestAuthenticate_BasicEmailIsCaseInsensitive(t *testing.T) {
	_, a, _ := setup(t, Options{})
	for _, email := range []string{"alice@example.test", "Alice@Example.TEST"} {
		id, wait, err := a.Authenticate(context.Background(), basicReq(email, alicePass, "192.0.2.1:1234"))
		if err != nil || id != "p1" || wait != 0 {
			t.Errorf("%s: got %q, %v, %v; want p1", email, id, wait, err)
		}
	}
}

// Wrong password, unknown user and a user without password answer the same
// error after the same argon2 work: the answer does not reveal who exists.
func TestAuthenticate_FailuresLookTheSame(t *testing.T) {
	st, a, _ := setup(t, Options{})
	addPrincipal(t, st, individual("p3", "nopass@example.test"), "")
	tests := []struct{ name, user, pass string }{
		{"wrong password", "alice@example.test", bobPass},
		{"unknown user", "nobody@example.test", alicePass},
		{"user without password", "nopass@example.test", alicePass},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, wait, err, runs := authn(a, basicReq(tc.user, tc.pass, "192.0.2.1:1"))
			if err != ErrUnauthorized || id != "" || wait != 0 {
				t.Errorf("got %q, %v, %v; want ErrUnauthorized itself", id, wait, err)
			}
			if runs != 1 {
				t.Errorf("cost %d argon2 runs, want 1 like any other failure", runs)
			}
		})
	}
}

func TestAuthenticate_CachedCredentialSkipsArgon2(t *testing.T) {
	_, a, c := setup(t, Options{CacheTTL: time.Minute})
	r := func() *http.Request { return basicReq("alice@example.test", alicePass, "192.0.2.1:1") }
	if id, _, err, runs := authn(a, r()); err != nil || id != "p1" || runs != 1 {
		t.Fatalf("first login: %q, %v, %d argon2 runs; want p1 after 1 run", id, err, runs)
	}
	if id, _, err, runs := authn(a, r()); err != nil || id != "p1" || runs != 0 {
		t.Fatalf("second login: %q, %v, %d argon2 runs; want p1 from the cache", id, err, runs)
	}
	// The same address in another case is the same credential.
	if id, _, err, runs := authn(a, basicReq("ALICE@example.test", alicePass, "192.0.2.1:1")); err != nil || id != "p1" || runs != 0 {
		t.Fatalf("login in upper case: %q, %v, %d argon2 runs; want p1 from the cache", id, err, runs)
	}
	c.Advance(time.Minute)
	if id, _, err, runs := authn(a, r()); err != nil || id != "p1" || runs != 1 {
		t.Fatalf("login after CacheTTL: %q, %v, %d argon2 runs; want p1 verified again", id, err, runs)
	}
}

func TestAuthenticate_WrongPasswordAfterCachedRightOneFails(t *testing.T) {
	_, a, _ := setup(t, Options{})
	if _, _, err := a.Authenticate(context.Background(), basicReq("alice@example.test", alicePass, "192.0.2.1:1")); err != nil {
		t.Fatal(err)
	}
	for _, pass := range []string{alicePass + "x", strings.ToUpper(alicePass), alicePass[:len(alicePass)-1]} {
		if id, _, err, runs := authn(a, basicReq("alice@example.test", pass, "192.0.2.1:1")); err != ErrUnauthorized || id != "" || runs != 1 {
			t.Errorf("password %q: %q, %v after %d argon2 runs; want ErrUnauthorized after 1", pass, id, err, runs)
		}
	}
	// Another user's password does not open the cached account either.
	if _, _, err := a.Authenticate(context.Background(), basicReq("alice@example.test", bobPass, "192.0.2.1:1")); err != ErrUnauthorized {
		t.Errorf("bob's password for alice: %v; want ErrUnauthorized", err)
	}
}

func TestAuthenticate_PasswordChangeTakesEffectOnFlush(t *testing.T) {
	st, a, _ := setup(t, Options{})
	old := func() *http.Request { return basicReq("alice@example.test", alicePass, "192.0.2.1:1") }
	if _, _, err := a.Authenticate(context.Background(), old()); err != nil {
		t.Fatal(err)
	}
	setPassword(t, st, "p1", "new password")
	if id, _, err := a.Authenticate(context.Background(), old()); err != nil || id != "p1" {
		t.Fatalf("before Flush the cached credential should still answer: %q, %v", id, err)
	}
	a.Flush()
	if _, _, err, runs := authn(a, old()); err != ErrUnauthorized || runs != 1 {
		t.Errorf("old password after Flush: %v after %d argon2 runs; want ErrUnauthorized after 1", err, runs)
	}
	if id, _, err := a.Authenticate(context.Background(), basicReq("alice@example.test", "new password", "192.0.2.1:1")); err != nil || id != "p1" {
		t.Errorf("new password: %q, %v; want p1", id, err)
	}
}

func TestAuthenticate_RemovedUserFailsAfterFlush(t *testing.T) {
	st, a, _ := setup(t, Options{})
	r := func() *http.Request { return basicReq("alice@example.test", alicePass, "192.0.2.1:1") }
	if _, _, err := a.Authenticate(context.Background(), r()); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Update(context.Background(), func(tx store.Tx) error { return tx.Principals().Delete("p1") }); err != nil {
		t.Fatal(err)
	}
	a.Flush()
	if _, _, err := a.Authenticate(context.Background(), r()); err != ErrUnauthorized {
		t.Errorf("removed user: %v; want ErrUnauthorized", err)
	}
}

// A Flush that runs while a login is being verified must win: the login
// may have read the password that Flush is meant to retire.
func TestAuthenticate_FlushDuringVerificationIsNotCached(t *testing.T) {
	st, a, _ := setup(t, Options{})
	testHookVerified = func() {
		testHookVerified = nil
		setPassword(t, st, "p1", "new password")
		a.Flush()
	}
	t.Cleanup(func() { testHookVerified = nil })
	r := func() *http.Request { return basicReq("alice@example.test", alicePass, "192.0.2.1:1") }
	if id, _, err := a.Authenticate(context.Background(), r()); err != nil || id != "p1" {
		t.Fatalf("login racing the change: %q, %v; want p1 (it was verified before)", id, err)
	}
	if _, _, err, runs := authn(a, r()); err != ErrUnauthorized || runs != 1 {
		t.Errorf("old password after the change: %v after %d argon2 runs; want ErrUnauthorized, verified again", err, runs)
	}
}

func TestAuthenticate_ThrottlePerAddress(t *testing.T) {
	cheapHashing(t)
	_, a, c := setup(t, Options{MaxFailures: 3, Window: time.Minute})
	const attacker = "192.0.2.66:4000"
	// Three failures, each on another account, so only the address adds up.
	for i := range 3 {
		if _, _, err := a.Authenticate(context.Background(), basicReq(fmt.Sprintf("u%d@example.test", i), "guess", attacker)); err != ErrUnauthorized {
			t.Fatalf("failure %d: %v; want ErrUnauthorized", i+1, err)
		}
		c.Advance(10 * time.Second)
	}
	// The window started at the first failure, 30 seconds ago.
	id, wait, err, runs := authn(a, basicReq("alice@example.test", alicePass, "192.0.2.66:4001"))
	if err != ErrThrottled || id != "" || wait != 30*time.Second || runs != 0 {
		t.Fatalf("right password from the throttled address: %q, %v, %v, %d argon2 runs; want ErrThrottled, 30s, not verified", id, wait, err, runs)
	}
	if _, wait, err := a.Authenticate(context.Background(), headerReq("Bearer x", attacker)); err != ErrThrottled || wait <= 0 {
		t.Errorf("bearer from the throttled address: %v, %v; want ErrThrottled", wait, err)
	}
	if _, wait, err := a.Authenticate(context.Background(), headerReq("Basic !", attacker)); err != ErrThrottled || wait <= 0 {
		t.Errorf("malformed header from the throttled address: %v, %v; want ErrThrottled", wait, err)
	}
	// Others are not affected.
	if id, _, err := a.Authenticate(context.Background(), basicReq("alice@example.test", alicePass, "198.51.100.7:1")); err != nil || id != "p1" {
		t.Errorf("alice from another address: %q, %v; want p1", id, err)
	}
	c.Advance(wait)
	if id, wait, err := a.Authenticate(context.Background(), basicReq("alice@example.test", alicePass, attacker)); err != nil || id != "p1" || wait != 0 {
		t.Errorf("after the window: %q, %v, %v; want p1", id, wait, err)
	}
}

func TestAuthenticate_ThrottlePerAccount(t *testing.T) {
	cheapHashing(t)
	_, a, c := setup(t, Options{MaxFailures: 3, Window: time.Minute})
	ctx := context.Background()
	// Alice logs in, so her credential is cached.
	if _, _, err := a.Authenticate(ctx, basicReq("alice@example.test", alicePass, "198.51.100.7:1")); err != nil {
		t.Fatal(err)
	}
	// Three guesses at alice and at an account that does not exist, each
	// from another address, in any letter case.
	for i := range 3 {
		for _, u := range []string{"alice@example.test", "ghost@example.test"} {
			if i == 1 {
				u = strings.ToUpper(u)
			}
			if _, _, err := a.Authenticate(ctx, basicReq(u, "guess", fmt.Sprintf("203.0.113.%d:1", i))); err != ErrUnauthorized {
				t.Fatalf("failure %d on %s: %v; want ErrUnauthorized", i+1, u, err)
			}
		}
	}
	c.Advance(20 * time.Second)
	for _, tc := range []struct{ user, pass string }{
		{"alice@example.test", alicePass}, // right and cached
		{" Alice@EXAMPLE.test", "guess"},
		{"ghost@example.test", "guess"}, // the same answer for an unknown account
	} {
		id, wait, err, runs := authn(a, basicReq(tc.user, tc.pass, "192.0.2.200:1"))
		if err != ErrThrottled || id != "" || wait != 40*time.Second || runs != 0 {
			t.Errorf("%q from a fresh address: %q, %v, %v, %d argon2 runs; want ErrThrottled, 40s, not verified", tc.user, id, wait, err, runs)
		}
	}
	// Other accounts are not affected.
	if id, _, err := a.Authenticate(ctx, basicReq("bob@example.test", bobPass, "203.0.113.0:1")); err != nil || id != "p2" {
		t.Errorf("bob: %q, %v; want p2", id, err)
	}
	c.Advance(40 * time.Second)
	if id, _, err := a.Authenticate(ctx, basicReq("alice@example.test", alicePass, "192.0.2.200:1")); err != nil || id != "p1" {
		t.Errorf("alice after the window: %q, %v; want p1", id, err)
	}
}

// A success takes nothing off the failure counts, neither its own address's
// nor anyone else's: valid logins cannot be mixed in to keep guessing.
func TestAuthenticate_SuccessDoesNotResetFailures(t *testing.T) {
	cheapHashing(t)
	_, a, _ := setup(t, Options{MaxFailures: 3, Window: time.Minute})
	ctx := context.Background()
	const attacker = "192.0.2.66:1"
	for i := range 2 {
		if _, _, err := a.Authenticate(ctx, basicReq("alice@example.test", "guess", attacker)); err != ErrUnauthorized {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	if _, _, err := a.Authenticate(ctx, basicReq("bob@example.test", bobPass, attacker)); err != nil {
		t.Fatalf("bob from the attacker's address: %v", err)
	}
	if _, _, err := a.Authenticate(ctx, basicReq("alice@example.test", alicePass, "198.51.100.7:1")); err != nil {
		t.Fatalf("alice from her address: %v", err)
	}
	if _, _, err := a.Authenticate(ctx, basicReq("carol@example.test", "guess", attacker)); err != ErrUnauthorized {
		t.Fatalf("third failure: %v", err)
	}
	if _, wait, err := a.Authenticate(ctx, basicReq("bob@example.test", bobPass, attacker)); err != ErrThrottled || wait <= 0 {
		t.Errorf("after three failures and two successes: %v, %v; want ErrThrottled", wait, err)
	}
}

// Concurrent guesses are charged before they are verified, so a burst cannot
// get more than MaxFailures guesses through.
func TestAuthenticate_ConcurrentGuessesStayWithinLimit(t *testing.T) {
	cheapHashing(t)
	_, a, _ := setup(t, Options{MaxFailures: 3, Window: time.Minute})
	const n = 40
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, _, err := a.Authenticate(context.Background(), basicReq("alice@example.test", fmt.Sprintf("guess%d", i), fmt.Sprintf("203.0.113.%d:1", i)))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	var unauthorized, throttled int
	for err := range errs {
		switch err {
		case ErrUnauthorized:
			unauthorized++
		case ErrThrottled:
			throttled++
		default:
			t.Errorf("unexpected error %v", err)
		}
	}
	if unauthorized != 3 || throttled != n-3 {
		t.Errorf("%d guesses verified and %d throttled; want 3 and %d", unauthorized, throttled, n-3)
	}
}

// A cached credential is known to be right, so checking it charges no
// failure: many clients of one user behind one address, sending requests
// at the same time, are never told they failed too often.
func TestAuthenticate_ConcurrentCachedLoginsAreNotThrottled(t *testing.T) {
	_, a, _ := setup(t, Options{MaxFailures: 1, Window: time.Minute})
	const addr = "198.51.100.7:1"
	bearer := addToken(t, a.st, "p1", "t1")
	for _, h := range []string{"", "Bearer " + bearer} {
		r := basicReq("alice@example.test", alicePass, addr)
		if h != "" {
			r = headerReq(h, addr)
		}
		if _, _, err := a.Authenticate(context.Background(), r); err != nil {
			t.Fatalf("first login: %v", err)
		}
	}
	const clients, requests = 32, 200
	var throttled, failed atomic.Int64
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			for range requests {
				r := basicReq("alice@example.test", alicePass, addr)
				if i%2 == 1 {
					r = headerReq("Bearer "+bearer, addr)
				}
				id, _, err := a.Authenticate(context.Background(), r)
				switch {
				case err == ErrThrottled:
					throttled.Add(1)
				case err != nil || id != "p1":
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if throttled.Load() != 0 || failed.Load() != 0 {
		t.Errorf("%d of %d cached logins throttled and %d failed; want none", throttled.Load(), clients*requests, failed.Load())
	}
}

func TestAuthenticate_MemoryIsBounded(t *testing.T) {
	cheapHashing(t)
	st, a, c := setup(t, Options{MaxFailures: 3, Window: time.Minute, CacheTTL: time.Minute})
	ctx := context.Background()

	// Failure windows that ended are dropped.
	for i := range 500 {
		if _, _, err := a.Authenticate(ctx, headerReq("Basic !", fmt.Sprintf("[2001:db8::%x]:1", i))); err != ErrUnauthorized {
			t.Fatal(err)
		}
	}
	if n := a.byAddr.len(); n != 500 {
		t.Fatalf("%d address windows, want 500", n)
	}
	c.Advance(time.Minute)
	if _, _, err := a.Authenticate(ctx, headerReq("Basic !", "192.0.2.1:1")); err != ErrUnauthorized {
		t.Fatal(err)
	}
	if n := a.byAddr.len(); n != 1 {
		t.Errorf("%d address windows after the window ended, want 1", n)
	}

	// The cache holds at most cacheMax credentials.
	a.cacheMax = 3
	for i := range 6 {
		secret := addToken(t, st, "p1", fmt.Sprintf("t%d", i))
		if _, _, err := a.Authenticate(ctx, headerReq("Bearer "+secret, "192.0.2.1:1")); err != nil {
			t.Fatal(err)
		}
		if n := a.cacheLen(); n > 3 {
			t.Fatalf("%d cached credentials, want at most 3", n)
		}
	}
	// Expired credentials are dropped.
	c.Advance(time.Minute)
	if _, _, err := a.Authenticate(ctx, basicReq("bob@example.test", bobPass, "192.0.2.1:1")); err != nil {
		t.Fatal(err)
	}
	if n := a.cacheLen(); n != 1 {
		t.Errorf("%d cached credentials after CacheTTL, want 1", n)
	}
}

// DESIGN.md: no one logs in as a shared mailbox or a group.
func TestAuthenticate_GroupAndSharedMailboxCannotLogIn(t *testing.T) {
	st, a, _ := setup(t, Options{MaxFailures: 100})
	tests := []store.Principal{
		{ID: "g1", Type: store.Group, Email: "team@example.test", Members: []store.PrincipalID{"p1"}},
		{ID: "s1", Type: store.Individual, Shared: true, Email: "support@example.test", Account: "as1"},
		{ID: "r1", Type: store.Resource, Email: "projector@example.test", Account: "ar1"},
	}
	for _, p := range tests {
		t.Run(string(p.Type)+"/"+p.Email, func(t *testing.T) {
			addPrincipal(t, st, p, "their password")
			secret := addToken(t, st, p.ID, "tok-"+string(p.ID))
			if _, _, err, runs := authn(a, basicReq(p.Email, "their password", "192.0.2.1:1")); err != ErrUnauthorized || runs != 1 {
				t.Errorf("Basic: %v after %d argon2 runs; want ErrUnauthorized after 1", err, runs)
			}
			if _, _, err := a.Authenticate(context.Background(), headerReq("Bearer "+secret, "192.0.2.1:1")); err != ErrUnauthorized {
				t.Errorf("Bearer: %v; want ErrUnauthorized", err)
			}
		})
	}
}

func TestAuthenticate_BearerToken(t *testing.T) {
	st, a, _ := setup(t, Options{})
	ctx := context.Background()
	secret := addToken(t, st, "p1", "t1")
	other := addToken(t, st, "p2", "t2")
	for _, h := range []string{"Bearer " + secret, "bearer " + secret, "BEARER  " + secret} {
		if id, _, err, runs := authn(a, headerReq(h, "192.0.2.1:1")); err != nil || id != "p1" || runs != 0 {
			t.Errorf("%.10s…: %q, %v, %d argon2 runs; want p1 without argon2", h, id, err, runs)
		}
	}
	if id, _, err := a.Authenticate(ctx, headerReq("Bearer "+other, "192.0.2.1:1")); err != nil || id != "p2" {
		t.Errorf("bob's token: %q, %v; want p2", id, err)
	}
	if _, _, err := a.Authenticate(ctx, headerReq("Bearer "+secret+"x", "192.0.2.1:1")); err != ErrUnauthorized {
		t.Errorf("unknown token: %v; want ErrUnauthorized", err)
	}
	// A token is not a password.
	if _, _, err := a.Authenticate(ctx, basicReq("alice@example.test", secret, "192.0.2.1:1")); err != ErrUnauthorized {
		t.Errorf("token as Basic password: %v; want ErrUnauthorized", err)
	}

	if _, err := st.Update(ctx, func(tx store.Tx) error { return tx.Principals().DeleteToken("t1") }); err != nil {
		t.Fatal(err)
	}
	a.Flush()
	if _, _, err := a.Authenticate(ctx, headerReq("Bearer "+secret, "192.0.2.1:1")); err != ErrUnauthorized {
		t.Errorf("revoked token: %v; want ErrUnauthorized", err)
	}
	if id, _, err := a.Authenticate(ctx, headerReq("Bearer "+other, "192.0.2.1:1")); err != nil || id != "p2" {
		t.Errorf("bob's token after alice's was revoked: %q, %v; want p2", id, err)
	}
}

func TestAuthenticate_MalformedHeader(t *testing.T) {
	cheapHashing(t)
	_, a, _ := setup(t, Options{MaxFailures: 1000})
	b := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct{ name, header string }{
		{"empty", ""},
		{"no scheme", b("alice@example.test:" + alicePass)},
		{"scheme only", "Basic"},
		{"scheme and space", "Basic "},
		{"bad base64", "Basic !!!not-base64!!!"},
		{"base64url", "Basic " + base64.URLEncoding.EncodeToString([]byte("alice@example.test:"+alicePass+"??>"))},
		{"no colon", "Basic " + b("alice@example.test")},
		{"empty user", "Basic " + b(":"+alicePass)},
		{"empty password", "Basic " + b("alice@example.test:")},
		{"NUL in user", "Basic " + b("alice@example.test\x00:"+alicePass)},
		{"oversized", "Basic " + b("alice@example.test:"+strings.Repeat("x", 5000))},
		{"unknown scheme", "Digest username=\"alice\""},
		{"scheme glued", "Basic" + b("alice@example.test:"+alicePass)},
		{"bearer without token", "Bearer"},
		{"bearer with two words", "Bearer abc def"},
		{"bearer with bad characters", "Bearer abc\x00"},
		{"bearer only padding", "Bearer ==="},
		{"bearer oversized", "Bearer " + strings.Repeat("a", 600)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, wait, err, runs := authn(a, headerReq(tc.header, "192.0.2.1:1"))
			if err != ErrUnauthorized || id != "" || wait != 0 {
				t.Errorf("got %q, %v, %v; want ErrUnauthorized", id, wait, err)
			}
			if runs != 0 {
				t.Errorf("cost %d argon2 runs, want 0", runs)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if _, _, err := a.Authenticate(context.Background(), r); err != ErrUnauthorized {
			t.Errorf("got %v; want ErrUnauthorized", err)
		}
	})
	t.Run("two headers", func(t *testing.T) {
		r := basicReq("alice@example.test", alicePass, "192.0.2.1:1")
		r.Header.Add("Authorization", "Bearer abc")
		if _, _, err := a.Authenticate(context.Background(), r); err != ErrUnauthorized {
			t.Errorf("got %v; want ErrUnauthorized", err)
		}
	})
	t.Run("remote address without port", func(t *testing.T) {
		if id, _, err := a.Authenticate(context.Background(), basicReq("alice@example.test", alicePass, "192.0.2.1")); err != nil || id != "p1" {
			t.Errorf("got %q, %v; want p1", id, err)
		}
	})
}

// A store that cannot answer is an error of the server, not of the client's
// credentials: it is not ErrUnauthorized and is not counted as a failure.
func TestAuthenticate_StoreErrorIsNotUnauthorized(t *testing.T) {
	st, err := badger.Open(badger.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	a := New(st, Options{MaxFailures: 1})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, wait, err := a.Authenticate(context.Background(), basicReq("alice@example.test", alicePass, "192.0.2.1:1"))
		if err == nil || errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrThrottled) || wait != 0 {
			t.Fatalf("closed store: %v, %v; want a store error", wait, err)
		}
	}
	if n := a.byAddr.len() + a.byAcct.len(); n != 0 {
		t.Errorf("%d failure windows, want 0", n)
	}
}

func FuzzAuthorizationHeader(f *testing.F) {
	cheapHashing(f)
	st := openStore(f)
	addPrincipal(f, st, individual("p1", "alice@example.test"), "secret")
	secret := addToken(f, st, "p1", "t1")
	a := New(st, Options{MaxFailures: 1 << 30})
	b := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, s := range []string{
		"Basic " + b("alice@example.test:secret"),
		"basic " + b("ALICE@example.test:secret"),
		"Basic " + b("alice@example.test:wrong"),
		"Basic " + b("alice@example.test:se:cret"),
		"Basic " + b("alice@example.test"),
		"Basic Og==",
		"Basic",
		"Basic ====",
		"Bearer " + secret,
		"Bearer " + secret + "=",
		"Bearer",
		"Negotiate YII=",
		"",
		"\x00\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		id, wait, err := a.Authenticate(context.Background(), headerReq(header, "192.0.2.1:1"))
		if err != nil {
			if err != ErrUnauthorized || id != "" || wait != 0 {
				t.Fatalf("%q: %q, %v, %v; want ErrUnauthorized and nothing else", header, id, wait, err)
			}
			return
		}
		if id != "p1" || wait != 0 {
			t.Fatalf("%q: %q, %v; want p1", header, id, wait)
		}
		// A success must carry alice's password or token.
		scheme, rest, _ := strings.Cut(header, " ")
		rest = strings.TrimLeft(rest, " ")
		switch {
		case strings.EqualFold(scheme, "Bearer"):
			if rest != secret {
				t.Fatalf("%q was accepted as alice's token", header)
			}
		case strings.EqualFold(scheme, "Basic"):
			dec, err := base64.StdEncoding.DecodeString(rest)
			u, p, _ := strings.Cut(string(dec), ":")
			if err != nil || !strings.EqualFold(strings.TrimSpace(u), "alice@example.test") || p != "secret" {
				t.Fatalf("%q was accepted as alice's password", header)
			}
		default:
			t.Fatalf("%q was accepted", header)
		}
	})
}

func BenchmarkAuthenticateCached(b *testing.B) {
	st := openStore(b)
	addPrincipal(b, st, individual("p1", "alice@example.test"), alicePass)
	a := New(st, Options{CacheTTL: time.Hour})
	ctx := context.Background()
	r := basicReq("alice@example.test", alicePass, "192.0.2.1:1234")
	if _, _, err := a.Authenticate(ctx, r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, _, err := a.Authenticate(ctx, r); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	for _, q := range []struct {
		name string
		p    float64
	}{{"p50-ns", 0.50}, {"p99-ns", 0.99}} {
		b.ReportMetric(float64(lat[int(q.p*float64(len(lat)-1))].Nanoseconds()), q.name)
	}
}

// BenchmarkCheckPassword measures one login that misses the cache: one
// argon2id run with the default parameters.
func BenchmarkCheckPassword(b *testing.B) {
	h, err := HashPassword(alicePass)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !CheckPassword(h, alicePass) {
			b.Fatal("no match")
		}
	}
}

// Many connections of one client opened at once with a right password not
// cached yet (a client starting, or every cache entry expiring together)
// are verified once: they are not charged a provisional failure each,
// which would throttle a user who never sent a wrong password.
func TestAuthenticate_ConcurrentColdLoginsAreNotThrottled(t *testing.T) {
	// Two credentials (a password, a token), each verified once: two
	// provisional failures at most.
	_, a, _ := setup(t, Options{MaxFailures: 2, Window: time.Minute})
	const addr = "198.51.100.7:1"
	bearer := addToken(t, a.st, "p1", "t1")
	const clients = 32
	var throttled, failed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range clients {
		wg.Go(func() {
			r := basicReq("alice@example.test", alicePass, addr)
			if i%2 == 1 {
				r = headerReq("Bearer "+bearer, addr)
			}
			<-start
			id, _, err := a.Authenticate(context.Background(), r)
			switch {
			case err == ErrThrottled:
				throttled.Add(1)
			case err != nil || id != "p1":
				failed.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if throttled.Load() != 0 || failed.Load() != 0 {
		t.Errorf("%d of %d first logins throttled and %d failed; want none", throttled.Load(), clients, failed.Load())
	}
	// A wrong password still fails, and is charged.
	if _, _, err := a.Authenticate(context.Background(), basicReq("alice@example.test", "wrong", addr)); err != ErrUnauthorized {
		t.Fatalf("wrong password: %v", err)
	}
}

// parkedInOnce waits until n goroutines wait on another's verification in
// once, reading the goroutine stacks (no sleeping on a guess).
func parkedInOnce(t *testing.T, n int) {
	t.Helper()
	select {
	case <-parked(t, n):
	case <-time.After(5 * time.Second):
		t.Fatalf("fewer than %d logins wait on a verification", n)
	}
}

// holdVerified makes the next verification stop after it has verified,
// until release is closed; entered is closed when it stops.
func holdVerified(t *testing.T) (entered, release chan struct{}) {
	entered, release = make(chan struct{}), make(chan struct{})
	testHookVerified = func() {
		testHookVerified = nil
		close(entered)
		<-release
	}
	t.Cleanup(func() { testHookVerified = nil })
	return entered, release
}

type loginResult struct {
	id  store.PrincipalID
	err error
}

func loginAsync(a *Authenticator, r *http.Request) chan loginResult {
	out := make(chan loginResult, 1)
	go func() {
		id, _, err := a.Authenticate(context.Background(), r)
		out <- loginResult{id, err}
	}()
	return out
}

// A request sent after a password change and Flush is verified against the
// new password, even while a verification of the old one that began
// before the change is still running.
func TestAuthenticate_LoginAfterFlushDoesNotJoinEarlierVerification(t *testing.T) {
	st, a, _ := setup(t, Options{})
	entered, release := holdVerified(t)
	lead := loginAsync(a, basicReq("alice@example.test", alicePass, "192.0.2.1:1"))
	<-entered
	setPassword(t, st, "p1", "new password")
	a.Flush()
	late := loginAsync(a, basicReq("alice@example.test", alicePass, "192.0.2.1:1"))
	// The late login must verify on its own and finish while the first
	// is held; if it waits on the first instead, release that one.
	var r loginResult
	select {
	case r = <-late:
	case <-parked(t, 1):
		close(release)
		r = <-late
	}
	if r.err != ErrUnauthorized {
		t.Errorf("old password after the change: %q, %v; want ErrUnauthorized", r.id, r.err)
	}
	select {
	case <-release:
	default:
		close(release)
	}
	<-lead
}

// parked is closed once n goroutines wait on another's verification; it
// stops looking when the test ends.
func parked(t *testing.T, n int) chan struct{} {
	c, stop := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			got := 0
			for _, g := range strings.Split(string(buf), "\n\n") {
				if strings.Contains(g, "[select") && strings.Contains(g, "(*Authenticator).once(") {
					got++
				}
			}
			if got >= n {
				close(c)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return c
}

// A client address that failed too often is refused even when the right
// password it sends is being verified for another address.
func TestAuthenticate_ThrottledAddressDoesNotShareAnotherVerification(t *testing.T) {
	cheapHashing(t)
	_, a, _ := setup(t, Options{MaxFailures: 2, Window: time.Minute})
	const throttled = "203.0.113.9:1"
	for range 3 {
		a.Authenticate(context.Background(), headerReq("Basic !!!", throttled))
	}
	entered, release := holdVerified(t)
	lead := loginAsync(a, basicReq("alice@example.test", alicePass, "192.0.2.1:1"))
	<-entered
	late := loginAsync(a, basicReq("alice@example.test", alicePass, throttled))
	parkedInOnce(t, 1)
	close(release)
	if r := <-lead; r.err != nil {
		t.Fatalf("login from the good address: %v", r.err)
	}
	if r := <-late; r.err != ErrThrottled {
		t.Errorf("throttled address: %q, %v; want ErrThrottled", r.id, r.err)
	}
}

// A verification that panics (a bug in the store) does not leave the
// credential's later logins waiting forever.
func TestAuthenticate_PanickedVerificationDoesNotBlockLaterLogins(t *testing.T) {
	_, a, _ := setup(t, Options{})
	testHookVerified = func() {
		testHookVerified = nil
		panic("verification failed badly")
	}
	t.Cleanup(func() { testHookVerified = nil })
	func() {
		defer func() { recover() }() // as net/http recovers a handler
		a.Authenticate(context.Background(), basicReq("alice@example.test", alicePass, "192.0.2.1:1"))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if id, _, err := a.Authenticate(ctx, basicReq("alice@example.test", alicePass, "192.0.2.1:1")); err != nil || id != "p1" {
		t.Errorf("login after a panicked verification: %q, %v; want p1", id, err)
	}
}
