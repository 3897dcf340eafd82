package methods_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jmapd/jmapd/jmaptest"
)

// capMail is the JMAP Mail capability (RFC 8621 §1.3.1).
const capMail = "urn:ietf:params:jmap:mail"

// mailboxProps are the properties of a Mailbox (RFC 8621 §2).
var mailboxProps = []string{"id", "name", "parentId", "role", "sortOrder", "totalEmails", "unreadEmails",
	"totalThreads", "unreadThreads", "myRights", "isSubscribed"}

// mailboxRights are the nine properties of MailboxRights (RFC 8621 §2).
var mailboxRights = []string{"mayReadItems", "mayAddItems", "mayRemoveItems", "maySetSeen",
	"maySetKeywords", "mayCreateChild", "mayRename", "mayDelete", "maySubmit"}

// mailCapability returns the mail capability object of the client's account
// from the session.
func mailCapability(t *testing.T, c *jmaptest.Client) map[string]any {
	t.Helper()
	s := c.Session(t)
	a := s.Accounts[c.Account]
	if a == nil {
		t.Fatalf("session lists no account %s", c.Account)
	}
	m, ok := a.Capabilities[capMail].(map[string]any)
	if !ok {
		t.Fatalf("account capabilities %v have no %s object", a.Capabilities, capMail)
	}
	return m
}

// mailboxSet sends Mailbox/set in the client's account.
func mailboxSet(t *testing.T, c *jmaptest.Client, args map[string]any) map[string]any {
	t.Helper()
	args["accountId"] = c.Account
	return c.One(t, "Mailbox/set", args)
}

// createMailboxes creates the mailboxes in create and returns their ids by
// creation id, failing the test unless every one was created.
func createMailboxes(t *testing.T, c *jmaptest.Client, create map[string]any) map[string]string {
	t.Helper()
	res := mailboxSet(t, c, map[string]any{"create": create})
	created, _ := res["created"].(map[string]any)
	ids := make(map[string]string, len(create))
	for cid := range create {
		m, _ := created[cid].(map[string]any)
		id, _ := m["id"].(string)
		if id == "" {
			t.Fatalf("mailbox %s not created: notCreated = %v", cid, res["notCreated"])
		}
		ids[cid] = id
	}
	return ids
}

// createMailbox creates one mailbox and returns its id.
func createMailbox(t *testing.T, c *jmaptest.Client, obj map[string]any) string {
	t.Helper()
	return createMailboxes(t, c, map[string]any{"new": obj})["new"]
}

// updateMailboxes applies update and fails the test unless every mailbox in
// it was updated.
func updateMailboxes(t *testing.T, c *jmaptest.Client, update map[string]any) {
	t.Helper()
	res := mailboxSet(t, c, map[string]any{"update": update})
	updated, _ := res["updated"].(map[string]any)
	for id := range update {
		if _, ok := updated[id]; !ok {
			t.Fatalf("mailbox %s not updated: notUpdated = %v", id, res["notUpdated"])
		}
	}
}

// mailboxes returns every mailbox of the account by id (Mailbox/get, ids
// null).
func mailboxes(t *testing.T, c *jmaptest.Client) map[string]map[string]any {
	t.Helper()
	res := c.One(t, "Mailbox/get", map[string]any{"accountId": c.Account, "ids": nil})
	list, _ := res["list"].([]any)
	out := make(map[string]map[string]any, len(list))
	for _, x := range list {
		m := x.(map[string]any)
		out[m["id"].(string)] = m
	}
	return out
}

// mailbox returns one mailbox by id.
func mailbox(t *testing.T, c *jmaptest.Client, id string) map[string]any {
	t.Helper()
	res := c.One(t, "Mailbox/get", map[string]any{"accountId": c.Account, "ids": []string{id}})
	list, _ := res["list"].([]any)
	if len(list) != 1 {
		t.Fatalf("Mailbox/get %s: list %v, notFound %v", id, list, res["notFound"])
	}
	return list[0].(map[string]any)
}

// mailboxByRole returns the id of the mailbox with role.
func mailboxByRole(t *testing.T, c *jmaptest.Client, role string) string {
	t.Helper()
	for id, m := range mailboxes(t, c) {
		if m["role"] == role {
			return id
		}
	}
	t.Fatalf("no mailbox has the role %q", role)
	return ""
}

// mailboxQuery runs Mailbox/query in the client's account and returns the
// whole response.
func mailboxQuery(t *testing.T, c *jmaptest.Client, args map[string]any) map[string]any {
	t.Helper()
	args["accountId"] = c.Account
	return c.One(t, "Mailbox/query", args)
}

// queryIDs runs Mailbox/query and returns its ids.
func queryIDs(t *testing.T, c *jmaptest.Client, args map[string]any) []string {
	t.Helper()
	return strs(mailboxQuery(t, c, args)["ids"])
}

// strs turns a decoded JSON array of strings into a slice.
func strs(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// sameSet reports whether a and b hold the same ids in any order.
func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// wantSetError fails the test unless res[field][key] is a SetError of type
// typ; when props are given, its properties must be exactly those.
func wantSetError(t *testing.T, res map[string]any, field, key, typ string, props ...string) {
	t.Helper()
	errs, _ := res[field].(map[string]any)
	e, _ := errs[key].(map[string]any)
	if e == nil {
		t.Errorf("%s[%s] missing: created=%v updated=%v destroyed=%v %s=%v",
			field, key, res["created"], res["updated"], res["destroyed"], field, res[field])
		return
	}
	if e["type"] != typ {
		t.Errorf("%s[%s] = %v, want type %s", field, key, e, typ)
		return
	}
	if len(props) > 0 {
		got := strs(e["properties"])
		if !sameSet(got, props) {
			t.Errorf("%s[%s].properties = %v, want %v", field, key, got, props)
		}
	}
}

// wantExisting fails the test unless the SetError of key in field is
// alreadyExists naming the existing record id.
func wantExisting(t *testing.T, res map[string]any, field, key, id string) {
	t.Helper()
	wantSetError(t, res, field, key, "alreadyExists")
	if e := member(res[field], key); e != nil && (id == "" || e["existingId"] != id) {
		t.Errorf("%s[%s].existingId = %v, want %q", field, key, e["existingId"], id)
	}
}

// wantNothingDone fails the test unless the /set response created, updated
// and destroyed nothing and left the state where it was.
func wantNothingDone(t *testing.T, res map[string]any) {
	t.Helper()
	if res["created"] != nil || res["updated"] != nil || res["destroyed"] != nil {
		t.Errorf("created=%v updated=%v destroyed=%v, want all null", res["created"], res["updated"], res["destroyed"])
	}
	if res["oldState"] != res["newState"] {
		t.Errorf("newState %v differs from oldState %v", res["newState"], res["oldState"])
	}
}

// wantMailboxState fails the test unless the Mailbox state is still before.
func wantMailboxState(t *testing.T, c *jmaptest.Client, before string) {
	t.Helper()
	if after := c.State(t, c.Account, "Mailbox"); after != before {
		t.Errorf("Mailbox state moved from %s to %s", before, after)
	}
}

// wantAllRights fails the test unless v is a MailboxRights object with all
// nine rights true (the owner of an account may do everything).
func wantAllRights(t *testing.T, what string, v any) {
	t.Helper()
	r, ok := v.(map[string]any)
	if !ok || len(r) != len(mailboxRights) {
		t.Errorf("%s myRights = %v, want the nine rights", what, v)
		return
	}
	for _, k := range mailboxRights {
		if r[k] != true {
			t.Errorf("%s myRights.%s = %v, want true", what, k, r[k])
		}
	}
}

// wantUnsignedInt fails the test unless v is an integer in [min, 2^53).
func wantUnsignedInt(t *testing.T, what string, v any, min float64) {
	t.Helper()
	n, ok := v.(float64)
	if !ok || n < min || n != math.Trunc(n) || n >= 1<<53 {
		t.Errorf("%s = %v, want an integer >= %v", what, v, min)
	}
}

// RFC 8621 §1.3.1: the session-level mail capability is an empty object, and
// the account-level one MUST contain maxMailboxesPerEmail (>= 1 or null),
// maxMailboxDepth (UnsignedInt or null), maxSizeMailboxName ("MUST be at
// least 100"), maxSizeAttachmentsPerEmail, emailQuerySortOptions (String[])
// and mayCreateTopLevelMailbox (Boolean).
func TestMailCapability_AccountFields(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	s := alice.Session(t)
	if v, ok := s.Capabilities[capMail].(map[string]any); !ok || len(v) != 0 {
		t.Errorf("session capability %s = %v, want {}", capMail, s.Capabilities[capMail])
	}
	if s.PrimaryAccounts[capMail] != alice.Account {
		t.Errorf("primaryAccounts[%s] = %q, want %q", capMail, s.PrimaryAccounts[capMail], alice.Account)
	}
	mc := mailCapability(t, alice)
	for _, k := range []string{"maxMailboxesPerEmail", "maxMailboxDepth", "maxSizeMailboxName",
		"maxSizeAttachmentsPerEmail", "emailQuerySortOptions", "mayCreateTopLevelMailbox"} {
		if _, ok := mc[k]; !ok {
			t.Errorf("mail capability has no %s: %v", k, mc)
		}
	}
	if v := mc["maxMailboxesPerEmail"]; v != nil {
		wantUnsignedInt(t, "maxMailboxesPerEmail", v, 1)
	}
	if v := mc["maxMailboxDepth"]; v != nil {
		wantUnsignedInt(t, "maxMailboxDepth", v, 1)
	}
	wantUnsignedInt(t, "maxSizeMailboxName", mc["maxSizeMailboxName"], 100)
	wantUnsignedInt(t, "maxSizeAttachmentsPerEmail", mc["maxSizeAttachmentsPerEmail"], 0)
	opts, ok := mc["emailQuerySortOptions"].([]any)
	if !ok {
		t.Errorf("emailQuerySortOptions = %v, want an array", mc["emailQuerySortOptions"])
	}
	for _, o := range opts {
		if _, ok := o.(string); !ok {
			t.Errorf("emailQuerySortOptions holds %v, want strings", o)
		}
	}
	// The owner may create top-level mailboxes, as the other tests do.
	if mc["mayCreateTopLevelMailbox"] != true {
		t.Errorf("mayCreateTopLevelMailbox = %v, want true", mc["mayCreateTopLevelMailbox"])
	}
}

// RFC 8621 §2.1: Mailbox/get with ids null returns every Mailbox, each with
// every property of §2. A new account has Inbox, Drafts, Sent, Archive, Junk
// and Trash with their roles, at the top level, empty (counts 0), with all
// nine rights for the owner and subscribed ("true for any new Mailboxes
// created by the user themself").
func TestMailboxGet_DefaultMailboxes(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	res := alice.One(t, "Mailbox/get", map[string]any{"accountId": alice.Account, "ids": nil})
	if st, _ := res["state"].(string); st == "" {
		t.Errorf("state = %v, want a string", res["state"])
	}
	if nf, ok := res["notFound"].([]any); !ok || len(nf) != 0 {
		t.Errorf("notFound = %v, want []", res["notFound"])
	}
	list, _ := res["list"].([]any)
	want := map[string]string{"inbox": "Inbox", "drafts": "Drafts", "sent": "Sent",
		"archive": "Archive", "junk": "Junk", "trash": "Trash"}
	if len(list) != len(want) {
		t.Fatalf("got %d mailboxes, want %d: %v", len(list), len(want), list)
	}
	seen := map[string]bool{}
	for _, x := range list {
		m := x.(map[string]any)
		for _, p := range mailboxProps {
			if _, ok := m[p]; !ok {
				t.Errorf("mailbox %v has no %s", m["name"], p)
			}
		}
		role, _ := m["role"].(string)
		if want[role] == "" || m["name"] != want[role] || seen[role] {
			t.Errorf("mailbox %v has role %v", m["name"], m["role"])
		}
		seen[role] = true
		if id, _ := m["id"].(string); id == "" {
			t.Errorf("mailbox %v has id %v", m["name"], m["id"])
		}
		if m["parentId"] != nil {
			t.Errorf("mailbox %v has parentId %v, want null", m["name"], m["parentId"])
		}
		if so, ok := m["sortOrder"].(float64); !ok || so < 0 || so >= 1<<31 || so != math.Trunc(so) {
			t.Errorf("mailbox %v has sortOrder %v", m["name"], m["sortOrder"])
		}
		for _, p := range []string{"totalEmails", "unreadEmails", "totalThreads", "unreadThreads"} {
			if m[p] != float64(0) {
				t.Errorf("mailbox %v has %s %v, want 0", m["name"], p, m[p])
			}
		}
		wantAllRights(t, fmt.Sprint(m["name"]), m["myRights"])
		if m["isSubscribed"] != true {
			t.Errorf("mailbox %v has isSubscribed %v, want true", m["name"], m["isSubscribed"])
		}
	}

	// RFC 8620 §5.1: ids that do not exist are listed in notFound; with
	// properties given, only those and the id are returned.
	inbox := mailboxByRole(t, alice, "inbox")
	res = alice.One(t, "Mailbox/get", map[string]any{"accountId": alice.Account,
		"ids": []string{inbox, "nosuch"}, "properties": []string{"name", "role"}})
	list, _ = res["list"].([]any)
	if len(list) != 1 || fmt.Sprint(res["notFound"]) != "[nosuch]" {
		t.Fatalf("get inbox and nosuch: list %v, notFound %v", list, res["notFound"])
	}
	if m := list[0].(map[string]any); len(m) != 3 || m["id"] != inbox || m["name"] != "Inbox" || m["role"] != "inbox" {
		t.Errorf("get with properties [name role] = %v", m)
	}
}

// RFC 8620 §5.3: "created" holds, for each creation, the properties the
// client omitted; RFC 8621 §2 gives their defaults: parentId null, role
// null, sortOrder 0, counts 0, and isSubscribed true for a Mailbox the user
// creates, with myRights as the server sets it.
func TestMailboxSet_CreateReportsDefaults(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	before := alice.State(t, alice.Account, "Mailbox")
	res := mailboxSet(t, alice, map[string]any{"create": map[string]any{"r": map[string]any{"name": "Receipts"}}})
	created, _ := res["created"].(map[string]any)
	got, _ := created["r"].(map[string]any)
	id, _ := got["id"].(string)
	if id == "" {
		t.Fatalf("not created: %v", res)
	}
	defaults := map[string]any{"parentId": nil, "role": nil, "sortOrder": float64(0), "totalEmails": float64(0),
		"unreadEmails": float64(0), "totalThreads": float64(0), "unreadThreads": float64(0), "isSubscribed": true}
	for k, want := range defaults {
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("created.%s = %v (present %v), want %v", k, v, ok, want)
		}
	}
	wantAllRights(t, "created", got["myRights"])
	if res["oldState"] != before || res["newState"] == before {
		t.Errorf("oldState %v newState %v, want %s and a new state", res["oldState"], res["newState"], before)
	}

	m := mailbox(t, alice, id)
	if m["name"] != "Receipts" {
		t.Errorf("name = %v", m["name"])
	}
	for k, want := range defaults {
		if m[k] != want {
			t.Errorf("get: %s = %v, want %v", k, m[k], want)
		}
	}
	wantAllRights(t, "get", m["myRights"])
}

// RFC 8620 §5.3: a parentId may be "#creationId" of a Mailbox created in the
// same call, and "the server MUST order the creates and updates within a
// single method call so that creates happen before their creation ids are
// referenced", whatever order the client wrote them in.
func TestMailboxSet_ParentCreationIDInOneCall(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	// The request's object members go out sorted, so each creation here
	// comes before the one it refers to.
	ids := createMailboxes(t, alice, map[string]any{
		"a-grandchild": map[string]any{"name": "Invoices", "parentId": "#b-child"},
		"b-child":      map[string]any{"name": "Acme", "parentId": "#c-parent"},
		"c-parent":     map[string]any{"name": "Clients"},
	})
	all := mailboxes(t, alice)
	for cid, parent := range map[string]any{"a-grandchild": ids["b-child"], "b-child": ids["c-parent"], "c-parent": nil} {
		if got := all[ids[cid]]["parentId"]; got != parent {
			t.Errorf("%s parentId = %v, want %v", cid, got, parent)
		}
	}

	// A creation id that is never created is invalidProperties on parentId.
	before := alice.State(t, alice.Account, "Mailbox")
	res := mailboxSet(t, alice, map[string]any{"create": map[string]any{
		"orphan": map[string]any{"name": "Orphan", "parentId": "#nowhere"},
	}})
	wantSetError(t, res, "notCreated", "orphan", "invalidProperties", "parentId")
	wantNothingDone(t, res)
	wantMailboxState(t, alice, before)
}

// RFC 8620 §5.3: the creation id map lasts for the whole request, so a
// later method call may use "#creationId" for a parentId and in ids.
func TestMailboxSet_ParentCreationIDAcrossCalls(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	r := alice.Call(t,
		jmaptest.Call{Name: "Mailbox/set", Args: map[string]any{"accountId": alice.Account,
			"create": map[string]any{"p": map[string]any{"name": "Projects"}}}},
		jmaptest.Call{Name: "Mailbox/set", Args: map[string]any{"accountId": alice.Account,
			"create": map[string]any{"c": map[string]any{"name": "Apollo", "parentId": "#p"}}}},
		jmaptest.Call{Name: "Mailbox/get", Args: map[string]any{"accountId": alice.Account,
			"ids": []string{"#c"}, "properties": []string{"name", "parentId"}}},
	)
	if len(r.MethodResponses) != 3 {
		t.Fatalf("responses: %+v", r.MethodResponses)
	}
	for i, name := range []string{"Mailbox/set", "Mailbox/set", "Mailbox/get"} {
		if r.MethodResponses[i].Name != name {
			t.Fatalf("response %d = %s %v, want %s", i, r.MethodResponses[i].Name, r.MethodResponses[i].Args, name)
		}
	}
	p, _ := r.MethodResponses[0].Args["created"].(map[string]any)["p"].(map[string]any)
	pid, _ := p["id"].(string)
	if pid == "" {
		t.Fatalf("p not created: %v", r.MethodResponses[0].Args)
	}
	if r.MethodResponses[1].Args["created"] == nil {
		t.Fatalf("c not created: %v", r.MethodResponses[1].Args["notCreated"])
	}
	list, _ := r.MethodResponses[2].Args["list"].([]any)
	if len(list) != 1 {
		t.Fatalf("get #c: %v", r.MethodResponses[2].Args)
	}
	if c := list[0].(map[string]any); c["name"] != "Apollo" || c["parentId"] != pid {
		t.Errorf("child = %v, want Apollo under %s", c, pid)
	}
}

// RFC 8621 §2: "There MUST NOT be two sibling Mailboxes with both the same
// parent and the same name." Create, rename and move are all refused.
func TestMailboxSet_SiblingNameTaken(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	ids := createMailboxes(t, alice, map[string]any{
		"a-lists": map[string]any{"name": "Lists"},
		"b-go":    map[string]any{"name": "Go", "parentId": "#a-lists"},
		"c-rust":  map[string]any{"name": "Rust", "parentId": "#a-lists"},
		"d-go":    map[string]any{"name": "Go"}, // another parent: allowed
	})
	before := alice.State(t, alice.Account, "Mailbox")
	res := mailboxSet(t, alice, map[string]any{
		"create": map[string]any{
			"top":   map[string]any{"name": "Inbox"},
			"child": map[string]any{"name": "Go", "parentId": ids["a-lists"]},
		},
		"update": map[string]any{
			ids["c-rust"]: map[string]any{"name": "Go"},               // rename onto a sibling
			ids["d-go"]:   map[string]any{"parentId": ids["a-lists"]}, // move next to a namesake
		},
	})
	inbox := mailboxByRole(t, alice, "inbox")
	// alreadyExists (RFC 8620 §5.4, a common error) names the sibling in
	// the way.
	wantExisting(t, res, "notCreated", "top", inbox)
	wantExisting(t, res, "notCreated", "child", ids["b-go"])
	wantExisting(t, res, "notUpdated", ids["c-rust"], ids["b-go"])
	wantExisting(t, res, "notUpdated", ids["d-go"], ids["b-go"])
	wantNothingDone(t, res)
	wantMailboxState(t, alice, before)

	// The same name under yet another parent is fine.
	id := createMailbox(t, alice, map[string]any{"name": "Go", "parentId": inbox})
	if m := mailbox(t, alice, id); m["name"] != "Go" || m["parentId"] != inbox {
		t.Errorf("Go under the inbox = %v", m)
	}

	// Two namesakes created in one call: the second one is refused.
	res = mailboxSet(t, alice, map[string]any{"create": map[string]any{
		"x": map[string]any{"name": "Twins"},
		"y": map[string]any{"name": "Twins"},
	}})
	created, _ := res["created"].(map[string]any)
	wantExisting(t, res, "notCreated", "y", str(member(created, "x")["id"]))
	if len(created) != 1 || created["x"] == nil {
		t.Errorf("created = %v, want x only", res["created"])
	}
}

// RFC 8621 §2: "there MUST NOT be two Mailboxes in the same account with the
// same role", and a role "MUST be one of the Mailbox attribute names listed
// in the IANA 'IMAP Mailbox Name Attributes' registry ... converted to
// lowercase"; anything else is invalidProperties on role.
func TestMailboxSet_RoleTakenOrUnknown(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	archive := mailboxByRole(t, alice, "archive")
	before := alice.State(t, alice.Account, "Mailbox")
	res := mailboxSet(t, alice, map[string]any{
		"create": map[string]any{
			"taken":     map[string]any{"name": "Second inbox", "role": "inbox"},
			"unknown":   map[string]any{"name": "Receipts", "role": "receipts"},
			"uppercase": map[string]any{"name": "Bin", "role": "Trash"},
			"notString": map[string]any{"name": "Odd", "role": 1},
		},
		"update": map[string]any{archive: map[string]any{"role": "sent"}},
	})
	for _, cid := range []string{"taken", "unknown", "uppercase", "notString"} {
		wantSetError(t, res, "notCreated", cid, "invalidProperties", "role")
	}
	wantSetError(t, res, "notUpdated", archive, "invalidProperties", "role")
	wantNothingDone(t, res)
	wantMailboxState(t, alice, before)
	if got := mailbox(t, alice, archive)["role"]; got != "archive" {
		t.Errorf("archive role = %v", got)
	}

	// A registered role nobody holds is accepted, once.
	res = mailboxSet(t, alice, map[string]any{"create": map[string]any{
		"x": map[string]any{"name": "Starred", "role": "flagged"},
		"y": map[string]any{"name": "Also starred", "role": "flagged"},
	}})
	wantSetError(t, res, "notCreated", "y", "invalidProperties", "role")
	created, _ := res["created"].(map[string]any)
	x, _ := created["x"].(map[string]any)
	if id, _ := x["id"].(string); id == "" || mailbox(t, alice, id)["role"] != "flagged" {
		t.Errorf("created = %v, want x with the role flagged", res["created"])
	}
}

// RFC 8621 §2: a name is "at least 1 character in length, subject to the
// maximum size given in the capability object", which §1.3.1 counts "in
// (UTF-8) octets"; "Servers MAY reject names that violate server policy
// (e.g., names containing a slash (/) or control characters)", and ours
// rejects control characters.
func TestMailboxSet_NameRules(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	max := int(mailCapability(t, alice)["maxSizeMailboxName"].(float64))
	// One octet too many, in two-octet characters: fewer than max
	// characters, so only an octet count catches it.
	long := strings.Repeat("é", (max+1)/2) + strings.Repeat("a", (max+1)%2)
	if len(long) != max+1 || utf8.RuneCountInString(long) > max {
		t.Fatalf("long name has %d octets, %d characters", len(long), utf8.RuneCountInString(long))
	}
	inbox := mailboxByRole(t, alice, "inbox")
	before := alice.State(t, alice.Account, "Mailbox")
	bad := map[string]any{
		"empty":   "",
		"long":    long,
		"nul":     "a\x00b",
		"tab":     "a\tb",
		"newline": "a\nb",
		"del":     "a\x7fb",
		"c1":      "a\u0085b",
		"number":  5,
		"null":    nil,
	}
	create := map[string]any{"missing": map[string]any{"sortOrder": 1}}
	for cid, name := range bad {
		create[cid] = map[string]any{"name": name}
	}
	res := mailboxSet(t, alice, map[string]any{
		"create": create,
		"update": map[string]any{inbox: map[string]any{"name": ""}},
	})
	for cid := range create {
		wantSetError(t, res, "notCreated", cid, "invalidProperties", "name")
	}
	wantSetError(t, res, "notUpdated", inbox, "invalidProperties", "name")
	wantNothingDone(t, res)
	wantMailboxState(t, alice, before)

	// Exactly maxSizeMailboxName octets is allowed.
	exact := strings.Repeat("é", max/2) + strings.Repeat("a", max%2)
	id := createMailbox(t, alice, map[string]any{"name": exact})
	if got := mailbox(t, alice, id)["name"]; got != exact {
		t.Errorf("name = %v, want the %d-octet name", got, max)
	}
}

// RFC 8621 §2: sortOrder "MUST be an integer in the range 0 <= sortOrder <
// 2^31".
func TestMailboxSet_SortOrderRange(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox, drafts := mailboxByRole(t, alice, "inbox"), mailboxByRole(t, alice, "drafts")
	before := alice.State(t, alice.Account, "Mailbox")
	create := map[string]any{}
	for cid, so := range map[string]any{"negative": -1, "fraction": 1.5, "twoTo31": 1 << 31, "huge": 1e20, "string": "3"} {
		create[cid] = map[string]any{"name": cid, "sortOrder": so}
	}
	res := mailboxSet(t, alice, map[string]any{
		"create": create,
		"update": map[string]any{
			inbox:  map[string]any{"sortOrder": -1},
			drafts: map[string]any{"sortOrder": 1 << 31},
		},
	})
	for cid := range create {
		wantSetError(t, res, "notCreated", cid, "invalidProperties", "sortOrder")
	}
	wantSetError(t, res, "notUpdated", inbox, "invalidProperties", "sortOrder")
	wantSetError(t, res, "notUpdated", drafts, "invalidProperties", "sortOrder")
	wantNothingDone(t, res)
	wantMailboxState(t, alice, before)

	// The largest allowed value, 2^31-1, is accepted.
	id := createMailbox(t, alice, map[string]any{"name": "Last", "sortOrder": 1<<31 - 1})
	if got := mailbox(t, alice, id)["sortOrder"]; got != float64(1<<31-1) {
		t.Errorf("sortOrder = %v, want 2147483647", got)
	}
}

// RFC 8621 §2: parentId is "The Mailbox id for the parent of this Mailbox,
// or null"; an id of no Mailbox, or not an id at all, is invalidProperties.
func TestMailboxSet_UnknownParent(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	before := alice.State(t, alice.Account, "Mailbox")
	res := mailboxSet(t, alice, map[string]any{
		"create": map[string]any{
			"unknown":   map[string]any{"name": "A", "parentId": "nosuch"},
			"wrongType": map[string]any{"name": "B", "parentId": 7},
		},
		"update": map[string]any{inbox: map[string]any{"parentId": "nosuch"}},
	})
	wantSetError(t, res, "notCreated", "unknown", "invalidProperties", "parentId")
	wantSetError(t, res, "notCreated", "wrongType", "invalidProperties", "parentId")
	wantSetError(t, res, "notUpdated", inbox, "invalidProperties", "parentId")
	wantNothingDone(t, res)
	wantMailboxState(t, alice, before)
}

// RFC 8621 §2: "Mailboxes form acyclic graphs (forests) directed by the
// child-to-parent relationship. There MUST NOT be a loop."
func TestMailboxSet_NoLoops(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	ids := createMailboxes(t, alice, map[string]any{
		"a": map[string]any{"name": "A"},
		"b": map[string]any{"name": "B", "parentId": "#a"},
		"c": map[string]any{"name": "C", "parentId": "#b"},
	})
	a, b, c := ids["a"], ids["b"], ids["c"]
	before := alice.State(t, alice.Account, "Mailbox")
	for _, parent := range []string{c, b, a} {
		res := mailboxSet(t, alice, map[string]any{"update": map[string]any{a: map[string]any{"parentId": parent}}})
		wantSetError(t, res, "notUpdated", a, "invalidProperties", "parentId")
		wantNothingDone(t, res)
	}
	wantMailboxState(t, alice, before)
	if got := mailbox(t, alice, a)["parentId"]; got != nil {
		t.Errorf("A parentId = %v, want null", got)
	}

	// Two updates in one call that would close a loop together: whichever
	// runs second must be refused.
	xy := createMailboxes(t, alice, map[string]any{"x": map[string]any{"name": "X"}, "y": map[string]any{"name": "Y"}})
	x, y := xy["x"], xy["y"]
	res := mailboxSet(t, alice, map[string]any{"update": map[string]any{
		x: map[string]any{"parentId": y},
		y: map[string]any{"parentId": x},
	}})
	updated, _ := res["updated"].(map[string]any)
	notUpdated, _ := res["notUpdated"].(map[string]any)
	if len(updated) != 1 || len(notUpdated) != 1 {
		t.Fatalf("swap: updated %v, notUpdated %v; want one of each", updated, notUpdated)
	}
	for id := range notUpdated {
		wantSetError(t, res, "notUpdated", id, "invalidProperties", "parentId")
	}
	all := mailboxes(t, alice)
	for id := range all {
		p := id
		for range len(all) + 1 {
			if p = str(all[p]["parentId"]); p == "" {
				break
			}
		}
		if p != "" {
			t.Errorf("mailbox %s sits on a loop", id)
		}
	}
}

// str returns v as a string, "" for anything else.
func str(v any) string {
	s, _ := v.(string)
	return s
}

// RFC 8621 §1.3.1: maxMailboxDepth is "The maximum depth of the Mailbox
// hierarchy (i.e., one more than the maximum number of ancestors a Mailbox
// may have)". Neither a create nor a move may go deeper, and a move counts
// the depth of the moved Mailbox's descendants too.
func TestMailboxSet_DepthLimit(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	d, ok := mailCapability(t, alice)["maxMailboxDepth"].(float64)
	if !ok {
		t.Fatalf("maxMailboxDepth = %v: this test needs a limit", mailCapability(t, alice)["maxMailboxDepth"])
	}
	depth := int(d)
	if depth < 3 {
		t.Fatalf("maxMailboxDepth %d is too small for this test", depth)
	}
	// chain[i] is at depth i+1; the last one is as deep as allowed.
	create := map[string]any{}
	for i := range depth {
		m := map[string]any{"name": fmt.Sprintf("level %d", i+1)}
		if i > 0 {
			m["parentId"] = fmt.Sprintf("#d%03d", i-1)
		}
		create[fmt.Sprintf("d%03d", i)] = m
	}
	created := createMailboxes(t, alice, create)
	chain := make([]string, depth)
	for i := range depth {
		chain[i] = created[fmt.Sprintf("d%03d", i)]
	}
	xy := createMailboxes(t, alice, map[string]any{
		"x": map[string]any{"name": "X"},
		"y": map[string]any{"name": "Y", "parentId": "#x"},
	})
	x := xy["x"]

	before := alice.State(t, alice.Account, "Mailbox")
	res := mailboxSet(t, alice, map[string]any{
		"create": map[string]any{"deep": map[string]any{"name": "too deep", "parentId": chain[depth-1]}},
		// X would sit at the limit, and its child Y one below it.
		"update": map[string]any{x: map[string]any{"parentId": chain[depth-2]}},
	})
	wantSetError(t, res, "notCreated", "deep", "invalidProperties", "parentId")
	wantSetError(t, res, "notUpdated", x, "invalidProperties", "parentId")
	wantNothingDone(t, res)
	wantMailboxState(t, alice, before)

	// One level up, X and Y both fit.
	updateMailboxes(t, alice, map[string]any{x: map[string]any{"parentId": chain[depth-3]}})
	if got := mailbox(t, alice, x)["parentId"]; got != chain[depth-3] {
		t.Errorf("X parentId = %v, want %s", got, chain[depth-3])
	}
}

// RFC 8621 §2: totalEmails, unreadEmails, totalThreads, unreadThreads and
// myRights are server-set, and id is "immutable; server-set"; RFC 8620 §5.3
// answers a client that sets them with invalidProperties.
func TestMailboxSet_ServerSetProperties(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox, drafts := mailboxByRole(t, alice, "inbox"), mailboxByRole(t, alice, "drafts")
	sent, archive := mailboxByRole(t, alice, "sent"), mailboxByRole(t, alice, "archive")
	rights := map[string]any{}
	for _, r := range mailboxRights {
		rights[r] = true
	}
	before := alice.State(t, alice.Account, "Mailbox")
	res := mailboxSet(t, alice, map[string]any{
		"create": map[string]any{
			"total":  map[string]any{"name": "A", "totalEmails": 3},
			"rights": map[string]any{"name": "B", "myRights": rights},
			"id":     map[string]any{"name": "C", "id": "chosen"},
		},
		"update": map[string]any{
			inbox:   map[string]any{"totalEmails": 5},
			drafts:  map[string]any{"myRights/mayDelete": false},
			sent:    map[string]any{"unreadThreads": 1},
			archive: map[string]any{"id": "other"},
		},
	})
	wantSetError(t, res, "notCreated", "total", "invalidProperties", "totalEmails")
	wantSetError(t, res, "notCreated", "rights", "invalidProperties", "myRights")
	wantSetError(t, res, "notCreated", "id", "invalidProperties", "id")
	wantSetError(t, res, "notUpdated", inbox, "invalidProperties", "totalEmails")
	wantSetError(t, res, "notUpdated", drafts, "invalidProperties", "myRights")
	wantSetError(t, res, "notUpdated", sent, "invalidProperties", "unreadThreads")
	wantSetError(t, res, "notUpdated", archive, "invalidProperties", "id")
	wantNothingDone(t, res)
	wantMailboxState(t, alice, before)
	m := mailbox(t, alice, inbox)
	if m["totalEmails"] != float64(0) {
		t.Errorf("inbox totalEmails = %v", m["totalEmails"])
	}
	wantAllRights(t, "drafts", mailbox(t, alice, drafts)["myRights"])
}

// RFC 8621 §2: name and parentId may change; mayRename lets the user
// "rename the Mailbox or make it a child of another Mailbox", and a null
// parentId puts it back at the top level.
func TestMailboxSet_RenameAndMove(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	ids := createMailboxes(t, alice, map[string]any{
		"work": map[string]any{"name": "Work"},
		"proj": map[string]any{"name": "Projects"},
	})
	work, proj := ids["work"], ids["proj"]
	updateMailboxes(t, alice, map[string]any{proj: map[string]any{"name": "Old projects", "parentId": work, "sortOrder": 9}})
	m := mailbox(t, alice, proj)
	if m["name"] != "Old projects" || m["parentId"] != work || m["sortOrder"] != float64(9) {
		t.Errorf("after rename and move: %v", m)
	}
	// Renaming to its own name is no conflict with itself.
	updateMailboxes(t, alice, map[string]any{proj: map[string]any{"name": "Old projects"}})
	updateMailboxes(t, alice, map[string]any{proj: map[string]any{"parentId": nil}})
	if m := mailbox(t, alice, proj); m["parentId"] != nil || m["name"] != "Old projects" {
		t.Errorf("after move to the top: %v", m)
	}
}

// RFC 8621 §2.5: "mailboxHasChild: The Mailbox still has at least one child
// Mailbox. The client MUST remove these before it can delete the parent
// Mailbox."
func TestMailboxSet_DestroyWithChild(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	ids := createMailboxes(t, alice, map[string]any{
		"p": map[string]any{"name": "Parent"},
		"c": map[string]any{"name": "Child", "parentId": "#p"},
	})
	before := alice.State(t, alice.Account, "Mailbox")
	res := mailboxSet(t, alice, map[string]any{"destroy": []string{ids["p"]}})
	wantSetError(t, res, "notDestroyed", ids["p"], "mailboxHasChild")
	wantNothingDone(t, res)
	wantMailboxState(t, alice, before)
	all := mailboxes(t, alice)
	if all[ids["p"]] == nil || all[ids["c"]] == nil {
		t.Fatalf("parent or child gone: %v", all)
	}

	// With the child removed first, the parent goes too.
	res = mailboxSet(t, alice, map[string]any{"destroy": []string{ids["c"], ids["p"]}})
	if got := strs(res["destroyed"]); !sameSet(got, []string{ids["c"], ids["p"]}) {
		t.Errorf("destroyed = %v, notDestroyed = %v", got, res["notDestroyed"])
	}
	res = alice.One(t, "Mailbox/get", map[string]any{"accountId": alice.Account, "ids": []string{ids["p"], ids["c"]}})
	if !sameSet(strs(res["notFound"]), []string{ids["p"], ids["c"]}) {
		t.Errorf("after destroy: %v", res)
	}
}

// RFC 8620 §5.3: "forbidden: The action would violate an ACL or other
// permissions policy"; our policy keeps the inbox, so destroying it is
// forbidden. An id of no Mailbox is notFound.
func TestMailboxSet_DestroyInboxForbidden(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	before := alice.State(t, alice.Account, "Mailbox")
	res := mailboxSet(t, alice, map[string]any{"destroy": []string{inbox, "nosuch"}})
	wantSetError(t, res, "notDestroyed", inbox, "forbidden")
	wantSetError(t, res, "notDestroyed", "nosuch", "notFound")
	wantNothingDone(t, res)
	wantMailboxState(t, alice, before)
	if m := mailbox(t, alice, inbox); m["role"] != "inbox" {
		t.Errorf("inbox = %v", m)
	}
}

// RFC 8621 §2: isSubscribed is true for Mailboxes the user creates, the user
// may change it, and it "MUST be stored separately per user": changing it
// shows on /get and /query for that user and moves the Mailbox state.
func TestMailboxSet_IsSubscribed(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	bob := srv.NewUser(t, "bob@example.test")
	inbox, drafts := mailboxByRole(t, alice, "inbox"), mailboxByRole(t, alice, "drafts")

	// Bad input first: isSubscribed is a Boolean.
	before := alice.State(t, alice.Account, "Mailbox")
	res := mailboxSet(t, alice, map[string]any{
		"create": map[string]any{"s": map[string]any{"name": "S", "isSubscribed": "yes"}},
		"update": map[string]any{inbox: map[string]any{"isSubscribed": 0}},
	})
	wantSetError(t, res, "notCreated", "s", "invalidProperties", "isSubscribed")
	wantSetError(t, res, "notUpdated", inbox, "invalidProperties", "isSubscribed")
	wantNothingDone(t, res)
	wantMailboxState(t, alice, before)

	updateMailboxes(t, alice, map[string]any{inbox: map[string]any{"isSubscribed": false}})
	if got := mailbox(t, alice, inbox)["isSubscribed"]; got != false {
		t.Errorf("inbox isSubscribed = %v, want false", got)
	}
	if got := mailbox(t, alice, drafts)["isSubscribed"]; got != true {
		t.Errorf("drafts isSubscribed = %v, want true", got)
	}
	if after := alice.State(t, alice.Account, "Mailbox"); after == before {
		t.Errorf("Mailbox state stayed %s after isSubscribed changed", before)
	}
	if got := queryIDs(t, alice, map[string]any{"filter": map[string]any{"isSubscribed": false}}); !slices.Equal(got, []string{inbox}) {
		t.Errorf("unsubscribed = %v, want [%s]", got, inbox)
	}
	// Bob's choices are his own.
	for id, m := range mailboxes(t, bob) {
		if m["isSubscribed"] != true {
			t.Errorf("bob's mailbox %s isSubscribed = %v", id, m["isSubscribed"])
		}
	}

	updateMailboxes(t, alice, map[string]any{inbox: map[string]any{"isSubscribed": true}})
	if got := mailbox(t, alice, inbox)["isSubscribed"]; got != true {
		t.Errorf("inbox isSubscribed = %v after resubscribing", got)
	}
	id := createMailbox(t, alice, map[string]any{"name": "Quiet", "isSubscribed": false})
	if got := mailbox(t, alice, id)["isSubscribed"]; got != false {
		t.Errorf("created unsubscribed, got isSubscribed %v", got)
	}
}

// RFC 8621 §2.2: updatedProperties lists properties only "If only the
// 'totalEmails', 'unreadEmails', 'totalThreads', and/or 'unreadThreads'
// Mailbox properties have changed"; after a rename it must be null.
func TestMailboxChanges_RenameHasNullUpdatedProperties(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	archive := mailboxByRole(t, alice, "archive")
	s0 := alice.State(t, alice.Account, "Mailbox")
	updateMailboxes(t, alice, map[string]any{archive: map[string]any{"name": "Old mail"}})
	s1 := alice.State(t, alice.Account, "Mailbox")
	res := alice.One(t, "Mailbox/changes", map[string]any{"accountId": alice.Account, "sinceState": s0})
	if v, ok := res["updatedProperties"]; !ok || v != nil {
		t.Errorf("updatedProperties = %v (present %v), want null", v, ok)
	}
	if got := strs(res["updated"]); !slices.Equal(got, []string{archive}) {
		t.Errorf("updated = %v, want [%s]", got, archive)
	}
	if len(strs(res["created"])) != 0 || len(strs(res["destroyed"])) != 0 {
		t.Errorf("created %v destroyed %v, want both empty", res["created"], res["destroyed"])
	}
	if res["oldState"] != s0 || res["newState"] != s1 || res["hasMoreChanges"] != false {
		t.Errorf("oldState %v newState %v hasMoreChanges %v, want %s %s false",
			res["oldState"], res["newState"], res["hasMoreChanges"], s0, s1)
	}
}

// RFC 8620 §5.2 (RFC 8621 §2.2): created, updated and destroyed list the ids
// changed since the old state, each in one list; an id created and then
// updated is only created, and one created and destroyed since then SHOULD
// be left out entirely.
func TestMailboxChanges_CreatedUpdatedDestroyed(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	archive, junk := mailboxByRole(t, alice, "archive"), mailboxByRole(t, alice, "junk")
	s0 := alice.State(t, alice.Account, "Mailbox")
	ids := createMailboxes(t, alice, map[string]any{
		"a":    map[string]any{"name": "A"},
		"b":    map[string]any{"name": "B"},
		"gone": map[string]any{"name": "Gone"},
	})
	updateMailboxes(t, alice, map[string]any{
		archive:  map[string]any{"name": "Old mail"},
		ids["a"]: map[string]any{"name": "A renamed"},
	})
	res := mailboxSet(t, alice, map[string]any{"destroy": []string{junk, ids["gone"]}})
	if len(strs(res["destroyed"])) != 2 {
		t.Fatalf("destroy: %v", res)
	}
	s1 := alice.State(t, alice.Account, "Mailbox")

	res = alice.One(t, "Mailbox/changes", map[string]any{"accountId": alice.Account, "sinceState": s0})
	if got := strs(res["created"]); !sameSet(got, []string{ids["a"], ids["b"]}) {
		t.Errorf("created = %v, want %s %s", got, ids["a"], ids["b"])
	}
	if got := strs(res["updated"]); !slices.Equal(got, []string{archive}) {
		t.Errorf("updated = %v, want [%s]", got, archive)
	}
	if got := strs(res["destroyed"]); !slices.Equal(got, []string{junk}) {
		t.Errorf("destroyed = %v, want [%s]", got, junk)
	}
	if res["newState"] != s1 || res["hasMoreChanges"] != false {
		t.Errorf("newState %v hasMoreChanges %v, want %s false", res["newState"], res["hasMoreChanges"], s1)
	}

	// Nothing changed since the current state.
	res = alice.One(t, "Mailbox/changes", map[string]any{"accountId": alice.Account, "sinceState": s1})
	if len(strs(res["created"]))+len(strs(res["updated"]))+len(strs(res["destroyed"])) != 0 || res["newState"] != s1 {
		t.Errorf("changes since the current state: %v", res)
	}
}

// makeMailboxTree creates, beside the default mailboxes, Lists (unsubscribed)
// with children "Go Nuts" and Rust, and "Inbox Rules" under the inbox. It
// returns every id by name.
func makeMailboxTree(t *testing.T, c *jmaptest.Client) map[string]string {
	t.Helper()
	inbox := mailboxByRole(t, c, "inbox")
	ids := createMailboxes(t, c, map[string]any{
		"a": map[string]any{"name": "Lists", "isSubscribed": false},
		"b": map[string]any{"name": "Go Nuts", "parentId": "#a"},
		"c": map[string]any{"name": "Rust", "parentId": "#a"},
		"d": map[string]any{"name": "Inbox Rules", "parentId": inbox},
	})
	byName := map[string]string{}
	for id, m := range mailboxes(t, c) {
		byName[m["name"].(string)] = id
	}
	if byName["Lists"] != ids["a"] || byName["Inbox Rules"] != ids["d"] {
		t.Fatalf("tree: %v", byName)
	}
	return byName
}

// RFC 8621 §2.3: each FilterCondition property (parentId, name, role,
// hasAnyRole, isSubscribed) matches as described, and RFC 8620 §5.5's AND,
// OR and NOT combine conditions.
func TestMailboxQuery_Filters(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	ids := makeMailboxTree(t, alice)
	names := func(ns ...string) []string {
		out := make([]string, len(ns))
		for i, n := range ns {
			out[i] = ids[n]
		}
		return out
	}
	defaults := names("Inbox", "Drafts", "Sent", "Archive", "Junk", "Trash")
	others := names("Lists", "Go Nuts", "Rust", "Inbox Rules")
	for _, tc := range []struct {
		name   string
		filter any
		want   []string
	}{
		{"parentId null", map[string]any{"parentId": nil}, append(slices.Clone(defaults), ids["Lists"])},
		{"parentId id", map[string]any{"parentId": ids["Lists"]}, names("Go Nuts", "Rust")},
		{"name contains", map[string]any{"name": "Inbox"}, names("Inbox", "Inbox Rules")},
		{"name contains inside", map[string]any{"name": "ust"}, names("Rust")},
		{"role null", map[string]any{"role": nil}, others},
		{"role value", map[string]any{"role": "trash"}, names("Trash")},
		{"hasAnyRole true", map[string]any{"hasAnyRole": true}, defaults},
		{"hasAnyRole false", map[string]any{"hasAnyRole": false}, others},
		{"isSubscribed false", map[string]any{"isSubscribed": false}, names("Lists")},
		{"isSubscribed true", map[string]any{"isSubscribed": true}, append(slices.Clone(defaults), names("Go Nuts", "Rust", "Inbox Rules")...)},
		{"two conditions", map[string]any{"parentId": nil, "hasAnyRole": false}, names("Lists")},
		{"empty", map[string]any{}, append(slices.Clone(defaults), others...)},
		{"AND", map[string]any{"operator": "AND", "conditions": []any{
			map[string]any{"name": "Inbox"}, map[string]any{"role": nil}}}, names("Inbox Rules")},
		{"OR", map[string]any{"operator": "OR", "conditions": []any{
			map[string]any{"role": "inbox"}, map[string]any{"role": "trash"}}}, names("Inbox", "Trash")},
		{"NOT", map[string]any{"operator": "NOT", "conditions": []any{
			map[string]any{"hasAnyRole": true}, map[string]any{"parentId": ids["Lists"]}}}, names("Lists", "Inbox Rules")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := queryIDs(t, alice, map[string]any{"filter": tc.filter})
			if !sameSet(got, tc.want) {
				t.Errorf("ids = %v, want %v", got, tc.want)
			}
		})
	}
}

// RFC 8621 §2.3: "sortOrder" and "name" MUST be supported for sorting, and
// comparators apply in turn (RFC 8620 §5.5).
func TestMailboxQuery_SortBySortOrderThenName(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	ids := createMailboxes(t, alice, map[string]any{
		"b": map[string]any{"name": "banana", "sortOrder": 10},
		"a": map[string]any{"name": "Apple", "sortOrder": 10},
		"c": map[string]any{"name": "cherry", "sortOrder": 5},
		"d": map[string]any{"name": "date", "sortOrder": 10},
	})
	filter := map[string]any{"hasAnyRole": false}
	got := queryIDs(t, alice, map[string]any{"filter": filter, "sort": []any{
		map[string]any{"property": "sortOrder"}, map[string]any{"property": "name"}}})
	if want := []string{ids["c"], ids["a"], ids["b"], ids["d"]}; !slices.Equal(got, want) {
		t.Errorf("sortOrder, name: %v, want %v", got, want)
	}
	got = queryIDs(t, alice, map[string]any{"filter": filter, "sort": []any{
		map[string]any{"property": "sortOrder", "isAscending": false}, map[string]any{"property": "name"}}})
	if want := []string{ids["a"], ids["b"], ids["d"], ids["c"]}; !slices.Equal(got, want) {
		t.Errorf("sortOrder descending, name: %v, want %v", got, want)
	}
	got = queryIDs(t, alice, map[string]any{"filter": filter, "sort": []any{
		map[string]any{"property": "name", "isAscending": false}}})
	if want := []string{ids["d"], ids["c"], ids["b"], ids["a"]}; !slices.Equal(got, want) {
		t.Errorf("name descending: %v, want %v", got, want)
	}
}

// RFC 8621 §2.3 sortAsTree: "If A is an ancestor of B, it always comes first
// regardless of the sort comparators", and Mailboxes not sharing a parent
// compare by their nearest ancestors that do, so each set of siblings is
// sorted by the comparators and followed by its descendants.
func TestMailboxQuery_SortAsTree(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	ids := createMailboxes(t, alice, map[string]any{
		"a":  map[string]any{"name": "Root", "sortOrder": 0},
		"b":  map[string]any{"name": "b", "sortOrder": 1, "parentId": "#a"},
		"c":  map[string]any{"name": "a", "sortOrder": 1, "parentId": "#a"},
		"d":  map[string]any{"name": "c", "sortOrder": 0, "parentId": "#a"},
		"e":  map[string]any{"name": "a2", "sortOrder": 0, "parentId": "#c"},
		"f":  map[string]any{"name": "a1", "sortOrder": 0, "parentId": "#c"},
		"g":  map[string]any{"name": "c1", "sortOrder": 3, "parentId": "#d"},
		"h":  map[string]any{"name": "Zulu", "sortOrder": 100},
		"i":  map[string]any{"name": "Zulu child", "sortOrder": 0, "parentId": "#h"},
		"j":  map[string]any{"name": "deep", "sortOrder": 0, "parentId": "#f"},
		"k":  map[string]any{"name": "b1", "sortOrder": 0, "parentId": "#b"},
		"l0": map[string]any{"name": "Alpha", "sortOrder": 50},
	})
	all := mailboxes(t, alice)
	role := func(r string) string {
		for id, m := range all {
			if m["role"] == r {
				return id
			}
		}
		t.Fatalf("no %s", r)
		return ""
	}
	sort := []any{map[string]any{"property": "sortOrder"}, map[string]any{"property": "name"}}
	got := queryIDs(t, alice, map[string]any{"sortAsTree": true, "sort": sort})
	// Root (0): c (0) > c1; a (1, "a" < "b") > a1 > deep, a2; b (1) > b1.
	// Then the default mailboxes 1..6, Alpha (50), Zulu (100) > Zulu child.
	want := []string{ids["a"], ids["d"], ids["g"], ids["c"], ids["f"], ids["j"], ids["e"], ids["b"], ids["k"],
		role("inbox"), role("drafts"), role("sent"), role("archive"), role("junk"), role("trash"),
		ids["l0"], ids["h"], ids["i"]}
	if !slices.Equal(got, want) {
		t.Errorf("sortAsTree:\n got %v\nwant %v", got, want)
	}

	// Without sortAsTree the same comparators ignore the tree.
	flat := queryIDs(t, alice, map[string]any{"sort": sort})
	if slices.Equal(flat, want) || flat[0] != ids["f"] {
		t.Errorf("flat sort = %v, want a1 (sortOrder 0, first by name) first", flat)
	}
}

// RFC 8621 §2.3 filterAsTree: "a Mailbox is only included in the query if
// all its ancestors are also included in the query according to the
// filter".
func TestMailboxQuery_FilterAsTree(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	ids := createMailboxes(t, alice, map[string]any{
		"a": map[string]any{"name": "Team"},
		"b": map[string]any{"name": "Team Beta", "parentId": "#a"},
		"c": map[string]any{"name": "Projects"},
		"d": map[string]any{"name": "Alpha Team", "parentId": "#c"},
		"e": map[string]any{"name": "Notes", "parentId": "#a"},
		"f": map[string]any{"name": "Team Gamma", "parentId": "#e"},
	})
	filter := map[string]any{"name": "Team"}
	got := queryIDs(t, alice, map[string]any{"filter": filter})
	if want := []string{ids["a"], ids["b"], ids["d"], ids["f"]}; !sameSet(got, want) {
		t.Errorf("filter: %v, want %v", got, want)
	}
	got = queryIDs(t, alice, map[string]any{"filter": filter, "filterAsTree": true})
	if want := []string{ids["a"], ids["b"]}; !sameSet(got, want) {
		t.Errorf("filterAsTree: %v, want %v (Alpha Team's parent and Team Gamma's parent do not match)", got, want)
	}
	got = queryIDs(t, alice, map[string]any{"filter": filter, "filterAsTree": true, "sortAsTree": true,
		"sort": []any{map[string]any{"property": "name"}}})
	if want := []string{ids["a"], ids["b"]}; !slices.Equal(got, want) {
		t.Errorf("filterAsTree and sortAsTree: %v, want %v", got, want)
	}
}

// RFC 8620 §5.5: total is returned only with calculateTotal; position and
// limit (and anchor with anchorOffset) cut the window, and position is the
// index of the first id returned. A negative limit is invalidArguments.
func TestMailboxQuery_TotalPositionLimit(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	all := mailboxes(t, alice)
	byOrder := make([]string, 0, len(all))
	for id := range all {
		byOrder = append(byOrder, id)
	}
	slices.SortFunc(byOrder, func(a, b string) int {
		return int(all[a]["sortOrder"].(float64) - all[b]["sortOrder"].(float64))
	})
	sort := []any{map[string]any{"property": "sortOrder"}}
	q := mailboxQuery(t, alice, map[string]any{"sort": sort})
	if _, ok := q["total"]; ok {
		t.Errorf("total %v without calculateTotal", q["total"])
	}
	if got := strs(q["ids"]); !slices.Equal(got, byOrder) || q["position"] != float64(0) {
		t.Errorf("ids %v position %v, want %v 0", got, q["position"], byOrder)
	}
	if q["canCalculateChanges"] != true {
		t.Errorf("canCalculateChanges = %v", q["canCalculateChanges"])
	}
	for _, tc := range []struct {
		name    string
		args    map[string]any
		want    []string
		wantPos float64
	}{
		{"position and limit", map[string]any{"position": 2, "limit": 2}, byOrder[2:4], 2},
		{"negative position", map[string]any{"position": -2}, byOrder[4:], 4},
		{"limit 0", map[string]any{"limit": 0}, []string{}, 0},
		{"anchor", map[string]any{"anchor": byOrder[2], "anchorOffset": 1, "limit": 2}, byOrder[3:5], 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := map[string]any{"sort": sort, "calculateTotal": true}
			for k, v := range tc.args {
				args[k] = v
			}
			q := mailboxQuery(t, alice, args)
			if got := strs(q["ids"]); !slices.Equal(got, tc.want) || q["position"] != tc.wantPos || q["total"] != float64(6) {
				t.Errorf("ids %v position %v total %v, want %v %v 6", got, q["position"], q["total"], tc.want, tc.wantPos)
			}
		})
	}
	before := alice.State(t, alice.Account, "Mailbox")
	if typ := alice.Error(t, "Mailbox/query", map[string]any{"accountId": alice.Account, "limit": -1}); typ != "invalidArguments" {
		t.Errorf("limit -1: %s, want invalidArguments", typ)
	}
	if typ := alice.Error(t, "Mailbox/query", map[string]any{"accountId": alice.Account, "anchor": "nosuch"}); typ != "anchorNotFound" {
		t.Errorf("unknown anchor: %s, want anchorNotFound", typ)
	}
	wantMailboxState(t, alice, before)
}

// applyQueryChanges applies a /queryChanges answer to old results as RFC
// 8620 §5.6 tells a client to: drop the removed ids, then insert each added
// id at its index, in index order.
func applyQueryChanges(old []string, res map[string]any) []string {
	removed := strs(res["removed"])
	out := slices.DeleteFunc(slices.Clone(old), func(id string) bool { return slices.Contains(removed, id) })
	added, _ := res["added"].([]any)
	type item struct {
		id  string
		idx int
	}
	items := make([]item, 0, len(added))
	for _, a := range added {
		m := a.(map[string]any)
		items = append(items, item{str(m["id"]), int(m["index"].(float64))})
	}
	slices.SortFunc(items, func(a, b item) int { return a.idx - b.idx })
	for _, it := range items {
		out = slices.DeleteFunc(out, func(id string) bool { return id == it.id })
		out = slices.Insert(out, min(it.idx, len(out)), it.id)
	}
	return out
}

// RFC 8621 §2.4, RFC 8620 §5.6: after a create and a destroy,
// Mailbox/queryChanges reports the destroyed id removed and the new one
// added at its index, so applying it to the old results gives the new ones;
// newQueryState is the queryState a new query returns.
func TestMailboxQueryChanges_CreateAndDestroy(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	junk := mailboxByRole(t, alice, "junk")
	for _, tc := range []struct {
		name string
		args map[string]any
	}{
		{"by name", map[string]any{"sort": []any{map[string]any{"property": "name"}}}},
		{"filtered", map[string]any{"filter": map[string]any{"parentId": nil}, "sort": []any{map[string]any{"property": "name"}}}},
		{"as tree", map[string]any{"sortAsTree": true, "filterAsTree": true, "sort": []any{map[string]any{"property": "sortOrder"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := func() map[string]any {
				a := map[string]any{"accountId": alice.Account}
				for k, v := range tc.args {
					a[k] = v
				}
				return a
			}
			q0 := mailboxQuery(t, alice, args())
			old := strs(q0["ids"])
			id := createMailbox(t, alice, map[string]any{"name": "Kept " + tc.name})
			if tc.name == "by name" {
				res := mailboxSet(t, alice, map[string]any{"destroy": []string{junk}})
				if !slices.Equal(strs(res["destroyed"]), []string{junk}) {
					t.Fatalf("destroy junk: %v", res)
				}
			}
			q1 := mailboxQuery(t, alice, args())
			a := args()
			a["sinceQueryState"] = q0["queryState"]
			a["calculateTotal"] = true
			qc := alice.One(t, "Mailbox/queryChanges", a)
			if qc["oldQueryState"] != q0["queryState"] || qc["newQueryState"] != q1["queryState"] {
				t.Errorf("oldQueryState %v newQueryState %v, want %v %v", qc["oldQueryState"], qc["newQueryState"], q0["queryState"], q1["queryState"])
			}
			if qc["total"] != float64(len(strs(q1["ids"]))) {
				t.Errorf("total = %v, want %d", qc["total"], len(strs(q1["ids"])))
			}
			var addedNew bool
			for _, x := range qc["added"].([]any) {
				addedNew = addedNew || x.(map[string]any)["id"] == id
			}
			if !addedNew {
				t.Errorf("added = %v, want %s among them", qc["added"], id)
			}
			if tc.name == "by name" && !slices.Contains(strs(qc["removed"]), junk) {
				t.Errorf("removed = %v, want %s among them", qc["removed"], junk)
			}
			if got, want := applyQueryChanges(old, qc), strs(q1["ids"]); !slices.Equal(got, want) {
				t.Errorf("old results with the changes applied:\n got %v\nwant %v", got, want)
			}
		})
	}
}

// RFC 8620 §5.5: a filter the server cannot handle answers unsupportedFilter
// and a sort it cannot handle answers unsupportedSort, in /query and
// /queryChanges alike; nothing changes.
func TestMailboxQuery_UnsupportedFilterAndSort(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	before := alice.State(t, alice.Account, "Mailbox")
	for _, tc := range []struct {
		name string
		args map[string]any
		want string
	}{
		{"unknown condition", map[string]any{"filter": map[string]any{"colour": "red"}}, "unsupportedFilter"},
		{"unknown operator", map[string]any{"filter": map[string]any{"operator": "XOR", "conditions": []any{}}}, "unsupportedFilter"},
		{"unknown nested", map[string]any{"filter": map[string]any{"operator": "AND", "conditions": []any{
			map[string]any{"role": "inbox"}, map[string]any{"hasEmail": true}}}}, "unsupportedFilter"},
		{"wrong type", map[string]any{"filter": map[string]any{"hasAnyRole": "yes"}}, "unsupportedFilter"},
		{"unknown property", map[string]any{"sort": []any{map[string]any{"property": "totalEmails"}}}, "unsupportedSort"},
		{"unknown collation", map[string]any{"sort": []any{map[string]any{"property": "name", "collation": "i;bogus"}}}, "unsupportedSort"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, m := range []string{"Mailbox/query", "Mailbox/queryChanges"} {
				args := map[string]any{"accountId": alice.Account}
				for k, v := range tc.args {
					args[k] = v
				}
				if m == "Mailbox/queryChanges" {
					args["sinceQueryState"] = before
				}
				if typ := alice.Error(t, m, args); typ != tc.want {
					t.Errorf("%s: %s, want %s", m, typ, tc.want)
				}
			}
		})
	}
	wantMailboxState(t, alice, before)
}

// RFC 8621 §2.4 with §2.3: under sortAsTree and filterAsTree a change to a
// parent moves or hides its unchanged descendants, and /queryChanges must
// still turn the old results into the new ones (RFC 8620 §5.6).
func TestMailboxQueryChanges_TreeFollowsParent(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	ids := createMailboxes(t, alice, map[string]any{
		"p": map[string]any{"name": "A team"},
		"c": map[string]any{"name": "Team child", "parentId": "#p"},
		"g": map[string]any{"name": "Team grandchild", "parentId": "#c"},
	})
	byName := []any{map[string]any{"property": "name"}}
	for _, tc := range []struct {
		name   string
		args   map[string]any
		rename string
	}{
		// The parent sorts last now, and its subtree with it.
		{"sortAsTree", map[string]any{"sortAsTree": true, "sort": byName}, "Zz team"},
		// The parent no longer matches, so its subtree drops out.
		{"filterAsTree", map[string]any{"filterAsTree": true, "filter": map[string]any{"name": "team"}, "sort": byName}, "Elsewhere"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := func() map[string]any {
				a := map[string]any{"accountId": alice.Account}
				for k, v := range tc.args {
					a[k] = v
				}
				return a
			}
			q0 := mailboxQuery(t, alice, args())
			updateMailboxes(t, alice, map[string]any{ids["p"]: map[string]any{"name": tc.rename}})
			q1 := mailboxQuery(t, alice, args())
			if slices.Equal(strs(q0["ids"]), strs(q1["ids"])) {
				t.Fatalf("the rename did not change the results %v", q1["ids"])
			}
			a := args()
			a["sinceQueryState"] = q0["queryState"]
			qc := alice.One(t, "Mailbox/queryChanges", a)
			if got, want := applyQueryChanges(strs(q0["ids"]), qc), strs(q1["ids"]); !slices.Equal(got, want) {
				t.Errorf("old results with the changes applied:\n got %v\nwant %v\n(removed %v added %v)",
					got, want, qc["removed"], qc["added"])
			}
		})
	}
}
