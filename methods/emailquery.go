package methods

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jmapd/jmapd/internal/mime"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// emailSortOptions are the Email/query sort properties (RFC 8621 §4.4.2),
// advertised as emailQuerySortOptions.
var emailSortOptions = []string{"receivedAt", "size", "from", "to", "subject", "sentAt", "hasKeyword",
	"allInThreadHaveKeyword", "someInThreadHaveKeyword"}

type emailQueryArgs struct {
	jmap.QueryArgs
	CollapseThreads bool `json:"collapseThreads"`
}

// queryContext holds what conditions about threads and bodies need,
// computed once per query.
type queryContext struct {
	ctx      context.Context
	c        *jmap.Call
	acct     store.AccountID
	threads  map[string][]*emailRecord
	messages map[string]*mime.Message
	// search reads the full-text index; nil when the account is not
	// completely indexed.
	search *searchReader
}

// parseHook, when set by a test, is called with the blob id of each
// message a query opens.
var parseHook atomic.Pointer[func(blobID string)]

func (q *queryContext) message(e *emailRecord) *mime.Message {
	if m, ok := q.messages[e.ID]; ok {
		return m
	}
	if h := parseHook.Load(); h != nil {
		(*h)(e.BlobID)
	}
	m, err := openMessage(q.ctx, q.c.Store(), q.acct, e.BlobID)
	if err != nil {
		m = nil
	}
	q.messages[e.ID] = m
	return m
}

// searchTokens splits the text of a String filter condition as RFC 8621
// §4.4.1 asks: "Outside of a phrase, white space SHOULD be treated as
// dividing separate tokens that may be searched for separately but MUST all
// be present"; "Text contained in either (but matched) single (') or double
// (") quotes SHOULD be treated as a phrase search", and within a phrase a
// backslash escapes ', " and \. A quote that opens a token but is never
// closed is an ordinary character.
func searchTokens(s string) []string {
	var out []string
	var tok strings.Builder
	flush := func() {
		if tok.Len() > 0 {
			out = append(out, tok.String())
			tok.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			flush()
		case (c == '"' || c == '\'') && tok.Len() == 0:
			var phrase strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != c; j++ {
				if s[j] == '\\' && j+1 < len(s) && strings.IndexByte(`'"\`, s[j+1]) >= 0 {
					j++
				}
				phrase.WriteByte(s[j])
			}
			if j == len(s) { // not matched: the quote is a character
				tok.WriteByte(c)
				continue
			}
			if phrase.Len() > 0 {
				out = append(out, phrase.String())
			}
			i = j
		default:
			tok.WriteByte(c)
		}
	}
	flush()
	return out
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

func addressesContain(list []mime.Address, s string) bool {
	for _, a := range list {
		if containsFold(a.Email, s) || (a.Name != nil && containsFold(*a.Name, s)) {
			return true
		}
	}
	return false
}

// bodyContains reports whether the body text of e contains s, ignoring
// case; HTML markup is not text (RFC 8621 §4.4.1: "When searching inside a
// HTML body, HTML tags and attributes SHOULD be ignored"). The full-text
// index answers when it can tell exactly; otherwise the message is read.
func (q *queryContext) bodyContains(e *emailRecord, s string) bool {
	if q.search != nil {
		if has, known := q.search.bodyHas(e.ID, s); known {
			return has
		}
	}
	m := q.message(e)
	if m == nil {
		return false
	}
	text, html, _ := m.BodyLists()
	for _, p := range append(text, html...) {
		t, _ := m.Text(p)
		if p.Type == "text/html" {
			t = mime.HTMLToText(t)
		}
		if containsFold(t, s) {
			return true
		}
	}
	return false
}

// compileEmailCondition compiles one FilterCondition (RFC 8621 §4.4.1).
func (q *queryContext) compileEmailCondition(cond map[string]any) (func(map[string]any) bool, error) {
	type test func(e *emailRecord) bool
	var tests []test
	bad := func(k, want string) error {
		return jmap.NewMethodError(jmap.ErrUnsupportedFilter, fmt.Sprintf("%s must be %s", k, want))
	}
	keyword := func(k string, v any) (string, error) {
		s, ok := v.(string)
		if !ok || !validKeyword(s) {
			return "", bad(k, "a keyword")
		}
		return strings.ToLower(s), nil
	}
	threadTest := func(kw string, want func(n, total int) bool) test {
		return func(e *emailRecord) bool {
			members := q.threads[e.ThreadID]
			n := 0
			for _, m := range members {
				if m.Keywords[kw] {
					n++
				}
			}
			return want(n, len(members))
		}
	}
	for k, v := range cond {
		switch k {
		case "inMailbox":
			id, ok := v.(string)
			if !ok {
				return nil, bad(k, "an id")
			}
			if real, ok := q.c.ResolveID(id); ok {
				id = real
			}
			tests = append(tests, func(e *emailRecord) bool { return e.MailboxIDs[id] })
		case "inMailboxOtherThan":
			list, ok := v.([]any)
			if !ok {
				return nil, bad(k, "an array of ids")
			}
			ex := map[string]bool{}
			for _, x := range list {
				s, ok := x.(string)
				if !ok {
					return nil, bad(k, "an array of ids")
				}
				if real, ok := q.c.ResolveID(s); ok {
					s = real
				}
				ex[s] = true
			}
			tests = append(tests, func(e *emailRecord) bool {
				for m := range e.MailboxIDs {
					if !ex[m] {
						return true
					}
				}
				return false
			})
		case "before", "after":
			s, ok := v.(string)
			t, valid := parseUTCDate(s)
			if !ok || !valid {
				return nil, bad(k, "a UTCDate")
			}
			at := utcDate(t)
			if k == "before" {
				tests = append(tests, func(e *emailRecord) bool { return e.ReceivedAt < at })
			} else {
				tests = append(tests, func(e *emailRecord) bool { return e.ReceivedAt >= at })
			}
		case "minSize", "maxSize":
			n, ok := v.(float64)
			if !ok || n < 0 {
				return nil, bad(k, "an unsigned integer")
			}
			if k == "minSize" {
				tests = append(tests, func(e *emailRecord) bool { return float64(e.Size) >= n })
			} else {
				tests = append(tests, func(e *emailRecord) bool { return float64(e.Size) < n })
			}
		case "allInThreadHaveKeyword", "someInThreadHaveKeyword", "noneInThreadHaveKeyword":
			kw, err := keyword(k, v)
			if err != nil {
				return nil, err
			}
			switch k {
			case "allInThreadHaveKeyword":
				tests = append(tests, threadTest(kw, func(n, total int) bool { return n == total }))
			case "someInThreadHaveKeyword":
				tests = append(tests, threadTest(kw, func(n, _ int) bool { return n > 0 }))
			default:
				tests = append(tests, threadTest(kw, func(n, _ int) bool { return n == 0 }))
			}
		case "hasKeyword", "notKeyword":
			kw, err := keyword(k, v)
			if err != nil {
				return nil, err
			}
			want := k == "hasKeyword"
			tests = append(tests, func(e *emailRecord) bool { return e.Keywords[kw] == want })
		case "hasAttachment":
			b, ok := v.(bool)
			if !ok {
				return nil, bad(k, "a boolean")
			}
			tests = append(tests, func(e *emailRecord) bool { return e.HasAttachment == b })
		case "from", "to", "cc", "bcc", "subject", "body", "text":
			s, ok := v.(string)
			if !ok {
				return nil, bad(k, "a string")
			}
			field, tokens := k, searchTokens(s)
			tests = append(tests, func(e *emailRecord) bool {
				subject := ""
				if e.Subject != nil {
					subject = *e.Subject
				}
				has := func(s string) bool {
					switch field {
					case "from":
						return addressesContain(e.From, s)
					case "to":
						return addressesContain(e.To, s)
					case "cc":
						return addressesContain(e.Cc, s)
					case "bcc":
						return addressesContain(e.Bcc, s)
					case "subject":
						return containsFold(subject, s)
					case "body":
						return q.bodyContains(e, s)
					}
					return addressesContain(e.From, s) || addressesContain(e.To, s) || addressesContain(e.Cc, s) ||
						addressesContain(e.Bcc, s) || containsFold(subject, s) || q.bodyContains(e, s)
				}
				for _, tok := range tokens {
					if !has(tok) {
						return false
					}
				}
				return true
			})
		case "header":
			list, ok := v.([]any)
			if !ok || len(list) == 0 || len(list) > 2 {
				return nil, bad(k, "an array of a header name and an optional value")
			}
			name, ok := list[0].(string)
			if !ok || name == "" {
				return nil, bad(k, "an array of a header name and an optional value")
			}
			var value *string
			if len(list) == 2 {
				s, ok := list[1].(string)
				if !ok {
					return nil, bad(k, "an array of a header name and an optional value")
				}
				value = &s
			}
			tests = append(tests, func(e *emailRecord) bool {
				m := q.message(e)
				if m == nil {
					return false
				}
				for _, hv := range mime.Values(m.Headers, name) {
					if value == nil || containsFold(mime.AsText(hv), *value) {
						return true
					}
				}
				return false
			})
		default:
			return nil, jmap.NewMethodError(jmap.ErrUnsupportedFilter, fmt.Sprintf("unknown condition %q", k))
		}
	}
	all := jmap.AllOf(tests)
	return func(o map[string]any) bool { return all(o["_email"].(*emailRecord)) }, nil
}

func firstAddress(list []mime.Address) string {
	if len(list) == 0 {
		return ""
	}
	if list[0].Name != nil && *list[0].Name != "" {
		return *list[0].Name
	}
	return list[0].Email
}

// emailSorter compiles Email/query comparators (RFC 8621 §4.4.2).
func (q *queryContext) emailSorter(sorts []jmap.Comparator) (func(a, b *emailRecord) int, error) {
	type step func(a, b *emailRecord) int
	var steps []step
	for _, s := range sorts {
		coll := s.Collation
		if _, ok := jmap.CompareStrings(coll, "", ""); !ok {
			return nil, jmap.NewMethodError(jmap.ErrUnsupportedSort, fmt.Sprintf("unknown collation %q", coll))
		}
		strCmp := func(f func(e *emailRecord) string) step {
			return func(a, b *emailRecord) int { r, _ := jmap.CompareStrings(coll, f(a), f(b)); return r }
		}
		var st step
		switch s.Property {
		case "receivedAt":
			st = func(a, b *emailRecord) int { return strings.Compare(a.ReceivedAt, b.ReceivedAt) }
		case "size":
			st = func(a, b *emailRecord) int { return int(a.Size - b.Size) }
		case "from":
			st = strCmp(func(e *emailRecord) string { return firstAddress(e.From) })
		case "to":
			st = strCmp(func(e *emailRecord) string { return firstAddress(e.To) })
		case "subject":
			st = strCmp(func(e *emailRecord) string {
				if e.Subject == nil {
					return ""
				}
				return baseSubject(*e.Subject)
			})
		case "sentAt":
			// RFC 8621 §4.4.2: "The sentAt property on the Email object",
			// a Date that keeps the message's offset: compare the instants,
			// not the text. An Email without one sorts first.
			sentAt := func(e *emailRecord) time.Time {
				if e.SentAt == nil {
					return time.Time{}
				}
				t, _ := time.Parse(time.RFC3339, *e.SentAt)
				return t
			}
			st = func(a, b *emailRecord) int { return sentAt(a).Compare(sentAt(b)) }
		case "hasKeyword", "allInThreadHaveKeyword", "someInThreadHaveKeyword":
			kw := strings.ToLower(s.Keyword)
			if !validKeyword(kw) {
				return nil, jmap.NewMethodError(jmap.ErrUnsupportedSort, s.Property+" needs a keyword")
			}
			prop := s.Property
			has := func(e *emailRecord) int {
				switch prop {
				case "hasKeyword":
					if e.Keywords[kw] {
						return 1
					}
					return 0
				}
				members := q.threads[e.ThreadID]
				n := 0
				for _, m := range members {
					if m.Keywords[kw] {
						n++
					}
				}
				if (prop == "allInThreadHaveKeyword" && n == len(members)) || (prop == "someInThreadHaveKeyword" && n > 0) {
					return 1
				}
				return 0
			}
			st = func(a, b *emailRecord) int { return has(a) - has(b) }
		default:
			return nil, jmap.NewMethodError(jmap.ErrUnsupportedSort, fmt.Sprintf("cannot sort by %q", s.Property))
		}
		if !s.Ascending() {
			inner := st
			st = func(a, b *emailRecord) int { return -inner(a, b) }
		}
		steps = append(steps, st)
	}
	if len(sorts) == 0 {
		// No sort given: newest first.
		steps = append(steps, func(a, b *emailRecord) int { return strings.Compare(b.ReceivedAt, a.ReceivedAt) })
	}
	// Ties go by id in the direction of the first comparator, as the
	// receivedAt index orders them, so both paths give the same results.
	tieDesc := len(sorts) == 0 || !sorts[0].Ascending()
	return func(a, b *emailRecord) int {
		for _, st := range steps {
			if r := st(a, b); r != 0 {
				return r
			}
		}
		if tieDesc {
			return jmap.CompareIDs(b.ID, a.ID)
		}
		return jmap.CompareIDs(a.ID, b.ID)
	}, nil
}

// emailResults returns the sorted ids matching the query.
func emailResults(ctx context.Context, c *jmap.Call, tx store.Tx, acct store.AccountID, args *emailQueryArgs) ([]string, error) {
	q := &queryContext{ctx: ctx, c: c, acct: acct, threads: map[string][]*emailRecord{}, messages: map[string]*mime.Message{}}
	f, err := jmap.CompileFilter(args.Filter, q.compileEmailCondition)
	if err != nil {
		return nil, err
	}
	cmp, err := q.emailSorter(args.Sort)
	if err != nil {
		return nil, err
	}
	access, err := callerAccess(ctx, tx, acct)
	if err != nil {
		return nil, err
	}
	if q.search, err = openSearch(tx, acct); err != nil {
		return nil, err
	}
	var all []*emailRecord
	// RFC 8621 §9.5: what the caller may not read does not exist, nor do
	// the mailboxes they cannot see.
	keep := func(e *emailRecord) bool {
		if !readableIn(access, e.MailboxIDs) {
			return false
		}
		e.MailboxIDs = visibleMailboxes(access, e.MailboxIDs)
		return true
	}
	var cand map[string]bool
	narrowed := false
	if q.search != nil {
		if cand, narrowed, err = q.search.candidates(args.Filter); err != nil {
			return nil, err
		}
	}
	if narrowed {
		// Only the candidates of the full-text index are read and
		// checked against the whole filter.
		if all, err = candidateEmails(ctx, tx, acct, cand, keep); err != nil {
			return nil, err
		}
		if dependsOnThread(&jmap.QueryChangesArgs{Filter: args.Filter, Sort: args.Sort}) {
			if err := q.loadThreads(tx, all, keep); err != nil {
				return nil, err
			}
		}
	} else {
		n := 0
		for o, err := range tx.Scan(acct, "Email") {
			if err != nil {
				return nil, err
			}
			if n++; n%256 == 0 && ctx.Err() != nil {
				return nil, ctx.Err()
			}
			e, err := loadEmailBytes(o.Data)
			if err != nil {
				return nil, err
			}
			if keep(e) {
				all = append(all, e)
				q.threads[e.ThreadID] = append(q.threads[e.ThreadID], e)
			}
		}
	}
	var hits []*emailRecord
	for _, e := range all {
		if f(map[string]any{"_email": e}) {
			hits = append(hits, e)
		}
	}
	slices.SortStableFunc(hits, cmp)
	ids := make([]string, 0, len(hits))
	seenThread := map[string]bool{}
	for _, e := range hits {
		if args.CollapseThreads {
			if seenThread[e.ThreadID] {
				continue
			}
			seenThread[e.ThreadID] = true
		}
		ids = append(ids, e.ID)
	}
	return ids, nil
}

// emailQuery searches emails (RFC 8621 §4.4).
func emailQuery(ctx context.Context, c *jmap.Call) (any, error) {
	var args emailQueryArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	if err := prepareTextQuery(ctx, c, args.AccountID, args.Filter); err != nil {
		return nil, err
	}
	page := func(tx store.Tx, acct store.AccountID) ([]string, int, *int, bool, error) {
		ids, pos, total, ok, err := indexedQuery(ctx, c, tx, acct, &args)
		if ok || err != nil {
			return ids, pos, total, ok, err
		}
		return searchQuery(ctx, c, tx, acct, &args)
	}
	return jmap.RunQuery(ctx, c, &args.QueryArgs, CapMail, "Email", page, func(tx store.Tx, acct store.AccountID) ([]string, error) {
		return emailResults(ctx, c, tx, acct, &args)
	})
}

type emailQueryChangesArgs struct {
	jmap.QueryChangesArgs
	CollapseThreads bool `json:"collapseThreads"`
}

// threadKeywordProps are the filter conditions and sorts whose value for
// an email depends on the other emails of its thread (RFC 8621 §4.4).
var threadKeywordProps = []string{"allInThreadHaveKeyword", "someInThreadHaveKeyword", "noneInThreadHaveKeyword"}

// dependsOnThread reports whether the query's filter or sort looks at the
// keywords of other emails in the thread, so that a change to one email can
// add or remove another that did not change.
func dependsOnThread(args *jmap.QueryChangesArgs) bool {
	for _, s := range args.Sort {
		if slices.Contains(threadKeywordProps, s.Property) {
			return true
		}
	}
	var walk func(v any) bool
	walk = func(v any) bool {
		m, _ := v.(map[string]any)
		for k, x := range m {
			if slices.Contains(threadKeywordProps, k) {
				return true
			}
			if k == "conditions" {
				list, _ := x.([]any)
				if slices.ContainsFunc(list, walk) {
					return true
				}
			}
		}
		return false
	}
	var f any
	return json.Unmarshal(args.Filter, &f) == nil && walk(f)
}

// emailQueryChanges reports changes to Email/query results (RFC 8621
// §4.5). With collapseThreads a change to one email can change which email
// stands for its thread, and with a thread keyword condition or sort
// whether another email of the thread matches or where it sorts (RFC 8620
// §5.6 wants exact changes), so those cases answer cannotCalculateChanges
// when anything changed.
func emailQueryChanges(ctx context.Context, c *jmap.Call) (any, error) {
	var args emailQueryChangesArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	if err := prepareTextQuery(ctx, c, args.AccountID, args.Filter); err != nil {
		return nil, err
	}
	return jmap.RunQueryChanges(ctx, c, &args.QueryChangesArgs, CapMail, "Email", func(tx store.Tx, acct store.AccountID, set *jmap.ChangeSet) ([]string, error) {
		// Ids the caller may not read never appear, even as removed.
		if err := filterEmailChanges(ctx, tx, acct, set); err != nil {
			return nil, err
		}
		changed := len(set.Created) + len(set.Updated) + len(set.Destroyed)
		if (args.CollapseThreads || dependsOnThread(&args.QueryChangesArgs)) && changed > 0 {
			return nil, jmap.NewMethodError(jmap.ErrCannotCalculateChanges, "")
		}
		qa := &emailQueryArgs{QueryArgs: jmap.QueryArgs{AccountID: args.AccountID, Filter: args.Filter, Sort: args.Sort}}
		return emailResults(ctx, c, tx, acct, qa)
	})
}
