package methods_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/jmaptest"
	"github.com/jmapd/jmapd/store"
)

// Capabilities of RFC 9670 §1.5 and draft-ietf-jmap-mail-sharing §1.2.1.
const (
	capPrincipals      = "urn:ietf:params:jmap:principals"
	capPrincipalsOwner = "urn:ietf:params:jmap:principals:owner"
	capMailShare       = "urn:ietf:params:jmap:mail:share"
)

// sharingUsing is what the sharing tests declare: mail, sharing and
// principals.
var sharingUsing = []string{jmap.CapCore, capMail, capMailShare, capPrincipals}

// callUsing sends one method call declaring using and returns its first
// response.
func callUsing(t *testing.T, c *jmaptest.Client, using []string, name string, args map[string]any) jmaptest.Invocation {
	t.Helper()
	body, err := json.Marshal(map[string]any{"using": using, "methodCalls": []any{[]any{name, args, "0"}}})
	if err != nil {
		t.Fatal(err)
	}
	status, b := c.Post(t, string(body))
	if status != http.StatusOK {
		t.Fatalf("%s: status %d: %s", name, status, b)
	}
	var r jmaptest.Response
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v: %s", name, err, b)
	}
	if len(r.MethodResponses) == 0 {
		t.Fatalf("%s: no response: %s", name, b)
	}
	return r.MethodResponses[0]
}

// sharing sends one call with sharingUsing and returns its arguments,
// failing the test on an error.
func sharing(t *testing.T, c *jmaptest.Client, name string, args map[string]any) map[string]any {
	t.Helper()
	inv := callUsing(t, c, sharingUsing, name, args)
	if inv.Name != name {
		t.Fatalf("%s: got %s %v", name, inv.Name, inv.Args)
	}
	return inv.Args
}

// sharingError sends one call with sharingUsing and returns the method
// error type it answered.
func sharingError(t *testing.T, c *jmaptest.Client, name string, args map[string]any) string {
	t.Helper()
	inv := callUsing(t, c, sharingUsing, name, args)
	if inv.Name != "error" {
		t.Fatalf("%s: want an error, got %s %v", name, inv.Name, inv.Args)
	}
	s, _ := inv.Args["type"].(string)
	return s
}

// principalID returns the id of the principal with the address.
func principalID(t *testing.T, srv *jmaptest.Server, email string) string {
	t.Helper()
	var id string
	err := srv.Store().View(context.Background(), func(tx store.Tx) error {
		p, err := tx.Principals().ByEmail(email)
		if err == nil {
			id = string(p.ID)
		}
		return err
	})
	if err != nil {
		t.Fatalf("principal %s: %v", email, err)
	}
	return id
}

// principals returns Principal/get of ids (nil: all) as the client sees
// them, by id, and the notFound list.
func principals(t *testing.T, c *jmaptest.Client, ids []string) (map[string]map[string]any, []string) {
	t.Helper()
	args := map[string]any{"accountId": c.Account, "ids": nil}
	if ids != nil {
		args["ids"] = ids
	}
	res := sharing(t, c, "Principal/get", args)
	out := map[string]map[string]any{}
	list, _ := res["list"].([]any)
	for _, x := range list {
		p, _ := x.(map[string]any)
		out[str(p["id"])] = p
	}
	return out, strs(res["notFound"])
}

// visiblePrincipals returns the ids Principal/get with ids null lists.
func visiblePrincipals(t *testing.T, c *jmaptest.Client) []string {
	t.Helper()
	all, _ := principals(t, c, nil)
	ids := make([]string, 0, len(all))
	for id := range all {
		ids = append(ids, id)
	}
	return ids
}

// principalState returns the Principal state the client sees.
func principalState(t *testing.T, c *jmaptest.Client) string {
	t.Helper()
	return str(sharing(t, c, "Principal/get", map[string]any{"accountId": c.Account, "ids": []string{}})["state"])
}

// rightsOf returns a MailboxRights object with the named rights true and
// the rest false.
func rightsOf(names ...string) map[string]any {
	m := map[string]any{}
	for _, r := range append(slices.Clone(mailboxRights), "mayShare") {
		m[r] = slices.Contains(names, r)
	}
	return m
}

// shareMailbox sets the shareWith of one of the owner's mailboxes.
func shareMailbox(t *testing.T, owner *jmaptest.Client, mailbox string, shareWith map[string]any) {
	t.Helper()
	var sw any
	if len(shareWith) > 0 {
		sw = shareWith
	}
	res := sharing(t, owner, "Mailbox/set", map[string]any{"accountId": owner.Account,
		"update": map[string]any{mailbox: map[string]any{"shareWith": sw}}})
	if res["notUpdated"] != nil {
		t.Fatalf("share %s: %v", mailbox, res["notUpdated"])
	}
}

// accountCaps returns the accountCapabilities of an account in the
// session, or nil when the session does not list it.
func accountCaps(t *testing.T, c *jmaptest.Client, acct string) map[string]any {
	t.Helper()
	a := c.Session(t).Accounts[acct]
	if a == nil {
		return nil
	}
	b, err := json.Marshal(a.Capabilities)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// sessionAccountJSON returns an account of the session as the JSON object
// the session carries.
func sessionAccountJSON(t *testing.T, c *jmaptest.Client, acct string) map[string]any {
	t.Helper()
	a := c.Session(t).Accounts[acct]
	if a == nil {
		t.Fatalf("session of %s has no account %s", c.Email, acct)
	}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// sharingWorld is three users, two in one domain, and a group.
type sharingWorld struct {
	srv               *jmaptest.Server
	alice, bob, carol *jmaptest.Client
	team              string // the group's principal id
}

func newSharingWorld(t *testing.T) *sharingWorld {
	t.Helper()
	srv := jmaptest.Start(t)
	w := &sharingWorld{srv: srv,
		alice: srv.NewUser(t, "alice@a.test"),
		bob:   srv.NewUser(t, "bob@a.test"),
		carol: srv.NewUser(t, "carol@b.test"),
	}
	srv.Admin(t, "group", "add", "team@a.test", "--name", "Team", "--member", "alice@a.test")
	w.team = principalID(t, srv, "team@a.test")
	return w
}

// RFC 9670 §1.5: principals in the session, currentUserPrincipalId in the
// own account, principals:owner in every account a principal owns, never
// in the session capabilities.
func TestPrincipalCapabilities_SessionAndAccounts(t *testing.T) {
	w := newSharingWorld(t)
	s := w.alice.Session(t)
	b, _ := json.Marshal(s.Capabilities[capPrincipals])
	if string(b) != "{}" {
		t.Errorf("session capability %s = %s, want {} (CAP-1)", capPrincipals, b)
	}
	if _, ok := s.Capabilities[capPrincipalsOwner]; ok {
		t.Errorf("session capabilities hold %s (CAP-3)", capPrincipalsOwner)
	}
	if s.PrimaryAccounts[capPrincipals] != w.alice.Account {
		t.Errorf("primaryAccounts[%s] = %q, want %q", capPrincipals, s.PrimaryAccounts[capPrincipals], w.alice.Account)
	}
	if _, ok := s.PrimaryAccounts[capPrincipalsOwner]; ok {
		t.Errorf("primaryAccounts holds %s, which is no session capability", capPrincipalsOwner)
	}
	caps := accountCaps(t, w.alice, w.alice.Account)
	want := map[string]any{"currentUserPrincipalId": w.alice.Account}
	if !reflect.DeepEqual(caps[capPrincipals], want) {
		t.Errorf("own account %s = %v, want %v (CAP-2)", capPrincipals, caps[capPrincipals], want)
	}
	wantOwner := map[string]any{"accountIdForPrincipal": w.alice.Account, "principalId": w.alice.Account}
	if !reflect.DeepEqual(caps[capPrincipalsOwner], wantOwner) {
		t.Errorf("own account %s = %v, want %v (CAP-4, CAP-5)", capPrincipalsOwner, caps[capPrincipalsOwner], wantOwner)
	}

	// A shared account: the owner capability names its owner and the
	// caller's own account; it holds no Principal data.
	inbox := mailboxByRole(t, w.carol, "inbox")
	// Across domains only the operator can share: Carol cannot see Alice.
	w.srv.Admin(t, "share", "carol@b.test", "--with", "alice@a.test", "--rights", "readAdvanced", "--mailbox", "Inbox")
	sub := sharing(t, w.alice, "Mailbox/set", map[string]any{"accountId": w.carol.Account,
		"update": map[string]any{inbox: map[string]any{"isSubscribed": true}}})
	if sub["notUpdated"] != nil {
		t.Fatalf("subscribe: %v", sub["notUpdated"])
	}
	caps = accountCaps(t, w.alice, w.carol.Account)
	if caps == nil {
		t.Fatalf("after subscribing, alice's session lacks carol's account")
	}
	wantOwner = map[string]any{"accountIdForPrincipal": w.alice.Account, "principalId": w.carol.Account}
	if !reflect.DeepEqual(caps[capPrincipalsOwner], wantOwner) {
		t.Errorf("shared account %s = %v, want %v (CAP-5)", capPrincipalsOwner, caps[capPrincipalsOwner], wantOwner)
	}
	if _, ok := caps[capPrincipals]; ok {
		t.Errorf("shared account has %s, but holds no principals", capPrincipals)
	}
	// CAP-7: the methods answer accountNotSupportedByMethod there.
	for _, m := range []string{"Principal/get", "ShareNotification/get"} {
		if e := sharingError(t, w.alice, m, map[string]any{"accountId": w.carol.Account}); e != "accountNotSupportedByMethod" {
			t.Errorf("%s in a shared account: %s, want accountNotSupportedByMethod", m, e)
		}
	}
}

// RFC 8620 §1.8 (CAP-6): without the capability in "using" the methods do
// not exist.
func TestPrincipalMethods_NeedCapability(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@a.test")
	using := []string{jmap.CapCore, capMail}
	for _, typ := range []string{"Principal", "ShareNotification"} {
		for _, m := range []string{"get", "changes", "set", "query", "queryChanges"} {
			inv := callUsing(t, alice, using, typ+"/"+m, map[string]any{"accountId": alice.Account})
			if inv.Name != "error" || inv.Args["type"] != "unknownMethod" {
				t.Errorf("%s/%s without %s: %s %v, want unknownMethod", typ, m, capPrincipals, inv.Name, inv.Args)
			}
		}
	}
}

// RFC 9670 §2: every property of the caller's own Principal.
func TestPrincipalGet_OwnPrincipal(t *testing.T) {
	w := newSharingWorld(t)
	got, nf := principals(t, w.alice, []string{w.alice.Account})
	if len(nf) != 0 {
		t.Fatalf("notFound %v", nf)
	}
	p := got[w.alice.Account]
	acct := sessionAccountJSON(t, w.alice, w.alice.Account)
	want := map[string]any{"id": w.alice.Account, "type": "individual", "name": "alice", "description": nil,
		"email": "alice@a.test", "timeZone": nil, "capabilities": map[string]any{},
		"accounts": map[string]any{w.alice.Account: acct}}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("own principal\n got %v\nwant %v", p, want)
	}
	g, _ := principals(t, w.alice, []string{w.team})
	if g[w.team]["type"] != "group" || g[w.team]["name"] != "Team" || g[w.team]["accounts"] != nil {
		t.Errorf("group principal = %v, want type group, name Team, accounts null", g[w.team])
	}
	// properties picks members; id always comes.
	res := sharing(t, w.alice, "Principal/get", map[string]any{"accountId": w.alice.Account,
		"ids": []string{w.bob.Account}, "properties": []string{"email"}})
	list, _ := res["list"].([]any)
	if len(list) != 1 || !reflect.DeepEqual(list[0], map[string]any{"id": w.bob.Account, "email": "bob@a.test"}) {
		t.Errorf("properties [email]: %v", list)
	}
	if e := sharingError(t, w.alice, "Principal/get", map[string]any{"accountId": w.alice.Account,
		"properties": []string{"password"}}); e != "invalidArguments" {
		t.Errorf("unknown property: %s, want invalidArguments", e)
	}
}

// DESIGN.md: principals of another domain are not listed unless something
// is shared; RFC 9670 §1.4: accounts lists what the user may access, even
// unsubscribed.
func TestPrincipalGet_VisibilityFollowsDomainAndSharing(t *testing.T) {
	w := newSharingWorld(t)
	if got, want := visiblePrincipals(t, w.alice), []string{w.alice.Account, w.bob.Account, w.team}; !sameSet(got, want) {
		t.Errorf("alice sees %v, want %v", got, want)
	}
	if got, want := visiblePrincipals(t, w.carol), []string{w.carol.Account}; !sameSet(got, want) {
		t.Errorf("carol sees %v, want %v", got, want)
	}
	if _, nf := principals(t, w.alice, []string{w.carol.Account, "nosuchid"}); !sameSet(nf, []string{w.carol.Account, "nosuchid"}) {
		t.Errorf("carol from another domain: notFound %v, want her and the unknown id", nf)
	}

	// Carol shares her inbox with alice: each now sees the other, and
	// carol's principal carries her account as alice sees it.
	inbox := mailboxByRole(t, w.carol, "inbox")
	// Across domains only the operator can share: Carol cannot see Alice.
	w.srv.Admin(t, "share", "carol@b.test", "--with", "alice@a.test", "--rights", "read", "--mailbox", "Inbox")
	if got, want := visiblePrincipals(t, w.alice), []string{w.alice.Account, w.bob.Account, w.team, w.carol.Account}; !sameSet(got, want) {
		t.Errorf("after the share alice sees %v, want %v", got, want)
	}
	if got, want := visiblePrincipals(t, w.carol), []string{w.carol.Account, w.alice.Account}; !sameSet(got, want) {
		t.Errorf("after the share carol sees %v, want %v", got, want)
	}
	got, _ := principals(t, w.alice, []string{w.carol.Account})
	accts, _ := got[w.carol.Account]["accounts"].(map[string]any)
	ca, _ := accts[w.carol.Account].(map[string]any)
	if ca == nil {
		t.Fatalf("carol's accounts = %v, want her account", got[w.carol.Account]["accounts"])
	}
	if ca["name"] != "carol@b.test" || ca["isPersonal"] != false || ca["isReadOnly"] != true {
		t.Errorf("carol's account = %v, want name carol@b.test, not personal, read-only", ca)
	}
	caps, _ := ca["accountCapabilities"].(map[string]any)
	if !reflect.DeepEqual(caps[capPrincipalsOwner], map[string]any{"accountIdForPrincipal": w.alice.Account, "principalId": w.carol.Account}) {
		t.Errorf("carol's account %s = %v", capPrincipalsOwner, caps[capPrincipalsOwner])
	}
	if _, ok := caps[capMail]; !ok {
		t.Errorf("carol's account lacks %s: %v", capMail, caps)
	}
	// The account is not in alice's session: she has not subscribed.
	if _, listed := w.alice.Session(t).Accounts[w.carol.Account]; listed {
		t.Errorf("carol's account is in alice's session before she subscribed (RFC 9670 §1.4)")
	}

	// Revoked: carol is hidden again.
	shareMailbox(t, w.carol, inbox, nil)
	if _, nf := principals(t, w.alice, []string{w.carol.Account}); !slices.Equal(nf, []string{w.carol.Account}) {
		t.Errorf("after revoking, carol is still visible to alice")
	}
}

// RFC 9670 §2: accounts of a principal of the same domain is null until
// they share, their account while they do, null again after revoking.
func TestPrincipalGet_AccountsFollowShares(t *testing.T) {
	w := newSharingWorld(t)
	got, _ := principals(t, w.alice, []string{w.bob.Account})
	if got[w.bob.Account]["accounts"] != nil {
		t.Fatalf("bob's accounts before sharing = %v, want null", got[w.bob.Account]["accounts"])
	}
	before := principalState(t, w.alice)
	inbox := mailboxByRole(t, w.bob, "inbox")
	shareMailbox(t, w.bob, inbox, map[string]any{w.alice.Account: rightsOf("mayReadItems", "mayAddItems")})
	got, _ = principals(t, w.alice, []string{w.bob.Account})
	accts, _ := got[w.bob.Account]["accounts"].(map[string]any)
	ba, _ := accts[w.bob.Account].(map[string]any)
	if len(accts) != 1 || ba == nil || ba["isReadOnly"] != false || ba["name"] != "bob@a.test" {
		t.Errorf("bob's accounts after sharing = %v, want his account, writable", got[w.bob.Account]["accounts"])
	}
	mid := principalState(t, w.alice)
	if mid == before {
		t.Errorf("the Principal state did not change although bob's accounts did")
	}
	// The answer changed without a principal record changing: /changes
	// cannot tell, and says so.
	if e := sharingError(t, w.alice, "Principal/changes", map[string]any{"accountId": w.alice.Account, "sinceState": before}); e != "cannotCalculateChanges" {
		t.Errorf("Principal/changes across a share: %s, want cannotCalculateChanges", e)
	}
	shareMailbox(t, w.bob, inbox, nil)
	got, _ = principals(t, w.alice, []string{w.bob.Account})
	if got[w.bob.Account]["accounts"] != nil {
		t.Errorf("bob's accounts after revoking = %v, want null", got[w.bob.Account]["accounts"])
	}
}

// principalQueryIDs runs Principal/query and returns its ids.
func principalQueryIDs(t *testing.T, c *jmaptest.Client, args map[string]any) []string {
	t.Helper()
	args["accountId"] = c.Account
	return strs(sharing(t, c, "Principal/query", args)["ids"])
}

// RFC 9670 §2.4.1: each FilterCondition, their AND, and the sorts.
func TestPrincipalQuery_FiltersAndSorts(t *testing.T) {
	w := newSharingWorld(t)
	w.srv.Admin(t, "user", "add", "dave@a.test", "--name", "Dave Brown", "--password", "pw")
	dave := principalID(t, w.srv, "dave@a.test")
	res := sharing(t, w.alice, "Principal/set", map[string]any{"accountId": w.alice.Account,
		"update": map[string]any{w.alice.Account: map[string]any{"description": "Brown bag lunches", "timeZone": "Europe/Paris"}}})
	if res["notUpdated"] != nil {
		t.Fatalf("set: %v", res["notUpdated"])
	}
	inbox := mailboxByRole(t, w.bob, "inbox")
	shareMailbox(t, w.bob, inbox, map[string]any{w.alice.Account: rightsOf("mayReadItems")})

	cases := []struct {
		name   string
		filter map[string]any
		want   []string
	}{
		{"name, case-insensitive substring", map[string]any{"name": "BROWN"}, []string{dave}},
		{"email substring", map[string]any{"email": "b@a.te"}, []string{w.bob.Account}},
		{"email matches the domain", map[string]any{"email": "@a.test"}, []string{w.alice.Account, w.bob.Account, w.team, dave}},
		{"text in name, email or description", map[string]any{"text": "brown"}, []string{dave, w.alice.Account}},
		{"text in email", map[string]any{"text": "team@"}, []string{w.team}},
		{"type exact", map[string]any{"type": "group"}, []string{w.team}},
		{"type is not a substring", map[string]any{"type": "grou"}, []string{}},
		{"timeZone exact", map[string]any{"timeZone": "Europe/Paris"}, []string{w.alice.Account}},
		{"accountIds: own account", map[string]any{"accountIds": []string{w.alice.Account}}, []string{w.alice.Account}},
		{"accountIds: shared account", map[string]any{"accountIds": []string{"x", w.bob.Account}}, []string{w.bob.Account}},
		{"accountIds: unreachable account", map[string]any{"accountIds": []string{dave}}, []string{}},
		{"AND of conditions", map[string]any{"text": "brown", "type": "individual", "timeZone": "Europe/Paris"}, []string{w.alice.Account}},
		{"operator", map[string]any{"operator": "OR", "conditions": []any{map[string]any{"name": "bob"}, map[string]any{"name": "team"}}}, []string{w.bob.Account, w.team}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := principalQueryIDs(t, w.alice, map[string]any{"filter": tc.filter}); !sameSet(got, tc.want) {
				t.Errorf("ids %v, want %v", got, tc.want)
			}
		})
	}

	byName := principalQueryIDs(t, w.alice, map[string]any{"sort": []any{map[string]any{"property": "name"}}})
	if want := []string{w.alice.Account, w.bob.Account, dave, w.team}; !slices.Equal(byName, want) {
		t.Errorf("sorted by name: %v, want %v (alice, bob, Dave Brown, Team)", byName, want)
	}
	desc := principalQueryIDs(t, w.alice, map[string]any{"sort": []any{map[string]any{"property": "email", "isAscending": false}}})
	if want := []string{w.team, dave, w.bob.Account, w.alice.Account}; !slices.Equal(desc, want) {
		t.Errorf("sorted by email descending: %v, want %v", desc, want)
	}
	res = sharing(t, w.alice, "Principal/query", map[string]any{"accountId": w.alice.Account, "position": 1, "limit": 2,
		"calculateTotal": true, "sort": []any{map[string]any{"property": "name"}}})
	if got := strs(res["ids"]); !slices.Equal(got, byName[1:3]) || res["total"] != float64(4) || res["position"] != float64(1) {
		t.Errorf("window: ids %v total %v position %v, want %v 4 1", got, res["total"], res["position"], byName[1:3])
	}
	if res["queryState"] != principalState(t, w.alice) || res["canCalculateChanges"] != true {
		t.Errorf("queryState %v canCalculateChanges %v, want the Principal state and true", res["queryState"], res["canCalculateChanges"])
	}

	for _, f := range []map[string]any{{"members": "x"}, {"name": 3}, {"accountIds": "x"}, {"type": nil}} {
		if e := sharingError(t, w.alice, "Principal/query", map[string]any{"accountId": w.alice.Account, "filter": f}); e != "unsupportedFilter" {
			t.Errorf("filter %v: %s, want unsupportedFilter", f, e)
		}
	}
	for _, p := range []string{"id", "type", "timeZone"} {
		if e := sharingError(t, w.alice, "Principal/query", map[string]any{"accountId": w.alice.Account,
			"sort": []any{map[string]any{"property": p}}}); e != "unsupportedSort" {
			t.Errorf("sort by %s: %s, want unsupportedSort", p, e)
		}
	}
}

// setPrincipal runs Principal/set on the client's own account.
func setPrincipal(t *testing.T, c *jmaptest.Client, args map[string]any) map[string]any {
	t.Helper()
	args["accountId"] = c.Account
	return sharing(t, c, "Principal/set", args)
}

// RFC 9670 §2.3: a user may change their own name, description and
// timeZone; anything else is forbidden and changes nothing.
func TestPrincipalSet_OwnDetailsOnly(t *testing.T) {
	w := newSharingWorld(t)
	me := w.alice.Account
	s0 := principalState(t, w.alice)
	res := setPrincipal(t, w.alice, map[string]any{"update": map[string]any{me: map[string]any{
		"name": "Alice Liddell", "description": "Curious", "timeZone": "America/New_York"}}})
	if res["notUpdated"] != nil {
		t.Fatalf("own update refused: %v", res["notUpdated"])
	}
	if u, _ := res["updated"].(map[string]any); u == nil || u[me] != nil {
		t.Errorf("updated = %v, want {%s: null}", res["updated"], me)
	}
	if res["oldState"] != s0 || res["newState"] == s0 {
		t.Errorf("oldState %v newState %v, want %v and a new one", res["oldState"], res["newState"], s0)
	}
	if res["newState"] != principalState(t, w.alice) {
		t.Errorf("newState %v is not the state /get answers", res["newState"])
	}
	got, _ := principals(t, w.bob, []string{me})
	p := got[me]
	if p["name"] != "Alice Liddell" || p["description"] != "Curious" || p["timeZone"] != "America/New_York" {
		t.Errorf("bob sees %v", p)
	}
	// null and "" clear description and timeZone.
	setPrincipal(t, w.alice, map[string]any{"update": map[string]any{me: map[string]any{"description": nil, "timeZone": ""}}})
	got, _ = principals(t, w.alice, []string{me})
	if got[me]["description"] != nil || got[me]["timeZone"] != nil {
		t.Errorf("after clearing: description %v timeZone %v, want null", got[me]["description"], got[me]["timeZone"])
	}

	before := principalState(t, w.alice)
	bad := []struct {
		name, field, key, typ string
		args                  map[string]any
		props                 []string
	}{
		{"create", "notCreated", "k1", "forbidden", map[string]any{"create": map[string]any{"k1": map[string]any{"name": "Eve", "type": "individual"}}}, nil},
		{"destroy self", "notDestroyed", me, "forbidden", map[string]any{"destroy": []string{me}}, nil},
		{"destroy another", "notDestroyed", w.bob.Account, "forbidden", map[string]any{"destroy": []string{w.bob.Account}}, nil},
		{"another's name", "notUpdated", w.bob.Account, "forbidden", map[string]any{"update": map[string]any{w.bob.Account: map[string]any{"name": "Robert"}}}, nil},
		{"a group's name", "notUpdated", w.team, "forbidden", map[string]any{"update": map[string]any{w.team: map[string]any{"name": "Mine"}}}, nil},
		{"own email", "notUpdated", me, "forbidden", map[string]any{"update": map[string]any{me: map[string]any{"email": "boss@a.test"}}}, nil},
		{"own type", "notUpdated", me, "forbidden", map[string]any{"update": map[string]any{me: map[string]any{"type": "group"}}}, nil},
		{"accounts is server-set", "notUpdated", me, "invalidProperties", map[string]any{"update": map[string]any{me: map[string]any{"accounts": nil}}}, []string{"accounts"}},
		{"capabilities is server-set", "notUpdated", me, "invalidProperties", map[string]any{"update": map[string]any{me: map[string]any{"capabilities": map[string]any{"x": map[string]any{}}}}}, []string{"capabilities"}},
		{"unknown property", "notUpdated", me, "invalidProperties", map[string]any{"update": map[string]any{me: map[string]any{"password": "x"}}}, []string{"password"}},
		{"unknown time zone", "notUpdated", me, "invalidProperties", map[string]any{"update": map[string]any{me: map[string]any{"timeZone": "Mars/Olympus_Mons"}}}, []string{"timeZone"}},
		{"Go's Local is no IANA zone", "notUpdated", me, "invalidProperties", map[string]any{"update": map[string]any{me: map[string]any{"timeZone": "Local"}}}, []string{"timeZone"}},
		{"timeZone not a string", "notUpdated", me, "invalidProperties", map[string]any{"update": map[string]any{me: map[string]any{"timeZone": 2}}}, []string{"timeZone"}},
		{"empty name", "notUpdated", me, "invalidProperties", map[string]any{"update": map[string]any{me: map[string]any{"name": " "}}}, []string{"name"}},
		{"null name", "notUpdated", me, "invalidProperties", map[string]any{"update": map[string]any{me: map[string]any{"name": nil}}}, []string{"name"}},
		{"name with a control character", "notUpdated", me, "invalidProperties", map[string]any{"update": map[string]any{me: map[string]any{"name": "a\x07b"}}}, []string{"name"}},
		{"bad patch", "notUpdated", me, "invalidPatch", map[string]any{"update": map[string]any{me: map[string]any{"name/x": "y"}}}, nil},
		{"a principal not visible", "notUpdated", w.carol.Account, "notFound", map[string]any{"update": map[string]any{w.carol.Account: map[string]any{"name": "x"}}}, nil},
		{"an unknown id", "notDestroyed", "nope", "notFound", map[string]any{"destroy": []string{"nope"}}, nil},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			res := setPrincipal(t, w.alice, tc.args)
			wantSetError(t, res, tc.field, tc.key, tc.typ, tc.props...)
			wantNothingDone(t, res)
		})
	}
	if after := principalState(t, w.alice); after != before {
		t.Errorf("refused changes moved the state from %s to %s", before, after)
	}
	got, _ = principals(t, w.alice, []string{me})
	if got[me]["name"] != "Alice Liddell" || got[me]["email"] != "alice@a.test" || got[me]["type"] != "individual" {
		t.Errorf("after refused changes: %v", got[me])
	}
	if e := sharingError(t, w.alice, "Principal/set", map[string]any{"accountId": me, "ifInState": "0-x",
		"update": map[string]any{me: map[string]any{"name": "X"}}}); e != "stateMismatch" {
		t.Errorf("ifInState: %s, want stateMismatch", e)
	}
}

// RFC 9670 §2.2, §2.5: /changes and /queryChanges report visible changes
// and never the ids of principals the caller cannot see.
func TestPrincipalChanges_NameChange(t *testing.T) {
	w := newSharingWorld(t)
	s0 := principalState(t, w.bob)
	q0 := sharing(t, w.bob, "Principal/query", map[string]any{"accountId": w.bob.Account,
		"sort": []any{map[string]any{"property": "name"}}})
	setPrincipal(t, w.alice, map[string]any{"update": map[string]any{w.alice.Account: map[string]any{"name": "Zelda"}}})
	setPrincipal(t, w.carol, map[string]any{"update": map[string]any{w.carol.Account: map[string]any{"name": "Carol C"}}})

	res := sharing(t, w.bob, "Principal/changes", map[string]any{"accountId": w.bob.Account, "sinceState": s0})
	if got := strs(res["updated"]); !slices.Equal(got, []string{w.alice.Account}) {
		t.Errorf("updated %v, want alice only (carol is of another domain)", got)
	}
	if len(strs(res["created"])) != 0 || len(strs(res["destroyed"])) != 0 || res["hasMoreChanges"] != false {
		t.Errorf("created %v destroyed %v hasMore %v", res["created"], res["destroyed"], res["hasMoreChanges"])
	}
	if res["oldState"] != s0 || res["newState"] != principalState(t, w.bob) {
		t.Errorf("oldState %v newState %v, want %v and the current state", res["oldState"], res["newState"], s0)
	}
	again := sharing(t, w.bob, "Principal/changes", map[string]any{"accountId": w.bob.Account, "sinceState": res["newState"]})
	if len(strs(again["updated"])) != 0 || again["newState"] != res["newState"] {
		t.Errorf("changes from the new state: %v", again)
	}

	// A new user of the domain is created in bob's view.
	w.srv.Admin(t, "user", "add", "dave@a.test", "--password", "pw")
	dave := principalID(t, w.srv, "dave@a.test")
	w.srv.Admin(t, "user", "add", "erin@b.test", "--password", "pw")
	res2 := sharing(t, w.bob, "Principal/changes", map[string]any{"accountId": w.bob.Account, "sinceState": res["newState"]})
	if got := strs(res2["created"]); !slices.Equal(got, []string{dave}) {
		t.Errorf("created %v, want dave only", got)
	}

	qc := sharing(t, w.bob, "Principal/queryChanges", map[string]any{"accountId": w.bob.Account,
		"sinceQueryState": q0["queryState"], "sort": []any{map[string]any{"property": "name"}}, "calculateTotal": true})
	old := strs(q0["ids"])
	now := strs(sharing(t, w.bob, "Principal/query", map[string]any{"accountId": w.bob.Account,
		"sort": []any{map[string]any{"property": "name"}}})["ids"])
	if got := applyQueryChanges(old, qc); !slices.Equal(got, now) {
		t.Errorf("queryChanges applied to %v gives %v, want %v (%v)", old, got, now, qc)
	}
	for _, id := range strs(qc["removed"]) {
		if id == w.carol.Account || id == principalID(t, w.srv, "erin@b.test") {
			t.Errorf("queryChanges removed %s, a principal bob cannot see", id)
		}
	}
	if qc["total"] != float64(len(now)) {
		t.Errorf("total %v, want %d", qc["total"], len(now))
	}

	digest := s0[strings.LastIndexByte(s0, '-')+1:]
	for _, s := range []string{"junk", "99999-" + digest, "0", "0-" + digest + "0"} {
		if e := sharingError(t, w.bob, "Principal/changes", map[string]any{"accountId": w.bob.Account, "sinceState": s}); e != "cannotCalculateChanges" {
			t.Errorf("sinceState %q: %s, want cannotCalculateChanges", s, e)
		}
	}
	if e := sharingError(t, w.bob, "Principal/changes", map[string]any{"accountId": w.bob.Account}); e != "invalidArguments" {
		t.Errorf("no sinceState: %s, want invalidArguments", e)
	}

	// Removing a principal: whether bob saw it cannot be told any more.
	w.srv.Admin(t, "user", "remove", "erin@b.test")
	if e := sharingError(t, w.bob, "Principal/changes", map[string]any{"accountId": w.bob.Account, "sinceState": res2["newState"]}); e != "cannotCalculateChanges" {
		t.Errorf("after a removal: %s, want cannotCalculateChanges", e)
	}
}

// RFC 8620 §5.2 maxChanges over the principals' log.
func TestPrincipalChanges_MaxChanges(t *testing.T) {
	w := newSharingWorld(t)
	s0 := principalState(t, w.alice)
	var want []string
	for i := range 3 {
		email := fmt.Sprintf("u%d@a.test", i)
		w.srv.Admin(t, "user", "add", email, "--password", "pw")
		want = append(want, principalID(t, w.srv, email))
	}
	var got []string
	since := s0
	for range 10 {
		res := sharing(t, w.alice, "Principal/changes", map[string]any{"accountId": w.alice.Account, "sinceState": since, "maxChanges": 1})
		got = append(got, strs(res["created"])...)
		since = str(res["newState"])
		if res["hasMoreChanges"] != true {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("created one at a time %v, want %v", got, want)
	}
	if since != principalState(t, w.alice) {
		t.Errorf("final state %s, want %s", since, principalState(t, w.alice))
	}
}

// FuzzPrincipalArguments feeds arbitrary filters and states to the
// Principal and ShareNotification methods of a live server: each answers
// its result or one of the errors RFC 8620 names for bad arguments, never
// serverFail.
func FuzzPrincipalArguments(f *testing.F) {
	srv := jmaptest.Start(f)
	alice := srv.NewUser(f, "alice@a.test")
	srv.NewUser(f, "bob@a.test")
	for _, s := range []string{`{"name":"a"}`, `{"accountIds":["x",1]}`, `{"operator":"NOT","conditions":[{"text":""}]}`,
		`{"after":"2024-01-01T00:00:00Z","before":null}`, `{"type":"group","timeZone":"UTC"}`, `null`, `[]`, `"x"`,
		`{"objectType":"Mailbox","objectAccountId":"a"}`, `0-abc`, `1.1-`, `-`, `18446744073709551616-0`} {
		f.Add(s)
	}
	allowed := map[string]bool{"unsupportedFilter": true, "invalidArguments": true, "cannotCalculateChanges": true}
	f.Fuzz(func(t *testing.T, in string) {
		var calls []any
		if json.Valid([]byte(in)) {
			raw := json.RawMessage(in)
			calls = append(calls,
				[]any{"Principal/query", map[string]any{"accountId": alice.Account, "filter": raw}, "q"},
				[]any{"ShareNotification/query", map[string]any{"accountId": alice.Account, "filter": raw}, "s"})
		}
		calls = append(calls,
			[]any{"Principal/changes", map[string]any{"accountId": alice.Account, "sinceState": in}, "c"},
			[]any{"Principal/queryChanges", map[string]any{"accountId": alice.Account, "sinceQueryState": in}, "qc"},
			[]any{"Principal/set", map[string]any{"accountId": alice.Account, "update": map[string]any{alice.Account: map[string]any{"timeZone": in}}}, "z"})
		body, err := json.Marshal(map[string]any{"using": sharingUsing, "methodCalls": calls})
		if err != nil {
			t.Skip()
		}
		status, b := alice.Post(t, string(body))
		if status != http.StatusOK {
			// Input that is not I-JSON (lone surrogates) is refused whole.
			if status == http.StatusBadRequest {
				return
			}
			t.Fatalf("status %d: %s", status, b)
		}
		var r jmaptest.Response
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		for _, inv := range r.MethodResponses {
			if inv.Name == "error" && !allowed[str(inv.Args["type"])] {
				t.Errorf("%s: %v", inv.CallID, inv.Args)
			}
			if inv.CallID == "z" {
				if nu, _ := inv.Args["notUpdated"].(map[string]any); nu != nil {
					if e, _ := nu[alice.Account].(map[string]any); e["type"] != "invalidProperties" {
						t.Errorf("timeZone %q: %v", in, e)
					}
				}
			}
		}
	})
}

// Rights granted to a group reach its members (DESIGN.md): the sharer of
// another domain becomes visible to them, with the account, and each
// member gets a ShareNotification (RFC 9670 §3); a non-member sees nothing.
func TestPrincipalGet_ShareWithGroupReachesMembers(t *testing.T) {
	w := newSharingWorld(t)
	inbox := mailboxByRole(t, w.carol, "inbox")
	// Across domains only the operator can share: Carol cannot see the team.
	w.srv.Admin(t, "share", "carol@b.test", "--with", "team@a.test", "--rights", "read", "--mailbox", "Inbox")
	got, nf := principals(t, w.alice, []string{w.carol.Account})
	if len(nf) != 0 {
		t.Fatalf("alice, a member of the group, does not see carol")
	}
	accts, _ := got[w.carol.Account]["accounts"].(map[string]any)
	if _, ok := accts[w.carol.Account]; !ok || len(accts) != 1 {
		t.Errorf("carol's accounts for alice = %v, want carol's account", got[w.carol.Account]["accounts"])
	}
	if _, nf := principals(t, w.bob, []string{w.carol.Account}); !slices.Equal(nf, []string{w.carol.Account}) {
		t.Errorf("bob, not a member, sees carol")
	}
	ns, _ := shareNotifications(t, w.alice)
	if n := onlyNotification(t, ns); n["objectAccountId"] != w.carol.Account || n["objectId"] != inbox {
		t.Errorf("alice's notification %v", n)
	}
	if ns, _ := shareNotifications(t, w.bob); len(ns) != 0 {
		t.Errorf("bob has notifications %v", ns)
	}
	// Carol sees the group of another domain as a grantee of her account.
	if _, nf := principals(t, w.carol, []string{w.team}); len(nf) != 0 {
		t.Errorf("carol does not see the group she shared with")
	}
}
