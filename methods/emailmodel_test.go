package methods_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmapd/jmapd/jmaptest"
)

// modelEmail is what the model knows of one Email.
type modelEmail struct {
	id         string // current server id (changes when threads merge)
	msgID      string
	subject    string   // base subject
	tokens     []string // ids in Message-ID, In-Reply-To and References
	thread     string   // server thread id
	mailboxes  map[string]bool
	keywords   map[string]bool
	receivedAt string
}

func (e *modelEmail) unread() bool { return !e.keywords["$seen"] && !e.keywords["$draft"] }

// emailModel is the client's expectation of an account's emails.
type emailModel struct {
	live    []*modelEmail // in import order
	byMsgID map[string]*modelEmail
	all     []*modelEmail // every import, destroyed ones too
	threads map[string]bool
}

// idOrder orders ids as Thread emailIds break receivedAt ties: by id, the
// store's ids compared by length and then octets (RFC 8621 §3: "sorting by
// id is recommended").
func idOrder(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// threadIDs returns each live thread's emails sorted by receivedAt, then id.
func (m *emailModel) threadIDs() map[string][]string {
	out := map[string][]string{}
	var order []*modelEmail
	order = append(order, m.live...)
	slices.SortFunc(order, func(a, b *modelEmail) int {
		if c := strings.Compare(a.receivedAt, b.receivedAt); c != 0 {
			return c
		}
		return idOrder(a.id, b.id)
	})
	for _, e := range order {
		out[e.thread] = append(out[e.thread], e.id)
	}
	return out
}

// counts returns totalEmails, unreadEmails, totalThreads and unreadThreads
// of a mailbox as the server defines them (RFC 8621 §2; unreadThreads
// counts threads with an unread email in this mailbox).
func (m *emailModel) counts(mbox string) [4]int {
	var c [4]int
	threads, unread := map[string]bool{}, map[string]bool{}
	for _, e := range m.live {
		if !e.mailboxes[mbox] {
			continue
		}
		c[0]++
		threads[e.thread] = true
		if e.unread() {
			c[1]++
			unread[e.thread] = true
		}
	}
	c[2], c[3] = len(threads), len(unread)
	return c
}

// emailView is the part of an Email the replayed client cache holds.
type emailView struct {
	thread    string
	mailboxes map[string]bool
	keywords  map[string]bool
}

func viewOf(v map[string]any) emailView {
	out := emailView{thread: str(v["threadId"]), mailboxes: map[string]bool{}, keywords: map[string]bool{}}
	for k := range v["mailboxIds"].(map[string]any) {
		out.mailboxes[k] = true
	}
	for k := range v["keywords"].(map[string]any) {
		out.keywords[k] = true
	}
	return out
}

// clientCache is a client's copy of the account, kept up to date with
// /changes only.
type clientCache struct {
	emailState, mailboxState, threadState string
	emails                                map[string]emailView
	mailboxes                             map[string]map[string]any
	threads                               map[string][]string
}

// fetchEmailViews gets views of the given emails.
func fetchEmailViews(t *testing.T, c *jmaptest.Client, ids []string) map[string]emailView {
	t.Helper()
	out := map[string]emailView{}
	for id, e := range getEmails(t, c, ids, map[string]any{"properties": []string{"threadId", "mailboxIds", "keywords"}}) {
		out[id] = viewOf(e)
	}
	return out
}

// allChanges runs TYPE/changes from since until hasMoreChanges is false
// and returns the created, updated and destroyed ids and the new state.
func allChanges(t *testing.T, c *jmaptest.Client, typ, since string) (created, updated, destroyed []string, state string) {
	t.Helper()
	for range 100 {
		ch := changesSince(t, c, typ, since)
		created = append(created, strs(ch["created"])...)
		updated = append(updated, strs(ch["updated"])...)
		destroyed = append(destroyed, strs(ch["destroyed"])...)
		since = str(ch["newState"])
		if ch["hasMoreChanges"] != true {
			return created, updated, destroyed, since
		}
	}
	t.Fatalf("%s/changes never ends", typ)
	return
}

// replay brings the cache up to date with Email, Mailbox and Thread
// /changes (RFC 8620 §5.2): drop destroyed ids, fetch created and updated.
func (cc *clientCache) replay(t *testing.T, c *jmaptest.Client) {
	t.Helper()
	created, updated, destroyed, st := allChanges(t, c, "Email", cc.emailState)
	for _, id := range destroyed {
		delete(cc.emails, id)
	}
	maps.Copy(cc.emails, fetchEmailViews(t, c, append(created, updated...)))
	cc.emailState = st

	created, updated, destroyed, st = allChanges(t, c, "Mailbox", cc.mailboxState)
	for _, id := range destroyed {
		delete(cc.mailboxes, id)
	}
	if ids := append(created, updated...); len(ids) > 0 {
		res := c.One(t, "Mailbox/get", map[string]any{"accountId": c.Account, "ids": ids})
		for _, x := range res["list"].([]any) {
			m := x.(map[string]any)
			cc.mailboxes[str(m["id"])] = m
		}
	}
	cc.mailboxState = st

	created, updated, destroyed, st = allChanges(t, c, "Thread", cc.threadState)
	for _, id := range destroyed {
		delete(cc.threads, id)
	}
	if ids := append(created, updated...); len(ids) > 0 {
		res := c.One(t, "Thread/get", map[string]any{"accountId": c.Account, "ids": ids})
		for _, x := range res["list"].([]any) {
			m := x.(map[string]any)
			cc.threads[str(m["id"])] = strs(m["emailIds"])
		}
	}
	cc.threadState = st
}

// RFC 8621 §2, §3, §4 and RFC 8620 §5.2, as a model: random imports
// (replies with the same or another subject, messages joining two threads),
// keyword changes, moves, second mailboxes and destroys through the API.
// Every ten operations the Mailbox counts, every Thread's emailIds (by
// receivedAt, then id) and a client cache kept only with Email, Mailbox and
// Thread /changes must match the model. Threads follow RFC 8621 §3: an
// Email shares the Thread of every Email with which it shares a message id
// and base subject, and merged Emails are reinserted with new ids.
func TestEmailModel_RandomOperations(t *testing.T) {
	srv := jmaptest.Start(t)
	c := srv.NewUser(t, "model@example.test")
	boxes := []string{mailboxByRole(t, c, "inbox"), mailboxByRole(t, c, "archive"),
		createMailbox(t, c, map[string]any{"name": "Work"})}
	rng := rand.New(rand.NewPCG(8621, 3))
	m := &emailModel{byMsgID: map[string]*modelEmail{}, threads: map[string]bool{}}
	cache := &clientCache{emails: map[string]emailView{}, mailboxes: mailboxes(t, c), threads: map[string][]string{}}
	st := statesOf(t, c)
	cache.emailState, cache.mailboxState, cache.threadState = st.email, st.mailbox, st.thread
	topics := []string{"Budget", "Offsite", "Hiring", "Roadmap"}
	keywords := []string{"$seen", "$draft", "$flagged"}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

	merges := 0 // emails moved by thread merges
	pick := func() *modelEmail { return m.live[rng.IntN(len(m.live))] }
	importOne := func(n int) string {
		msgID := fmt.Sprintf("m%d@model.test", n)
		subject := topics[rng.IntN(len(topics))]
		var refs []string
		switch r := rng.IntN(10); {
		case r >= 4 && r <= 6 && len(m.all) > 0:
			p := m.all[rng.IntN(len(m.all))]
			refs = []string{p.msgID}
			if rng.IntN(10) < 7 {
				subject = "Re: " + p.subject
			}
		case r >= 7 && len(m.all) > 1:
			p, q := m.all[rng.IntN(len(m.all))], m.all[rng.IntN(len(m.all))]
			refs = []string{p.msgID, q.msgID}
			subject = "Re: " + p.subject
		}
		raw := "From: model@example.test\r\nSubject: " + subject + "\r\nMessage-ID: <" + msgID + ">\r\n"
		if len(refs) > 0 {
			raw += "In-Reply-To: <" + refs[len(refs)-1] + ">\r\nReferences: <" + strings.Join(refs, "> <") + ">\r\n"
		}
		raw += fmt.Sprintf("\r\nMessage %d.\r\n", n)
		e := &modelEmail{msgID: msgID, subject: strings.TrimPrefix(subject, "Re: "),
			tokens: append([]string{msgID}, refs...), mailboxes: map[string]bool{boxes[rng.IntN(3)]: true}, keywords: map[string]bool{},
			receivedAt: base.Add(time.Duration(rng.IntN(400)) * time.Minute).Format("2006-01-02T15:04:05Z")}
		if rng.IntN(4) == 0 {
			e.mailboxes[boxes[rng.IntN(3)]] = true
		}
		for _, k := range keywords {
			if rng.IntN(3) == 0 {
				e.keywords[k] = true
			}
		}
		before := statesOf(t, c)
		created := importRaw(t, c, raw, map[string]any{"mailboxIds": boolSet(slices.Collect(maps.Keys(e.mailboxes))...),
			"keywords": boolSet(slices.Collect(maps.Keys(e.keywords))...), "receivedAt": e.receivedAt})
		e.id, e.thread = str(created["id"]), str(created["threadId"])

		// Merged emails come back as destroyed and created (RFC 8621 §3).
		ch := changesSince(t, c, "Email", before.email)
		if len(strs(ch["updated"])) > 0 {
			t.Fatalf("import %d updated emails: %v", n, ch["updated"])
		}
		var moved []string
		for _, id := range strs(ch["created"]) {
			if id != e.id {
				moved = append(moved, id)
			}
		}
		if len(moved) != len(strs(ch["destroyed"])) || !slices.Contains(strs(ch["created"]), e.id) {
			t.Fatalf("import %d: Email/changes %v", n, ch)
		}
		for id, v := range getEmails(t, c, moved, map[string]any{"properties": []string{"messageId", "threadId", "mailboxIds", "keywords", "receivedAt"}}) {
			old := m.byMsgID[strs(v["messageId"])[0]]
			if old == nil || !slices.Contains(strs(ch["destroyed"]), old.id) {
				t.Fatalf("import %d: created %s %v is no moved email", n, id, v)
			}
			if !reflect.DeepEqual(viewOf(v).mailboxes, old.mailboxes) || !reflect.DeepEqual(viewOf(v).keywords, old.keywords) || v["receivedAt"] != old.receivedAt {
				t.Errorf("import %d: moved email %s changed: %v, was %+v", n, id, v, old)
			}
			if str(v["threadId"]) != e.thread {
				t.Errorf("import %d: moved email %s went to thread %v, not %s", n, id, v["threadId"], e.thread)
			}
			old.id, old.thread = id, str(v["threadId"])
			merges++
		}
		m.live = append(m.live, e)
		m.all = append(m.all, e)
		m.byMsgID[msgID] = e
		m.threads[e.thread] = true
		// RFC 8621 §3: a shared message id and base subject mean one thread.
		for _, f := range m.live {
			if f != e && f.subject == e.subject && slices.ContainsFunc(f.tokens, func(s string) bool { return slices.Contains(e.tokens, s) }) && f.thread != e.thread {
				t.Errorf("import %d (%q, %v) is in thread %s, but %s (%q, %v) shares a message id and is in %s",
					n, e.subject, e.tokens, e.thread, f.msgID, f.subject, f.tokens, f.thread)
			}
		}
		return fmt.Sprintf("import %s %q refs %v into %v", msgID, subject, refs, e.mailboxes)
	}

	check := func(after int, ops []string) {
		t.Helper()
		fail := func(format string, args ...any) {
			t.Helper()
			t.Errorf("after op %d (last ops %q): %s", after, ops[max(0, len(ops)-10):], fmt.Sprintf(format, args...))
		}
		all := mailboxes(t, c)
		for id, mb := range all {
			want := m.counts(id)
			got := [4]int{}
			for i, p := range []string{"totalEmails", "unreadEmails", "totalThreads", "unreadThreads"} {
				n, _ := mb[p].(float64)
				got[i] = int(n)
			}
			if got != want {
				fail("mailbox %v counts %v, want %v", mb["name"], got, want)
			}
		}
		threads := m.threadIDs()
		var ids []string
		for id := range m.threads {
			ids = append(ids, id)
		}
		res := c.One(t, "Thread/get", map[string]any{"accountId": c.Account, "ids": ids})
		got := map[string][]string{}
		for _, x := range res["list"].([]any) {
			tm := x.(map[string]any)
			got[str(tm["id"])] = strs(tm["emailIds"])
		}
		if !reflect.DeepEqual(got, threads) {
			fail("threads %v\nwant %v", got, threads)
		}
		for _, id := range strs(res["notFound"]) {
			if threads[id] != nil {
				fail("live thread %s not found", id)
			}
		}

		// The client cache, kept with /changes only, matches the server.
		cache.replay(t, c)
		want := map[string]emailView{}
		for _, e := range m.live {
			want[e.id] = emailView{thread: e.thread, mailboxes: e.mailboxes, keywords: e.keywords}
		}
		if !reflect.DeepEqual(cache.emails, want) {
			fail("cached emails %v\nwant %v", cache.emails, want)
		}
		res = c.One(t, "Email/get", map[string]any{"accountId": c.Account, "ids": nil, "properties": []string{"threadId", "mailboxIds", "keywords"}})
		fresh := map[string]emailView{}
		for _, x := range res["list"].([]any) {
			v := x.(map[string]any)
			fresh[str(v["id"])] = viewOf(v)
		}
		if !reflect.DeepEqual(fresh, want) {
			fail("Email/get ids null %v\nwant %v", fresh, want)
		}
		if !reflect.DeepEqual(cache.mailboxes, all) {
			fail("cached mailboxes %v\nwant %v", cache.mailboxes, all)
		}
		if !reflect.DeepEqual(cache.threads, threads) {
			fail("cached threads %v\nwant %v", cache.threads, threads)
		}
		if t.Failed() {
			t.FailNow()
		}
	}

	var ops []string
	for n := 1; n <= 150; n++ {
		var op string
		r := rng.IntN(20)
		switch {
		case r < 9 || len(m.live) < 3:
			op = importOne(n)
		case r < 12:
			e, k := pick(), keywords[rng.IntN(len(keywords))]
			if e.keywords[k] {
				updateEmail(t, c, e.id, map[string]any{"keywords/" + k: nil})
				delete(e.keywords, k)
				op = fmt.Sprintf("unset %s on %s", k, e.msgID)
			} else {
				updateEmail(t, c, e.id, map[string]any{"keywords/" + k: true})
				e.keywords[k] = true
				op = fmt.Sprintf("set %s on %s", k, e.msgID)
			}
		case r < 15:
			e, to := pick(), boxes[rng.IntN(3)]
			updateEmail(t, c, e.id, map[string]any{"mailboxIds": boolSet(to)})
			e.mailboxes = map[string]bool{to: true}
			op = fmt.Sprintf("move %s to %s", e.msgID, to)
		case r < 17:
			e, to := pick(), boxes[rng.IntN(3)]
			if len(e.mailboxes) > 1 && rng.IntN(2) == 0 {
				for _, b := range boxes {
					if e.mailboxes[b] {
						to = b
						break
					}
				}
				updateEmail(t, c, e.id, map[string]any{"mailboxIds/" + to: nil})
				delete(e.mailboxes, to)
				op = fmt.Sprintf("remove %s from %s", e.msgID, to)
			} else {
				updateEmail(t, c, e.id, map[string]any{"mailboxIds/" + to: true})
				e.mailboxes[to] = true
				op = fmt.Sprintf("also put %s in %s", e.msgID, to)
			}
		default:
			e := pick()
			res := setEmails(t, c, map[string]any{"destroy": []string{e.id}})
			if fmt.Sprint(res["destroyed"]) != "["+e.id+"]" {
				t.Fatalf("destroy %s: %v", e.id, res)
			}
			m.live = slices.DeleteFunc(m.live, func(x *modelEmail) bool { return x == e })
			op = fmt.Sprintf("destroy %s", e.msgID)
		}
		ops = append(ops, op)
		if n%10 == 0 {
			check(n, ops)
		}
	}
	if len(m.all) < 40 || merges == 0 {
		t.Errorf("%d imports and %d merged emails; the mix of operations is off", len(m.all), merges)
	}
}
