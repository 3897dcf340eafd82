package methods_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jmapd/jmapd/jmaptest"
	"github.com/jmapd/jmapd/methods"
	"github.com/jmapd/jmapd/store"
)

// searchCorpus imports emails chosen for the text conditions of RFC 8621
// §4.4.1, with labels.
type searchCorpus struct {
	srv   *jmaptest.Server
	c     *jmaptest.Client
	inbox string
	id    map[string]string
	label map[string]string
}

func newSearchCorpus(t *testing.T) *searchCorpus {
	t.Helper()
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	s := &searchCorpus{srv: srv, c: alice, inbox: mailboxByRole(t, alice, "inbox"), id: map[string]string{}, label: map[string]string{}}
	msgs := []struct{ label, raw string }{
		{"FR", crlf(`From: =?utf-8?q?=C3=89milie_Dupont?= <emilie@example.fr>
To: Bob <bob@example.com>
Subject: =?utf-8?q?R=C3=A9union_budget?=
Date: Fri, 05 Jan 2024 10:00:00 +0000
Message-ID: <fr@example.fr>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Le café est prêt. Nous parlons du budget trimestriel.
`)},
		{"JA", crlf(`From: tanaka@example.jp
To: alice@example.test
Subject: =?utf-8?b?5p2x5Lqs6YO944Gu5Lya6K2w?=
Date: Sat, 06 Jan 2024 10:00:00 +0000
Message-ID: <ja@example.jp>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

明日東京都で会議があります。
`)},
		{"HTML", crlf(`From: Carol <carol@example.com>
To: alice@example.test
Cc: Dave <dave@example.com>
Bcc: erin@example.com
Subject: HTML note
Date: Sun, 07 Jan 2024 10:00:00 +0000
Message-ID: <html@example.com>
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

<p>Hello <b>world</b></p><div class="secretclass">shipping soon</div>
`)},
		{"EN", crlf(`From: Alice <alice@example.test>
To: bob@example.com
Subject: Quarterly numbers
Date: Mon, 08 Jan 2024 10:00:00 +0000
Message-ID: <en@example.test>

The quarterly numbers are attached; budget review on Friday.
`)},
	}
	for i, m := range msgs {
		e := importRaw(t, alice, m.raw, map[string]any{"mailboxIds": boolSet(s.inbox),
			"receivedAt": fmt.Sprintf("2024-01-0%dT10:00:00Z", i+1)})
		s.id[m.label], s.label[str(e["id"])] = str(e["id"]), m.label
	}
	return s
}

func (s *searchCorpus) labels(ids []string) []string {
	out := []string{}
	for _, id := range ids {
		out = append(out, s.label[id])
	}
	return out
}

// find runs Email/query (receivedAt ascending, with total) and returns the
// labels found, checking total against them.
func (s *searchCorpus) find(t *testing.T, filter any) []string {
	t.Helper()
	res := s.c.One(t, "Email/query", map[string]any{"accountId": s.c.Account, "filter": filter,
		"sort": []any{map[string]any{"property": "receivedAt"}}, "calculateTotal": true})
	got := s.labels(strs(res["ids"]))
	if res["total"] != float64(len(got)) {
		t.Errorf("filter %v: total %v for %v", filter, res["total"], got)
	}
	return got
}

func not(c any) map[string]any {
	return map[string]any{"operator": "NOT", "conditions": []any{c}}
}

func op(name string, cs ...any) map[string]any {
	return map[string]any{"operator": name, "conditions": cs}
}

// RFC 8621 §4.4.1: each String condition matches its own fields, ignoring
// case, for non-ASCII and for scripts written without spaces too, and the
// operators combine them.
func TestEmailSearch_Conditions(t *testing.T) {
	s := newSearchCorpus(t)
	cases := []struct {
		name   string
		filter any
		want   []string
	}{
		{"body accented", map[string]any{"body": "café"}, []string{"FR"}},
		{"body accented upper case", map[string]any{"body": "CAFÉ PRÊT"}, []string{"FR"}},
		{"body inside a word", map[string]any{"body": "afé"}, []string{"FR"}},
		{"body inside a word ascii", map[string]any{"body": "imestri"}, []string{"FR"}},
		{"body is not subject", map[string]any{"body": "réunion"}, nil},
		{"subject encoded word", map[string]any{"subject": "RÉUNION"}, []string{"FR"}},
		{"subject two words", map[string]any{"subject": "budget réunion"}, []string{"FR"}},
		{"from encoded name", map[string]any{"from": "émilie"}, []string{"FR"}},
		{"from domain", map[string]any{"from": "example.fr"}, []string{"FR"}},
		{"from across a dot", map[string]any{"from": "e.f"}, []string{"FR"}},
		{"to name", map[string]any{"to": "bob"}, []string{"FR", "EN"}},
		{"to is not from", map[string]any{"to": "emilie"}, nil},
		{"cc", map[string]any{"cc": "dave"}, []string{"HTML"}},
		{"bcc", map[string]any{"bcc": "erin"}, []string{"HTML"}},
		{"bcc is not cc", map[string]any{"cc": "erin"}, nil},
		{"text everywhere", map[string]any{"text": "budget"}, []string{"FR", "EN"}},
		{"text in cc", map[string]any{"text": "dave"}, []string{"HTML"}},
		{"text two fields", map[string]any{"text": "tanaka 会議"}, []string{"JA"}},
		{"cjk bigram", map[string]any{"body": "東京"}, []string{"JA"}},
		{"cjk other bigram", map[string]any{"body": "京都"}, []string{"JA"}},
		{"cjk one character", map[string]any{"body": "京"}, []string{"JA"}},
		{"cjk longer run", map[string]any{"body": "東京都で会議"}, []string{"JA"}},
		{"cjk absent", map[string]any{"body": "大阪"}, nil},
		{"cjk bigrams present, run absent", map[string]any{"body": "会議東京"}, nil},
		{"cjk subject", map[string]any{"subject": "会議"}, []string{"JA"}},
		{"html text", map[string]any{"body": "world"}, []string{"HTML"}},
		{"html phrase across tags", map[string]any{"body": `"hello world"`}, []string{"HTML"}},
		{"html attributes are not text", map[string]any{"body": "secretclass"}, nil},
		{"phrase in order", map[string]any{"body": `"numbers are"`}, []string{"EN"}},
		{"phrase out of order", map[string]any{"body": `"are numbers"`}, nil},
		{"punctuation only", map[string]any{"body": "!!"}, nil},
		{"token missing", map[string]any{"text": "budget zanzibar"}, nil},
		{"AND", op("AND", map[string]any{"text": "budget"}, map[string]any{"from": "emilie"}), []string{"FR"}},
		{"OR", op("OR", map[string]any{"body": "東京"}, map[string]any{"cc": "dave"}), []string{"JA", "HTML"}},
		{"OR with a non-text branch", op("OR", map[string]any{"body": "東京"}, map[string]any{"before": "2024-01-02T00:00:00Z"}), []string{"FR", "JA"}},
		{"NOT", not(map[string]any{"text": "budget"}), []string{"JA", "HTML"}},
		{"AND NOT", op("AND", map[string]any{"to": "bob"}, not(map[string]any{"body": "café"})), []string{"EN"}},
		{"NOT of OR", not(op("OR", map[string]any{"body": "world"}, map[string]any{"subject": "quarterly"})), []string{"FR", "JA"}},
		{"text and other conditions", map[string]any{"text": "budget", "after": "2024-01-03T00:00:00Z"}, []string{"EN"}},
		{"header value on candidates", map[string]any{"text": "budget", "header": []string{"Message-ID", "fr@"}}, []string{"FR"}},
		{"header value alone", map[string]any{"header": []string{"Message-ID", "ja@"}}, []string{"JA"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := s.find(t, tc.filter)
			if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Errorf("filter %v = %v, want %v", tc.filter, got, tc.want)
			}
		})
	}
}

// A search reads no message that is not a candidate: a one-token body term
// is answered by the index alone, a phrase reads only the emails that have
// all its tokens.
func TestEmailSearch_ReadsOnlyCandidates(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	for i := range 30 {
		importIn(t, alice, simpleMessage(fmt.Sprintf("n%d@example.test", i), fmt.Sprintf("Note %d", i), "", fmt.Sprintf("common words and marker%d here", i)), inbox)
	}
	var parses atomic.Int64
	methods.SetParseHook(func(string) { parses.Add(1) })
	t.Cleanup(func() { methods.SetParseHook(nil) })
	query := func(filter map[string]any) []string {
		t.Helper()
		parses.Store(0)
		return strs(alice.One(t, "Email/query", map[string]any{"accountId": alice.Account, "filter": filter})["ids"])
	}
	if ids := query(map[string]any{"body": "marker7"}); len(ids) != 1 || parses.Load() != 0 {
		t.Errorf("body marker7: %d results, %d messages read; want 1 and 0", len(ids), parses.Load())
	}
	if ids := query(map[string]any{"body": `"and marker7"`}); len(ids) != 1 || parses.Load() != 1 {
		t.Errorf("phrase: %d results, %d messages read; want 1 and 1", len(ids), parses.Load())
	}
	if ids := query(map[string]any{"body": "common", "header": []string{"Subject", "Note 29"}}); len(ids) != 1 || parses.Load() != 30 {
		// All 30 are candidates of "common"; the header is checked on them.
		t.Errorf("header on candidates: %d results, %d messages read; want 1 and 30", len(ids), parses.Load())
	}
	if ids := query(map[string]any{"text": "marker12", "header": []string{"Subject", "Note"}}); len(ids) != 1 || parses.Load() != 1 {
		t.Errorf("header on one candidate: %d results, %d messages read; want 1 and 1", len(ids), parses.Load())
	}
	if ids := query(map[string]any{"body": "zanzibar"}); len(ids) != 0 || parses.Load() != 0 {
		t.Errorf("absent word: %d results, %d messages read", len(ids), parses.Load())
	}
}

// The index follows every write in the same transaction: import, Email/set
// create, moves between mailboxes, destroy, and the re-creation of emails
// when threads merge (RFC 8621 §3).
func TestEmailSearch_FollowsWrites(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox, archive := mailboxByRole(t, alice, "inbox"), mailboxByRole(t, alice, "archive")
	find := func(filter map[string]any) []string {
		t.Helper()
		return strs(alice.One(t, "Email/query", map[string]any{"accountId": alice.Account, "filter": filter})["ids"])
	}
	// A first query builds the (empty) index, so what follows is kept by
	// the write path alone.
	if ids := find(map[string]any{"text": "anything"}); len(ids) != 0 {
		t.Fatalf("empty account: %v", ids)
	}
	keys := func() map[string]int {
		t.Helper()
		k, err := methods.SearchIndexKeys(context.Background(), srv.Store(), store.AccountID(alice.Account))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}

	a := importIn(t, alice, simpleMessage("x@example.test", "Aardvark", "", "pangolin"), inbox)
	if ids := find(map[string]any{"body": "pangolin"}); !slices.Equal(ids, []string{a}) {
		t.Errorf("after import: %v, want %v", ids, a)
	}
	if k := keys(); k["fq"] != 0 || k["ff"] != 1 {
		t.Errorf("after import the email is indexed by its own transaction: %v", k)
	}

	// Email/set create.
	r := alice.One(t, "Email/set", map[string]any{"accountId": alice.Account, "create": map[string]any{"n": map[string]any{
		"mailboxIds": boolSet(inbox), "subject": "Okapi", "from": []any{map[string]any{"email": "me@example.test"}},
		"bodyValues": map[string]any{"b": map[string]any{"value": "narwhal sighting"}},
		"textBody":   []any{map[string]any{"partId": "b", "type": "text/plain"}}}}})
	created := str(member(r["created"], "n")["id"])
	if ids := find(map[string]any{"body": "narwhal"}); !slices.Equal(ids, []string{created}) {
		t.Errorf("after Email/set create: %v, want %v", ids, created)
	}
	if ids := find(map[string]any{"subject": "okapi"}); !slices.Equal(ids, []string{created}) {
		t.Errorf("subject after Email/set create: %v, want %v", ids, created)
	}

	// Move to Archive.
	alice.One(t, "Email/set", map[string]any{"accountId": alice.Account, "update": map[string]any{a: map[string]any{"mailboxIds": boolSet(archive)}}})
	if ids := find(map[string]any{"body": "pangolin", "inMailbox": inbox}); len(ids) != 0 {
		t.Errorf("moved out of the Inbox but found there: %v", ids)
	}
	if ids := find(map[string]any{"body": "pangolin", "inMailbox": archive}); !slices.Equal(ids, []string{a}) {
		t.Errorf("moved to Archive: %v, want %v", ids, a)
	}

	// Thread merge: C names <b> before B exists; B then joins A's thread
	// and C's, so C is re-created under a new id in A's thread.
	ta := importIn(t, alice, crlf("From: x@example.test\nSubject: Plan\nMessage-ID: <a@m>\n\nquokka one\n"), inbox)
	tc := importIn(t, alice, crlf("From: x@example.test\nSubject: Re: Plan\nMessage-ID: <c@m>\nReferences: <b@m>\n\nwombat three\n"), inbox)
	tb := importIn(t, alice, crlf("From: x@example.test\nSubject: Re: Plan\nMessage-ID: <b@m>\nReferences: <a@m>\n\nquokka two\n"), inbox)
	got := find(map[string]any{"body": "wombat"})
	if len(got) != 1 || got[0] == tc {
		t.Fatalf("after the merge wombat finds %v; want one email with a new id (was %s)", got, tc)
	}
	threads := getEmails(t, alice, []string{ta, tb, got[0]}, map[string]any{"properties": []string{"threadId"}})
	if threads[ta]["threadId"] != threads[got[0]]["threadId"] || threads[tb]["threadId"] != threads[ta]["threadId"] {
		t.Fatalf("emails not merged into one thread: %v", threads)
	}
	if ids := find(map[string]any{"body": "quokka"}); len(ids) != 2 {
		t.Errorf("quokka finds %v, want A and B", ids)
	}
	q := alice.One(t, "Email/query", map[string]any{"accountId": alice.Account, "filter": map[string]any{"body": "quokka"},
		"collapseThreads": true, "calculateTotal": true})
	if ids := strs(q["ids"]); len(ids) != 1 || q["total"] != float64(1) {
		t.Errorf("collapseThreads: %v (total %v), want one email of the thread", ids, q["total"])
	}
	// A thread condition looks at every email of the thread, not only the
	// candidates: flagging C (no quokka) makes A and B match.
	thread := map[string]any{"body": "quokka", "someInThreadHaveKeyword": "$flagged"}
	if ids := find(thread); len(ids) != 0 {
		t.Errorf("someInThreadHaveKeyword before flagging: %v", ids)
	}
	alice.One(t, "Email/set", map[string]any{"accountId": alice.Account, "update": map[string]any{got[0]: map[string]any{"keywords/$flagged": true}}})
	if ids := find(thread); len(ids) != 2 {
		t.Errorf("someInThreadHaveKeyword after flagging C: %v, want A and B", ids)
	}

	// Destroy: gone from results and from the postings.
	before := keys()
	alice.One(t, "Email/set", map[string]any{"accountId": alice.Account, "destroy": []string{a, got[0]}})
	if ids := find(map[string]any{"body": "pangolin"}); len(ids) != 0 {
		t.Errorf("destroyed but found: %v", ids)
	}
	if ids := find(map[string]any{"text": "wombat"}); len(ids) != 0 {
		t.Errorf("destroyed after merge but found: %v", ids)
	}
	after := keys()
	if after["ff"] != before["ff"]-2 || after["fp"] >= before["fp"] {
		t.Errorf("index keys before %v after %v: want two forward entries and their postings gone", before, after)
	}
}

// Email/queryChanges with a text filter reports an email that starts to
// match (RFC 8621 §4.5).
func TestEmailSearch_QueryChanges(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	old := importIn(t, alice, simpleMessage("o@example.test", "Old", "", "heron"), inbox)
	filter := map[string]any{"body": "heron"}
	sort := []any{map[string]any{"property": "receivedAt"}}
	q := alice.One(t, "Email/query", map[string]any{"accountId": alice.Account, "filter": filter, "sort": sort})
	if ids := strs(q["ids"]); !slices.Equal(ids, []string{old}) {
		t.Fatalf("query: %v", ids)
	}
	importIn(t, alice, simpleMessage("x@example.test", "Other", "", "egret"), inbox)
	added := importIn(t, alice, simpleMessage("n@example.test", "New", "", "grey heron"), inbox)
	ch := alice.One(t, "Email/queryChanges", map[string]any{"accountId": alice.Account, "filter": filter, "sort": sort,
		"sinceQueryState": q["queryState"]})
	var got []string
	for _, a := range ch["added"].([]any) {
		got = append(got, str(a.(map[string]any)["id"]))
	}
	if !slices.Equal(got, []string{added}) {
		t.Errorf("queryChanges added %v, want %v (response %v)", got, added, ch)
	}
}

// An email copied from another account is searchable there (RFC 8621
// §4.7), with the tokens it was indexed with in its first account; one
// copied from an account not indexed yet waits, and the next text query
// indexes it first.
func TestEmailSearch_Copy(t *testing.T) {
	f := newShareFixture(t)
	f.srv.Admin(t, "share", "alice@example.test", "--with", "bob@example.test", "--rights", "readAdvanced", "--mailbox", "Inbox")
	bobInbox := mailboxByRole(t, f.bob, "inbox")
	r := f.bob.CallUsing(t, usingShare, jmaptest.Call{Name: "Email/copy", Args: map[string]any{
		"fromAccountId": f.alice.Account, "accountId": f.bob.Account,
		"create": map[string]any{"c1": map[string]any{"id": f.inboxA, "mailboxIds": map[string]any{bobInbox: true}}}}})
	c1 := str(member(r.MethodResponses[0].Args["created"], "c1")["id"])
	if c1 == "" {
		t.Fatalf("copy: %+v", r.MethodResponses)
	}
	q := f.bob.One(t, "Email/query", map[string]any{"accountId": f.bob.Account, "filter": map[string]any{"body": "shall"}})
	if ids := strs(q["ids"]); !slices.Equal(ids, []string{c1}) {
		t.Errorf("copied email: body search finds %v, want %v", ids, c1)
	}

	ctx := context.Background()
	if err := methods.DropSearchIndex(ctx, f.srv.Store(), store.AccountID(f.alice.Account)); err != nil {
		t.Fatal(err)
	}
	r = f.bob.CallUsing(t, usingShare, jmaptest.Call{Name: "Email/copy", Args: map[string]any{
		"fromAccountId": f.alice.Account, "accountId": f.bob.Account,
		"create": map[string]any{"c2": map[string]any{"id": f.inboxB, "mailboxIds": map[string]any{bobInbox: true}}}}})
	c2 := str(member(r.MethodResponses[0].Args["created"], "c2")["id"])
	if k, _ := methods.SearchIndexKeys(ctx, f.srv.Store(), store.AccountID(f.bob.Account)); k["fq"] != 1 || k["fd"] != 1 {
		t.Errorf("Bob's index after copying an unindexed email: %v, want it waiting", k)
	}
	q = f.bob.One(t, "Email/query", map[string]any{"accountId": f.bob.Account, "filter": map[string]any{"body": "numbers"}})
	if ids := strs(q["ids"]); c2 == "" || !slices.Equal(ids, []string{c2}) {
		t.Errorf("copied unindexed email: body search finds %v, want %v", ids, c2)
	}
	if k, _ := methods.SearchIndexKeys(ctx, f.srv.Store(), store.AccountID(f.bob.Account)); k["fq"] != 0 {
		t.Errorf("Bob's index after the query: %v, want nothing waiting", k)
	}
}

// An account stored before the index existed is indexed by its first text
// query, with the writes made in between, and then marked done.
func TestEmailSearch_BackfillsOldAccount(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	var ids []string
	for i := range 5 {
		ids = append(ids, importIn(t, alice, simpleMessage(fmt.Sprintf("old%d@example.test", i), "Old", "", fmt.Sprintf("archived text%d", i)), inbox))
	}
	ctx, acct := context.Background(), store.AccountID(alice.Account)
	if err := methods.DropSearchIndex(ctx, srv.Store(), acct); err != nil {
		t.Fatal(err)
	}
	if k, _ := methods.SearchIndexKeys(ctx, srv.Store(), acct); len(k) != 0 {
		t.Fatalf("index keys after drop: %v", k)
	}
	// Writes before the backfill: a new email, a destroyed old one.
	fresh := importIn(t, alice, simpleMessage("new@example.test", "New", "", "archived newer"), inbox)
	alice.One(t, "Email/set", map[string]any{"accountId": alice.Account, "destroy": []string{ids[0]}})

	q := alice.One(t, "Email/query", map[string]any{"accountId": alice.Account, "filter": map[string]any{"body": "archived"},
		"sort": []any{map[string]any{"property": "receivedAt", "isAscending": true}}, "calculateTotal": true})
	got := strs(q["ids"])
	want := append(slices.Clone(ids[1:]), fresh)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("after backfill: %v, want %v", got, want)
	}
	k, err := methods.SearchIndexKeys(ctx, srv.Store(), acct)
	if err != nil {
		t.Fatal(err)
	}
	if k["fd"] != 1 || k["ff"] != 5 || k["fq"] != 0 {
		t.Errorf("index keys after backfill: %v, want done, 5 forward entries, none waiting", k)
	}
	if ids := strs(alice.One(t, "Email/query", map[string]any{"accountId": alice.Account, "filter": map[string]any{"body": "text3"}})["ids"]); len(ids) != 1 {
		t.Errorf("text3 after backfill: %v", ids)
	}
}

// A transaction past its index budget leaves emails waiting; the import
// indexes them after its commit, so they are found.
func TestEmailSearch_WaitingEmailsAreIndexedBeforeQuery(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	rng := rand.New(rand.NewPCG(7, 8))
	word := func() string {
		b := make([]byte, 10)
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		return string(b)
	}
	emails := map[string]any{}
	var last string
	for i := range 4 {
		var body []string
		for range 1900 {
			body = append(body, word())
		}
		last = body[len(body)-1]
		raw := simpleMessage(fmt.Sprintf("big%d@example.test", i), fmt.Sprintf("Big %d", i), "", strings.Join(body, " "))
		emails[fmt.Sprintf("m%d", i)] = map[string]any{"blobId": uploadBlob(t, alice, []byte(raw), "message/rfc822"), "mailboxIds": boolSet(inbox)}
	}
	res := importEmails(t, alice, emails)
	if len(res["created"].(map[string]any)) != 4 {
		t.Fatalf("import: %v", res["notCreated"])
	}
	ctx, acct := context.Background(), store.AccountID(alice.Account)
	if k, _ := methods.SearchIndexKeys(ctx, srv.Store(), acct); k["fq"] != 0 || k["ff"] != 4 {
		t.Errorf("after the import: %v, want all four indexed", k)
	}
	q := alice.One(t, "Email/query", map[string]any{"accountId": alice.Account, "filter": map[string]any{"body": last}})
	if ids := strs(q["ids"]); len(ids) != 1 {
		t.Errorf("word of the last email: %v", ids)
	}
}

// The walk of the receivedAt index that serves searches with many
// candidates answers exactly as reading the candidates does: ids, position
// and total, with and without inMailbox, both directions.
func TestEmailSearch_WalkMatchesRead(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox, archive := mailboxByRole(t, alice, "inbox"), mailboxByRole(t, alice, "archive")
	words := []string{"apple", "banana", "cherry", "pineapple"}
	emails := map[string]any{}
	for i := range 40 {
		body := words[i%4] + " " + words[(i/4)%4]
		raw := simpleMessage(fmt.Sprintf("w%d@example.test", i), fmt.Sprintf("Fruit %d", i%7), "", body)
		mbox := inbox
		if i%3 == 0 {
			mbox = archive
		}
		emails[fmt.Sprintf("m%d", i)] = map[string]any{"blobId": uploadBlob(t, alice, []byte(raw), "message/rfc822"),
			"mailboxIds": boolSet(mbox), "receivedAt": fmt.Sprintf("2024-01-01T00:%02d:00Z", i%20)}
	}
	if res := importEmails(t, alice, emails); len(res["created"].(map[string]any)) != 40 {
		t.Fatalf("import: %v", res["notCreated"])
	}
	queries := []map[string]any{
		{"filter": map[string]any{"body": "apple"}},
		{"filter": map[string]any{"body": "apple"}, "position": 3, "limit": 5, "calculateTotal": true},
		{"filter": map[string]any{"text": "APPLE"}, "sort": []any{map[string]any{"property": "receivedAt", "isAscending": true}}, "limit": 4, "calculateTotal": true},
		{"filter": map[string]any{"body": "apple", "subject": "fruit"}, "limit": 10, "calculateTotal": true},
		{"filter": map[string]any{"body": "cherry", "inMailbox": archive}, "limit": 2, "calculateTotal": true},
		{"filter": map[string]any{"body": "cherry", "inMailbox": inbox}, "position": 1, "limit": 3},
		{"filter": map[string]any{"body": "banana"}, "position": 100, "calculateTotal": true},
		{"filter": map[string]any{"subject": "fruit 3"}, "calculateTotal": true},
	}
	run := func(q map[string]any) map[string]any {
		args := map[string]any{"accountId": alice.Account}
		for k, v := range q {
			args[k] = v
		}
		return alice.One(t, "Email/query", args)
	}
	for _, q := range queries {
		read := run(q)
		restore := methods.SetSearchWalkMin(0)
		before := methods.SearchWalks()
		walked := run(q)
		restore()
		if methods.SearchWalks() != before+1 {
			t.Errorf("query %v did not walk the index", q)
		}
		if !slices.Equal(strs(read["ids"]), strs(walked["ids"])) || read["total"] != walked["total"] || read["position"] != walked["position"] {
			t.Errorf("query %v: read %v %v %v, walked %v %v %v", q, read["ids"], read["position"], read["total"],
				walked["ids"], walked["position"], walked["total"])
		}
		if len(strs(read["ids"])) == 0 && q["position"] == nil {
			t.Errorf("query %v found nothing", q)
		}
	}
}

// One email whose index entries alone pass the transaction budget (2,000
// tokens new to the account, each with its 24 suffixes: more entries than
// a transaction of the store holds) is imported and
// indexed with the tokens that fit, instead of failing its transaction.
func TestEmailSearch_EmailPastBudgetKeepsWhatFits(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	rng := rand.New(rand.NewPCG(9, 10))
	var body []string
	for range 2000 {
		b := make([]byte, 24)
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		body = append(body, string(b))
	}
	raw := simpleMessage("huge@example.test", "Huge", "", strings.Join(body, " "))
	res := importEmails(t, alice, map[string]any{"m": map[string]any{
		"blobId": uploadBlob(t, alice, []byte(raw), "message/rfc822"), "mailboxIds": boolSet(inbox)}})
	if created, _ := res["created"].(map[string]any); len(created) != 1 {
		t.Fatalf("import: %v", res["notCreated"])
	}
	ctx, acct := context.Background(), store.AccountID(alice.Account)
	// The budget holds for one email too: never more index entries in a
	// transaction than it allows (fs: a suffix each, fp: a block each).
	k, _ := methods.SearchIndexKeys(ctx, srv.Store(), acct)
	if k["fq"] != 0 || k["ff"] != 1 || k["fs"]+k["fp"] > methods.SearchTxBudget {
		t.Errorf("after the import: %v, want the email indexed within %d entries", k, methods.SearchTxBudget)
	}
	for _, w := range []string{body[0], body[500]} {
		q := alice.One(t, "Email/query", map[string]any{"accountId": alice.Account, "filter": map[string]any{"body": w}})
		if ids := strs(q["ids"]); len(ids) != 1 {
			t.Errorf("word %q of the email: %v", w, ids)
		}
	}
}

// An Email/import of maxObjectsInSet messages, with thousands of tokens new
// to the account, fits the store's transactions: the emails past the
// index's budget wait and are indexed right after, and every one is found.
func TestEmailImport_LargestBatchIsIndexed(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	const n = 1000
	create := map[string]any{}
	for i := range n {
		body := fmt.Sprintf("common words for all, and unique ones: zq%dalpha zq%dbeta zq%dgamma zq%ddelta zq%depsilon", i, i, i, i, i)
		create[fmt.Sprint(i)] = map[string]any{"data": []any{map[string]any{"data:asText": simpleMessage(fmt.Sprintf("b%d@example.test", i), fmt.Sprintf("Batch %d", i), "", body)}}}
	}
	up := alice.One(t, "Blob/upload", map[string]any{"accountId": alice.Account, "create": create})
	blobs, _ := up["created"].(map[string]any)
	if len(blobs) != n {
		t.Fatalf("Blob/upload: %d created, notCreated %v", len(blobs), up["notCreated"])
	}
	emails := map[string]any{}
	for k, b := range blobs {
		emails[k] = map[string]any{"blobId": str(b.(map[string]any)["id"]), "mailboxIds": boolSet(inbox)}
	}
	res := importEmails(t, alice, emails)
	if created, _ := res["created"].(map[string]any); len(created) != n {
		t.Fatalf("import: %d created, notCreated %v", len(created), res["notCreated"])
	}
	ctx, acct := context.Background(), store.AccountID(alice.Account)
	if k, _ := methods.SearchIndexKeys(ctx, srv.Store(), acct); k["fq"] != 0 || k["ff"] != n {
		t.Errorf("after the import: %v, want all %d indexed", k, n)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		q := alice.One(t, "Email/query", map[string]any{"accountId": alice.Account, "filter": map[string]any{"body": fmt.Sprintf("zq%dgamma", i)}})
		if ids := strs(q["ids"]); len(ids) != 1 {
			t.Errorf("unique word of message %d: %v", i, ids)
		}
	}
}

// largeHeaderMessage is message i of a mailing with long headers (40
// recipients, 30 references: records of several KB) and a body whose last
// word is w<i>x19.
func largeHeaderMessage(i int) string {
	var to, refs, body []string
	for j := range 40 {
		to = append(to, fmt.Sprintf("Person Number %d <person%d.%d@long-domain-name.example.test>", j, i, j))
	}
	for j := range 30 {
		refs = append(refs, fmt.Sprintf("<ref%d.%d.abcdefghij@example.test>", i, j))
	}
	for j := range 20 {
		body = append(body, fmt.Sprintf("w%dx%d", i, j))
	}
	return "From: Sender <s@example.test>\r\nTo: " + strings.Join(to, ", ") + "\r\nReferences: " + strings.Join(refs, " ") +
		fmt.Sprintf("\r\nSubject: A long subject line for message number %d\r\nMessage-ID: <m%d@example.test>\r\n\r\n", i, i) +
		strings.Join(body, " ") + "\r\n"
}

// uploadLargeHeaderMessages uploads n largeHeaderMessages with Blob/upload
// and returns the EmailImports of them into mailbox.
func uploadLargeHeaderMessages(t *testing.T, c *jmaptest.Client, n int, mailbox string) map[string]any {
	t.Helper()
	create := map[string]any{}
	for i := range n {
		create[fmt.Sprint(i)] = map[string]any{"data": []any{map[string]any{"data:asText": largeHeaderMessage(i)}}}
	}
	up := c.One(t, "Blob/upload", map[string]any{"accountId": c.Account, "create": create})
	blobs, _ := up["created"].(map[string]any)
	if len(blobs) != n {
		t.Fatalf("Blob/upload: %d created", len(blobs))
	}
	emails := map[string]any{}
	for k, b := range blobs {
		emails[k] = map[string]any{"blobId": str(b.(map[string]any)["id"]), "mailboxIds": boolSet(mailbox)}
	}
	return emails
}

// An Email/import of maxObjectsInSet messages with long headers is more
// than one store transaction holds; it commits in chunks, every email is
// created, and oldState and newState span them all.
func TestEmailImport_LargeHeadersCommitInChunks(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	const n = 1000
	emails := uploadLargeHeaderMessages(t, alice, n, inbox)
	before := alice.State(t, alice.Account, "Email")
	res := importEmails(t, alice, emails)
	if created, _ := res["created"].(map[string]any); len(created) != n {
		t.Fatalf("import: %d created, notCreated %.300v", len(created), res["notCreated"])
	}
	if res["oldState"] != before {
		t.Errorf("oldState %v, want %v", res["oldState"], before)
	}
	after := alice.State(t, alice.Account, "Email")
	if res["newState"] != after {
		t.Errorf("newState %v, want the state after the import %v", res["newState"], after)
	}
	ch := alice.One(t, "Email/changes", map[string]any{"accountId": alice.Account, "sinceState": before})
	if got := len(strs(ch["created"])); got != n || ch["newState"] != after {
		t.Errorf("Email/changes since oldState: %d created, newState %v", got, ch["newState"])
	}
	q := alice.One(t, "Email/query", map[string]any{"accountId": alice.Account, "filter": map[string]any{"body": "w999x19"}})
	if ids := strs(q["ids"]); len(ids) != 1 {
		t.Errorf("last word of the last message: %v", ids)
	}
}

// An Email/copy of maxObjectsInSet such emails from a shared account is
// more than one store transaction holds too: it commits in chunks, every
// copy is created, and oldState and newState span them all.
func TestEmailCopy_LargeHeadersCommitInChunks(t *testing.T) {
	f := newShareFixture(t)
	const n = 1000
	res := importEmails(t, f.alice, uploadLargeHeaderMessages(t, f.alice, n, f.inbox))
	originals, _ := res["created"].(map[string]any)
	if len(originals) != n {
		t.Fatalf("import: %d created", len(originals))
	}
	f.srv.Admin(t, "share", "alice@example.test", "--with", "bob@example.test", "--rights", "readAdvanced", "--mailbox", "Inbox")
	bobInbox := mailboxByRole(t, f.bob, "inbox")
	create := map[string]any{}
	for k, o := range originals {
		create[k] = map[string]any{"id": str(o.(map[string]any)["id"]), "mailboxIds": boolSet(bobInbox)}
	}
	before := f.bob.State(t, f.bob.Account, "Email")
	r := f.bob.CallUsing(t, usingShare, jmaptest.Call{Name: "Email/copy", Args: map[string]any{
		"fromAccountId": f.alice.Account, "accountId": f.bob.Account, "create": create}})
	if r.MethodResponses[0].Name != "Email/copy" {
		t.Fatalf("copy: %+v", r.MethodResponses[0])
	}
	got := r.MethodResponses[0].Args
	if created, _ := got["created"].(map[string]any); len(created) != n {
		t.Fatalf("copy: %d created, notCreated %.300v", len(created), got["notCreated"])
	}
	after := f.bob.State(t, f.bob.Account, "Email")
	if got["oldState"] != before || got["newState"] != after {
		t.Errorf("states %v -> %v, want %v -> %v", got["oldState"], got["newState"], before, after)
	}
	ch := f.bob.One(t, "Email/changes", map[string]any{"accountId": f.bob.Account, "sinceState": before})
	if created := len(strs(ch["created"])); created != n {
		t.Errorf("Email/changes since oldState: %d created", created)
	}
	q := f.bob.One(t, "Email/query", map[string]any{"accountId": f.bob.Account, "filter": map[string]any{"body": "w999x19"}})
	if ids := strs(q["ids"]); len(ids) != 1 {
		t.Errorf("last word of the last copy: %v", ids)
	}
}

// An Email/set that moves maxObjectsInSet such emails, then one that
// destroys them, is more than one store transaction holds: each runs in
// parts that fit, every update and destroy is done, and oldState and
// newState span them all.
func TestEmailSet_LargeUpdateAndDestroyCommitInParts(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox, archive := mailboxByRole(t, alice, "inbox"), mailboxByRole(t, alice, "archive")
	const n = 1000
	res := importEmails(t, alice, uploadLargeHeaderMessages(t, alice, n, inbox))
	created, _ := res["created"].(map[string]any)
	var ids []string
	update := map[string]any{}
	for _, c := range created {
		id := str(c.(map[string]any)["id"])
		ids = append(ids, id)
		update[id] = map[string]any{"mailboxIds": boolSet(archive), "keywords/$seen": true}
	}
	if len(ids) != n {
		t.Fatalf("import: %d created", len(ids))
	}
	for _, step := range []struct {
		name string
		args map[string]any
		key  string
	}{
		{"move", map[string]any{"update": update}, "updated"},
		{"destroy", map[string]any{"destroy": ids}, "destroyed"},
	} {
		before := alice.State(t, alice.Account, "Email")
		step.args["accountId"] = alice.Account
		r := alice.Call(t, jmaptest.Call{Name: "Email/set", Args: step.args})
		got := r.MethodResponses[0].Args
		if r.MethodResponses[0].Name != "Email/set" {
			t.Fatalf("%s: %v", step.name, got)
		}
		done := 0
		switch v := got[step.key].(type) {
		case map[string]any:
			done = len(v)
		case []any:
			done = len(v)
		}
		if done != n || got["notUpdated"] != nil || got["notDestroyed"] != nil {
			t.Fatalf("%s: %d done, notUpdated %.200v, notDestroyed %.200v", step.name, done, got["notUpdated"], got["notDestroyed"])
		}
		after := alice.State(t, alice.Account, "Email")
		if got["oldState"] != before || got["newState"] != after {
			t.Errorf("%s: states %v -> %v, want %v -> %v", step.name, got["oldState"], got["newState"], before, after)
		}
		ch := alice.One(t, "Email/changes", map[string]any{"accountId": alice.Account, "sinceState": before})
		if k := map[string]string{"move": "updated", "destroy": "destroyed"}[step.name]; len(strs(ch[k])) != n {
			t.Errorf("%s: Email/changes %s %d", step.name, k, len(strs(ch[k])))
		}
	}
	boxes := alice.One(t, "Mailbox/get", map[string]any{"accountId": alice.Account, "ids": []string{inbox, archive}})
	for _, b := range boxes["list"].([]any) {
		if total := b.(map[string]any)["totalEmails"]; total != float64(0) {
			t.Errorf("mailbox %v: totalEmails %v after the destroy", b.(map[string]any)["name"], total)
		}
	}
}
