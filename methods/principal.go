package methods

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
	// The IANA time zone database, so that timeZone (RFC 9670 §2) can be
	// checked on hosts without a zoneinfo directory.
	_ "time/tzdata"
	"unicode"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/jmapd/jmapd/internal/acl"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// Capability URNs of RFC 9670 §1.5.
const (
	// CapPrincipals is the Principal and ShareNotification capability.
	CapPrincipals = "urn:ietf:params:jmap:principals"
	// CapPrincipalsOwner is the account capability naming the principal
	// that owns an account; it is never a session capability.
	CapPrincipalsOwner = "urn:ietf:params:jmap:principals:owner"
)

// Limits on what a user may write into their own Principal.
const (
	maxPrincipalName        = 255
	maxPrincipalDescription = 1024
)

// principalProps are the properties of a Principal (RFC 9670 §2).
var principalProps = []string{"id", "type", "name", "description", "email", "timeZone", "capabilities", "accounts"}

// principalCapability is the account capability object of CapPrincipals
// (RFC 9670 §1.5.1).
type principalCapability struct {
	CurrentUserPrincipalID *string `json:"currentUserPrincipalId"`
}

// principalOwnerCapability is the account capability object of
// CapPrincipalsOwner (RFC 9670 §1.5.2).
type principalOwnerCapability struct {
	AccountIDForPrincipal string `json:"accountIdForPrincipal"`
	PrincipalID           string `json:"principalId"`
}

// principalQuery carries the filter and sorts of Principal/query; only
// Filter and Sort are used.
var principalQuery = &jmap.Type{
	Name:       "Principal",
	Capability: CapPrincipals,
	Filter:     principalFilter,
	Sort: map[string]func(a, b map[string]any, coll string) int{
		"name": func(a, b map[string]any, coll string) int {
			r, _ := jmap.CompareStrings(coll, str(a["name"]), str(b["name"]))
			return r
		},
		"email": func(a, b map[string]any, coll string) int {
			r, _ := jmap.CompareStrings(coll, str(a["email"]), str(b["email"]))
			return r
		},
	},
}

// registerPrincipal adds the principals capabilities, the Principal/*
// methods (RFC 9670 §2) and the ShareNotification/* ones (§3). Principals are served in each user's own
// account, the account that holds the Principal data as that user sees it.
func registerPrincipal(r *jmap.Registry, accts *Accounts) {
	r.AddCapability(CapPrincipals, struct{}{})
	accts.AddCapabilityFor(CapPrincipals, func(i AccountInfo) (any, bool) {
		if !i.Owner {
			return nil, false
		}
		id := string(i.Caller)
		return principalCapability{CurrentUserPrincipalID: &id}, true
	})
	accts.AddCapabilityFor(CapPrincipalsOwner, func(i AccountInfo) (any, bool) {
		// A user's own account id equals their principal id, and so does
		// every other account's id its owner's.
		return principalOwnerCapability{AccountIDForPrincipal: string(i.Caller), PrincipalID: string(i.ID)}, true
	})
	r.Handle("Principal/get", CapPrincipals, principalGet(accts))
	r.Handle("Principal/changes", CapPrincipals, principalChanges(accts))
	r.Handle("Principal/set", CapPrincipals, principalSet(accts))
	r.Handle("Principal/query", CapPrincipals, principalQueryHandler(accts))
	r.Handle("Principal/queryChanges", CapPrincipals, principalQueryChanges(accts))
	registerShareNotification(r)
}

// principalView is what decides which principals one caller sees and how:
// their own domain, the accounts they reach and who holds grants on their
// own account.
type principalView struct {
	who    store.PrincipalID
	domain string
	// reach maps every account the caller may use, their own included, to
	// its Account object as they see it.
	reach map[store.AccountID]*jmap.Account
	// extra marks principals visible for another reason: the caller's
	// groups and the grantees of their own account.
	extra map[store.PrincipalID]bool
	// digest sums everything above except the principal records, whose
	// changes the change log tracks: when it is unchanged, visibility
	// changed only with the records the log names.
	digest string
}

func domainOf(email string) string {
	i := strings.LastIndexByte(email, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(email[i+1:])
}

// provisionReachable provisions the accounts who reaches, so that their
// Account objects are those a call on them would see.
func (a *Accounts) provisionReachable(ctx context.Context, who store.PrincipalID) error {
	var reach []store.AccountID
	if err := a.st.View(ctx, func(tx store.Tx) error {
		var err error
		reach, err = a.dir.Reachable(tx, who)
		return err
	}); err != nil {
		return err
	}
	for _, acct := range reach {
		if err := a.provision(ctx, acct); err != nil {
			return err
		}
	}
	return nil
}

// principalView computes what who sees of the principals.
func (a *Accounts) principalView(tx store.Tx, who store.PrincipalID) (*principalView, error) {
	me, err := tx.Principals().Get(who)
	if err != nil {
		return nil, err
	}
	v := &principalView{who: who, domain: domainOf(me.Email), reach: map[store.AccountID]*jmap.Account{},
		extra: map[store.PrincipalID]bool{}}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", who, v.domain)
	ids, err := a.dir.Identities(tx, who)
	if err != nil {
		return nil, err
	}
	for _, g := range ids[1:] {
		v.extra[g] = true
	}
	if me.Account != "" {
		acct, err := a.account(tx, who, me.Account, ownerAccess(me.Account))
		if err != nil {
			return nil, err
		}
		v.reach[me.Account] = acct
		mboxes, err := mailboxIDs(tx, me.Account)
		if err != nil {
			return nil, err
		}
		for _, m := range append(mboxes, acl.WholeAccount) {
			gs, err := acl.OnMailbox(tx, me.Account, m)
			if err != nil {
				return nil, err
			}
			for _, g := range gs {
				if g.Rights.Any() {
					v.extra[g.Grantee] = true
				}
			}
		}
	}
	reach, err := a.dir.Reachable(tx, who)
	if err != nil {
		return nil, err
	}
	for _, id := range reach {
		access, err := a.dir.Access(tx, who, id)
		if err != nil {
			return nil, err
		}
		acct, err := a.account(tx, who, id, access)
		if err != nil {
			return nil, err
		}
		v.reach[id] = acct
	}
	extra := make([]string, 0, len(v.extra))
	for p := range v.extra {
		extra = append(extra, string(p))
	}
	slices.Sort(extra)
	fmt.Fprintf(h, "%s\x00", strings.Join(extra, ","))
	accts := make([]string, 0, len(v.reach))
	for id := range v.reach {
		accts = append(accts, string(id))
	}
	slices.Sort(accts)
	for _, id := range accts {
		// What the account is for the caller, without the values of its
		// capabilities, some of which move with the clock (the
		// FUTURERELEASE date of submission).
		a := v.reach[store.AccountID(id)]
		caps := make([]string, 0, len(a.Capabilities))
		for urn := range a.Capabilities {
			caps = append(caps, urn)
		}
		slices.Sort(caps)
		fmt.Fprintf(h, "%s\x00%s\x00%v\x00%v\x00%s\x00", id, a.Name, a.IsPersonal, a.IsReadOnly, strings.Join(caps, ","))
	}
	v.digest = hex.EncodeToString(h.Sum(nil)[:6])
	return v, nil
}

// visible reports whether the caller sees p: themselves, their domain's
// principals, their groups, the owners of accounts they reach and those
// they granted rights to. Principals of another domain are not listed
// unless something is shared (DESIGN.md).
func (v *principalView) visible(p *store.Principal) bool {
	switch {
	case p.ID == v.who, v.extra[p.ID]:
		return true
	case v.domain != "" && domainOf(p.Email) == v.domain:
		return true
	case p.Account != "":
		_, ok := v.reach[p.Account]
		return ok
	}
	return false
}

// state is the Principal state as the caller sees it: the position in the
// principals' change log and the digest of the rest.
func (v *principalView) state(log string) string { return log + "-" + v.digest }

// splitPrincipalState parses a state written by principalView.state.
func splitPrincipalState(s string) (log, digest string, ok bool) {
	i := strings.LastIndexByte(s, '-')
	if i <= 0 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

// object builds the Principal p as the caller sees it (RFC 9670 §2).
func (v *principalView) object(p *store.Principal) map[string]any {
	typ := string(store.Individual)
	switch p.Type {
	case store.Group, store.Resource, store.Location, store.Other:
		typ = string(p.Type)
	}
	obj := map[string]any{"id": string(p.ID), "type": typ, "name": p.Name, "description": nil,
		"email": nil, "timeZone": nil, "capabilities": map[string]any{}, "accounts": nil}
	if p.Description != "" {
		obj["description"] = p.Description
	}
	if p.Email != "" {
		obj["email"] = p.Email
	}
	if p.TimeZone != "" {
		obj["timeZone"] = p.TimeZone
	}
	// RFC 9670 §2: the accounts holding the principal's data that the
	// caller may access, or null when there are none.
	if p.Account != "" {
		if acct, ok := v.reach[p.Account]; ok {
			obj["accounts"] = map[string]*jmap.Account{string(p.Account): acct}
		}
	}
	return obj
}

// visibleObjects returns every principal the caller sees, in id order.
func (v *principalView) visibleObjects(ctx context.Context, tx store.Tx) ([]map[string]any, error) {
	var out []map[string]any
	n := 0
	for p, err := range tx.Principals().All() {
		if err != nil {
			return nil, err
		}
		if n++; n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if v.visible(p) {
			out = append(out, v.object(p))
		}
	}
	return out, nil
}

// principalCall checks the account of a Principal method (the caller's own,
// the only one with CapPrincipals) and provisions what the caller reaches.
func principalCall(ctx context.Context, c *jmap.Call, accts *Accounts, accountID string) (*jmap.Account, error) {
	acct, err := c.Account(ctx, accountID, CapPrincipals)
	if err != nil {
		return nil, err
	}
	if err := accts.provisionReachable(ctx, c.Caller.Principal); err != nil {
		return nil, err
	}
	return acct, nil
}

// principalLogState returns the state of the principals' change log.
func principalLogState(tx store.Tx) (string, error) {
	st, err := tx.State(store.SystemAccount, store.PrincipalRecords)
	if err != nil {
		return "", err
	}
	return jmap.FormatState(uint64(st)), nil
}

// principalGet is Principal/get (RFC 9670 §2.1): a standard /get over the
// principals the caller sees.
func principalGet(accts *Accounts) jmap.Handler {
	return func(ctx context.Context, c *jmap.Call) (any, error) {
		var args jmap.GetArgs
		if err := c.Decode(&args); err != nil {
			return nil, err
		}
		props := principalProps
		if args.Properties != nil {
			props = []string{"id"}
			for _, p := range *args.Properties {
				if !slices.Contains(principalProps, p) {
					return nil, jmap.InvalidArguments("unknown property %q", p)
				}
				if p != "id" {
					props = append(props, p)
				}
			}
		}
		if args.IDs != nil && len(*args.IDs) > c.Limits().MaxObjectsInGet {
			return nil, jmap.NewMethodError(jmap.ErrRequestTooLarge, fmt.Sprintf("at most %d ids", c.Limits().MaxObjectsInGet))
		}
		if _, err := principalCall(ctx, c, accts, args.AccountID); err != nil {
			return nil, err
		}
		resp := &jmap.GetResponse{AccountID: args.AccountID, List: []json.RawMessage{}, NotFound: []string{}}
		err := c.Store().View(ctx, func(tx store.Tx) error {
			v, err := accts.principalView(tx, c.Caller.Principal)
			if err != nil {
				return err
			}
			log, err := principalLogState(tx)
			if err != nil {
				return err
			}
			resp.State = v.state(log)
			emit := func(obj map[string]any) error {
				b, err := json.Marshal(jmap.Pick(obj, props))
				if err != nil {
					return err
				}
				resp.List = append(resp.List, b)
				return nil
			}
			if args.IDs == nil {
				all, err := v.visibleObjects(ctx, tx)
				if err != nil {
					return err
				}
				if len(all) > c.Limits().MaxObjectsInGet {
					return jmap.NewMethodError(jmap.ErrRequestTooLarge, "too many records to return them all; give ids")
				}
				for _, obj := range all {
					if err := emit(obj); err != nil {
						return err
					}
				}
				return nil
			}
			seen := map[string]bool{}
			for _, raw := range *args.IDs {
				if seen[raw] {
					continue
				}
				seen[raw] = true
				id, _ := c.ResolveID(raw)
				p, err := tx.Principals().Get(store.PrincipalID(id))
				if errors.Is(err, store.ErrNotFound) || (err == nil && !v.visible(p)) {
					// One the caller may not see answers as one that does
					// not exist.
					resp.NotFound = append(resp.NotFound, raw)
					continue
				}
				if err != nil {
					return err
				}
				if err := emit(v.object(p)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		return resp, nil
	}
}

// principalChangeSet reads the principals' change log after since for the
// caller and keeps only what they see. It answers cannotCalculateChanges
// when what decides visibility changed other than through the records
// (a grant, a group, an account's rights), or when a principal was
// destroyed, since whether the caller saw it can no longer be told and
// its id must not leak.
func principalChangeSet(tx store.Tx, v *principalView, since string, max int) (*jmap.ChangeSet, error) {
	log, digest, ok := splitPrincipalState(since)
	if !ok {
		return nil, jmap.NewMethodError(jmap.ErrCannotCalculateChanges, "unknown state")
	}
	if digest != v.digest {
		return nil, jmap.NewMethodError(jmap.ErrCannotCalculateChanges, "what you may see changed")
	}
	set, err := jmap.ReadChanges(tx, store.SystemAccount, store.PrincipalRecords, log, max)
	if err != nil {
		return nil, err
	}
	if len(set.Destroyed) > 0 {
		return nil, jmap.NewMethodError(jmap.ErrCannotCalculateChanges, "principals were removed")
	}
	keep := func(ids []string) ([]string, error) {
		out := ids[:0]
		for _, id := range ids {
			p, err := tx.Principals().Get(store.PrincipalID(id))
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if v.visible(p) {
				out = append(out, id)
			}
		}
		return out, nil
	}
	if set.Created, err = keep(set.Created); err != nil {
		return nil, err
	}
	if set.Updated, err = keep(set.Updated); err != nil {
		return nil, err
	}
	set.NewState = v.state(set.NewState)
	return set, nil
}

// principalChanges is Principal/changes (RFC 9670 §2.2).
func principalChanges(accts *Accounts) jmap.Handler {
	return func(ctx context.Context, c *jmap.Call) (any, error) {
		var args jmap.ChangesArgs
		if err := c.Decode(&args); err != nil {
			return nil, err
		}
		if args.SinceState == "" {
			return nil, jmap.InvalidArguments("sinceState is required")
		}
		if args.MaxChanges != nil && *args.MaxChanges <= 0 {
			return nil, jmap.InvalidArguments("maxChanges must be a positive integer")
		}
		if _, err := principalCall(ctx, c, accts, args.AccountID); err != nil {
			return nil, err
		}
		max := 0
		if args.MaxChanges != nil {
			max = *args.MaxChanges
		}
		var resp *jmap.ChangesResponse
		err := c.Store().View(ctx, func(tx store.Tx) error {
			v, err := accts.principalView(tx, c.Caller.Principal)
			if err != nil {
				return err
			}
			set, err := principalChangeSet(tx, v, args.SinceState, max)
			if err != nil {
				return err
			}
			resp = &jmap.ChangesResponse{AccountID: args.AccountID, OldState: args.SinceState, NewState: set.NewState,
				HasMoreChanges: set.More, Created: set.Created, Updated: set.Updated, Destroyed: set.Destroyed}
			return nil
		})
		if err != nil {
			return nil, err
		}
		return resp, nil
	}
}

// principalFilter compiles a FilterCondition of RFC 9670 §2.4.1. Text
// conditions are case-insensitive substring matches.
func principalFilter(cond map[string]any) (func(map[string]any) bool, error) {
	var tests []func(map[string]any) bool
	contains := func(k string, v any, props ...string) error {
		s, ok := v.(string)
		if !ok {
			return jmap.NewMethodError(jmap.ErrUnsupportedFilter, fmt.Sprintf("%s must be a string", k))
		}
		s = strings.ToLower(s)
		tests = append(tests, func(o map[string]any) bool {
			for _, p := range props {
				if strings.Contains(strings.ToLower(str(o[p])), s) {
					return true
				}
			}
			return false
		})
		return nil
	}
	for k, v := range cond {
		var err error
		switch k {
		case "email", "name":
			err = contains(k, v, k)
		case "text":
			err = contains(k, v, "name", "email", "description")
		case "type", "timeZone":
			s, ok := v.(string)
			if !ok {
				return nil, jmap.NewMethodError(jmap.ErrUnsupportedFilter, fmt.Sprintf("%s must be a string", k))
			}
			tests = append(tests, func(o map[string]any) bool { return o[k] == s })
		case "accountIds":
			list, ok := v.([]any)
			if !ok {
				return nil, jmap.NewMethodError(jmap.ErrUnsupportedFilter, "accountIds must be an array of ids")
			}
			want := make([]string, len(list))
			for i, x := range list {
				s, ok := x.(string)
				if !ok {
					return nil, jmap.NewMethodError(jmap.ErrUnsupportedFilter, "accountIds must be an array of ids")
				}
				want[i] = s
			}
			tests = append(tests, func(o map[string]any) bool {
				m, _ := o["accounts"].(map[string]*jmap.Account)
				for _, id := range want {
					if _, ok := m[id]; ok {
						return true
					}
				}
				return false
			})
		default:
			return nil, jmap.NewMethodError(jmap.ErrUnsupportedFilter, fmt.Sprintf("unknown condition %q", k))
		}
		if err != nil {
			return nil, err
		}
	}
	return jmap.AllOf(tests), nil
}

// principalMatcher checks the account of a Principal/query or
// /queryChanges and compiles its filter and sort; the function it returns
// gives the ids of the principals the view shows that match, in order.
func principalMatcher(ctx context.Context, c *jmap.Call, accts *Accounts, acct string, filter json.RawMessage, sorts []jmap.Comparator) (func(store.Tx, *principalView) ([]string, error), error) {
	if _, err := principalCall(ctx, c, accts, acct); err != nil {
		return nil, err
	}
	f, err := jmap.CompileFilter(filter, principalQuery.Filter)
	if err != nil {
		return nil, err
	}
	cmp, err := principalQuery.Sorter(sorts)
	if err != nil {
		return nil, err
	}
	return func(tx store.Tx, v *principalView) ([]string, error) {
		return principalResults(ctx, tx, v, f, cmp)
	}, nil
}

// principalResults returns the ids of the visible principals matching the
// filter, sorted.
func principalResults(ctx context.Context, tx store.Tx, v *principalView, f jmap.Filter, cmp func(a, b map[string]any) int) ([]string, error) {
	all, err := v.visibleObjects(ctx, tx)
	if err != nil {
		return nil, err
	}
	return jmap.SortedIDs(all, f, cmp), nil
}

// principalQueryHandler is Principal/query (RFC 9670 §2.4), sortable by
// name and email.
func principalQueryHandler(accts *Accounts) jmap.Handler {
	return func(ctx context.Context, c *jmap.Call) (any, error) {
		var args jmap.QueryArgs
		if err := c.Decode(&args); err != nil {
			return nil, err
		}
		if args.Limit != nil && *args.Limit < 0 {
			return nil, jmap.InvalidArguments("limit must not be negative")
		}
		match, err := principalMatcher(ctx, c, accts, args.AccountID, args.Filter, args.Sort)
		if err != nil {
			return nil, err
		}
		var resp *jmap.QueryResponse
		err = c.Store().View(ctx, func(tx store.Tx) error {
			v, err := accts.principalView(tx, c.Caller.Principal)
			if err != nil {
				return err
			}
			log, err := principalLogState(tx)
			if err != nil {
				return err
			}
			ids, err := match(tx, v)
			if err != nil {
				return err
			}
			resp = &jmap.QueryResponse{AccountID: args.AccountID, QueryState: v.state(log), CanCalculateChanges: true}
			if resp.IDs, resp.Position, err = jmap.Window(ids, &args); err != nil {
				return err
			}
			if args.CalculateTotal {
				n := len(ids)
				resp.Total = &n
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		return resp, nil
	}
}

// principalQueryChanges is Principal/queryChanges (RFC 9670 §2.5): the
// results depend only on each principal's own properties once the view's
// digest is unchanged, so the change log answers it.
func principalQueryChanges(accts *Accounts) jmap.Handler {
	return func(ctx context.Context, c *jmap.Call) (any, error) {
		var args jmap.QueryChangesArgs
		if err := c.Decode(&args); err != nil {
			return nil, err
		}
		if err := jmap.CheckQueryChangesArgs(&args); err != nil {
			return nil, err
		}
		match, err := principalMatcher(ctx, c, accts, args.AccountID, args.Filter, args.Sort)
		if err != nil {
			return nil, err
		}
		var resp *jmap.QueryChangesResponse
		err = c.Store().View(ctx, func(tx store.Tx) error {
			v, err := accts.principalView(tx, c.Caller.Principal)
			if err != nil {
				return err
			}
			set, err := principalChangeSet(tx, v, args.SinceQueryState, 0)
			if err != nil {
				return err
			}
			ids, err := match(tx, v)
			if err != nil {
				return err
			}
			removed, added, err := jmap.QueryChangesFromLog(set, ids, args.MaxChanges)
			if err != nil {
				return err
			}
			resp = &jmap.QueryChangesResponse{AccountID: args.AccountID, OldQueryState: args.SinceQueryState,
				NewQueryState: set.NewState, Removed: removed, Added: added}
			if args.CalculateTotal {
				n := len(ids)
				resp.Total = &n
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		return resp, nil
	}
}

// principalSet is Principal/set (RFC 9670 §2.3): a user may update the
// name, description and timeZone of their own Principal; everything else
// is refused with forbidden.
func principalSet(accts *Accounts) jmap.Handler {
	return func(ctx context.Context, c *jmap.Call) (any, error) {
		var args jmap.SetArgs
		if err := c.Decode(&args); err != nil {
			return nil, err
		}
		if err := args.CheckSize(c.Limits()); err != nil {
			return nil, err
		}
		if _, err := principalCall(ctx, c, accts, args.AccountID); err != nil {
			return nil, err
		}
		who := c.Caller.Principal
		var resp *jmap.SetResponse
		var digest string
		var audit []string
		changes, err := c.Store().Update(ctx, func(tx store.Tx) error {
			resp = &jmap.SetResponse{AccountID: args.AccountID, Updated: map[string]map[string]any{},
				NotCreated: map[string]*jmap.SetError{}, NotUpdated: map[string]*jmap.SetError{},
				NotDestroyed: map[string]*jmap.SetError{}}
			audit = nil
			v, err := accts.principalView(tx, who)
			if err != nil {
				return err
			}
			digest = v.digest
			log, err := principalLogState(tx)
			if err != nil {
				return err
			}
			resp.OldState = v.state(log)
			if args.IfInState != nil && *args.IfInState != resp.OldState {
				return jmap.NewMethodError(jmap.ErrStateMismatch, "")
			}
			for _, cid := range args.Create.Keys {
				resp.NotCreated[cid] = forbidden("principals are managed by the administrator")
			}
			for raw, patchRaw := range args.Update {
				id, _ := c.ResolveID(raw)
				p, err := tx.Principals().Get(store.PrincipalID(id))
				if errors.Is(err, store.ErrNotFound) || (err == nil && !v.visible(p)) {
					resp.NotUpdated[raw] = jmap.NewSetError(jmap.SetNotFound, "")
					continue
				}
				if err != nil {
					return err
				}
				var patch map[string]any
				if err := json.Unmarshal(patchRaw, &patch); err != nil || patch == nil {
					resp.NotUpdated[raw] = jmap.NewSetError(jmap.SetInvalidPatch, "the patch is not a JSON object")
					continue
				}
				changed, serr, err := updatePrincipal(tx, v, p, patch)
				if err != nil {
					return err
				}
				if serr != nil {
					resp.NotUpdated[raw] = serr
					continue
				}
				resp.Updated[id] = nil
				audit = append(audit, changed...)
			}
			if args.Destroy != nil {
				for _, raw := range *args.Destroy {
					id, _ := c.ResolveID(raw)
					p, err := tx.Principals().Get(store.PrincipalID(id))
					if errors.Is(err, store.ErrNotFound) || (err == nil && !v.visible(p)) {
						resp.NotDestroyed[raw] = jmap.NewSetError(jmap.SetNotFound, "")
						continue
					}
					if err != nil {
						return err
					}
					resp.NotDestroyed[raw] = forbidden("principals are managed by the administrator")
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(audit) > 0 {
			// RFC 9670 §6.1: changes a user makes to their own Principal
			// are kept in the log as an audit trail.
			zerolog.Ctx(ctx).Info().Str("method", "Principal/set").Str("user", string(who)).
				Strs("properties", audit).Msg("principal updated by its user")
		}
		old, _, _ := splitPrincipalState(resp.OldState)
		resp.NewState = jmap.NewState(changes, store.SystemAccount, store.PrincipalRecords, old) + "-" + digest
		resp.Normalise()
		return resp, nil
	}
}

// updatePrincipal applies a patch to p, which the caller sees, and
// returns the properties it changed. Only the caller's own name,
// description and timeZone may change (RFC 9670 §2.3).
func updatePrincipal(tx store.Tx, v *principalView, p *store.Principal, patch map[string]any) ([]string, *jmap.SetError, error) {
	b, err := json.Marshal(v.object(p))
	if err != nil {
		return nil, nil, err
	}
	var before map[string]any
	if err := json.Unmarshal(b, &before); err != nil {
		return nil, nil, err
	}
	next, props, serr := jmap.ApplyPatch(before, patch)
	if serr != nil {
		return nil, serr, nil
	}
	var changed []string
	for _, k := range props {
		if !slices.Contains(principalProps, k) {
			return nil, jmap.InvalidProperties(fmt.Sprintf("unknown property %q", k), k), nil
		}
		if !reflect.DeepEqual(next[k], before[k]) {
			changed = append(changed, k)
		}
	}
	if p.ID != v.who {
		return nil, forbidden("you may change only your own principal"), nil
	}
	slices.Sort(changed)
	for _, k := range changed {
		switch k {
		case "id", "capabilities", "accounts":
			// RFC 8620 §5.3: server-set properties are invalidProperties.
			return nil, jmap.InvalidProperties(fmt.Sprintf("%q is set by the server", k), k), nil
		case "type", "email":
			return nil, forbidden(fmt.Sprintf("%q is managed by the administrator", k)), nil
		}
	}
	if len(changed) == 0 {
		return nil, nil, nil
	}
	np := *p
	for _, k := range changed {
		switch k {
		case "name":
			s, ok := next[k].(string)
			if !ok || !validPrincipalText(s, maxPrincipalName, false) {
				return nil, jmap.InvalidProperties(fmt.Sprintf("name must be 1 to %d octets of UTF-8 without control characters", maxPrincipalName), k), nil
			}
			np.Name = s
		case "description":
			switch d := next[k].(type) {
			case nil:
				np.Description = ""
			case string:
				if d != "" && !validPrincipalText(d, maxPrincipalDescription, true) {
					return nil, jmap.InvalidProperties(fmt.Sprintf("description must be at most %d octets of UTF-8 without control characters", maxPrincipalDescription), k), nil
				}
				np.Description = d
			default:
				return nil, jmap.InvalidProperties("description must be a string or null", k), nil
			}
		case "timeZone":
			switch z := next[k].(type) {
			case nil:
				np.TimeZone = ""
			case string:
				if z != "" && !validTimeZone(z) {
					return nil, jmap.InvalidProperties(fmt.Sprintf("%q is not a time zone of the IANA database", z), k), nil
				}
				np.TimeZone = z
			default:
				return nil, jmap.InvalidProperties("timeZone must be a string or null", k), nil
			}
		}
	}
	if err := tx.Principals().Update(&np); err != nil {
		return nil, nil, err
	}
	return changed, nil, nil
}

// validPrincipalText checks a name or description: valid UTF-8, not blank,
// at most max octets, without control characters (RFC 9670 §5 lets a
// server restrict them), line breaks and tabs allowed where multiline.
func validPrincipalText(s string, max int, multiline bool) bool {
	if strings.TrimSpace(s) == "" || len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) {
			return false
		}
	}
	return true
}

// validTimeZone reports whether z names a zone of the IANA Time Zone
// Database (RFC 9670 §2); Go's "Local" is not one.
func validTimeZone(z string) bool {
	if z == "Local" || len(z) > 64 {
		return false
	}
	_, err := time.LoadLocation(z)
	return err == nil
}

// SystemStates returns the Principal state as who sees it, under their own
// account, so that push reports principal changes there (RFC 9670 §7.3:
// Principal may be used in StateChange).
// It runs after commits, so it provisions nothing.
func (a *Accounts) SystemStates(ctx context.Context, who store.PrincipalID) (map[store.AccountID]map[string]string, error) {
	var out map[store.AccountID]map[string]string
	err := a.st.View(ctx, func(tx store.Tx) error {
		p, err := tx.Principals().Get(who)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if p.Account == "" {
			return nil
		}
		v, err := a.principalView(tx, who)
		if err != nil {
			return err
		}
		log, err := principalLogState(tx)
		if err != nil {
			return err
		}
		out = map[store.AccountID]map[string]string{p.Account: {store.PrincipalRecords: v.state(log)}}
		return nil
	})
	return out, err
}
