package push_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmapd/jmapd/internal/config"
	"github.com/jmapd/jmapd/jmaptest"
	"github.com/jmapd/jmapd/push"
)

var b64u = base64.RawURLEncoding

// pushMsg is one request that reached the push endpoint.
type pushMsg struct {
	path   string
	header http.Header
	body   []byte
	at     time.Time
}

// pushEndpoint is a real local Web Push endpoint: it records what
// arrives and answers with the status reply picks (201 by default).
type pushEndpoint struct {
	*httptest.Server
	msgs  chan pushMsg
	mu    sync.Mutex
	reply func(n int) int // n counts requests from 1
	n     int
}

func newPushEndpoint(t *testing.T) *pushEndpoint {
	p := &pushEndpoint{msgs: make(chan pushMsg, 32)}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.n++
		status := http.StatusCreated
		if p.reply != nil {
			status = p.reply(p.n)
		}
		p.mu.Unlock()
		p.msgs <- pushMsg{path: r.URL.Path, header: r.Header.Clone(), body: b, at: time.Now()}
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *pushEndpoint) next(t *testing.T, within time.Duration) (pushMsg, bool) {
	t.Helper()
	select {
	case m := <-p.msgs:
		return m, true
	case <-time.After(within):
		return pushMsg{}, false
	}
}

// uaKeys are a user agent's Web Push keys.
type uaKeys struct {
	priv *ecdh.PrivateKey
	auth []byte
}

func newUAKeys(t *testing.T) *uaKeys {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	rand.Read(auth)
	return &uaKeys{priv: priv, auth: auth}
}

func (k *uaKeys) wire() map[string]any {
	return map[string]any{"p256dh": b64u.EncodeToString(k.priv.PublicKey().Bytes()), "auth": b64u.EncodeToString(k.auth)}
}

// decrypt opens an aes128gcm push message as the user agent does
// (RFC 8291 §3.4, RFC 8188 §2).
func (k *uaKeys) decrypt(t *testing.T, body []byte) []byte {
	t.Helper()
	if len(body) < 21 {
		t.Fatalf("message of %d octets", len(body))
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if idlen != 65 || len(body) < 21+idlen+17 {
		t.Fatalf("key id length %d", idlen)
	}
	asPub, ct := body[21:21+idlen], body[21+idlen:]
	if uint32(len(ct)) > rs {
		t.Fatalf("ciphertext of %d octets in records of %d", len(ct), rs)
	}
	as, err := ecdh.P256().NewPublicKey(asPub)
	if err != nil {
		t.Fatal(err)
	}
	shared, err := k.priv.ECDH(as)
	if err != nil {
		t.Fatal(err)
	}
	info := append(append([]byte("WebPush: info\x00"), k.priv.PublicKey().Bytes()...), asPub...)
	prkKey, _ := hkdf.Extract(sha256.New, shared, k.auth)
	ikm, _ := hkdf.Expand(sha256.New, prkKey, string(info), 32)
	prk, _ := hkdf.Extract(sha256.New, ikm, salt)
	cek, _ := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	nonce, _ := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	block, _ := aes.NewCipher(cek)
	gcm, _ := cipher.NewGCM(block)
	plain, err := gcm.Open(nil, nonce, ct, nil)
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	end := len(plain) - 1
	for end >= 0 && plain[end] == 0 {
		end--
	}
	if end < 0 || plain[end] != 2 {
		t.Fatal("no last-record delimiter")
	}
	return plain[:end]
}

// checkVAPID checks the Authorization of a push: a JWT for the endpoint's
// origin, expiring within 24 hours, signed with the key the session
// advertises (RFC 8292 §2, §3).
func checkVAPID(t *testing.T, h http.Header, origin, serverKey string) {
	t.Helper()
	a := h.Get("Authorization")
	var jwt, k string
	if _, err := fmt.Sscanf(strings.ReplaceAll(a, ",", ""), "vapid t=%s k=%s", &jwt, &k); err != nil {
		t.Fatalf("Authorization %q: %v", a, err)
	}
	if k != serverKey {
		t.Errorf("k=%s, session says %s", k, serverKey)
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("JWT %q", jwt)
	}
	var hdr, claims map[string]any
	hb, _ := b64u.DecodeString(parts[0])
	cb, _ := b64u.DecodeString(parts[1])
	json.Unmarshal(hb, &hdr)
	json.Unmarshal(cb, &claims)
	if hdr["alg"] != "ES256" {
		t.Errorf("JWT header %v", hdr)
	}
	exp := time.Unix(int64(claims["exp"].(float64)), 0)
	if claims["aud"] != origin || time.Until(exp) <= 0 || time.Until(exp) > 24*time.Hour || claims["sub"] == nil {
		t.Errorf("JWT claims %v", claims)
	}
	kb, _ := b64u.DecodeString(k)
	x, y := elliptic.Unmarshal(elliptic.P256(), kb)
	if x == nil {
		t.Fatalf("k is not a P-256 point")
	}
	sig, _ := b64u.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}
	if len(sig) != 64 || !ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Error("the VAPID signature does not verify")
	}
}

func allowHTTP(c *config.Config) { c.Push.AllowHTTPSubscriptions = true }

func createSub(t *testing.T, c *jmaptest.Client, sub map[string]any) map[string]any {
	t.Helper()
	res := c.One(t, "PushSubscription/set", map[string]any{"create": map[string]any{"k": sub}})
	created, _ := res["created"].(map[string]any)
	if created["k"] == nil {
		t.Fatalf("create: %v", res)
	}
	return created["k"].(map[string]any)
}

// RFC 8620 §7.2, RFC 8291, RFC 8292: a new subscription gets an encrypted
// PushVerification first and nothing else; once the client gives the
// code back, StateChanges follow, encrypted and signed.
func testVerifyThenStateChange(t *testing.T, srv *jmaptest.Server, alice *jmaptest.Client) {
	ep := newPushEndpoint(t)
	keys := newUAKeys(t)
	created := createSub(t, alice, map[string]any{"deviceClientId": "dev-1", "url": ep.URL + "/push/a1", "keys": keys.wire(), "types": nil})
	id, _ := created["id"].(string)
	exp, err := time.Parse(time.RFC3339, created["expires"].(string))
	if id == "" || err != nil || time.Until(exp) > 7*24*time.Hour || time.Until(exp) < 7*24*time.Hour-time.Minute {
		t.Errorf("created %v, want an id and an expiry 7 days ahead", created)
	}
	serverKey := alice.Session(t).Capabilities[push.CapVAPID].(map[string]any)["applicationServerKey"].(string)

	m, ok := ep.next(t, 10*time.Second)
	if !ok {
		t.Fatal("no PushVerification")
	}
	if m.path != "/push/a1" || m.header.Get("Content-Encoding") != "aes128gcm" || m.header.Get("TTL") == "" ||
		m.header.Get("Content-Type") != "application/json" {
		t.Errorf("push request %s %v", m.path, m.header)
	}
	checkVAPID(t, m.header, ep.URL, serverKey)
	var pv map[string]any
	if err := json.Unmarshal(keys.decrypt(t, m.body), &pv); err != nil {
		t.Fatal(err)
	}
	code, _ := pv["verificationCode"].(string)
	if pv["@type"] != "PushVerification" || pv["pushSubscriptionId"] != id || len(code) < 32 {
		t.Fatalf("PushVerification %v", pv)
	}
	// Not verified: nothing is pushed.
	createNote(t, alice)
	if m, ok := ep.next(t, 500*time.Millisecond); ok {
		t.Fatalf("pushed %s before verification", m.body)
	}
	// A wrong code is invalidProperties and changes nothing.
	res := alice.One(t, "PushSubscription/set", map[string]any{"update": map[string]any{id: map[string]any{"verificationCode": "nope"}}})
	if e := res["notUpdated"].(map[string]any)[id].(map[string]any); e["type"] != "invalidProperties" {
		t.Errorf("wrong code: %v", res)
	}
	got := alice.One(t, "PushSubscription/get", map[string]any{"ids": nil})
	if l := got["list"].([]any); len(l) != 1 || l[0].(map[string]any)["verificationCode"] != nil {
		t.Errorf("after a wrong code: %v", got)
	}
	createNote(t, alice)
	if m, ok := ep.next(t, 300*time.Millisecond); ok {
		t.Fatalf("pushed %s after a wrong code", m.body)
	}
	res = alice.One(t, "PushSubscription/set", map[string]any{"update": map[string]any{id: map[string]any{"verificationCode": code}}})
	if _, ok := res["updated"].(map[string]any)[id]; !ok {
		t.Fatalf("verify: %v", res)
	}
	// RFC 8620 §7.2.1: /get shows the code but never url or keys.
	got = alice.One(t, "PushSubscription/get", map[string]any{"ids": []string{id, "nope"}})
	l := got["list"].([]any)
	sub := l[0].(map[string]any)
	if len(l) != 1 || sub["verificationCode"] != code || sub["deviceClientId"] != "dev-1" || sub["url"] != nil || sub["keys"] != nil ||
		got["accountId"] != nil || got["state"] != nil || fmt.Sprint(got["notFound"]) != "[nope]" {
		t.Errorf("get %v", got)
	}
	state := createNote(t, alice)
	m, ok = ep.next(t, 10*time.Second)
	if !ok {
		t.Fatal("no StateChange after verification")
	}
	checkVAPID(t, m.header, ep.URL, serverKey)
	var sc map[string]any
	json.Unmarshal(keys.decrypt(t, m.body), &sc)
	if sc["@type"] != "StateChange" || sc["changed"].(map[string]any)[alice.Account].(map[string]any)["Note"] != state {
		t.Errorf("StateChange %v, want Note %s", sc, state)
	}
	// types limits what is pushed.
	alice.One(t, "PushSubscription/set", map[string]any{"update": map[string]any{id: map[string]any{"types": []string{"Mailbox"}}}})
	createNote(t, alice)
	if m, ok := ep.next(t, 500*time.Millisecond); ok {
		t.Errorf("types=[Mailbox] got %s", keys.decrypt(t, m.body))
	}
	// Destroyed: nothing more.
	res = alice.One(t, "PushSubscription/set", map[string]any{"destroy": []string{id}})
	if fmt.Sprint(res["destroyed"]) != "["+id+"]" {
		t.Errorf("destroy: %v", res)
	}
	createNote(t, alice)
	if m, ok := ep.next(t, 300*time.Millisecond); ok {
		t.Errorf("pushed %s after destroy", m.body)
	}
}

// Without keys the push is the plain JSON object.
func testUnencrypted(t *testing.T, srv *jmaptest.Server, alice *jmaptest.Client) {
	ep := newPushEndpoint(t)
	created := createSub(t, alice, map[string]any{"deviceClientId": "d", "url": ep.URL})
	if k, ok := created["keys"]; !ok || k != nil {
		t.Errorf("created %v, want keys: null", created)
	}
	m, ok := ep.next(t, 10*time.Second)
	var pv map[string]any
	if !ok || json.Unmarshal(m.body, &pv) != nil || pv["@type"] != "PushVerification" || m.header.Get("Content-Encoding") != "" {
		t.Fatalf("got %s %v", m.body, m.header)
	}
}

// Network trouble, 5xx and 429 are retried with backoff, a 429 no sooner
// than its Retry-After (RFC 8620 §7.2: it must slow the server down); 404
// and 410 destroy the subscription (RFC 8030 §7.3).
func TestWebPush_RetryAndGone(t *testing.T) {
	push.SetRetryBase(t, 10*time.Millisecond)
	ep := newPushEndpoint(t)
	ep.reply = func(n int) int {
		switch n {
		case 1:
			return http.StatusServiceUnavailable
		case 2:
			return http.StatusTooManyRequests
		case 3:
			return http.StatusCreated
		}
		return http.StatusGone
	}
	srv := jmaptest.Start(t, allowHTTP)
	alice := srv.NewUser(t, "alice@example.test")
	id := createSub(t, alice, map[string]any{"deviceClientId": "d", "url": ep.URL})["id"].(string)
	var code string
	var last time.Time
	for i := 1; i <= 3; i++ {
		m, ok := ep.next(t, 10*time.Second)
		if !ok {
			t.Fatalf("attempt %d did not come", i)
		}
		if i == 3 && m.at.Sub(last) < time.Second {
			t.Errorf("retried %v after a 429 with Retry-After: 1", m.at.Sub(last))
		}
		last = m.at
		var pv map[string]string
		json.Unmarshal(m.body, &pv)
		code = pv["verificationCode"]
	}
	alice.One(t, "PushSubscription/set", map[string]any{"update": map[string]any{id: map[string]any{"verificationCode": code}}})
	createNote(t, alice)
	if _, ok := ep.next(t, 10*time.Second); !ok {
		t.Fatal("no push")
	}
	// The endpoint said 410: the subscription is gone.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := alice.One(t, "PushSubscription/get", map[string]any{"ids": []string{id}})
		if len(got["list"].([]any)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the subscription survived a 410")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWebPush runs the tests above on one server, one after another.
func TestWebPush(t *testing.T) {
	t.Parallel()
	srv := jmaptest.Start(t, allowHTTP)
	alice := srv.NewUser(t, "alice@example.test")
	t.Run("VerifyThenStateChange", func(t *testing.T) { testVerifyThenStateChange(t, srv, alice) })
	t.Run("Unencrypted", func(t *testing.T) { testUnencrypted(t, srv, alice) })
}

// Bad PushSubscription input gets invalidProperties (or the method error
// the RFC names) and creates nothing.
func TestWebPush_BadInput(t *testing.T) {
	t.Parallel()
	srv := jmaptest.Start(t) // http:// push URLs are not allowed here
	alice := srv.NewUser(t, "alice@example.test")
	bob := srv.NewUser(t, "bob@example.test")
	good := newUAKeys(t).wire()
	offCurve := make([]byte, 65)
	offCurve[0] = 4
	offCurve[64] = 1
	for _, tc := range []struct {
		name string
		sub  map[string]any
		prop string
	}{
		{"http url", map[string]any{"deviceClientId": "d", "url": "http://127.0.0.1:1/x"}, "url"},
		{"relative url", map[string]any{"deviceClientId": "d", "url": "/x"}, "url"},
		{"no url", map[string]any{"deviceClientId": "d"}, "url"},
		{"no deviceClientId", map[string]any{"url": "https://127.0.0.1:1/x"}, "deviceClientId"},
		{"short p256dh", map[string]any{"deviceClientId": "d", "url": "https://127.0.0.1:1/x",
			"keys": map[string]any{"p256dh": b64u.EncodeToString(make([]byte, 33)), "auth": good["auth"]}}, "keys"},
		{"point off the curve", map[string]any{"deviceClientId": "d", "url": "https://127.0.0.1:1/x",
			"keys": map[string]any{"p256dh": b64u.EncodeToString(offCurve), "auth": good["auth"]}}, "keys"},
		{"auth of 15 octets", map[string]any{"deviceClientId": "d", "url": "https://127.0.0.1:1/x",
			"keys": map[string]any{"p256dh": good["p256dh"], "auth": b64u.EncodeToString(make([]byte, 15))}}, "keys"},
		{"keys not base64url", map[string]any{"deviceClientId": "d", "url": "https://127.0.0.1:1/x",
			"keys": map[string]any{"p256dh": "!!", "auth": good["auth"]}}, "keys"},
		{"keys missing auth", map[string]any{"deviceClientId": "d", "url": "https://127.0.0.1:1/x",
			"keys": map[string]any{"p256dh": good["p256dh"]}}, "keys"},
		{"verificationCode at create", map[string]any{"deviceClientId": "d", "url": "https://127.0.0.1:1/x", "verificationCode": "x"}, "verificationCode"},
		{"expires in the past", map[string]any{"deviceClientId": "d", "url": "https://127.0.0.1:1/x", "expires": "2001-01-01T00:00:00Z"}, "expires"},
		{"bad types", map[string]any{"deviceClientId": "d", "url": "https://127.0.0.1:1/x", "types": []string{""}}, "types"},
		{"id", map[string]any{"deviceClientId": "d", "url": "https://127.0.0.1:1/x", "id": "x"}, "id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := alice.One(t, "PushSubscription/set", map[string]any{"create": map[string]any{"k": tc.sub}})
			e, _ := res["notCreated"].(map[string]any)["k"].(map[string]any)
			if e["type"] != "invalidProperties" || !strings.Contains(fmt.Sprint(e["properties"]), tc.prop) {
				t.Errorf("got %v, want invalidProperties naming %s", res, tc.prop)
			}
		})
	}
	if got := alice.One(t, "PushSubscription/get", map[string]any{}); len(got["list"].([]any)) != 0 {
		t.Errorf("bad creates left %v", got)
	}
	if e := alice.Error(t, "PushSubscription/get", map[string]any{"properties": []string{"id", "url"}}); e != "forbidden" {
		t.Errorf("asking for url: %s, want forbidden", e)
	}
	if e := alice.Error(t, "PushSubscription/get", map[string]any{"accountId": alice.Account}); e != "invalidArguments" {
		t.Errorf("accountId: %s, want invalidArguments", e)
	}
	// A good one, with an expiry too far ahead: clamped to 7 days.
	far := time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	created := createSub(t, alice, map[string]any{"deviceClientId": "d", "url": "https://127.0.0.1:1/x", "keys": good, "expires": far})
	id := created["id"].(string)
	if exp, _ := time.Parse(time.RFC3339, created["expires"].(string)); time.Until(exp) > 7*24*time.Hour {
		t.Errorf("expires %v not clamped", created["expires"])
	}
	res := alice.One(t, "PushSubscription/set", map[string]any{"update": map[string]any{id: map[string]any{"expires": far}}})
	if u := res["updated"].(map[string]any)[id].(map[string]any); u["expires"] == nil {
		t.Errorf("update to %s: %v, want the clamped expiry back", far, res)
	}
	for _, prop := range []string{"url", "keys", "deviceClientId"} {
		res := alice.One(t, "PushSubscription/set", map[string]any{"update": map[string]any{id: map[string]any{prop: "x"}}})
		if e := res["notUpdated"].(map[string]any)[id].(map[string]any); e["type"] != "invalidProperties" {
			t.Errorf("changing %s: %v", prop, res)
		}
	}
	// Bob cannot see, change or destroy it.
	if got := bob.One(t, "PushSubscription/get", map[string]any{"ids": []string{id}}); len(got["list"].([]any)) != 0 {
		t.Errorf("bob sees %v", got)
	}
	res = bob.One(t, "PushSubscription/set", map[string]any{"update": map[string]any{id: map[string]any{"types": nil}}, "destroy": []string{id}})
	if res["notUpdated"].(map[string]any)[id].(map[string]any)["type"] != "notFound" ||
		res["notDestroyed"].(map[string]any)[id].(map[string]any)["type"] != "notFound" {
		t.Errorf("bob's update and destroy: %v", res)
	}
	if got := alice.One(t, "PushSubscription/get", map[string]any{"ids": []string{id}}); len(got["list"].([]any)) != 1 {
		t.Errorf("alice's subscription after bob: %v", got)
	}
	// RFC 8620 §8.6: the rate of creation is limited.
	for i := range 11 {
		res := bob.One(t, "PushSubscription/set", map[string]any{"create": map[string]any{"k": map[string]any{
			"deviceClientId": fmt.Sprint("d", i), "url": "https://127.0.0.1:1/x"}}})
		nc, _ := res["notCreated"].(map[string]any)
		e, _ := nc["k"].(map[string]any)
		if i < 10 && e != nil || i == 10 && (e == nil || e["type"] != "rateLimit") {
			t.Errorf("creation %d: %v", i+1, res)
		}
	}
}

// RFC 8620 §8.6: pushes go to public addresses only; a URL that leads
// inside the network is never connected to (unless configured for tests).
func TestWebPush_NoInternalAddresses(t *testing.T) {
	t.Parallel()
	var conns sync.Map
	ep := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	}))
	ep.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Store(c.RemoteAddr().String(), true)
		}
	}
	ep.StartTLS()
	t.Cleanup(ep.Close)
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	createSub(t, alice, map[string]any{"deviceClientId": "d", "url": ep.URL + "/push"})
	// Let the PushVerification attempts run: the first at once, the
	// retry after a second.
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		n := 0
		conns.Range(func(any, any) bool { n++; return true })
		if n > 0 {
			t.Fatalf("the server connected to %s", ep.URL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
