package push

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// PushSubscriptions are kept as meta records, one per subscription under
// "pushsub/<principal>/<id>", not as records of an account: RFC 8620 §7.2
// ties them to the user's credentials, not to any account, and gives them
// no state and no /changes, so a change log and a type state (which
// StateChange would then report) would only get in the way. The owner
// prefix makes /get a prefix scan and an id of someone else's
// subscription a plain miss.
const subPrefix = "pushsub/"

func subKey(who store.PrincipalID, id string) string {
	return subPrefix + string(who) + "/" + id
}

// Subscription limits.
const (
	// maxSubExpiry is the longest a subscription lives without being
	// renewed; RFC 8620 §7.2 asks for at least 48 hours and suggests 7
	// days.
	maxSubExpiry = 7 * 24 * time.Hour
	// maxSubsPerUser bounds the subscriptions one user may hold.
	maxSubsPerUser = 50
)

// pushSub is a stored PushSubscription.
type pushSub struct {
	ID             string            `json:"id"`
	Principal      store.PrincipalID `json:"principal"`
	DeviceClientID string            `json:"deviceClientId"`
	URL            string            `json:"url"`
	Keys           *subKeys          `json:"keys,omitempty"`
	// Code is the verification code pushed at creation; Verified is set
	// once the client has given it back.
	Code     string    `json:"code"`
	Verified bool      `json:"verified"`
	Expires  time.Time `json:"expires"`
	Types    []string  `json:"types"`
	// Credential is the credential of the request that created it (a
	// jmap.Caller's): RFC 8620 §7.2 ties the subscription to it.
	Credential string `json:"credential,omitempty"`
}

// heldBy reports whether a caller with credential cred sees s: "only
// subscriptions created by these credentials are returned" (RFC 8620
// §7.2). Subscriptions or callers whose credential is unknown match any.
func (s *pushSub) heldBy(cred string) bool {
	return s.Credential == "" || cred == "" || s.Credential == cred
}

// subKeys are the client's Web Push keys (RFC 8291), base64url as given.
type subKeys struct {
	P256DH string `json:"p256dh"`
	Auth   string `json:"auth"`
}

// wire returns the properties /get may show (never url or keys, RFC
// 8620 §7.2.1).
func (s *pushSub) wire() map[string]any {
	m := map[string]any{"id": s.ID, "deviceClientId": s.DeviceClientID, "expires": utcDate(s.Expires), "types": s.Types}
	if s.Verified {
		m["verificationCode"] = s.Code
	} else {
		m["verificationCode"] = nil
	}
	return m
}

func utcDate(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// decodeB64URL reads base64url with or without padding.
func decodeB64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// checkKeys validates keys: an uncompressed P-256 point of 65 octets and
// a 16-octet auth secret (RFC 8291 §2, §3.2).
func checkKeys(k *subKeys) bool {
	pub, err := decodeB64URL(k.P256DH)
	if err != nil || len(pub) != 65 || pub[0] != 4 {
		return false
	}
	if _, err := ecdh.P256().NewPublicKey(pub); err != nil {
		return false
	}
	auth, err := decodeB64URL(k.Auth)
	return err == nil && len(auth) == 16
}

// subProps are the properties of a PushSubscription.
var subProps = []string{"id", "deviceClientId", "url", "keys", "verificationCode", "expires", "types"}

// registerMethods adds PushSubscription/get and /set to r (RFC 8620
// §7.2.1, §7.2.2).
func (w *WebPush) registerMethods(r *jmap.Registry) {
	r.Handle("PushSubscription/get", jmap.CapCore, w.subGet)
	r.Handle("PushSubscription/set", jmap.CapCore, w.subSet)
}

// loadSubs returns the caller's subscriptions, by id: those of the
// principal made with the caller's credential.
func loadSubs(tx store.Tx, caller *jmap.Caller) (map[string]*pushSub, error) {
	out := map[string]*pushSub{}
	for m, err := range tx.ScanMeta(subPrefix + string(caller.Principal) + "/") {
		if err != nil {
			return nil, err
		}
		var s pushSub
		if err := json.Unmarshal(m.Value, &s); err != nil {
			return nil, fmt.Errorf("push subscription %s: %w", m.Key, err)
		}
		if s.heldBy(caller.Credential) {
			out[s.ID] = &s
		}
	}
	return out, nil
}

func (w *WebPush) subGet(ctx context.Context, c *jmap.Call) (any, error) {
	var args struct {
		IDs        *[]string `json:"ids"`
		Properties *[]string `json:"properties"`
	}
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	props := []string{"id", "deviceClientId", "verificationCode", "expires", "types"}
	if args.Properties != nil {
		for _, p := range *args.Properties {
			if p == "url" || p == "keys" {
				// RFC 8620 §7.2.1: these are never returned.
				return nil, jmap.NewMethodError(jmap.ErrForbidden, "url and keys are not returned")
			}
			if !slices.Contains(subProps, p) {
				return nil, jmap.InvalidArguments("unknown property %q", p)
			}
		}
		props = append([]string{"id"}, *args.Properties...)
	}
	if args.IDs != nil && len(*args.IDs) > c.Limits().MaxObjectsInGet {
		return nil, jmap.NewMethodError(jmap.ErrRequestTooLarge, "")
	}
	var subs map[string]*pushSub
	err := c.Store().View(ctx, func(tx store.Tx) error {
		var err error
		subs, err = loadSubs(tx, c.Caller)
		return err
	})
	if err != nil {
		return nil, err
	}
	now := w.now()
	for id, s := range subs {
		if !now.Before(s.Expires) {
			delete(subs, id) // expired: as good as gone
		}
	}
	list := []map[string]any{}
	notFound := []string{}
	pick := func(s *pushSub) { list = append(list, jmap.Pick(s.wire(), props)) }
	if args.IDs == nil {
		ids := make([]string, 0, len(subs))
		for id := range subs {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			pick(subs[id])
		}
	} else {
		for _, id := range *args.IDs {
			if id, ok := c.ResolveID(id); ok && subs[id] != nil {
				pick(subs[id])
				continue
			}
			notFound = append(notFound, id)
		}
	}
	// No accountId and no state (RFC 8620 §7.2.1).
	return map[string]any{"list": list, "notFound": notFound}, nil
}

// subSetResponse is /set's answer without accountId and states (RFC 8620
// §7.2.2).
type subSetResponse struct {
	Created      map[string]map[string]any `json:"created"`
	Updated      map[string]map[string]any `json:"updated"`
	Destroyed    []string                  `json:"destroyed"`
	NotCreated   map[string]*jmap.SetError `json:"notCreated"`
	NotUpdated   map[string]*jmap.SetError `json:"notUpdated"`
	NotDestroyed map[string]*jmap.SetError `json:"notDestroyed"`
}

func (w *WebPush) subSet(ctx context.Context, c *jmap.Call) (any, error) {
	var args struct {
		Create  map[string]json.RawMessage `json:"create"`
		Update  map[string]json.RawMessage `json:"update"`
		Destroy []string                   `json:"destroy"`
	}
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	if len(args.Create)+len(args.Update)+len(args.Destroy) > c.Limits().MaxObjectsInSet {
		return nil, jmap.NewMethodError(jmap.ErrRequestTooLarge, "")
	}
	who := c.Caller.Principal
	now := w.now()
	var res subSetResponse
	var created, changed []*pushSub
	var removed []string
	_, err := c.Store().Update(ctx, func(tx store.Tx) error {
		res = subSetResponse{Created: map[string]map[string]any{}, Updated: map[string]map[string]any{},
			NotCreated: map[string]*jmap.SetError{}, NotUpdated: map[string]*jmap.SetError{}, NotDestroyed: map[string]*jmap.SetError{}}
		created, changed, removed = nil, nil, nil
		subs, err := loadSubs(tx, c.Caller)
		if err != nil {
			return err
		}
		// Expired subscriptions go now (RFC 8620 §7.2 allows it), so they
		// neither count against the limit nor linger unverified.
		for id, s := range subs {
			if !now.Before(s.Expires) {
				if err := tx.DeleteMeta(subKey(who, id)); err != nil {
					return err
				}
				delete(subs, id)
				removed = append(removed, id)
			}
		}
		cids := make([]string, 0, len(args.Create))
		for cid := range args.Create {
			cids = append(cids, cid)
		}
		slices.Sort(cids)
		for _, cid := range cids {
			s, serr := w.newSub(args.Create[cid], who, now)
			if serr == nil && len(subs) >= maxSubsPerUser {
				serr = jmap.NewSetError(jmap.SetForbidden, "too many push subscriptions")
			}
			if serr == nil && !w.allowCreate(who, now) {
				serr = jmap.NewSetError(jmap.SetRateLimit, "too many push subscriptions created lately")
			}
			if serr != nil {
				res.NotCreated[cid] = serr
				continue
			}
			if s.ID, err = tx.NewID(); err != nil {
				return err
			}
			s.Credential = c.Caller.Credential
			if err := putSub(tx, s); err != nil {
				return err
			}
			subs[s.ID] = s
			created = append(created, s)
			res.Created[cid] = map[string]any{"id": s.ID, "keys": nil, "expires": utcDate(s.Expires)}
			if s.Keys != nil {
				delete(res.Created[cid], "keys")
			}
			c.Created(cid, s.ID)
		}
		for id, patch := range args.Update {
			rid, _ := c.ResolveID(id)
			s := subs[rid]
			if s == nil {
				res.NotUpdated[id] = jmap.NewSetError(jmap.SetNotFound, "")
				continue
			}
			next, back, serr := updateSub(s, patch, now)
			if serr != nil {
				res.NotUpdated[id] = serr
				continue
			}
			if err := putSub(tx, next); err != nil {
				return err
			}
			subs[rid] = next
			changed = append(changed, next)
			res.Updated[id] = back
		}
		for _, id := range args.Destroy {
			rid, _ := c.ResolveID(id)
			if subs[rid] == nil {
				res.NotDestroyed[id] = jmap.NewSetError(jmap.SetNotFound, "")
				continue
			}
			if err := tx.DeleteMeta(subKey(who, rid)); err != nil {
				return err
			}
			delete(subs, rid)
			removed = append(removed, rid)
			res.Destroyed = append(res.Destroyed, id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Delivery follows the committed records.
	for _, id := range removed {
		w.stop(id)
	}
	for _, s := range changed {
		w.follow(s)
	}
	for _, s := range created {
		w.verify(s)
	}
	normalise(&res)
	return &res, nil
}

func normalise(r *subSetResponse) {
	// RFC 8620 §5.3: each of these is null when empty.
	if len(r.Created) == 0 {
		r.Created = nil
	}
	if len(r.Updated) == 0 {
		r.Updated = nil
	}
	if len(r.NotCreated) == 0 {
		r.NotCreated = nil
	}
	if len(r.NotUpdated) == 0 {
		r.NotUpdated = nil
	}
	if len(r.NotDestroyed) == 0 {
		r.NotDestroyed = nil
	}
}

func putSub(tx store.Tx, s *pushSub) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return tx.PutMeta(subKey(s.Principal, s.ID), b)
}

// decodeObject reads a JSON object into its members, refusing anything
// else.
func decodeObject(raw json.RawMessage) (map[string]json.RawMessage, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// newSub checks a create and returns the subscription it makes.
func (w *WebPush) newSub(raw json.RawMessage, who store.PrincipalID, now time.Time) (*pushSub, *jmap.SetError) {
	m, ok := decodeObject(raw)
	if !ok {
		return nil, jmap.InvalidProperties("a PushSubscription is an object")
	}
	var bad []string
	s := &pushSub{Principal: who}
	for k, v := range m {
		switch k {
		case "deviceClientId":
			if json.Unmarshal(v, &s.DeviceClientID) != nil || s.DeviceClientID == "" || len(s.DeviceClientID) > 255 {
				bad = append(bad, k)
			}
		case "url":
			if json.Unmarshal(v, &s.URL) != nil || !w.validURL(s.URL) {
				bad = append(bad, k)
			}
		case "keys":
			if isNull(v) {
				continue
			}
			var keys subKeys
			km, ok := decodeObject(v)
			if !ok || len(km) != 2 || json.Unmarshal(km["p256dh"], &keys.P256DH) != nil ||
				json.Unmarshal(km["auth"], &keys.Auth) != nil || !checkKeys(&keys) {
				bad = append(bad, k)
				continue
			}
			s.Keys = &keys
		case "verificationCode":
			// RFC 8620 §7.2: null or omitted at creation.
			if !isNull(v) {
				bad = append(bad, k)
			}
		case "expires":
			if isNull(v) {
				continue
			}
			t, ok := parseUTCDate(v)
			if !ok || !t.After(now) {
				bad = append(bad, k)
				continue
			}
			s.Expires = t
		case "types":
			if !decodeTypes(v, &s.Types) {
				bad = append(bad, k)
			}
		default:
			// id is server-set; anything else is unknown.
			bad = append(bad, k)
		}
	}
	for _, req := range []string{"deviceClientId", "url"} {
		if _, ok := m[req]; !ok {
			bad = append(bad, req)
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return nil, jmap.InvalidProperties("", slices.Compact(bad)...)
	}
	s.Expires = clampExpiry(s.Expires, now)
	var code [16]byte
	_, _ = rand.Read(code[:])
	s.Code = hex.EncodeToString(code[:])
	return s, nil
}

// updateSub applies a patch: only verificationCode, expires and types may
// change (RFC 8620 §7.2.2). It returns the new record and the properties
// the server changed from what the client asked.
func updateSub(old *pushSub, raw json.RawMessage, now time.Time) (*pushSub, map[string]any, *jmap.SetError) {
	m, ok := decodeObject(raw)
	if !ok {
		return nil, nil, jmap.NewSetError(jmap.SetInvalidPatch, "a patch is an object")
	}
	s := *old
	s.Types = slices.Clone(old.Types)
	var back map[string]any
	var bad []string
	for k, v := range m {
		switch k {
		case "verificationCode":
			var code string
			// RFC 8620 §7.2.2: a wrong code is invalidProperties.
			if json.Unmarshal(v, &code) != nil || code != old.Code {
				bad = append(bad, k)
				continue
			}
			s.Verified = true
		case "expires":
			var t time.Time
			if !isNull(v) {
				var ok bool
				if t, ok = parseUTCDate(v); !ok || !t.After(now) {
					bad = append(bad, k)
					continue
				}
			}
			s.Expires = clampExpiry(t, now)
			if !s.Expires.Equal(t) {
				back = map[string]any{"expires": utcDate(s.Expires)}
			}
		case "types":
			if !decodeTypes(v, &s.Types) {
				bad = append(bad, k)
			}
		default:
			// id, deviceClientId, url and keys are immutable.
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return nil, nil, jmap.InvalidProperties("", bad...)
	}
	return &s, back, nil
}

// clampExpiry bounds an expiry (zero: none asked) to maxSubExpiry from
// now, in whole seconds as UTCDate shows it.
func clampExpiry(t, now time.Time) time.Time {
	limit := now.Add(maxSubExpiry).Truncate(time.Second)
	if t.IsZero() || t.After(limit) {
		return limit.UTC()
	}
	return t.UTC()
}

// parseUTCDate reads a UTCDate (RFC 8620 §1.4): RFC 3339 with "Z".
func parseUTCDate(raw json.RawMessage) (time.Time, bool) {
	var s string
	if json.Unmarshal(raw, &s) != nil || !strings.HasSuffix(s, "Z") {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// decodeTypes reads null or a list of type names.
func decodeTypes(raw json.RawMessage, out *[]string) bool {
	if isNull(raw) {
		*out = nil
		return true
	}
	var ts []string
	if json.Unmarshal(raw, &ts) != nil || ts == nil {
		return false
	}
	for _, t := range ts {
		if !validTypeName(t) {
			return false
		}
	}
	*out = ts
	return true
}

// validURL reports whether a push URL may be used: absolute https (or
// http when allowed), with a host and no credentials (RFC 8620 §7.2).
func (w *WebPush) validURL(s string) bool {
	if len(s) > 2048 {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return false
	}
	return u.Scheme == "https" || (u.Scheme == "http" && w.opt.AllowHTTP)
}

var errGone = errors.New("push: subscription gone")
