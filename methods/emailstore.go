package methods

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/jmapd/jmapd/internal/mime"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// emailRecord is an Email as stored: its mutable metadata and the header
// and body facts a message list shows, so that listing never parses MIME.
// Everything else is read from the message blob when asked for.
type emailRecord struct {
	ID            string          `json:"id"`
	BlobID        string          `json:"blobId"`
	ThreadID      string          `json:"threadId"`
	MailboxIDs    map[string]bool `json:"mailboxIds"`
	Keywords      map[string]bool `json:"keywords"`
	Size          int64           `json:"size"`
	ReceivedAt    string          `json:"receivedAt"`
	MessageID     []string        `json:"messageId"`
	InReplyTo     []string        `json:"inReplyTo"`
	References    []string        `json:"references"`
	Sender        []mime.Address  `json:"sender"`
	From          []mime.Address  `json:"from"`
	To            []mime.Address  `json:"to"`
	Cc            []mime.Address  `json:"cc"`
	Bcc           []mime.Address  `json:"bcc"`
	ReplyTo       []mime.Address  `json:"replyTo"`
	Subject       *string         `json:"subject"`
	SentAt        *string         `json:"sentAt"`
	HasAttachment bool            `json:"hasAttachment"`
	Preview       string          `json:"preview"`
	// Left lists the mailboxes the email was taken out of, so that /changes
	// can tell someone who could read it there that it is gone for them.
	Left map[string]bool `json:"left,omitempty"`
	// search holds the body tokens of a new email for the full-text
	// index (emailsearch.go); nil when they are not known.
	search *searchText
}

// storedEmailProps are the Email properties the record answers without
// the message.
var storedEmailProps = []string{"id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt",
	"messageId", "inReplyTo", "references", "sender", "from", "to", "cc", "bcc", "replyTo", "subject",
	"sentAt", "hasAttachment", "preview"}

func (e *emailRecord) unread() bool { return !e.Keywords["$seen"] && !e.Keywords["$draft"] }

func loadEmail(tx store.Tx, acct store.AccountID, id string) (*emailRecord, error) {
	var e emailRecord
	decode := func(b []byte) error {
		if err := decodeEmailRecord(b, &e); err != nil {
			return fmt.Errorf("email %s: %w", id, err)
		}
		return nil
	}
	if v, ok := tx.(recordViewer); ok {
		if err := v.ViewRecord(acct, "Email", id, decode); err != nil {
			return nil, err
		}
		return &e, nil
	}
	b, err := tx.Get(acct, "Email", id)
	if err != nil {
		return nil, err
	}
	if err := decode(b); err != nil {
		return nil, err
	}
	return &e, nil
}

func marshalEmail(e *emailRecord) ([]byte, error) { return json.Marshal(e) }

// threadRecord is a Thread: its emails sorted by receivedAt, then id
// (RFC 8621 §3), and the base subject that new emails must share to join.
type threadRecord struct {
	ID         string   `json:"id"`
	EmailIDs   []string `json:"emailIds"`
	ReceivedAt []string `json:"receivedAt"`
	Subject    string   `json:"subject"`
}

func loadThread(tx store.Tx, acct store.AccountID, id string) (*threadRecord, error) {
	b, err := tx.Get(acct, "Thread", id)
	if err != nil {
		return nil, err
	}
	var t threadRecord
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("thread %s: %w", id, err)
	}
	return &t, nil
}

func (t *threadRecord) add(id, receivedAt string) {
	i := 0
	for i < len(t.EmailIDs) && (t.ReceivedAt[i] < receivedAt || (t.ReceivedAt[i] == receivedAt && jmap.CompareIDs(t.EmailIDs[i], id) < 0)) {
		i++
	}
	t.EmailIDs = slices.Insert(t.EmailIDs, i, id)
	t.ReceivedAt = slices.Insert(t.ReceivedAt, i, receivedAt)
}

func (t *threadRecord) remove(id string) {
	if i := slices.Index(t.EmailIDs, id); i >= 0 {
		t.EmailIDs = slices.Delete(t.EmailIDs, i, i+1)
		t.ReceivedAt = slices.Delete(t.ReceivedAt, i, i+1)
	}
}

func putThread(tx store.Tx, acct store.AccountID, t *threadRecord, created bool) error {
	if len(t.EmailIDs) == 0 {
		if created {
			return nil
		}
		return tx.Delete(acct, "Thread", t.ID)
	}
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if created {
		return tx.Create(acct, "Thread", t.ID, b)
	}
	return tx.Put(acct, "Thread", t.ID, b)
}

// baseSubject strips reply and forward prefixes and list tags and folds
// white space and case, for thread matching (RFC 8621 §3, RFC 5256 §2.1
// in spirit).
func baseSubject(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	for {
		t := strings.TrimSpace(s)
		low := strings.ToLower(t)
		switch {
		case strings.HasPrefix(t, "["):
			if i := strings.Index(t, "]"); i > 0 {
				t = t[i+1:]
			}
		case strings.HasPrefix(low, "re:"), strings.HasPrefix(low, "fw:"):
			t = t[3:]
		case strings.HasPrefix(low, "fwd:"), strings.HasPrefix(low, "aw:"), strings.HasPrefix(low, "wg:"):
			t = t[strings.Index(t, ":")+1:]
		default:
			if strings.HasSuffix(low, "(fwd)") {
				t = t[:len(t)-5]
			}
		}
		t = strings.TrimSpace(t)
		if t == strings.TrimSpace(s) {
			return strings.ToLower(t)
		}
		s = t
	}
}

// messageIDKey holds the thread of the emails with message id mid (in
// Message-ID, In-Reply-To or References) and base subject subj. The subject
// is part of the key because RFC 8621 §3 joins two messages only when both
// the message id and the base subject match: a reply that changes the
// subject must not take the message id away from the original thread.
func messageIDKey(acct store.AccountID, subj, mid string) string {
	return "mid\x00" + string(acct) + "\x00" + mid + "\x00" + subj
}

func threadKeyFor(e *emailRecord) []string {
	out := make([]string, 0, len(e.MessageID)+len(e.InReplyTo)+len(e.References))
	out = append(out, e.MessageID...)
	out = append(out, e.InReplyTo...)
	out = append(out, e.References...)
	return out
}

// countDelta is the change of one mailbox's counts.
type countDelta struct{ total, unread, threads, unreadThreads int }

// mailboxThreadKey holds how many emails of a thread are in a mailbox, and
// how many of those are unread: "total unread".
func mailboxThreadKey(acct store.AccountID, mbox, thread string) string {
	return "mt\x00" + string(acct) + "\x00" + mbox + "\x00" + thread
}

// membership is what an email contributes to mailbox counts.
type membership struct {
	mailboxes map[string]bool
	unread    bool
	thread    string
}

func membershipOf(e *emailRecord) *membership {
	if e == nil {
		return nil
	}
	return &membership{mailboxes: e.MailboxIDs, unread: e.unread(), thread: e.ThreadID}
}

// counter applies membership changes to mailbox counts: totalEmails and
// unreadEmails per email, totalThreads and unreadThreads per thread with at
// least one (unread) email in the mailbox (RFC 8621 §2, the "simplest
// solution" for unreadThreads).
type counter struct {
	tx     store.Tx
	acct   store.AccountID
	deltas map[string]*countDelta
	// search gathers the emails the transaction adds, for the full-text
	// index.
	search searchBatch
}

func newCounter(tx store.Tx, acct store.AccountID) *counter {
	return &counter{tx: tx, acct: acct, deltas: map[string]*countDelta{}}
}

func (c *counter) delta(mbox string) *countDelta {
	d := c.deltas[mbox]
	if d == nil {
		d = &countDelta{}
		c.deltas[mbox] = d
	}
	return d
}

func (c *counter) bump(mbox, thread string, total, unread int) error {
	key := mailboxThreadKey(c.acct, mbox, thread)
	v, err := c.tx.GetMeta(key)
	if err != nil {
		return err
	}
	var n, u int
	if v != nil {
		f := strings.Fields(string(v))
		if len(f) == 2 {
			n, _ = strconv.Atoi(f[0])
			u, _ = strconv.Atoi(f[1])
		}
	}
	n2, u2 := n+total, u+unread
	d := c.delta(mbox)
	d.total += total
	d.unread += unread
	if n == 0 && n2 > 0 {
		d.threads++
	} else if n > 0 && n2 == 0 {
		d.threads--
	}
	if u == 0 && u2 > 0 {
		d.unreadThreads++
	} else if u > 0 && u2 == 0 {
		d.unreadThreads--
	}
	if n2 <= 0 {
		return c.tx.DeleteMeta(key)
	}
	return c.tx.PutMeta(key, []byte(strconv.Itoa(n2)+" "+strconv.Itoa(u2)))
}

// change records an email moving from before to after (nil: absent).
func (c *counter) change(before, after *membership) error {
	if before != nil {
		u := 0
		if before.unread {
			u = -1
		}
		for m := range before.mailboxes {
			if err := c.bump(m, before.thread, -1, u); err != nil {
				return err
			}
		}
	}
	if after != nil {
		u := 0
		if after.unread {
			u = 1
		}
		for m := range after.mailboxes {
			if err := c.bump(m, after.thread, 1, u); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush writes the new counts into the mailbox records, logged as
// count-only updates (RFC 8621 §2.2 updatedProperties).
func (c *counter) flush() error {
	if _, err := c.search.flush(c.tx, c.acct); err != nil {
		return err
	}
	for mbox, d := range c.deltas {
		if *d == (countDelta{}) {
			continue
		}
		b, err := c.tx.Get(c.acct, "Mailbox", mbox)
		if errors.Is(err, store.ErrNotFound) {
			continue // destroyed in this transaction
		}
		if err != nil {
			return err
		}
		out, err := addCounts(b, d)
		if err != nil {
			return err
		}
		if err := c.tx.PutProps(c.acct, "Mailbox", mbox, out, countProps); err != nil {
			return err
		}
	}
	c.deltas = map[string]*countDelta{}
	return nil
}

// addCounts returns the mailbox record b with d added to its counts (none
// below zero). Only the counts are read: in the record as json.Marshal
// wrote it, their digits are replaced where they stand; any other form is
// decoded as a map of raw members and encoded again.
func addCounts(b []byte, d *countDelta) ([]byte, error) {
	deltas := map[string]int{"totalEmails": d.total, "unreadEmails": d.unread,
		"totalThreads": d.threads, "unreadThreads": d.unreadThreads}
	if out, ok := addCountsInPlace(b, deltas); ok {
		return out, nil
	}
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for prop, dv := range deltas {
		var n float64
		if v, ok := m[prop]; ok {
			n, _ = strconv.ParseFloat(string(v), 64)
		}
		m[prop] = strconv.AppendFloat(nil, max(n+float64(dv), 0), 'f', -1, 64)
	}
	return json.Marshal(m)
}

// addCountsInPlace is addCounts for a compact record holding each count
// once as a non-negative integer; ok is false for anything else.
func addCountsInPlace(b []byte, deltas map[string]int) ([]byte, bool) {
	if len(b) < 2 || b[0] != '{' {
		return nil, false
	}
	out := make([]byte, 0, len(b)+16)
	seen, last, i := 0, 0, 1
	for i < len(b) && b[i] != '}' {
		end, ok := jmap.SkipString(b, i)
		if !ok || end >= len(b) || b[end] != ':' {
			return nil, false
		}
		name := string(b[i+1 : end-1])
		start := end + 1
		if end, ok = jmap.SkipValue(b, start); !ok || end >= len(b) {
			return nil, false
		}
		if dv, count := deltas[name]; count {
			n, err := strconv.ParseUint(string(b[start:end]), 10, 53)
			if err != nil {
				return nil, false
			}
			out = append(out, b[last:start]...)
			out = strconv.AppendInt(out, max(int64(n)+int64(dv), 0), 10)
			last = end
			seen++
		}
		switch b[end] {
		case ',':
			i = end + 1
		case '}':
			i = end
		default:
			return nil, false
		}
	}
	if seen != len(deltas) || i != len(b)-1 {
		return nil, false
	}
	return append(out, b[last:]...), true
}

// validKeyword reports whether k may be a keyword (RFC 8621 §4.1.1: IMAP
// atom characters, no specials, 1 to 255 octets).
func validKeyword(k string) bool {
	if k == "" || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c < 0x21 || c > 0x7e || strings.IndexByte(`(){]%*"\`, c) >= 0 {
			return false
		}
	}
	return true
}

// normalizeKeywords lower-cases keywords (they are case-insensitive) and
// checks names and values.
func normalizeKeywords(v any) (map[string]bool, *jmap.SetError) {
	if v == nil {
		return map[string]bool{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, jmap.InvalidProperties("keywords must map keywords to true", "keywords")
	}
	out := make(map[string]bool, len(m))
	for k, val := range m {
		if b, ok := val.(bool); !ok || !b || !validKeyword(k) {
			return nil, jmap.InvalidProperties(fmt.Sprintf("bad keyword %q", k), "keywords")
		}
		out[strings.ToLower(k)] = true
	}
	return out, nil
}

// checkMailboxIDs checks that mailboxIds maps at least one existing mailbox
// to true.
func checkMailboxIDs(tx store.Tx, acct store.AccountID, v any, resolve func(string) (string, bool)) (map[string]bool, *jmap.SetError) {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		return nil, jmap.InvalidProperties("mailboxIds must name at least one mailbox", "mailboxIds")
	}
	out := make(map[string]bool, len(m))
	for k, val := range m {
		if b, ok := val.(bool); !ok || !b {
			return nil, jmap.InvalidProperties("mailboxIds values must be true", "mailboxIds")
		}
		id, ok := resolve(k)
		if !ok {
			return nil, jmap.InvalidProperties(fmt.Sprintf("no mailbox %q", k), "mailboxIds")
		}
		if _, err := tx.Get(acct, "Mailbox", id); errors.Is(err, store.ErrNotFound) {
			return nil, jmap.InvalidProperties(fmt.Sprintf("no mailbox %q", k), "mailboxIds")
		} else if err != nil {
			return nil, jmap.NewSetError(jmap.ErrServerFail, "")
		}
		out[id] = true
	}
	return out, nil
}

func isSpaceOnly(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return !unicode.IsSpace(r) }) < 0
}

func loadEmailBytes(b []byte) (*emailRecord, error) {
	var e emailRecord
	if err := decodeEmailRecord(b, &e); err != nil {
		return nil, fmt.Errorf("email record: %w", err)
	}
	return &e, nil
}
