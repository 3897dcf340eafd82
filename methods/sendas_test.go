package methods_test

import (
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
