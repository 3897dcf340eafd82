package push

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// CapVAPID is the capability that tells clients the server's VAPID public
// key, which browsers need to subscribe (RFC 9749).
const CapVAPID = "urn:ietf:params:jmap:webpush-vapid"

// VAPIDCapability is the session object of CapVAPID.
type VAPIDCapability struct {
	// ApplicationServerKey is the VAPID public key, an uncompressed P-256
	// point in base64url.
	ApplicationServerKey string `json:"applicationServerKey"`
}

// vapidKey is the meta key of the server's VAPID key pair (RFC 8292),
// generated once.
const vapidKey = "push/vapid"

// Delivery timing: pushTTL is the TTL header (RFC 8030 §5.2), retries
// back off from retryBase and give up after maxAttempts. Tests shorten
// retryBase.
var retryBase = time.Second

const (
	pushTTL      = 24 * time.Hour
	maxAttempts  = 6
	maxRetryWait = 5 * time.Minute
	pushTimeout  = 30 * time.Second
)

// WebPushOptions configures NewWebPush.
type WebPushOptions struct {
	// Subject is the VAPID "sub" claim, a mailto: or https: URI naming the
	// operator (RFC 8292 §2.1); required.
	Subject string
	// AllowHTTP lets subscriptions use http:// URLs and push to loopback
	// and private addresses (tests, closed networks). Without it only
	// public addresses are reached (RFC 8620 §8.6).
	AllowHTTP bool
	// Client sends the pushes (default: a client with a 30 s timeout that
	// refuses non-public addresses unless AllowHTTP).
	Client *http.Client
}

// WebPush serves PushSubscription/get and /set (RFC 8620 §7.2) and
// delivers StateChanges to verified subscriptions by Web Push, encrypted
// (RFC 8291) when the client gave keys and signed with VAPID (RFC 8292).
type WebPush struct {
	b     *Broker
	st    store.Store
	log   zerolog.Logger
	opt   WebPushOptions
	vapid *ecdsa.PrivateKey
	pub   []byte // uncompressed public key
	now   func() time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	active  map[string]*delivery              // by subscription id
	created map[store.PrincipalID][]time.Time // recent creations, for the rate limit
}

// Creation rate limit (RFC 8620 §8.6): at most maxCreates subscriptions
// per user within createWindow.
const (
	maxCreates   = 10
	createWindow = 10 * time.Minute
)

// allowCreate counts a creation for who, false past the limit.
func (w *WebPush) allowCreate(who store.PrincipalID, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	recent := w.created[who][:0]
	for _, t := range w.created[who] {
		if now.Sub(t) < createWindow {
			recent = append(recent, t)
		}
	}
	if len(recent) >= maxCreates {
		w.created[who] = recent
		return false
	}
	w.created[who] = append(recent, now)
	if len(w.created) > 100_000 {
		clear(w.created) // bounded memory; the limit restarts
	}
	return true
}

// errNotPublic refuses a push to an address inside the network.
var errNotPublic = errors.New("push: address is not public")

// publicOnly refuses connections to loopback, private, link-local and
// other non-public addresses: a push URL must be externally resolvable
// (RFC 8620 §8.6), checked on the address actually dialled.
func publicOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return err
	}
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() ||
		(ip.Is4() && ip.As4()[0] == 100 && ip.As4()[1]&0xc0 == 64) { // 100.64.0.0/10, shared address space
		return errNotPublic
	}
	return nil
}

// delivery is the goroutine that pushes one verified subscription.
type delivery struct {
	stop chan struct{}
	done chan struct{}
}

// NewWebPush loads (or creates, once) the VAPID key, registers the
// PushSubscription methods and starts delivering to every verified
// subscription in st.
func NewWebPush(ctx context.Context, st store.Store, b *Broker, reg *jmap.Registry, log zerolog.Logger, opt WebPushOptions) (*WebPush, error) {
	if opt.Client == nil {
		d := &net.Dialer{Timeout: 10 * time.Second}
		if !opt.AllowHTTP {
			d.Control = publicOnly
		}
		tr := &http.Transport{DialContext: d.DialContext, TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute, ForceAttemptHTTP2: true}
		opt.Client = &http.Client{Timeout: pushTimeout, Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	w := &WebPush{b: b, st: st, log: log, opt: opt, now: time.Now, active: map[string]*delivery{},
		created: map[store.PrincipalID][]time.Time{}}
	if err := w.loadVAPID(ctx); err != nil {
		return nil, err
	}
	subs, err := allSubs(ctx, st)
	if err != nil {
		return nil, err
	}
	w.ctx, w.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for _, s := range subs {
		w.follow(s)
	}
	w.registerMethods(reg)
	reg.AddCapability(CapVAPID, VAPIDCapability{ApplicationServerKey: base64.RawURLEncoding.EncodeToString(w.pub)})
	return w, nil
}

// Revalidate destroys the subscriptions whose credential no longer holds,
// as valid tells: RFC 8620 §7.2 says a subscription "MUST be destroyed"
// when the credentials that created it expire or are revoked. It returns
// how many it destroyed; a subscription whose check fails is kept.
func (w *WebPush) Revalidate(ctx context.Context, valid Validator) (int, error) {
	subs, err := allSubs(ctx, w.st)
	if err != nil {
		return 0, err
	}
	v := newVerdicts(valid)
	ended := 0
	for _, s := range subs {
		if !v.holds(ctx, s.Principal, s.Credential) {
			w.stop(s.ID)
			w.destroy(s)
			ended++
		}
	}
	return ended, v.err
}

// allSubs reads every stored subscription.
func allSubs(ctx context.Context, st store.Store) ([]*pushSub, error) {
	var subs []*pushSub
	err := st.View(ctx, func(tx store.Tx) error {
		subs = subs[:0]
		for m, err := range tx.ScanMeta(subPrefix) {
			if err != nil {
				return err
			}
			var s pushSub
			if err := json.Unmarshal(m.Value, &s); err != nil {
				return fmt.Errorf("push subscription %s: %w", m.Key, err)
			}
			subs = append(subs, &s)
		}
		return nil
	})
	return subs, err
}

// Close stops every delivery and waits for them.
func (w *WebPush) Close() {
	w.cancel()
	w.wg.Wait()
}

func (w *WebPush) loadVAPID(ctx context.Context) error {
	var der []byte
	_, err := w.st.Update(ctx, func(tx store.Tx) error {
		var err error
		if der, err = tx.GetMeta(vapidKey); err != nil || der != nil {
			return err
		}
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		if der, err = x509.MarshalECPrivateKey(k); err != nil {
			return err
		}
		return tx.PutMeta(vapidKey, der)
	})
	if err != nil {
		return fmt.Errorf("vapid key: %w", err)
	}
	k, err := x509.ParseECPrivateKey(der)
	if err != nil {
		return fmt.Errorf("vapid key: %w", err)
	}
	w.vapid = k
	pk, err := k.PublicKey.ECDH()
	if err != nil {
		return fmt.Errorf("vapid key: %w", err)
	}
	w.pub = pk.Bytes()
	return nil
}

// vapidAuth returns the Authorization header value for a push to target
// (RFC 8292 §2, §3).
func (w *WebPush) vapidAuth(target *url.URL) (string, error) {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"typ":"JWT","alg":"ES256"}`))
	claims, err := json.Marshal(map[string]any{
		"aud": target.Scheme + "://" + target.Host,
		// At most 24 hours ahead (RFC 8292 §2).
		"exp": w.now().Add(12 * time.Hour).Unix(),
		"sub": w.opt.Subject,
	})
	if err != nil {
		return "", err
	}
	signing := header + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, w.vapid, sum[:])
	if err != nil {
		return "", err
	}
	// JWS ES256: r and s as 32 octets each (RFC 7518 §3.4).
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return "vapid t=" + signing + "." + enc.EncodeToString(sig) + ", k=" + enc.EncodeToString(w.pub), nil
}

// verify sends the PushVerification of a new subscription, in the
// background (RFC 8620 §7.2.2).
func (w *WebPush) verify(s *pushSub) {
	body, err := json.Marshal(map[string]string{"@type": "PushVerification", "pushSubscriptionId": s.ID, "verificationCode": s.Code})
	if err != nil {
		return
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		if err := w.send(w.ctx, s, func() []byte { return body }, nil); errors.Is(err, errGone) {
			w.destroy(s)
		}
	}()
}

// follow starts (or restarts, with new settings) the delivery of a
// subscription that is verified and current; others get none.
func (w *WebPush) follow(s *pushSub) {
	w.stop(s.ID)
	if !s.Verified || !w.now().Before(s.Expires) {
		return
	}
	var types map[string]bool
	if s.Types != nil {
		types = map[string]bool{}
		for _, t := range s.Types {
			types[t] = true
		}
	}
	d := &delivery{stop: make(chan struct{}), done: make(chan struct{})}
	w.mu.Lock()
	if w.ctx.Err() != nil {
		w.mu.Unlock()
		return
	}
	w.active[s.ID] = d
	w.wg.Add(1)
	w.mu.Unlock()
	sub := w.b.Subscribe(s.Principal, types)
	go func() {
		defer w.wg.Done()
		defer close(d.done)
		defer sub.Close()
		w.deliver(s, sub, d.stop)
	}()
}

// stop ends the delivery of a subscription, if any, and waits for it.
func (w *WebPush) stop(id string) {
	w.mu.Lock()
	d := w.active[id]
	delete(w.active, id)
	w.mu.Unlock()
	if d != nil {
		close(d.stop)
		<-d.done
	}
}

// deliver pushes each StateChange the subscription's owner may see until
// stopped, the subscription expires or its URL is gone.
func (w *WebPush) deliver(s *pushSub, sub *Subscription, stop chan struct{}) {
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	expiry := time.NewTimer(s.Expires.Sub(w.now()))
	defer expiry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.Done:
			return
		case <-expiry.C:
			// RFC 8620 §7.2: no request after expiry; the record goes.
			w.remove(s)
			return
		case <-sub.Ready:
			sc := sub.Take()
			if sc == nil {
				continue
			}
			// Changes that arrive while a push is retried join it: the
			// latest state of each type wins.
			body := func() []byte {
				if more := sub.Take(); more != nil {
					for acct, types := range more.Changed {
						if sc.Changed[acct] == nil {
							sc.Changed[acct] = map[string]string{}
						}
						for typ, st := range types {
							sc.Changed[acct][typ] = st
						}
					}
				}
				b, _ := json.Marshal(sc)
				return b
			}
			if err := w.send(ctx, s, body, &s.Expires); errors.Is(err, errGone) {
				w.remove(s)
				return
			}
		}
	}
}

// remove deletes a subscription whose URL is gone or that expired; the
// delivery calling it ends by itself.
func (w *WebPush) remove(s *pushSub) {
	w.mu.Lock()
	delete(w.active, s.ID)
	w.mu.Unlock()
	w.destroy(s)
}

// destroy deletes a subscription record (RFC 8620 §7.2: the URL and keys
// are erased).
func (w *WebPush) destroy(s *pushSub) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), 10*time.Second)
	defer cancel()
	_, err := w.st.Update(ctx, func(tx store.Tx) error { return tx.DeleteMeta(subKey(s.Principal, s.ID)) })
	if err != nil {
		w.log.Warn().Err(err).Str("user", string(s.Principal)).Msg("remove push subscription")
	}
}

// send POSTs a push message, retrying with backoff on network errors, 429
// and 5xx. It returns errGone on 404 or 410 (RFC 8030 §7.3). body is
// called for each attempt, so that a retry carries the latest changes.
// expires, when set, stops retries at the subscription's expiry.
func (w *WebPush) send(ctx context.Context, s *pushSub, body func() []byte, expires *time.Time) error {
	target, err := url.Parse(s.URL)
	if err != nil {
		return errGone
	}
	wait := retryBase
	for attempt := 1; ; attempt++ {
		status, retryAfter, err := w.post(ctx, s, target, body())
		switch {
		case err == nil && status >= 200 && status < 300:
			return nil
		case err == nil && (status == http.StatusNotFound || status == http.StatusGone):
			return errGone
		case err == nil && status != http.StatusTooManyRequests && status < 500:
			// The push service refused this message; later ones may pass.
			w.log.Warn().Int("status", status).Str("user", string(s.Principal)).Msg("push refused")
			return nil
		}
		if errors.Is(err, errPushTooLarge) || ctx.Err() != nil {
			return err
		}
		if attempt >= maxAttempts {
			w.log.Warn().Err(err).Int("status", status).Str("user", string(s.Principal)).Msg("push failed, giving up")
			return nil
		}
		// RFC 8620 §7.2: a 429 must slow us down; Retry-After says how
		// much.
		d := max(wait, retryAfter)
		if expires != nil && w.now().Add(d).After(*expires) {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, maxRetryWait)
	}
}

// post makes one push request and returns the status and Retry-After.
func (w *WebPush) post(ctx context.Context, s *pushSub, target *url.URL, plain []byte) (int, time.Duration, error) {
	payload := plain
	encrypted := s.Keys != nil
	if encrypted {
		pub, err1 := decodeB64URL(s.Keys.P256DH)
		auth, err2 := decodeB64URL(s.Keys.Auth)
		if err := errors.Join(err1, err2); err != nil {
			return 0, 0, err
		}
		var err error
		if payload, err = encryptPush(plain, pub, auth); err != nil {
			return 0, 0, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, pushTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), bytes.NewReader(payload))
	if err != nil {
		return 0, 0, err
	}
	// RFC 8620 §7.2: application/json with a TTL (RFC 8030 §5.2); the
	// encryption is a content coding on top (RFC 8291 §4).
	req.Header.Set("Content-Type", "application/json")
	if encrypted {
		req.Header.Set("Content-Encoding", "aes128gcm")
	}
	req.Header.Set("TTL", strconv.Itoa(int(pushTTL/time.Second)))
	req.Header.Set("Urgency", "normal")
	auth, err := w.vapidAuth(target)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", auth)
	resp, err := w.opt.Client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	var retryAfter time.Duration
	if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n > 0 {
		retryAfter = min(time.Duration(n)*time.Second, maxRetryWait)
	}
	return resp.StatusCode, retryAfter, nil
}
