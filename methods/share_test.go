package methods_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/jmapd/jmapd/internal/admin"
	"github.com/jmapd/jmapd/jmaptest"
	"github.com/jmapd/jmapd/server"
	"github.com/jmapd/jmapd/store"
)

// sharedAccount returns the account id of the principal with email.
func sharedAccount(t *testing.T, srv *jmaptest.Server, email string) string {
	t.Helper()
	var acct store.AccountID
	err := srv.Store().View(context.Background(), func(tx store.Tx) error {
		p, err := tx.Principals().ByEmail(email)
		if err == nil {
			acct = p.Account
		}
		return err
	})
	if err != nil || acct == "" {
		t.Fatalf("account of %s: %v", email, err)
	}
	return string(acct)
}

// capShare is the mailbox sharing capability (draft-ietf-jmap-mail-sharing
// §1.2.1).
const capShare = "urn:ietf:params:jmap:mail:share"

// usingShare declares mail and mail sharing.
var usingShare = append(slices.Clone(jmaptest.Using), capShare)

// in runs one call in another account and returns its response arguments
// (or the error's), with the call's name ("error" for a method error).
func in(t *testing.T, c *jmaptest.Client, acct, name string, args map[string]any) (string, map[string]any) {
	t.Helper()
	args["accountId"] = acct
	r := c.CallUsing(t, usingShare, jmaptest.Call{Name: name, Args: args})
	if len(r.MethodResponses) != 1 {
		t.Fatalf("%s: %d responses", name, len(r.MethodResponses))
	}
	return r.MethodResponses[0].Name, r.MethodResponses[0].Args
}

// ok runs one call in acct and fails the test unless it succeeded.
func ok(t *testing.T, c *jmaptest.Client, acct, name string, args map[string]any) map[string]any {
	t.Helper()
	n, res := in(t, c, acct, name, args)
	if n != name {
		t.Fatalf("%s in %s: %v", name, acct, res)
	}
	return res
}

// setErr runs one /set update or destroy of id in acct and returns the
// SetError type ("" when it succeeded).
func setErr(t *testing.T, c *jmaptest.Client, acct, name string, args map[string]any, id string) string {
	t.Helper()
	res := ok(t, c, acct, name, args)
	for _, k := range []string{"notUpdated", "notDestroyed", "notCreated"} {
		if e := member(res[k], id); e != nil {
			return str(e["type"])
		}
	}
	return ""
}

// shareFixture is an owner with mail in the Inbox and in a private folder,
// and a second user.
type shareFixture struct {
	srv              *jmaptest.Server
	alice, bob       *jmaptest.Client
	inbox, private   string
	inboxA, inboxB   string // emails in alice's Inbox
	privateMail      string // email only in Private
	inboxAndPrivate  string // email in both
	aliceInboxThread string
}

func newShareFixture(t *testing.T) *shareFixture {
	t.Helper()
	srv := jmaptest.Start(t)
	f := &shareFixture{srv: srv, alice: srv.NewUser(t, "alice@example.test"), bob: srv.NewUser(t, "bob@example.test")}
	f.inbox = mailboxByRole(t, f.alice, "inbox")
	f.private = createMailboxes(t, f.alice, map[string]any{"p": map[string]any{"name": "Private"}})["p"]
	f.inboxA = importIn(t, f.alice, simpleMessage("a@x", "Lunch", "", "Shall we?"), f.inbox)
	f.inboxB = importIn(t, f.alice, simpleMessage("b@x", "Budget", "", "Numbers."), f.inbox, "$seen")
	f.privateMail = importIn(t, f.alice, simpleMessage("p@x", "Diary", "", "Secret."), f.private)
	res := importRaw(t, f.alice, simpleMessage("both@x", "Both", "", "In two."), map[string]any{
		"mailboxIds": boolSet(f.inbox, f.private)})
	f.inboxAndPrivate = str(res["id"])
	return f
}

// subscribe makes c subscribe to a mailbox of acct.
func subscribe(t *testing.T, c *jmaptest.Client, acct, mbox string) {
	t.Helper()
	if e := setErr(t, c, acct, "Mailbox/set", map[string]any{"update": map[string]any{mbox: map[string]any{"isSubscribed": true}}}, mbox); e != "" {
		t.Fatalf("subscribe to %s: %s", mbox, e)
	}
}

func TestShare_SubscriptionDecidesTheSession(t *testing.T) {
	f := newShareFixture(t)
	f.srv.Admin(t, "share", "alice@example.test", "--with", "bob@example.test", "--rights", "read", "--mailbox", "Inbox")

	// RFC 9670 §1.4: not in the session before a subscription, yet calls
	// on the account work.
	if _, listed := f.bob.Session(t).Accounts[f.alice.Account]; listed {
		t.Fatal("the shared account is in the session before Bob subscribed to anything")
	}
	before := f.bob.Session(t).State
	got := ok(t, f.bob, f.alice.Account, "Mailbox/get", map[string]any{"ids": nil})
	list, _ := got["list"].([]any)
	if len(list) != 1 {
		t.Fatalf("Bob sees %d mailboxes of Alice's, want the Inbox alone: %v", len(list), list)
	}
	mb := list[0].(map[string]any)
	if mb["id"] != f.inbox || mb["isSubscribed"] != false {
		t.Errorf("shared Inbox = %v, want the Inbox with isSubscribed false (RFC 8621 §2)", mb)
	}
	rights := mb["myRights"].(map[string]any)
	for k, v := range rights {
		if want := k == "mayReadItems"; v != want {
			t.Errorf("myRights.%s = %v, want %v for the read level", k, v, want)
		}
	}
	if _, ok := rights["mayShare"]; !ok {
		t.Error("myRights lacks mayShare although the client uses " + capShare)
	}

	subscribe(t, f.bob, f.alice.Account, f.inbox)
	s := f.bob.Session(t)
	a, listed := s.Accounts[f.alice.Account]
	if !listed {
		t.Fatal("the shared account is not in the session after Bob subscribed")
	}
	if s.State == before {
		t.Error("the session state did not change when the account appeared")
	}
	if a.IsPersonal || !a.IsReadOnly {
		t.Errorf("shared account isPersonal=%v isReadOnly=%v, want false and true for read only", a.IsPersonal, a.IsReadOnly)
	}
	if a.Name != "alice@example.test" {
		t.Errorf("account name %q", a.Name)
	}
	// Alice's own subscription is hers alone.
	if m := mailbox(t, f.alice, f.inbox); m["isSubscribed"] != true {
		t.Error("Bob's subscription changed Alice's isSubscribed")
	}
	// Unsubscribing from the last mailbox takes the account out again.
	if e := setErr(t, f.bob, f.alice.Account, "Mailbox/set", map[string]any{"update": map[string]any{f.inbox: map[string]any{"isSubscribed": false}}}, f.inbox); e != "" {
		t.Fatal(e)
	}
	if _, listed := f.bob.Session(t).Accounts[f.alice.Account]; listed {
		t.Error("the account stays in the session after the last unsubscribe")
	}
}

func TestShare_ReaderSeesOnlyWhatIsShared(t *testing.T) {
	f := newShareFixture(t)
	f.srv.Admin(t, "share", "alice@example.test", "--with", "bob@example.test", "--rights", "read", "--mailbox", "inbox")
	acct := f.alice.Account

	q := ok(t, f.bob, acct, "Email/query", map[string]any{"sort": []any{map[string]any{"property": "receivedAt"}}, "calculateTotal": true})
	ids := strs(q["ids"])
	slices.Sort(ids)
	want := []string{f.inboxA, f.inboxB, f.inboxAndPrivate}
	slices.Sort(want)
	if !slices.Equal(ids, want) || q["total"] != float64(3) {
		t.Errorf("Email/query without filter = %v (total %v), want the Inbox's %v", ids, q["total"], want)
	}
	q = ok(t, f.bob, acct, "Email/query", map[string]any{"filter": map[string]any{"inMailbox": f.private}, "calculateTotal": true})
	if len(strs(q["ids"])) != 0 || q["total"] != float64(0) {
		t.Errorf("Email/query in the private mailbox = %v", q)
	}
	q = ok(t, f.bob, acct, "Email/query", map[string]any{"filter": map[string]any{"text": "Secret"}})
	if len(strs(q["ids"])) != 0 {
		t.Errorf("a text search finds the private email: %v", q["ids"])
	}

	g := ok(t, f.bob, acct, "Email/get", map[string]any{"ids": []string{f.inboxA, f.privateMail, f.inboxAndPrivate},
		"properties": []string{"mailboxIds", "subject", "blobId"}})
	if nf := strs(g["notFound"]); !slices.Equal(nf, []string{f.privateMail}) {
		t.Errorf("notFound = %v, want the private email alone", nf)
	}
	for _, e := range g["list"].([]any) {
		m := e.(map[string]any)
		mb := m["mailboxIds"].(map[string]any)
		if len(mb) != 1 || mb[f.inbox] != true {
			t.Errorf("email %v shows mailboxIds %v, want only the Inbox (RFC 8621 §9.5)", m["id"], mb)
		}
	}
	// The private email's blob cannot be downloaded; the shared one's can.
	ga := getEmail(t, f.alice, f.privateMail, map[string]any{"properties": []string{"blobId"}})
	resp, _ := f.bob.Do(t, "GET", "/jmap/download/"+acct+"/"+str(ga["blobId"])+"/m.eml", nil, nil)
	if resp.StatusCode != 404 {
		t.Errorf("download of a private blob: %d, want 404", resp.StatusCode)
	}
	shared := getEmail(t, f.alice, f.inboxA, map[string]any{"properties": []string{"blobId"}})
	resp, body := f.bob.Do(t, "GET", "/jmap/download/"+acct+"/"+str(shared["blobId"])+"/m.eml", nil, nil)
	if resp.StatusCode != 200 || len(body) == 0 {
		t.Errorf("download of a shared blob: %d", resp.StatusCode)
	}
	bg := ok(t, f.bob, acct, "Blob/get", map[string]any{"ids": []string{str(ga["blobId"])}})
	if nf := strs(bg["notFound"]); len(nf) != 1 {
		t.Errorf("Blob/get of a private blob: %v", bg)
	}

	// Thread/get lists only readable emails; a private thread is not found.
	pt := getEmail(t, f.alice, f.privateMail, map[string]any{"properties": []string{"threadId"}})
	tg := ok(t, f.bob, acct, "Thread/get", map[string]any{"ids": []string{str(pt["threadId"])}})
	if len(strs(tg["notFound"])) != 1 {
		t.Errorf("Thread/get of a private thread: %v", tg)
	}
	sn := ok(t, f.bob, acct, "SearchSnippet/get", map[string]any{"emailIds": []string{f.privateMail, f.inboxA},
		"filter": map[string]any{"text": "Lunch"}})
	if nf := strs(sn["notFound"]); !slices.Equal(nf, []string{f.privateMail}) {
		t.Errorf("SearchSnippet/get notFound = %v", nf)
	}

	// A read-only grantee changes nothing.
	for _, tc := range []struct {
		name string
		args map[string]any
		id   string
	}{
		{"Email/set", map[string]any{"update": map[string]any{f.inboxA: map[string]any{"keywords/$seen": true}}}, f.inboxA},
		{"Email/set", map[string]any{"destroy": []string{f.inboxA}}, f.inboxA},
		{"Mailbox/set", map[string]any{"update": map[string]any{f.inbox: map[string]any{"name": "Renamed"}}}, f.inbox},
		{"Mailbox/set", map[string]any{"destroy": []string{f.inbox}}, f.inbox},
	} {
		n, res := in(t, f.bob, acct, tc.name, tc.args)
		if n == "error" {
			if res["type"] != "accountReadOnly" {
				t.Errorf("%s %v: %v", tc.name, tc.args, res)
			}
			continue
		}
		for _, k := range []string{"notUpdated", "notDestroyed"} {
			if e := member(res[k], tc.id); e != nil && e["type"] != "forbidden" {
				t.Errorf("%s %v: %v, want forbidden", tc.name, tc.args, e)
			}
		}
		if hasKey(res["updated"], tc.id) || slices.Contains(strs(res["destroyed"]), tc.id) {
			t.Errorf("%s %v succeeded for a reader", tc.name, tc.args)
		}
	}
	// The private mailbox does not exist for Bob: not found, not forbidden.
	if e := setErr(t, f.bob, acct, "Mailbox/set", map[string]any{"destroy": []string{f.private}}, f.private); e != "notFound" {
		t.Errorf("destroying an invisible mailbox: %q, want notFound (draft §3.4)", e)
	}
}

func TestShare_Levels(t *testing.T) {
	tests := []struct {
		level                            string
		seen, flag, move, destroy, child bool
		share                            bool
	}{
		{"read", false, false, false, false, false, false},
		{"readAdvanced", true, true, false, false, false, false},
		{"write", true, true, true, true, true, false},
		{"manage", true, true, true, true, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.level, func(t *testing.T) {
			srv := jmaptest.Start(t)
			alice, bob := srv.NewUser(t, "alice@example.test"), srv.NewUser(t, "bob@example.test")
			carol := srv.NewUser(t, "carol@example.test")
			inbox, archive := mailboxByRole(t, alice, "inbox"), mailboxByRole(t, alice, "archive")
			m1 := importIn(t, alice, simpleMessage("1@x", "One", "", "1"), inbox)
			m2 := importIn(t, alice, simpleMessage("2@x", "Two", "", "2"), inbox)
			srv.Admin(t, "share", "alice@example.test", "--with", "bob@example.test", "--rights", tc.level)
			acct := alice.Account
			subscribe(t, bob, acct, inbox)
			if a := bob.Session(t).Accounts[acct]; a == nil || a.IsReadOnly != (tc.level == "read") {
				t.Errorf("isReadOnly for %s: %+v", tc.level, a)
			}
			check := func(what string, allowed bool, name string, args map[string]any, id string) {
				t.Helper()
				n, res := in(t, bob, acct, name, args)
				var e string
				if n == "error" {
					e = str(res["type"])
				} else {
					for _, k := range []string{"notUpdated", "notDestroyed", "notCreated"} {
						if se := member(res[k], id); se != nil {
							e = str(se["type"])
						}
					}
				}
				switch {
				case allowed && e != "":
					t.Errorf("%s at %s: %s, want success", what, tc.level, e)
				case !allowed && e != "forbidden" && e != "accountReadOnly":
					t.Errorf("%s at %s: %q, want forbidden", what, tc.level, e)
				}
			}
			check("mark read", tc.seen, "Email/set", map[string]any{"update": map[string]any{m1: map[string]any{"keywords/$seen": true}}}, m1)
			// What Bob did is what Alice sees: keywords are shared.
			if e := getEmail(t, alice, m1, map[string]any{"properties": []string{"keywords"}}); (member(e, "keywords")["$seen"] == true) != tc.seen {
				t.Errorf("Alice sees keywords %v after Bob's mark read", e["keywords"])
			}
			check("flag", tc.flag, "Email/set", map[string]any{"update": map[string]any{m1: map[string]any{"keywords/$flagged": true}}}, m1)
			check("move", tc.move, "Email/set", map[string]any{"update": map[string]any{m2: map[string]any{
				"mailboxIds": map[string]any{archive: true}}}}, m2)
			check("destroy", tc.destroy, "Email/set", map[string]any{"destroy": []string{m1}}, m1)
			check("create a folder", tc.child, "Mailbox/set", map[string]any{"create": map[string]any{
				"k": map[string]any{"name": "Team", "parentId": inbox}}}, "k")
			check("share", tc.share, "Mailbox/set", map[string]any{"update": map[string]any{inbox: map[string]any{
				"shareWith/" + carol.Account: map[string]any{"mayReadItems": true}}}}, inbox)
			// Top-level folders are the owner's (RFC 8621 §1.3.1).
			check("create a top-level folder", false, "Mailbox/set", map[string]any{"create": map[string]any{
				"k": map[string]any{"name": "Top"}}}, "k")
		})
	}
}

func TestShare_SeenWithoutOtherKeywords(t *testing.T) {
	srv := jmaptest.Start(t)
	alice, bob := srv.NewUser(t, "alice@example.test"), srv.NewUser(t, "bob@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	m := importIn(t, alice, simpleMessage("1@x", "One", "", "1"), inbox)
	// maySetSeen alone, through shareWith (a rights object that matches no
	// level is kept as it is).
	res := alice.CallUsing(t, usingShare, jmaptest.Call{Name: "Mailbox/set", Args: map[string]any{
		"accountId": alice.Account, "update": map[string]any{inbox: map[string]any{
			"shareWith": map[string]any{bob.Account: map[string]any{"mayReadItems": true, "maySetSeen": true}}}}}})
	if !hasKey(res.MethodResponses[0].Args["updated"], inbox) {
		t.Fatalf("share: %v", res.MethodResponses[0].Args)
	}
	if e := setErr(t, bob, alice.Account, "Email/set", map[string]any{"update": map[string]any{m: map[string]any{"keywords/$seen": true}}}, m); e != "" {
		t.Errorf("maySetSeen alone: marking read answers %s", e)
	}
	if e := setErr(t, bob, alice.Account, "Email/set", map[string]any{"update": map[string]any{m: map[string]any{"keywords/$flagged": true}}}, m); e != "forbidden" {
		t.Errorf("maySetSeen alone: flagging answers %q, want forbidden", e)
	}
	sw := ok(t, alice, alice.Account, "Mailbox/get", map[string]any{"ids": []string{inbox}, "properties": []string{"shareWith"}})
	got := sw["list"].([]any)[0].(map[string]any)["shareWith"].(map[string]any)[bob.Account].(map[string]any)
	if got["maySetSeen"] != true || got["maySetKeywords"] != false || got["mayShare"] != false {
		t.Errorf("shareWith reports %v", got)
	}
}

func TestShare_ShareWithBadInput(t *testing.T) {
	srv := jmaptest.Start(t)
	alice, bob := srv.NewUser(t, "alice@example.test"), srv.NewUser(t, "bob@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	// Principals of another domain are not visible to Alice, so she cannot
	// probe for their ids through shareWith.
	eve := srv.NewUser(t, "eve@elsewhere.test")
	before := statesOf(t, alice)
	for name, sw := range map[string]any{
		"invisible principal": map[string]any{eve.Account: map[string]any{"mayReadItems": true}},
		"unknown principal":   map[string]any{"nobody": map[string]any{"mayReadItems": true}},
		"the owner":           map[string]any{alice.Account: map[string]any{"mayReadItems": true}},
		"unknown right":       map[string]any{bob.Account: map[string]any{"mayFly": true}},
		"non-boolean right":   map[string]any{bob.Account: map[string]any{"mayReadItems": "yes"}},
		"not an object":       []any{bob.Account},
		"rights not object":   map[string]any{bob.Account: true},
	} {
		e := setErr(t, alice, alice.Account, "Mailbox/set", map[string]any{"update": map[string]any{inbox: map[string]any{"shareWith": sw}}}, inbox)
		if e != "invalidProperties" {
			t.Errorf("%s: %q, want invalidProperties", name, e)
		}
	}
	wantUnchanged(t, alice, before)
	// Without the sharing capability shareWith does not exist (RFC 8620 §1.8).
	res := alice.One(t, "Mailbox/set", map[string]any{"accountId": alice.Account, "update": map[string]any{inbox: map[string]any{
		"shareWith": map[string]any{bob.Account: map[string]any{"mayReadItems": true}}}}})
	if e := member(res["notUpdated"], inbox); e == nil || e["type"] != "invalidProperties" {
		t.Errorf("shareWith without %s: %v", capShare, res)
	}
	g := alice.One(t, "Mailbox/get", map[string]any{"accountId": alice.Account, "ids": []string{inbox}})
	if hasKey(g["list"].([]any)[0], "shareWith") {
		t.Error("Mailbox/get shows shareWith to a client that did not opt in")
	}
}

func TestShare_Revoke(t *testing.T) {
	f := newShareFixture(t)
	acct := f.alice.Account
	f.srv.Admin(t, "share", "alice@example.test", "--with", "bob@example.test", "--rights", "readAdvanced")
	subscribe(t, f.bob, acct, f.inbox)
	mstate := ok(t, f.bob, acct, "Mailbox/get", map[string]any{"ids": []string{}})["state"]

	// Taking one mailbox away: it is destroyed for Bob in /changes.
	f.srv.Admin(t, "share", "alice@example.test", "--with", "bob@example.test", "--rights", "none", "--mailbox", "Private")
	ch := ok(t, f.bob, acct, "Mailbox/changes", map[string]any{"sinceState": mstate})
	if !slices.Contains(strs(ch["destroyed"]), f.private) {
		t.Errorf("Mailbox/changes after revoking Private: %v, want it destroyed", ch)
	}
	if slices.Contains(strs(ch["updated"]), f.private) || slices.Contains(strs(ch["created"]), f.private) {
		t.Errorf("Mailbox/changes still shows Private: %v", ch)
	}
	g := ok(t, f.bob, acct, "Email/get", map[string]any{"ids": []string{f.privateMail}})
	if len(strs(g["notFound"])) != 1 {
		t.Errorf("the private email is still readable after revocation: %v", g)
	}

	// Taking everything away: the account does not exist for Bob.
	f.srv.Admin(t, "share", "alice@example.test", "--with", "bob@example.test", "--rights", "none")
	n, res := in(t, f.bob, acct, "Mailbox/get", map[string]any{"ids": nil})
	if n != "error" || res["type"] != "accountNotFound" {
		t.Errorf("after revoking all: %s %v, want accountNotFound", n, res)
	}
	if _, listed := f.bob.Session(t).Accounts[acct]; listed {
		t.Error("the account is still in Bob's session")
	}
}

func TestShare_GroupGrantFollowsMembership(t *testing.T) {
	srv := jmaptest.Start(t)
	alice, bob := srv.NewUser(t, "alice@example.test"), srv.NewUser(t, "bob@example.test")
	srv.Admin(t, "group", "add", "team@example.test", "--member", "bob@example.test")
	srv.Admin(t, "share", "alice@example.test", "--with", "team@example.test", "--rights", "read", "--mailbox", "Inbox")
	inbox := mailboxByRole(t, alice, "inbox")
	if n, res := in(t, bob, alice.Account, "Mailbox/get", map[string]any{"ids": []string{inbox}}); n != "Mailbox/get" || len(res["list"].([]any)) != 1 {
		t.Fatalf("a member of the group does not reach the Inbox: %s %v", n, res)
	}
	srv.Admin(t, "group", "member", "remove", "team@example.test", "bob@example.test")
	if n, res := in(t, bob, alice.Account, "Mailbox/get", map[string]any{"ids": nil}); n != "error" || res["type"] != "accountNotFound" {
		t.Errorf("after leaving the group: %s %v, want accountNotFound", n, res)
	}
}

func TestShare_SharedMailboxFlagsSeenByAll(t *testing.T) {
	srv := jmaptest.Start(t)
	bob, carol := srv.NewUser(t, "bob@example.test"), srv.NewUser(t, "carol@example.test")
	srv.Admin(t, "shared", "add", "support@example.test")
	srv.Admin(t, "share", "support@example.test", "--with", "bob@example.test", "--rights", "write")
	srv.Admin(t, "share", "support@example.test", "--with", "carol@example.test", "--rights", "readAdvanced")
	acct := sharedAccount(t, srv, "support@example.test")
	bobView := ok(t, bob, acct, "Mailbox/query", map[string]any{"filter": map[string]any{"role": "inbox"}})
	inbox := strs(bobView["ids"])[0]
	// Bob puts a message in; Carol flags it; Bob sees the flag.
	up := ok(t, bob, acct, "Blob/upload", map[string]any{"create": map[string]any{"b": map[string]any{
		"data": []any{map[string]any{"data:asText": simpleMessage("s@x", "Printer", "", "It is broken.")}}, "type": "message/rfc822"}}})
	bid := str(member(up["created"], "b")["id"])
	imp := ok(t, bob, acct, "Email/import", map[string]any{"emails": map[string]any{"m": map[string]any{
		"blobId": bid, "mailboxIds": map[string]any{inbox: true}}}})
	id := str(member(imp["created"], "m")["id"])
	if id == "" {
		t.Fatalf("import into the shared mailbox: %v", imp)
	}
	if e := setErr(t, carol, acct, "Email/set", map[string]any{"update": map[string]any{id: map[string]any{"keywords/$flagged": true}}}, id); e != "" {
		t.Fatalf("Carol flags: %s", e)
	}
	g := ok(t, bob, acct, "Email/get", map[string]any{"ids": []string{id}, "properties": []string{"keywords"}})
	if member(g["list"].([]any)[0], "keywords")["$flagged"] != true {
		t.Errorf("Bob does not see Carol's flag: %v", g)
	}
	if e := setErr(t, carol, acct, "Email/set", map[string]any{"destroy": []string{id}}, id); e != "forbidden" {
		t.Errorf("Carol (readAdvanced) destroys: %q, want forbidden", e)
	}
}

func TestShare_CommandLineMailboxNames(t *testing.T) {
	srv := jmaptest.Start(t)
	alice, bob := srv.NewUser(t, "alice@example.test"), srv.NewUser(t, "bob@example.test")
	ids := createMailboxes(t, alice, map[string]any{"p": map[string]any{"name": "Projects"}, "o": map[string]any{"name": "Old"}})
	createMailboxes(t, alice, map[string]any{"y": map[string]any{"name": "2026", "parentId": ids["p"]}})
	createMailboxes(t, alice, map[string]any{"y": map[string]any{"name": "2026", "parentId": ids["o"]}})
	var out bytes.Buffer
	run := func(args ...string) error {
		out.Reset()
		return admin.Run(admin.WithSharer(context.Background(), server.Share), srv.Store(), args, strings.NewReader(""), &out)
	}
	if err := run("share", "alice@example.test", "--with", "bob@example.test", "--rights", "read", "--mailbox", "Nope"); err == nil ||
		!strings.Contains(err.Error(), "no such mailbox") {
		t.Errorf("unknown mailbox: %v", err)
	}
	if err := run("share", "alice@example.test", "--with", "bob@example.test", "--rights", "read", "--mailbox", "2026"); err == nil ||
		!strings.Contains(err.Error(), "several mailboxes") {
		t.Errorf("ambiguous mailbox: %v", err)
	}
	if err := run("share", "alice@example.test", "--with", "bob@example.test", "--rights", "read", "--mailbox", "projects/2026"); err != nil {
		t.Fatalf("share by path: %v", err)
	}
	got := ok(t, bob, alice.Account, "Mailbox/get", map[string]any{"ids": nil, "properties": []string{"name", "parentId"}})
	list := got["list"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["name"] != "2026" || list[0].(map[string]any)["parentId"] != nil {
		t.Errorf("Bob sees %v, want Projects/2026 alone, at the top (its parent is hidden)", list)
	}
	// Bob got a notice in his Inbox.
	q := bob.One(t, "Email/query", map[string]any{"accountId": bob.Account, "filter": map[string]any{"inMailbox": mailboxByRole(t, bob, "inbox")}})
	ids2 := strs(q["ids"])
	if len(ids2) != 1 {
		t.Fatalf("Bob's Inbox holds %d messages, want the share notice", len(ids2))
	}
	e := getEmail(t, bob, ids2[0], map[string]any{"properties": []string{"subject"}})
	if s := str(e["subject"]); !strings.Contains(s, "2026") || !strings.Contains(s, "alice@example.test") {
		t.Errorf("notice subject %q", s)
	}
}

func TestEmailCopy_BetweenAccounts(t *testing.T) {
	f := newShareFixture(t)
	f.srv.Admin(t, "share", "alice@example.test", "--with", "bob@example.test", "--rights", "readAdvanced", "--mailbox", "Inbox")
	bobInbox := mailboxByRole(t, f.bob, "inbox")
	orig := getEmail(t, f.alice, f.inboxA, map[string]any{"properties": []string{"blobId", "size", "receivedAt", "keywords"}})
	r := f.bob.CallUsing(t, usingShare, jmaptest.Call{Name: "Email/copy", Args: map[string]any{
		"fromAccountId": f.alice.Account, "accountId": f.bob.Account,
		"create": map[string]any{
			"c1":      map[string]any{"id": f.inboxA, "mailboxIds": map[string]any{bobInbox: true}, "keywords": map[string]any{"$flagged": true}},
			"private": map[string]any{"id": f.privateMail, "mailboxIds": map[string]any{bobInbox: true}},
			"bad":     map[string]any{"id": f.inboxB, "mailboxIds": map[string]any{bobInbox: true}, "subject": "x"},
		},
		"onSuccessDestroyOriginal": true,
	}})
	if len(r.MethodResponses) != 2 || r.MethodResponses[0].Name != "Email/copy" || r.MethodResponses[1].Name != "Email/set" {
		t.Fatalf("responses %+v, want Email/copy then the implicit Email/set", r.MethodResponses)
	}
	res := r.MethodResponses[0].Args
	c1 := member(res["created"], "c1")
	if c1 == nil || c1["blobId"] != orig["blobId"] || c1["size"] != orig["size"] || str(c1["threadId"]) == "" || str(c1["id"]) == "" {
		t.Fatalf("created c1 = %v (original %v)", c1, orig)
	}
	if e := member(res["notCreated"], "private"); e == nil || e["type"] != "notFound" {
		t.Errorf("copying an email Bob cannot read: %v, want notFound", e)
	}
	if e := member(res["notCreated"], "bad"); e == nil || e["type"] != "invalidProperties" {
		t.Errorf("copying with subject: %v, want invalidProperties", e)
	}
	// Bob may not remove from Alice's Inbox: the implicit destroy fails.
	set := r.MethodResponses[1].Args
	if e := member(set["notDestroyed"], f.inboxA); e == nil || e["type"] != "forbidden" {
		t.Errorf("implicit destroy by a readAdvanced grantee: %v, want forbidden", set)
	}
	got := getEmail(t, f.bob, str(c1["id"]), map[string]any{"properties": []string{"mailboxIds", "keywords", "receivedAt", "subject"}})
	if member(got, "keywords")["$flagged"] != true || got["receivedAt"] != orig["receivedAt"] || got["subject"] != "Lunch" {
		t.Errorf("the copy: %v", got)
	}
	if b := downloadBlob(t, f.bob, str(c1["blobId"])); !strings.Contains(string(b), "Shall we?") {
		t.Errorf("the copy's blob in Bob's account: %q", b)
	}
	// Into Alice's Inbox Bob may not add.
	n, res2 := in(t, f.bob, f.alice.Account, "Email/copy", map[string]any{"fromAccountId": f.bob.Account,
		"create": map[string]any{"back": map[string]any{"id": c1["id"], "mailboxIds": map[string]any{f.inbox: true}}}})
	if n != "Email/copy" || member(res2["notCreated"], "back")["type"] != "forbidden" {
		t.Errorf("copy into a mailbox without mayAddItems: %s %v", n, res2)
	}
	n, res2 = in(t, f.bob, f.bob.Account, "Email/copy", map[string]any{"fromAccountId": f.bob.Account, "create": map[string]any{}})
	if n != "error" || res2["type"] != "invalidArguments" {
		t.Errorf("copy within one account: %s %v", n, res2)
	}
}

func TestShare_RightsChangeInvalidatesEmailChanges(t *testing.T) {
	f := newShareFixture(t)
	acct := f.alice.Account
	f.srv.Admin(t, "share", "alice@example.test", "--with", "bob@example.test", "--rights", "read")
	est := ok(t, f.bob, acct, "Email/get", map[string]any{"ids": []string{}})["state"]
	tst := ok(t, f.bob, acct, "Thread/get", map[string]any{"ids": []string{}})["state"]
	// Bob reads the whole account: he hears of a change to any email.
	updateEmail(t, f.alice, f.privateMail, map[string]any{"keywords/$flagged": true})
	ch := ok(t, f.bob, acct, "Email/changes", map[string]any{"sinceState": est})
	if n := len(strs(ch["created"])) + len(strs(ch["updated"])) + len(strs(ch["destroyed"])); n != 1 {
		t.Errorf("Email/changes for Bob = %v, want the flagged email's update alone", ch)
	}
	est = ch["newState"]
	f.srv.Admin(t, "share", "alice@example.test", "--with", "bob@example.test", "--rights", "none", "--mailbox", "Private")
	for typ, st := range map[string]any{"Email": est, "Thread": tst} {
		n, res := in(t, f.bob, acct, typ+"/changes", map[string]any{"sinceState": st})
		if n != "error" || res["type"] != "cannotCalculateChanges" {
			t.Errorf("%s/changes across a rights change: %s %v, want cannotCalculateChanges", typ, n, res)
		}
	}
	// Synchronising afresh gives a state /changes works from.
	est = ok(t, f.bob, acct, "Email/get", map[string]any{"ids": []string{}})["state"]
	ok(t, f.bob, acct, "Email/changes", map[string]any{"sinceState": est})
	// The private email's changes are not reported any more.
	updateEmail(t, f.alice, f.privateMail, map[string]any{"keywords/$flagged": nil})
	ch = ok(t, f.bob, acct, "Email/changes", map[string]any{"sinceState": est})
	for _, k := range []string{"created", "updated", "destroyed"} {
		if slices.Contains(strs(ch[k]), f.privateMail) {
			t.Errorf("Email/changes reveals the private email in %s: %v", k, ch)
		}
	}
	// Moving an email Bob could read out of his sight reports it destroyed.
	updateEmail(t, f.alice, f.inboxA, map[string]any{"mailboxIds": map[string]any{f.private: true}})
	ch = ok(t, f.bob, acct, "Email/changes", map[string]any{"sinceState": est})
	if !slices.Contains(strs(ch["destroyed"]), f.inboxA) {
		t.Errorf("an email moved out of Bob's sight: %v, want destroyed", ch)
	}
}

// Joining or leaving a group changes what a user sees in the accounts the
// group reaches although no grant moved: their /changes from before
// answer cannotCalculateChanges (RFC 8620 §5.2), and other members' do
// not.
func TestShare_MembershipChangeInvalidatesChanges(t *testing.T) {
	f := newShareFixture(t)
	acct := f.alice.Account
	carol := f.srv.NewUser(t, "carol@example.test")
	f.srv.Admin(t, "share", "alice@example.test", "--with", "bob@example.test", "--rights", "read", "--mailbox", "Private")
	f.srv.Admin(t, "group", "add", "team@example.test", "--member", "carol@example.test")
	f.srv.Admin(t, "share", "alice@example.test", "--with", "team@example.test", "--rights", "read", "--mailbox", "Inbox")
	states := func(c *jmaptest.Client) map[string]any {
		st := map[string]any{}
		for _, typ := range []string{"Mailbox", "Email", "Thread"} {
			st[typ] = ok(t, c, acct, typ+"/get", map[string]any{"ids": []string{}})["state"]
		}
		return st
	}
	expect := func(c *jmaptest.Client, who string, st map[string]any, want string) {
		t.Helper()
		for typ, s := range st {
			n, res := in(t, c, acct, typ+"/changes", map[string]any{"sinceState": s})
			got := ""
			if n == "error" {
				got = str(res["type"])
			} else if n != typ+"/changes" {
				got = n
			}
			if got != want {
				t.Errorf("%s: %s/changes = %s %v, want %s", who, typ, n, res, want)
			}
		}
	}
	bob0, carol0 := states(f.bob), states(carol)

	f.srv.Admin(t, "group", "member", "add", "team@example.test", "bob@example.test")
	expect(f.bob, "bob after joining", bob0, "cannotCalculateChanges")
	expect(carol, "carol, a member all along", carol0, "")
	got := ok(t, f.bob, acct, "Mailbox/get", map[string]any{"ids": []string{f.inbox}})
	if len(got["list"].([]any)) != 1 {
		t.Fatalf("bob does not see the Inbox after joining: %v", got)
	}
	// A fresh state works, and leaving invalidates it again.
	bob1 := states(f.bob)
	expect(f.bob, "bob synced afresh", bob1, "")
	f.srv.Admin(t, "group", "member", "remove", "team@example.test", "bob@example.test")
	expect(f.bob, "bob after leaving", bob1, "cannotCalculateChanges")
	if ids := strs(ok(t, f.bob, acct, "Email/query", map[string]any{})["ids"]); slices.Contains(ids, f.inboxA) {
		t.Errorf("bob still finds an Inbox email after leaving: %v", ids)
	}
}

// RFC 8620 §6.1: "unreferenced blobs MUST only be accessible to the
// uploader, even in shared accounts". Once an email the others may read
// holds the blob, they read it too.
func TestShare_UnreferencedUploadOnlyForUploader(t *testing.T) {
	f := newShareFixture(t)
	acct := f.alice.Account
	carol := f.srv.NewUser(t, "carol@example.test")
	for _, who := range []string{"bob@example.test", "carol@example.test"} {
		f.srv.Admin(t, "share", "alice@example.test", "--with", who, "--rights", "write")
	}
	upload := func(c *jmaptest.Client, data string) string {
		t.Helper()
		resp, b := c.Do(t, http.MethodPost, "/jmap/upload/"+acct+"/", strings.NewReader(data), http.Header{"Content-Type": {"message/rfc822"}})
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("upload into the shared account: %s %s", resp.Status, b)
		}
		var u struct {
			BlobID string `json:"blobId"`
		}
		if err := json.Unmarshal(b, &u); err != nil {
			t.Fatal(err)
		}
		return u.BlobID
	}
	download := func(c *jmaptest.Client, blob string) int {
		t.Helper()
		resp, _ := c.Do(t, http.MethodGet, "/jmap/download/"+acct+"/"+blob+"/m.eml", nil, nil)
		return resp.StatusCode
	}
	blobGet := func(c *jmaptest.Client, blob string) []string {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"using": []string{"urn:ietf:params:jmap:core", "urn:ietf:params:jmap:blob"},
			"methodCalls": []any{[]any{"Blob/get", map[string]any{"accountId": acct, "ids": []string{blob}}, "0"}}})
		_, out := c.Post(t, string(body))
		var r jmaptest.Response
		if err := json.Unmarshal(out, &r); err != nil || r.MethodResponses[0].Name != "Blob/get" {
			t.Fatalf("Blob/get: %s", out)
		}
		return strs(r.MethodResponses[0].Args["notFound"])
	}
	raw := simpleMessage("up@x", "Uploaded by Bob", "", "Draft text.")
	blob := upload(f.bob, raw)
	if s := download(f.bob, blob); s != http.StatusOK {
		t.Errorf("the uploader downloads his blob: %d", s)
	}
	if s := download(carol, blob); s != http.StatusNotFound {
		t.Errorf("another grantee downloads Bob's unreferenced blob: %d, want 404", s)
	}
	if nf := blobGet(carol, blob); len(nf) != 1 {
		t.Errorf("Blob/get of Bob's unreferenced blob by another grantee: notFound %v", nf)
	}
	// Carol cannot import it either: it does not exist for her.
	n, res := in(t, carol, acct, "Email/import", map[string]any{"emails": map[string]any{
		"m": map[string]any{"blobId": blob, "mailboxIds": boolSet(f.inbox)}}})
	if n != "Email/import" || res["notCreated"] == nil {
		t.Errorf("Carol imports Bob's unreferenced blob: %s %v", n, res)
	}
	// Bob files it in the Inbox: now everyone who reads the Inbox reads it.
	res = ok(t, f.bob, acct, "Email/import", map[string]any{"emails": map[string]any{
		"m": map[string]any{"blobId": blob, "mailboxIds": boolSet(f.inbox)}}})
	if res["created"] == nil {
		t.Fatalf("Bob imports his blob: %v", res)
	}
	if s := download(carol, blob); s != http.StatusOK {
		t.Errorf("Carol downloads the blob of an Inbox email: %d", s)
	}
}

// An account whose first use is an operator's "jmapd share" (or the notice
// that a share delivers into the grantee's Inbox) must come out as whole as
// one first used by its owner: RFC 8621 §8 says the VacationResponse
// "singleton" always exists, and §6 that the owner has an Identity to send
// with. Neither owner nor grantee has logged in before the share here.
func TestShare_FirstUseByShareProvisionsEverything(t *testing.T) {
	srv := jmaptest.Start(t)
	srv.Admin(t, "user", "add", "alice@example.test", "--password", "pw-alice")
	srv.Admin(t, "user", "add", "bob@example.test", "--password", "pw-bob")
	srv.Admin(t, "share", "alice@example.test", "--with", "bob@example.test", "--rights", "write")
	for _, email := range []string{"alice@example.test", "bob@example.test"} {
		c := jmaptest.Attach(&jmaptest.Client{Email: email, Password: "pw-" + strings.TrimSuffix(email, "@example.test"),
			Account: sharedAccount(t, srv, email)}, srv)
		r := c.CallUsing(t, sendUsing,
			jmaptest.Call{Name: "Identity/get", Args: map[string]any{"accountId": c.Account, "ids": nil}},
			jmaptest.Call{Name: "VacationResponse/get", Args: map[string]any{"accountId": c.Account, "ids": nil}})
		ids, vac := r.MethodResponses[0].Args, r.MethodResponses[1].Args
		if l, _ := ids["list"].([]any); len(l) != 1 || l[0].(map[string]any)["email"] != email {
			t.Errorf("%s: Identity/get = %v, want the owner's identity", email, ids)
		}
		if l, _ := vac["list"].([]any); len(l) != 1 || l[0].(map[string]any)["id"] != "singleton" {
			t.Errorf("%s: VacationResponse/get = %v, want the singleton", email, vac)
		}
	}
}

// A grantee who creates a folder next to a namesake they cannot see is
// refused (RFC 8621 §2: siblings have distinct names) without being told
// the hidden mailbox's id; next to one they see, alreadyExists names it.
func TestShare_HiddenSiblingNameNotNamed(t *testing.T) {
	srv := jmaptest.Start(t)
	alice, bob := srv.NewUser(t, "alice@example.test"), srv.NewUser(t, "bob@example.test")
	ids := createMailboxes(t, alice, map[string]any{
		"p": map[string]any{"name": "Projects"},
		"s": map[string]any{"name": "Secret", "parentId": "#p"},
	})
	srv.Admin(t, "share", "alice@example.test", "--with", "bob@example.test", "--rights", "write", "--mailbox", "Projects")
	subscribe(t, bob, alice.Account, ids["p"])
	res := ok(t, bob, alice.Account, "Mailbox/set", map[string]any{"create": map[string]any{
		"k": map[string]any{"name": "Secret", "parentId": ids["p"]}}})
	e := member(res["notCreated"], "k")
	if str(e["type"]) != "invalidProperties" || e["existingId"] != nil {
		t.Fatalf("create next to a hidden namesake: %v", res)
	}
	made := ok(t, bob, alice.Account, "Mailbox/set", map[string]any{"create": map[string]any{
		"k": map[string]any{"name": "Open", "parentId": ids["p"]}}})
	open := str(member(made["created"], "k")["id"])
	res = ok(t, bob, alice.Account, "Mailbox/set", map[string]any{"create": map[string]any{
		"k": map[string]any{"name": "Open", "parentId": ids["p"]}}})
	if e := member(res["notCreated"], "k"); str(e["type"]) != "alreadyExists" || e["existingId"] != open || open == "" {
		t.Fatalf("create next to a visible namesake (%q): %v", open, res)
	}
}
