package methods_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jmapd/jmapd/jmaptest"
	"github.com/jmapd/jmapd/methods"
	"github.com/jmapd/jmapd/store"
)

// importMany imports n messages in one Email/import, each with the body
// "lantern markerN" (N from first), and returns their ids in order.
func importMany(t *testing.T, c *jmaptest.Client, mbox string, first, n int) []string {
	t.Helper()
	emails := map[string]any{}
	for i := first; i < first+n; i++ {
		raw := simpleMessage(fmt.Sprintf("lamp%d@example.test", i), "Lamp", "", fmt.Sprintf("lantern marker%d", i))
		emails[fmt.Sprintf("m%04d", i)] = map[string]any{"blobId": uploadBlob(t, c, []byte(raw), "message/rfc822"),
			"mailboxIds": boolSet(mbox), "receivedAt": fmt.Sprintf("2024-01-01T%02d:%02d:00Z", i/60%24, i%60)}
	}
	res := importEmails(t, c, emails)
	created, _ := res["created"].(map[string]any)
	if len(created) != n {
		t.Fatalf("import: %v", res["notCreated"])
	}
	ids := make([]string, 0, n)
	for i := first; i < first+n; i++ {
		ids = append(ids, str(member(created, fmt.Sprintf("m%04d", i))["id"]))
	}
	return ids
}

// textQuery runs Email/query with a filter, newest first, with the total.
func textQuery(t *testing.T, c *jmaptest.Client, filter map[string]any) (ids []string, total float64) {
	t.Helper()
	res := c.One(t, "Email/query", map[string]any{"accountId": c.Account, "filter": filter,
		"sort": []any{map[string]any{"property": "receivedAt", "isAscending": false}}, "calculateTotal": true})
	total, _ = res["total"].(float64)
	return strs(res["ids"]), total
}

// The freshness rule: a query right after a write sees it. The
// emails of one Email/import share one posting key per token (a block),
// not one per email.
func TestEmailSearch_FoundRightAfterImport(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	ctx, acct := context.Background(), store.AccountID(alice.Account)
	ids := importMany(t, alice, inbox, 0, 30)
	if got, total := textQuery(t, alice, map[string]any{"body": "marker29"}); !slices.Equal(got, ids[29:]) || total != 1 {
		t.Errorf("marker29 right after the import: %v (total %v), want %v", got, total, ids[29])
	}
	if got, total := textQuery(t, alice, map[string]any{"text": "lantern"}); !sameSet(got, ids) || total != 30 {
		t.Errorf("lantern: %d ids (total %v), want 30", len(got), total)
	}
	if keys, blocks, err := methods.SearchPostingKeys(ctx, srv.Store(), acct, "lantern"); err != nil || keys != 1 || blocks != 1 {
		t.Errorf("lantern has %d posting keys (%d blocks), want one block for the import (%v)", keys, blocks, err)
	}
	k, err := methods.SearchIndexKeys(ctx, srv.Store(), acct)
	if err != nil {
		t.Fatal(err)
	}
	// 30 markers and a few shared tokens (lantern, lamp, alice, bob,
	// example, test): one key each.
	if k["fq"] != 0 || k["ff"] != 30 || k["fp"] > 40 {
		t.Errorf("index keys %v: want nothing waiting, 30 forward entries, at most 40 posting keys", k)
	}
	more := importMany(t, alice, inbox, 30, 1)
	if got, _ := textQuery(t, alice, map[string]any{"body": "marker30"}); !slices.Equal(got, more) {
		t.Errorf("marker30 right after its import: %v, want %v", got, more)
	}
	if got, total := textQuery(t, alice, map[string]any{"body": "lantern"}); len(got) != 31 || total != 31 || got[0] != more[0] {
		t.Errorf("lantern after a second import: %d ids (total %v), newest %v; want 31, newest %s", len(got), total, got[:1], more[0])
	}
}

// A destroyed email is never found, whether the search reads the
// candidates or walks the receivedAt index, and the total counts only live
// emails; once every email of a block is gone, so is the block.
func TestEmailSearch_DestroyedNeverFound(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	ctx, acct := context.Background(), store.AccountID(alice.Account)
	ids := importMany(t, alice, inbox, 0, 20)
	gone := []string{ids[0], ids[7], ids[19]}
	alice.One(t, "Email/set", map[string]any{"accountId": alice.Account, "destroy": gone})
	var live []string
	for _, id := range ids {
		if !slices.Contains(gone, id) {
			live = append(live, id)
		}
	}
	check := func(how string) {
		t.Helper()
		if got, total := textQuery(t, alice, map[string]any{"body": "lantern"}); !sameSet(got, live) || total != float64(len(live)) {
			t.Errorf("%s: lantern finds %d (total %v), want the %d live emails", how, len(got), total, len(live))
		}
		for _, n := range []int{0, 7, 19} {
			if got, total := textQuery(t, alice, map[string]any{"text": fmt.Sprintf("marker%d", n)}); len(got) != 0 || total != 0 {
				t.Errorf("%s: marker%d of a destroyed email finds %v (total %v)", how, n, got, total)
			}
		}
		if got, _ := textQuery(t, alice, map[string]any{"body": "marker8"}); !slices.Equal(got, []string{ids[8]}) {
			t.Errorf("%s: marker8 finds %v, want %s", how, got, ids[8])
		}
	}
	check("read")
	restore := methods.SetSearchWalkMin(0)
	before := methods.SearchWalks()
	check("walk")
	restore()
	if methods.SearchWalks() == before {
		t.Error("no search walked the receivedAt index")
	}
	alice.One(t, "Email/set", map[string]any{"accountId": alice.Account, "destroy": live})
	if got, total := textQuery(t, alice, map[string]any{"body": "lantern"}); len(got) != 0 || total != 0 {
		t.Errorf("every email destroyed, lantern finds %v (total %v)", got, total)
	}
	if k, err := methods.SearchIndexKeys(ctx, srv.Store(), acct); err != nil || k["fp"] != 0 || k["ff"] != 0 {
		t.Errorf("every email destroyed, index keys %v (%v): want no postings, no forward entries", k, err)
	}
}

// An account indexed in format 1 (a posting key per token per email) is
// searched right as it is: substrings, fields, destroy; its new emails go
// into blocks and are found with the old ones.
func TestEmailSearch_Format1AccountStillSearched(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	ctx, acct := context.Background(), store.AccountID(alice.Account)
	old := importMany(t, alice, inbox, 0, 6)
	if err := methods.SearchToFormat1(ctx, srv.Store(), acct); err != nil {
		t.Fatal(err)
	}
	if keys, blocks, _ := methods.SearchPostingKeys(ctx, srv.Store(), acct, "lantern"); keys != 6 || blocks != 0 {
		t.Fatalf("after the rewrite lantern has %d keys, %d blocks; want 6 single postings", keys, blocks)
	}
	if got, total := textQuery(t, alice, map[string]any{"body": "antern"}); !sameSet(got, old) || total != 6 {
		t.Errorf("substring in format 1: %v (total %v), want %v", got, total, old)
	}
	if got, _ := textQuery(t, alice, map[string]any{"subject": "lantern"}); len(got) != 0 {
		t.Errorf("subject lantern in format 1: %v, want none (it is in the body)", got)
	}
	fresh := importMany(t, alice, inbox, 6, 2)
	if keys, blocks, _ := methods.SearchPostingKeys(ctx, srv.Store(), acct, "lantern"); keys != 7 || blocks != 1 {
		t.Errorf("after a new import lantern has %d keys, %d blocks; want 6 single postings and a block", keys, blocks)
	}
	alice.One(t, "Email/set", map[string]any{"accountId": alice.Account, "destroy": []string{old[2], fresh[0]}})
	want := []string{old[0], old[1], old[3], old[4], old[5], fresh[1]}
	if got, total := textQuery(t, alice, map[string]any{"body": "lantern"}); !sameSet(got, want) || total != 6 {
		t.Errorf("both formats after destroy: %v (total %v), want %v", got, total, want)
	}
	restore := methods.SetSearchWalkMin(0)
	if got, total := textQuery(t, alice, map[string]any{"body": "lantern"}); !sameSet(got, want) || total != 6 {
		t.Errorf("both formats, walked: %v (total %v), want %v", got, total, want)
	}
	restore()
	if got, _ := textQuery(t, alice, map[string]any{"body": "marker2"}); len(got) != 0 {
		t.Errorf("destroyed format 1 email found: %v", got)
	}
	if keys, _, _ := methods.SearchPostingKeys(ctx, srv.Store(), acct, "marker2"); keys != 0 {
		t.Errorf("destroyed format 1 email keeps %d posting keys", keys)
	}
}

// Emails that wait (here an account whose index was dropped, and more than
// one batch of them) are all indexed, in blocks, before the next text
// query answers, and nothing is left waiting.
func TestEmailSearch_WaitingQueueDrains(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	ctx, acct := context.Background(), store.AccountID(alice.Account)
	var ids []string
	for first := 0; first < 230; first += 46 {
		ids = append(ids, importMany(t, alice, inbox, first, 46)...)
	}
	if err := methods.DropSearchIndex(ctx, srv.Store(), acct); err != nil {
		t.Fatal(err)
	}
	if got, total := textQuery(t, alice, map[string]any{"body": "lantern"}); !sameSet(got, ids) || total != 230 {
		t.Errorf("lantern after the backfill: %d ids (total %v), want 230", len(got), total)
	}
	k, err := methods.SearchIndexKeys(ctx, srv.Store(), acct)
	if err != nil || k["fq"] != 0 || k["ff"] != 230 || k["fd"] != 1 {
		t.Errorf("index keys after the backfill %v (%v): want done, 230 forward entries, none waiting", k, err)
	}
	// Two batches (of at most 200): two blocks.
	if keys, blocks, _ := methods.SearchPostingKeys(ctx, srv.Store(), acct, "lantern"); keys != 2 || blocks != 2 {
		t.Errorf("lantern has %d posting keys, %d blocks; want 2 blocks", keys, blocks)
	}
	if got, _ := textQuery(t, alice, map[string]any{"body": "marker229"}); !slices.Equal(got, ids[229:]) {
		t.Errorf("marker229: %v, want %v", got, ids[229])
	}
}

// A thread merge inside one Email/import re-creates an email of the same
// batch under a new id (RFC 8621 §3): the index follows it.
func TestEmailSearch_MergeInsideOneImport(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	// In creation id order: A, then C (naming B, not stored yet), then B,
	// which joins A's thread and C's.
	msgs := []string{
		crlf("From: x@example.test\nSubject: Plan\nMessage-ID: <a@m>\n\nquokka one\n"),
		crlf("From: x@example.test\nSubject: Re: Plan\nMessage-ID: <c@m>\nReferences: <b@m>\n\nwombat three\n"),
		crlf("From: x@example.test\nSubject: Re: Plan\nMessage-ID: <b@m>\nReferences: <a@m>\n\nquokka two\n"),
	}
	emails := map[string]any{}
	for i, raw := range msgs {
		emails[fmt.Sprintf("m%d", i)] = map[string]any{"blobId": uploadBlob(t, alice, []byte(raw), "message/rfc822"), "mailboxIds": boolSet(inbox)}
	}
	res := importEmails(t, alice, emails)
	if len(res["created"].(map[string]any)) != 3 {
		t.Fatalf("import: %v", res)
	}
	all := strs(alice.One(t, "Email/query", map[string]any{"accountId": alice.Account})["ids"])
	got, total := textQuery(t, alice, map[string]any{"body": "wombat"})
	if len(got) != 1 || total != 1 || !slices.Contains(all, got[0]) {
		t.Fatalf("wombat finds %v (total %v); want one stored email of %v", got, total, all)
	}
	threads := getEmails(t, alice, all, map[string]any{"properties": []string{"threadId"}})
	if len(all) != 3 || threads[all[0]]["threadId"] != threads[all[1]]["threadId"] || threads[all[1]]["threadId"] != threads[all[2]]["threadId"] {
		t.Errorf("not one thread: %v", threads)
	}
	if got, total := textQuery(t, alice, map[string]any{"body": "quokka"}); len(got) != 2 || total != 2 {
		t.Errorf("quokka finds %v (total %v), want A and B", got, total)
	}
	if k, err := methods.SearchIndexKeys(context.Background(), srv.Store(), store.AccountID(alice.Account)); err != nil || k["ff"] != 3 || k["fq"] != 0 {
		t.Errorf("index keys %v (%v): want three forward entries, none waiting", k, err)
	}
}

// Two thread merges in one Email/import re-create an indexed email twice
// (RFC 8621 §3: threadId is immutable, so merged emails get new ids); the
// index rewrites its block once, at the end, and follows it to its last
// id: each word finds exactly the stored email that holds it.
func TestEmailSearch_TwoMergesInOneImport(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	upload := func(msgs map[string]string) {
		t.Helper()
		emails := map[string]any{}
		for k, raw := range msgs {
			emails[k] = map[string]any{"blobId": uploadBlob(t, alice, []byte(crlf(raw)), "message/rfc822"), "mailboxIds": boolSet(inbox)}
		}
		if res := importEmails(t, alice, emails); len(res["created"].(map[string]any)) != len(msgs) {
			t.Fatalf("import: %v", res)
		}
	}
	// Three threads, oldest first: A; C; D, which names B.
	upload(map[string]string{"a": "From: x@example.test\nSubject: Plan\nMessage-ID: <a@m>\n\nquokka\n"})
	upload(map[string]string{"c": "From: x@example.test\nSubject: Re: Plan\nMessage-ID: <c@m>\n\nwombat\n"})
	upload(map[string]string{"d": "From: x@example.test\nSubject: Re: Plan\nMessage-ID: <d@m>\nReferences: <b@m>\n\nnumbat\n"})
	// In one import, B joins C's thread and D's, so D is made again in
	// C's; E then joins A's thread and that one, so D is made again in
	// A's.
	upload(map[string]string{
		"m1": "From: x@example.test\nSubject: Re: Plan\nMessage-ID: <b@m>\nReferences: <c@m>\n\nplatypus\n",
		"m2": "From: x@example.test\nSubject: Re: Plan\nMessage-ID: <e@m>\nReferences: <a@m> <b@m>\n\nbilby\n",
	})
	all := strs(alice.One(t, "Email/query", map[string]any{"accountId": alice.Account})["ids"])
	props := getEmails(t, alice, all, map[string]any{"properties": []string{"threadId", "preview"}})
	if len(props) != 5 {
		t.Fatalf("%d emails stored, want 5", len(props))
	}
	for _, e := range props {
		if e["threadId"] != props[all[0]]["threadId"] {
			t.Fatalf("not one thread: %v", props)
		}
	}
	for _, word := range []string{"quokka", "wombat", "numbat", "platypus", "bilby"} {
		got, total := textQuery(t, alice, map[string]any{"body": word})
		if len(got) != 1 || total != 1 || !strings.Contains(str(props[got[0]]["preview"]), word) {
			t.Errorf("%s finds %v (total %v); want the one stored email whose text it is", word, got, total)
		}
	}
	if got, total := textQuery(t, alice, map[string]any{"from": "x@example.test"}); !sameSet(got, all) || total != 5 {
		t.Errorf("from finds %d (total %v), want all 5", len(got), total)
	}
}
