package methods_test

import (
	"testing"

	"github.com/jmapd/jmapd/jmaptest"
)

// Destroying a mailbox of maxObjectsInSet emails with long headers and
// onDestroyRemoveEmails is more than one store transaction holds in one
// piece: the emails are taken out in parts first, and the destroy
// succeeds, whether or not the emails have been indexed for search yet;
// emails also in another mailbox stay there (RFC 8621 §2.5).
func TestMailbox_DestroyLargeWithRemoveEmails(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	big := createMailboxes(t, alice, map[string]any{"b": map[string]any{"name": "Big"}})["b"]
	const n, kept = 1000, 10
	emails := uploadLargeHeaderMessages(t, alice, n, big)
	i := 0
	for _, e := range emails {
		if i < kept {
			e.(map[string]any)["mailboxIds"] = boolSet(big, inbox)
		}
		i++
	}
	if created, _ := importEmails(t, alice, emails)["created"].(map[string]any); len(created) != n {
		t.Fatalf("import: %d created", len(created))
	}
	// A text query indexes every email first: taking them out then also
	// takes out their search postings, more than twice what they write.
	alice.One(t, "Email/query", map[string]any{"accountId": alice.Account, "filter": map[string]any{"text": "anything"}})
	before := alice.State(t, alice.Account, "Email")
	r := alice.Call(t, jmaptest.Call{Name: "Mailbox/set", Args: map[string]any{"accountId": alice.Account,
		"destroy": []string{big}, "onDestroyRemoveEmails": true}})
	if got := strs(r.MethodResponses[0].Args["destroyed"]); len(got) != 1 || got[0] != big {
		t.Fatalf("destroy: %v", r.MethodResponses[0])
	}
	q := alice.One(t, "Email/query", map[string]any{"accountId": alice.Account, "calculateTotal": true})
	if q["total"] != float64(kept) {
		t.Errorf("emails left: %v, want the %d also in the Inbox", q["total"], kept)
	}
	ch := alice.One(t, "Email/changes", map[string]any{"accountId": alice.Account, "sinceState": before})
	if d, u := len(strs(ch["destroyed"])), len(strs(ch["updated"])); d != n-kept || u != kept {
		t.Errorf("Email/changes: %d destroyed, %d updated; want %d, %d", d, u, n-kept, kept)
	}
	box := alice.One(t, "Mailbox/get", map[string]any{"accountId": alice.Account, "ids": []string{inbox}})
	if total := box["list"].([]any)[0].(map[string]any)["totalEmails"]; total != float64(kept) {
		t.Errorf("Inbox totalEmails %v, want %d", total, kept)
	}
}

// A destroy the caller may not make takes no email out, however many the
// mailbox holds.
func TestMailbox_ForbiddenDestroyRemovesNothing(t *testing.T) {
	f := newShareFixture(t)
	const n = 500
	if created, _ := importEmails(t, f.alice, uploadLargeHeaderMessages(t, f.alice, n, f.private))["created"].(map[string]any); len(created) != n {
		t.Fatalf("import: %d created", len(created))
	}
	f.srv.Admin(t, "share", "alice@example.test", "--with", "bob@example.test", "--rights", "readAdvanced", "--mailbox", "Private")
	before := f.alice.State(t, f.alice.Account, "Email")
	r := f.bob.CallUsing(t, usingShare, jmaptest.Call{Name: "Mailbox/set", Args: map[string]any{"accountId": f.alice.Account,
		"destroy": []string{f.private}, "onDestroyRemoveEmails": true}})
	if e := member(r.MethodResponses[0].Args["notDestroyed"], f.private); e == nil || e["type"] != "forbidden" {
		t.Fatalf("destroy by a reader: %v", r.MethodResponses[0])
	}
	if after := f.alice.State(t, f.alice.Account, "Email"); after != before {
		t.Errorf("Email state %v -> %v after a refused destroy", before, after)
	}
}
