package methods

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/jmapd/jmapd/internal/mime"
	"github.com/jmapd/jmapd/internal/search"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
	"github.com/rs/zerolog"
)

// The full-text index answers the text conditions of Email/query (RFC 8621
// §4.4.1: text, from, to, cc, bcc, subject, body) with candidate sets. It is
// an inverted index in store meta keys, written by the transaction that adds
// or removes the email, so it is never behind and needs no recovery of its
// own; a second engine (bleve) would need both. Keys:
//
//	fp\0ACCT\0TOKEN\0SEQ     → block        postings of one batch (below)
//	fp\0ACCT\0TOKEN\0ID      → field mask   one posting (format 1)
//	ff\0ACCT\0ID             → forward entry: what ID was indexed with
//	fs\0ACCT\0SUFFIX\0TOKEN  → '1'          dictionary: each suffix of each token
//	fq\0ACCT\0ID             → '1'          ID waits to be indexed
//	fd\0ACCT                 → '1' or '2'   every email is indexed or waiting
//
// Postings come in blocks (search.AppendBlock): the emails a transaction
// adds are gathered as it runs and indexed together when it ends
// (counter.flush), one key per distinct token of the batch, named by a
// fresh id (SEQ) and holding each email of the batch that has the token,
// with its fields. A batch of 500 natural-text emails (BenchmarkTextSearch's
// corpus) writes about 14,000 posting keys instead of 70,000, and a word
// in 30% of 100,000 emails is a few hundred values to read, not 30,000
// keys. A query gathers the postings of every token containing its word
// into candSets, bitsets of id numbers. Blocks are never appended to, so
// concurrent transactions never write the same key. The forward entry
// ('w', the batch's SEQ, then (MASK TOKEN \0)*) names the blocks an email
// is in: removing the email rewrites them without it, and a thread merge
// rewrites them with its new id, so a block lists only live emails and the
// candidate count is exact (searchQuery's total relies on it).
//
// Format 1, before blocks, wrote one key per token per email (value: the
// one-octet mask) and forward entries starting with 'v'. Both formats are
// read side by side: a block's first octet (search.BlockVersion) is no
// field mask, and each forward entry says which kind of postings its email
// has. So an account indexed in format 1 is searched right as it is, and
// its new emails go into blocks; fd is '2' for an account indexed in blocks
// from the start.
//
// Tokens come from internal/search. The dictionary lets a query token that
// is a substring inside a token find it: a scan of the suffixes that start
// with the query token names every token containing it. Only tokens new to
// the account add suffixes (one read per distinct token of a batch tells).
// It only grows, so a token whose emails are gone costs one empty posting
// scan.
//
// Per email the index holds the tokens of from, to, cc, bcc (names and
// addresses) and subject, and of the first maxIndexBody octets of the body
// text (text/html parts without their markup), at most maxIndexTokens
// distinct tokens in all. Text past those limits is not searched. Email/import
// tokenizes before its transaction, so the transaction only files tokens.
//
// An email whose body tokens are not known when it is stored (delivery,
// Email/copy of one not indexed yet, or a transaction past its budget) is
// listed as waiting. Email/import indexes what its transaction left
// waiting right after the commit, so that nothing it made waits; a text
// query first indexes whatever waits in its account (in batches, one
// commit each), so its answer is exact; and an account stored before the
// index existed is indexed whole by its first text query (backfill), then
// marked done. A query in an account not marked done falls back to reading
// every email.
//
// There is no background indexer: an import already writes in batches of
// what it imports, and a second pass would read and parse every message
// again, or keep its tokens twice, and commit twice.
const (
	fieldFrom uint8 = 1 << iota
	fieldTo
	fieldCc
	fieldBcc
	fieldSubject
	fieldBody
)

const fieldAddresses = fieldFrom | fieldTo | fieldCc | fieldBcc

// searchFields maps the String conditions to the fields they search.
var searchFields = map[string]uint8{
	"from": fieldFrom, "to": fieldTo, "cc": fieldCc, "bcc": fieldBcc, "subject": fieldSubject, "body": fieldBody,
	"text": fieldAddresses | fieldSubject | fieldBody,
}

const (
	// maxIndexBody is how many octets of body text an email is indexed
	// with.
	maxIndexBody = 64 << 10
	// maxIndexTokens caps the distinct tokens of one email.
	maxIndexTokens = 2000
	// searchTxBudget caps the index entries one transaction writes, to
	// stay well inside the store's transaction size (about 50,000 entries
	// with Badger's 32 MB memtables) beside the other entries of the same
	// Update (an Email/import of 1,000 messages writes about 20,000):
	// emails past it wait, and one email alone past it keeps the tokens
	// that fit.
	searchTxBudget = 25000
	// backfillBatch is how many emails a backfill transaction indexes at
	// most.
	backfillBatch = 200
)

func postingPrefix(acct store.AccountID, tok string) string {
	return "fp\x00" + string(acct) + "\x00" + tok + "\x00"
}

func postingKey(acct store.AccountID, tok, id string) string { return postingPrefix(acct, tok) + id }

func forwardKey(acct store.AccountID, id string) string { return "ff\x00" + string(acct) + "\x00" + id }

func dictPrefix(acct store.AccountID) string { return "fs\x00" + string(acct) + "\x00" }

func dictKey(acct store.AccountID, suffix, tok string) string {
	return dictPrefix(acct) + suffix + "\x00" + tok
}

func waitingPrefix(acct store.AccountID) string { return "fq\x00" + string(acct) + "\x00" }

func waitingKey(acct store.AccountID, id string) string { return waitingPrefix(acct) + id }

func searchDoneKey(acct store.AccountID) string { return "fd\x00" + string(acct) }

var present = []byte{'1'}

// searchText is what the index needs from the message of a new email:
// its distinct body tokens.
type searchText struct{ body []string }

// bodySearchText collects the body tokens of m.
func bodySearchText(m *mime.Message) *searchText {
	text, html, _ := m.BodyLists()
	v := search.NewVocabulary(maxIndexTokens)
	left := maxIndexBody
	for _, p := range append(text, html...) {
		if left <= 0 {
			break
		}
		t, _ := m.Text(p)
		if p.Type == "text/html" {
			t = mime.HTMLToText(t)
		}
		if len(t) > left {
			end := left
			for end > 0 && !utf8.RuneStart(t[end]) {
				end--
			}
			t = t[:end]
		}
		left -= len(t)
		if !v.Add(t) {
			break
		}
	}
	return &searchText{body: v.Tokens()}
}

// searchEntries returns the tokens of e with the fields each is in, the
// record's fields first, then body, at most maxIndexTokens.
func searchEntries(e *emailRecord, body []string) ([]string, map[string]uint8) {
	masks := map[string]uint8{}
	var order []string
	add := func(tok string, f uint8) {
		if _, ok := masks[tok]; !ok {
			if len(order) >= maxIndexTokens {
				return
			}
			order = append(order, tok)
		}
		masks[tok] |= f
	}
	addText := func(s string, f uint8) {
		search.Tokens(s, func(tok string) bool { add(tok, f); return true })
	}
	for _, l := range []struct {
		list []mime.Address
		f    uint8
	}{{e.From, fieldFrom}, {e.To, fieldTo}, {e.Cc, fieldCc}, {e.Bcc, fieldBcc}} {
		for _, a := range l.list {
			if a.Name != nil {
				addText(*a.Name, l.f)
			}
			addText(a.Email, l.f)
		}
	}
	if e.Subject != nil {
		addText(*e.Subject, fieldSubject)
	}
	for _, tok := range body {
		add(tok, fieldBody)
	}
	return order, masks
}

// hasTextCondition reports whether a filter has a condition the index
// serves, so that the index must be brought up to date first.
func hasTextCondition(raw json.RawMessage) bool {
	var f any
	if json.Unmarshal(raw, &f) != nil {
		return false
	}
	var walk func(v any) bool
	walk = func(v any) bool {
		m, _ := v.(map[string]any)
		if _, isOp := m["operator"]; isOp {
			list, _ := m["conditions"].([]any)
			return slices.ContainsFunc(list, walk)
		}
		for k := range m {
			if searchFields[k] != 0 {
				return true
			}
		}
		return false
	}
	return walk(f)
}

// ensureSearchIndex indexes the emails of acct that wait, and on the first
// text query of an account stored before the index existed, every email,
// then marks the account done. It commits in batches, so an interrupted
// run keeps its progress; a write during it is indexed by its own
// transaction, and each batch checks inside its transaction that the email
// still exists and is not indexed yet.
func ensureSearchIndex(ctx context.Context, st store.Store, acct store.AccountID) error {
	return indexPending(ctx, st, acct, true)
}

// indexWaiting indexes the emails of acct that wait, if the account is
// marked done; it runs after an import so that the next search finds
// nothing left to do. A failure is logged: the next text query retries.
func indexWaiting(ctx context.Context, st store.Store, acct store.AccountID) {
	if err := indexPending(ctx, st, acct, false); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("account", string(acct)).Msg("index waiting emails")
	}
}

// searchReader answers candidate sets from the index in one snapshot.
type searchReader struct {
	tx      store.Tx
	acct    store.AccountID
	memo    map[string]*fieldSets
	waiting map[string]bool
}

// openSearch returns a reader of acct's index, or nil when the account
// is not completely indexed in this snapshot.
func openSearch(tx store.Tx, acct store.AccountID) (*searchReader, error) {
	v, err := tx.GetMeta(searchDoneKey(acct))
	if err != nil || v == nil {
		return nil, err
	}
	r := &searchReader{tx: tx, acct: acct, memo: map[string]*fieldSets{}, waiting: map[string]bool{}}
	p := waitingPrefix(acct)
	for m, err := range tx.ScanMeta(p) {
		if err != nil {
			return nil, err
		}
		r.waiting[m.Key[len(p):]] = true
	}
	return r, nil
}

// match returns the emails with a token containing tok, per field of
// those tokens.
func (r *searchReader) match(tok string) (*fieldSets, error) {
	if m, ok := r.memo[tok]; ok {
		return m, nil
	}
	var toks []string
	seen := map[string]bool{}
	for m, err := range r.tx.ScanMeta(dictPrefix(r.acct) + tok) {
		if err != nil {
			return nil, err
		}
		t := m.Key[strings.LastIndexByte(m.Key, 0)+1:]
		if !seen[t] {
			seen[t] = true
			toks = append(toks, t)
		}
	}
	out := &fieldSets{}
	posting := func(rest, v []byte) error {
		if len(v) == 1 { // format 1: the key names the email
			out.add(rest, v[0])
			return nil
		}
		if err := search.DecodeBlockBytes(v, func(id []byte, f uint8) bool {
			out.add(id, f)
			return true
		}); err != nil {
			return fmt.Errorf("posting block %q: %w", rest, err)
		}
		return nil
	}
	if mv, ok := r.tx.(metaViewer); ok {
		prefixes := make([]string, len(toks))
		for i, t := range toks {
			prefixes[i] = postingPrefix(r.acct, t)
		}
		if err := mv.ViewMetas(prefixes, func(_ int, rest, v []byte) error { return posting(rest, v) }); err != nil {
			return nil, err
		}
	} else {
		for _, t := range toks {
			p := postingPrefix(r.acct, t)
			for m, err := range r.tx.ScanMeta(p) {
				if err != nil {
					return nil, err
				}
				if err := posting([]byte(m.Key[len(p):]), m.Value); err != nil {
					return nil, err
				}
			}
		}
	}
	r.memo[tok] = out
	return out, nil
}

// metaViewer is a store.Tx that reads the metas under many prefixes with
// one iterator, lending their values instead of copying them (store/badger's
// tx is one).
type metaViewer interface {
	ViewMetas(prefixes []string, fn func(i int, rest, value []byte) error) error
}

// bodyHas answers whether the body of email id contains s when the index
// can tell exactly: s is one whole token and id is indexed.
func (r *searchReader) bodyHas(id, s string) (has, known bool) {
	if r.waiting[id] || !search.Whole(s) {
		return false, false
	}
	m, err := r.match(search.All(s)[0])
	if err != nil {
		return false, false
	}
	return m.hasIn(id, fieldBody), true
}

// termCandidates returns the emails that may have term in one of the
// fields: each of its tokens inside a token of those fields. ok is false
// when the term has no token, so the index cannot narrow it.
func (r *searchReader) termCandidates(term string, fields uint8) (set *candSet, ok bool, err error) {
	toks := search.All(term)
	if len(toks) == 0 {
		return nil, false, nil
	}
	for i, tok := range toks {
		if slices.Contains(toks[:i], tok) {
			continue
		}
		m, err := r.match(tok)
		if err != nil {
			return nil, false, err
		}
		if next := m.in(fields); set == nil {
			set = next
		} else {
			set = set.and(next)
		}
	}
	for id := range r.waiting {
		set.add(id)
	}
	return set, true, nil
}

// candidates returns a superset of the emails a filter matches, or ok
// false when the index cannot narrow it (see candidateSet).
func (r *searchReader) candidates(raw json.RawMessage) (map[string]bool, bool, error) {
	set, ok, err := r.candidateSet(raw)
	if !ok || err != nil {
		return nil, ok, err
	}
	out := make(map[string]bool, set.len())
	set.each(func(id string) { out[id] = true })
	return out, true, nil
}

// candidateSet returns a superset of the emails a filter matches, or ok
// false when the index cannot narrow it (no text condition under AND,
// a NOT, an OR with a branch it cannot narrow). Header conditions are not
// indexed: they narrow nothing and are checked on the candidates of the
// other conditions, or on every email when there are none.
func (r *searchReader) candidateSet(raw json.RawMessage) (*candSet, bool, error) {
	var f any
	if len(raw) == 0 || json.Unmarshal(raw, &f) != nil {
		return nil, false, nil
	}
	var walk func(v any) (*candSet, bool, error)
	and := func(a *candSet, aok bool, b *candSet, bok bool) (*candSet, bool) {
		switch {
		case !aok:
			return b, bok
		case !bok:
			return a, aok
		}
		return a.and(b), true
	}
	walk = func(v any) (*candSet, bool, error) {
		m, _ := v.(map[string]any)
		if op, isOp := m["operator"].(string); isOp {
			list, _ := m["conditions"].([]any)
			var acc *candSet
			accOK := false
			for i, c := range list {
				s, ok, err := walk(c)
				if err != nil {
					return nil, false, err
				}
				switch op {
				case "AND":
					acc, accOK = and(acc, accOK, s, ok)
				case "OR":
					if !ok {
						return nil, false, nil
					}
					if i == 0 {
						acc = newCandSet()
					}
					acc.or(s)
					accOK = true
				default:
					return nil, false, nil
				}
			}
			return acc, accOK, nil
		}
		var acc *candSet
		accOK := false
		for k, val := range m {
			fields := searchFields[k]
			s, isStr := val.(string)
			if fields == 0 || !isStr {
				continue
			}
			for _, term := range searchTokens(s) {
				set, ok, err := r.termCandidates(term, fields)
				if err != nil {
					return nil, false, err
				}
				acc, accOK = and(acc, accOK, set, ok)
			}
		}
		return acc, accOK, nil
	}
	return walk(f)
}

// prepareTextQuery brings the full-text index of the account up to date
// before a query with a text condition. An account the caller may not use
// is left for the query to refuse. When indexing fails the query still
// answers right: emails still waiting are candidates read in full, and an
// account not marked done is searched email by email.
func prepareTextQuery(ctx context.Context, c *jmap.Call, accountID string, filter json.RawMessage) error {
	if !hasTextCondition(filter) {
		return nil
	}
	acct, err := c.Account(ctx, accountID, CapMail)
	if err != nil {
		return nil
	}
	if err := ensureSearchIndex(ctx, c.Store(), acct.ID); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		zerolog.Ctx(ctx).Warn().Err(err).Str("account", string(acct.ID)).Msg("index emails before a search")
	}
	return nil
}

// candidateEmails loads the candidate emails the caller may read, in id
// order.
func candidateEmails(ctx context.Context, tx store.Tx, acct store.AccountID, cand map[string]bool, keep func(*emailRecord) bool) ([]*emailRecord, error) {
	ids := make([]string, 0, len(cand))
	for id := range cand {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, jmap.CompareIDs)
	out := make([]*emailRecord, 0, len(ids))
	for i, id := range ids {
		if i%256 == 255 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		e, err := loadEmail(tx, acct, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		if keep(e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// loadThreads fills q.threads with every readable email of the threads of
// list, for conditions and sorts that look at the whole thread.
func (q *queryContext) loadThreads(tx store.Tx, list []*emailRecord, keep func(*emailRecord) bool) error {
	byID := make(map[string]*emailRecord, len(list))
	for _, e := range list {
		byID[e.ID] = e
	}
	for _, e := range list {
		if _, done := q.threads[e.ThreadID]; done {
			continue
		}
		t, err := loadThread(tx, q.acct, e.ThreadID)
		if errors.Is(err, store.ErrNotFound) {
			q.threads[e.ThreadID] = []*emailRecord{e}
			continue
		} else if err != nil {
			return err
		}
		members := []*emailRecord{}
		for _, id := range t.EmailIDs {
			m := byID[id]
			if m == nil {
				m, err = loadEmail(tx, q.acct, id)
				if errors.Is(err, store.ErrNotFound) {
					continue
				} else if err != nil {
					return err
				}
				if !keep(m) {
					continue
				}
			}
			members = append(members, m)
		}
		q.threads[e.ThreadID] = members
	}
	return nil
}

// searchWalkMin is the candidate count from which searchQuery walks the
// receivedAt index instead of reading the candidates' records.
var searchWalkMin atomic.Int64

// searchWalks counts the searches searchQuery answered, for tests.
var searchWalks atomic.Int64

func init() { searchWalkMin.Store(1000) }

// searchQuery answers the common search shape from the full-text index
// and the receivedAt index without reading email records: the filter is
// one condition of text conditions whose terms are whole tokens (so the
// candidates are exactly the matches), perhaps with inMailbox, sorted by
// receivedAt alone, without anchor or collapseThreads, for the account's
// owner. The walk goes newest (or oldest) first and stops once the page is
// full, since the total is the candidate count; with inMailbox and
// calculateTotal it walks the whole mailbox. ok is false for any other
// shape, and when the candidates are few enough to read.
func searchQuery(ctx context.Context, c *jmap.Call, tx store.Tx, acct store.AccountID, args *emailQueryArgs) (ids []string, pos int, total *int, ok bool, err error) {
	if args.Anchor != nil || args.Position < 0 || args.CollapseThreads || len(args.Sort) > 1 ||
		(len(args.Sort) == 1 && args.Sort[0].Property != "receivedAt") {
		return nil, 0, nil, false, nil
	}
	var f map[string]any
	if json.Unmarshal(args.Filter, &f) != nil || f == nil {
		return nil, 0, nil, false, nil
	}
	mbox := allMail
	for k, v := range f {
		s, isStr := v.(string)
		switch {
		case !isStr:
			return nil, 0, nil, false, nil
		case k == "inMailbox":
			mbox = s
			if real, ok := c.ResolveID(s); ok {
				mbox = real
			}
			if mbox == allMail {
				return nil, 0, nil, false, nil
			}
		case searchFields[k] != 0:
			for _, term := range searchTokens(s) {
				if !search.Whole(term) {
					return nil, 0, nil, false, nil
				}
			}
		default:
			return nil, 0, nil, false, nil
		}
	}
	access, err := callerAccess(ctx, tx, acct)
	if err != nil || !access.Owner {
		return nil, 0, nil, false, err
	}
	r, err := openSearch(tx, acct)
	if err != nil || r == nil || len(r.waiting) > 0 {
		return nil, 0, nil, false, err
	}
	cand, narrowed, err := r.candidateSet(args.Filter)
	if err != nil || !narrowed || int64(cand.len()) < searchWalkMin.Load() {
		return nil, 0, nil, false, err
	}
	searchWalks.Add(1)
	desc := len(args.Sort) == 0 || !args.Sort[0].Ascending()
	scan := tx.ScanMeta
	if desc {
		scan = tx.ScanMetaReverse
	}
	limit := -1
	if args.Limit != nil {
		limit = *args.Limit
	}
	needAll := args.CalculateTotal && mbox != allMail
	ids = []string{}
	n := 0
	for m, err := range scan(indexPrefix(acct, mbox)) {
		if err != nil {
			return nil, 0, nil, false, err
		}
		id := indexID(m.Key)
		if !cand.has(id) {
			continue
		}
		if n >= args.Position && (limit < 0 || len(ids) < limit) {
			ids = append(ids, id)
		}
		n++
		if n%512 == 0 && ctx.Err() != nil {
			return nil, 0, nil, false, ctx.Err()
		}
		if limit >= 0 && len(ids) >= limit && !needAll {
			break
		}
	}
	count := n
	if mbox == allMail {
		count = cand.len()
	}
	if args.CalculateTotal {
		total = &count
	}
	return ids, min(args.Position, count), total, true, nil
}
