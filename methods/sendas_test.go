package methods_test

import (
	"slices"
	"testing"

	"github.com/jmapd/jmapd/jmaptest"
)

// createIdentity creates an Identity for email in acct and returns the
// SetError type ("" when created) and the id.
func createIdentity(t *testing.T, c *jmaptest.Client, acct, email string) (string, string) {
	t.Helper()
	r := callSend(t, c, jmaptest.Call{Name: "Identity/set", Args: map[string]any{"accountId": acct,
		"create": map[string]any{"i": map[string]any{"name": "Support", "email": email}}}})
	if len(r) != 1 {
		t.Fatalf("Identity/set: %+v", r)
	}
	if r[0].Name == "error" {
		return str(r[0].Args["type"]), ""
	}
	if e := member(r[0].Args["notCreated"], "i"); e != nil {
		return str(e["type"]), ""
	}
	return "", str(member(r[0].Args["created"], "i")["id"])
}

// TestSendAs_ManageLevelOnly: a user with the manage level on a shared
// mailbox may send as it; with less, forbiddenFrom; nobody may send as a
// group (DESIGN.md, issue 8 "Send as").
func TestSendAs_ManageLevelOnly(t *testing.T) {
	srv := jmaptest.Start(t)
	alice, bob := srv.NewUser(t, "alice@example.test"), srv.NewUser(t, "bob@example.test")
	carol := srv.NewUser(t, "carol@example.test")
	srv.Admin(t, "shared", "add", "support@example.test")
	srv.Admin(t, "group", "add", "team@example.test", "--member", "alice@example.test", "--member", "bob@example.test")
	srv.Admin(t, "share", "support@example.test", "--with", "alice@example.test", "--rights", "manage")
	srv.Admin(t, "share", "support@example.test", "--with", "bob@example.test", "--rights", "write")
	support := sharedAccount(t, srv, "support@example.test")

	if e, _ := createIdentity(t, alice, alice.Account, "support@example.test"); e != "" {
		t.Errorf("manager's identity for support@ in her own account: %s", e)
	}
	if e, _ := createIdentity(t, alice, support, "support@example.test"); e != "" {
		t.Errorf("manager's identity for support@ in the shared account: %s", e)
	}
	if e, _ := createIdentity(t, bob, bob.Account, "support@example.test"); e != "forbiddenFrom" {
		t.Errorf("write level identity for support@: %q, want forbiddenFrom", e)
	}
	if e, _ := createIdentity(t, bob, support, "support@example.test"); e != "accountNotSupportedByMethod" && e != "forbiddenFrom" {
		t.Errorf("write level identity in the shared account: %q", e)
	}
	for _, c := range []*jmaptest.Client{alice, bob} {
		if e, _ := createIdentity(t, c, c.Account, "team@example.test"); e != "forbiddenFrom" {
			t.Errorf("%s as the group: %q, want forbiddenFrom", c.Email, e)
		}
	}
	// Alice submits from the shared account as support@: to Bob, who
	// reaches the account, it goes; to Carol, who does not, it does not
	// (mail from a shared account stays among those who reach it).
	supportIdentity := ""
	for _, x := range oneSend(t, alice, "Identity/get", map[string]any{"accountId": support, "ids": nil})["list"].([]any) {
		if m := x.(map[string]any); m["email"] == "support@example.test" {
			supportIdentity = str(m["id"])
		}
	}
	if supportIdentity == "" {
		t.Fatal("the shared account has no identity for its address")
	}
	drafts := ""
	for _, x := range oneSend(t, alice, "Mailbox/get", map[string]any{"accountId": support, "ids": nil})["list"].([]any) {
		if m := x.(map[string]any); m["role"] == "drafts" {
			drafts = str(m["id"])
		}
	}
	mk := func(rcpt string) string {
		res := oneSend(t, alice, "Email/set", map[string]any{"accountId": support, "create": map[string]any{"d": map[string]any{
			"mailboxIds": boolSet(drafts), "from": to("support@example.test"), "to": to(rcpt), "subject": "Your ticket",
			"bodyValues": map[string]any{"b": map[string]any{"value": "Fixed."}},
			"textBody":   []any{map[string]any{"partId": "b", "type": "text/plain"}}}}})
		id := str(member(res["created"], "d")["id"])
		if id == "" {
			t.Fatalf("draft in the shared account: %v", res["notCreated"])
		}
		return id
	}
	send := func(emailID string) []jmaptest.Invocation {
		return callSend(t, alice, jmaptest.Call{Name: "EmailSubmission/set", Args: map[string]any{"accountId": support,
			"create": map[string]any{"s": map[string]any{"identityId": supportIdentity, "emailId": emailID}}}})
	}
	submitted(t, send(mk("bob@example.test")))
	if e := notSubmitted(t, send(mk("carol@example.test"))); e["type"] != "invalidRecipients" {
		t.Errorf("to someone who cannot reach the shared account: %v, want invalidRecipients", e)
	}
	if len(inbox(t, carol, "subject")) != 0 {
		t.Error("Carol got mail from the shared account")
	}
	got := false
	for _, e := range inbox(t, bob, "subject", "from") {
		got = got || e["subject"] == "Your ticket"
	}
	if !got {
		t.Error("Bob did not get the mail sent as support@")
	}
}

// sendTo has c send a plain message to rcpt from its own account.
func sendTo(t *testing.T, c *jmaptest.Client, rcpt, subject string) {
	t.Helper()
	d := draft(t, c, map[string]any{"to": to(rcpt), "subject": subject})
	submitted(t, submit(t, c, map[string]any{"identityId": ownIdentity(t, c), "emailId": d}, nil))
}

// subjectsIn lists the subjects of the emails of acct as c sees them.
func subjectsIn(t *testing.T, c *jmaptest.Client, acct string) []string {
	t.Helper()
	q := ok(t, c, acct, "Email/query", map[string]any{})
	ids := strs(q["ids"])
	if len(ids) == 0 {
		return nil
	}
	g := ok(t, c, acct, "Email/get", map[string]any{"ids": ids, "properties": []string{"subject"}})
	var out []string
	for _, e := range g["list"].([]any) {
		out = append(out, str(e.(map[string]any)["subject"]))
	}
	return out
}

// TestGroups_ArchiveAndCompany: a group's address gives each member a
// private copy, and with --archive the group keeps one its members read;
// a company group keeps mail to any member where every member reads it.
func TestGroups_ArchiveAndCompany(t *testing.T) {
	srv := jmaptest.Start(t)
	alice, bob := srv.NewUser(t, "alice@example.test"), srv.NewUser(t, "bob@example.test")
	carol, dave := srv.NewUser(t, "carol@example.test"), srv.NewUser(t, "dave@example.test")
	srv.Admin(t, "group", "add", "team@example.test", "--archive", "--member", "alice@example.test", "--member", "bob@example.test")
	srv.Admin(t, "group", "add", "corp@example.test", "--company", "--member", "alice@example.test", "--member", "dave@example.test")
	team, corp := sharedAccount(t, srv, "team@example.test"), sharedAccount(t, srv, "corp@example.test")

	sendTo(t, carol, "team@example.test", "For the team")
	aliceCopy := inbox(t, alice, "subject", "keywords")
	bobCopy := inbox(t, bob, "subject", "keywords")
	if len(aliceCopy) != 1 || len(bobCopy) != 1 || aliceCopy[0]["subject"] != "For the team" || bobCopy[0]["subject"] != "For the team" {
		t.Fatalf("members' inboxes: alice %v bob %v", aliceCopy, bobCopy)
	}
	// Private copies: Alice's $seen is hers alone.
	updateEmail(t, alice, str(aliceCopy[0]["id"]), map[string]any{"keywords/$seen": true})
	if member(inbox(t, bob, "keywords")[0], "keywords")["$seen"] == true {
		t.Error("Alice's $seen shows on Bob's copy")
	}
	if got := subjectsIn(t, bob, team); !slices.Equal(got, []string{"For the team"}) {
		t.Errorf("the team archive as Bob sees it: %v", got)
	}
	if n, res := in(t, carol, team, "Email/query", map[string]any{}); n != "error" || res["type"] != "accountNotFound" {
		t.Errorf("a non-member reaches the archive: %s %v", n, res)
	}

	// Mail to Alice alone lands in the company account too, for Dave.
	sendTo(t, carol, "alice@example.test", "Invoice 42")
	if got := subjectsIn(t, dave, corp); !slices.Contains(got, "Invoice 42") {
		t.Errorf("the company account as Dave sees it: %v", got)
	}
	if got := subjectsIn(t, bob, team); slices.Contains(got, "Invoice 42") {
		t.Error("mail to Alice went into the team archive")
	}
	if len(inbox(t, dave, "subject")) != 0 {
		t.Error("mail to Alice went into Dave's own inbox")
	}
}
