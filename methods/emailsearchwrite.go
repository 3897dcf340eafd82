package methods

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/jmapd/jmapd/internal/search"
	"github.com/jmapd/jmapd/store"
)

// The write side of the full-text index (layout in emailsearch.go).

// searchDoneValue returns a new value for fd: the format octet ('2': in
// blocks from the start, '1': perhaps format 1 too), then a random
// generation that names this dictionary in dictCache, so that a dictionary
// dropped and built again is never mistaken for the one before.
func searchDoneValue(format byte) []byte {
	return fmt.Appendf([]byte{format}, "%016x", rand.Uint64())
}

// dictCache remembers tokens found in accounts' dictionaries, so that a
// batch looks up only tokens new to the process. A token enters it only
// when a transaction read it from the store (the dictionary only grows);
// one a batch adds is read, and remembered, by a later batch. Keys are the
// account and its fd value, which holds a random generation.
var dictCache = &tokenCache{sets: map[string]map[string]struct{}{}}

// tokenCache is a bounded set of tokens per dictionary.
type tokenCache struct {
	mu   sync.RWMutex
	sets map[string]map[string]struct{}
}

const (
	// cacheDicts bounds the dictionaries the cache holds, and
	// cacheTokens the tokens of one; a full set starts over.
	cacheDicts  = 64
	cacheTokens = 1 << 20
)

// has reports whether the dictionary named key holds tok, as far as the
// cache knows.
func (c *tokenCache) has(key, tok string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.sets[key][tok]
	return ok
}

// add remembers toks in the dictionary named key.
func (c *tokenCache) add(key string, toks []string) {
	if len(toks) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	set := c.sets[key]
	if set == nil || len(set)+len(toks) > cacheTokens {
		if set == nil && len(c.sets) >= cacheDicts {
			for k := range c.sets { // any one goes
				delete(c.sets, k)
				break
			}
		}
		set = make(map[string]struct{}, len(toks))
		c.sets[key] = set
	}
	for _, t := range toks {
		set[t] = struct{}{}
	}
}

// searchBatch gathers the emails a transaction adds to one account, to
// index them together when it ends (flush).
type searchBatch struct {
	pending []*pendingEmail
	// deferred counts the emails flush left waiting, past the budget.
	deferred int
}

// pendingEmail is an email of a batch with its tokens and their fields.
type pendingEmail struct {
	id    string
	toks  []string
	masks map[string]uint8
	// waiting: the email is listed as waiting, a key to delete once it is
	// indexed.
	waiting bool
}

func (b *searchBatch) find(id string) *pendingEmail {
	for _, p := range b.pending {
		if p.id == id {
			return p
		}
	}
	return nil
}

// flush indexes the gathered emails in blocks named by one fresh id, in
// order, and returns how many it dealt with. When the next email would
// take the transaction past searchTxBudget entries (unless it is the
// first), it and those after it are listed as waiting instead. An email no
// longer stored (destroyed in the transaction) is skipped.
func (b *searchBatch) flush(tx store.Tx, acct store.AccountID) (int, error) {
	pending := b.pending
	b.pending = nil
	if len(pending) == 0 {
		return 0, nil
	}
	seq, err := tx.NewID()
	if err != nil {
		return 0, err
	}
	cacheKey := ""
	if v, err := tx.GetMeta(searchDoneKey(acct)); err != nil {
		return 0, err
	} else if len(v) == 1 {
		// Marked done before fd named a generation: name one now.
		v = searchDoneValue(v[0])
		if err := tx.PutMeta(searchDoneKey(acct), v); err != nil {
			return 0, err
		}
		cacheKey = string(acct) + "\x00" + string(v)
	} else if len(v) > 1 {
		cacheKey = string(acct) + "\x00" + string(v)
	}
	var found []string // read from the dictionary, for the cache
	defer func() { dictCache.add(cacheKey, found) }()
	blocks := map[string][]search.Posting{}
	known := map[string]bool{} // in the dictionary, or added to it here
	spent, done := 0, 0
	for i, p := range pending {
		if _, err := tx.Get(acct, "Email", p.id); errors.Is(err, store.ErrNotFound) {
			if p.waiting {
				if err := tx.DeleteMeta(waitingKey(acct, p.id)); err != nil {
					return 0, err
				}
			}
			done++
			continue
		} else if err != nil {
			return 0, err
		}
		var fresh []string
		cost := 1
		for j, tok := range p.toks {
			c := 0
			if _, ok := blocks[tok]; !ok {
				c++
			}
			isFresh := false
			if !known[tok] && (cacheKey == "" || !dictCache.has(cacheKey, tok)) {
				v, err := tx.GetMeta(dictKey(acct, tok, tok))
				if err != nil {
					return 0, err
				}
				if isFresh = v == nil; isFresh {
					c += len(search.Suffixes(tok))
				} else if cacheKey != "" {
					found = append(found, tok)
				}
			}
			if cost+c > searchTxBudget {
				// One email alone past the budget (thousands of long
				// tokens new to the account) keeps the tokens that fit:
				// what is past them is not searched, as past
				// maxIndexTokens.
				p.toks = p.toks[:j]
				break
			}
			cost += c
			if isFresh {
				fresh = append(fresh, tok)
			} else {
				known[tok] = true
			}
		}
		if spent > 0 && spent+cost > searchTxBudget {
			b.deferred += len(pending) - i
			for _, q := range pending[i:] {
				if !q.waiting {
					if err := tx.PutMeta(waitingKey(acct, q.id), present); err != nil {
						return 0, err
					}
				}
			}
			break
		}
		spent += cost
		for _, tok := range fresh {
			known[tok] = true
			for _, s := range search.Suffixes(tok) {
				if err := tx.PutMeta(dictKey(acct, s, tok), present); err != nil {
					return 0, err
				}
			}
		}
		for _, tok := range p.toks {
			blocks[tok] = append(blocks[tok], search.Posting{ID: p.id, Fields: p.masks[tok]})
		}
		if err := tx.PutMeta(forwardKey(acct, p.id), appendForward(nil, seq, p.toks, p.masks)); err != nil {
			return 0, err
		}
		if p.waiting {
			if err := tx.DeleteMeta(waitingKey(acct, p.id)); err != nil {
				return 0, err
			}
		}
		done++
	}
	for tok, ps := range blocks {
		// The store keeps the value it is given: one buffer per block.
		if err := tx.PutMeta(postingPrefix(acct, tok)+seq, search.AppendBlock(nil, ps)); err != nil {
			return 0, err
		}
	}
	return done, nil
}

// appendForward appends the forward entry of an email indexed in the
// blocks named seq.
func appendForward(dst []byte, seq string, toks []string, masks map[string]uint8) []byte {
	dst = append(dst, 'w')
	dst = binary.AppendUvarint(dst, uint64(len(seq)))
	dst = append(dst, seq...)
	for _, tok := range toks {
		dst = append(append(append(dst, masks[tok]), tok...), 0)
	}
	return dst
}

// forwardEntries decodes a forward entry: the SEQ of the blocks its email
// is in, or "" for one in format 1 (a posting key per token), and each
// token with its fields.
func forwardEntries(v []byte, yield func(mask uint8, tok string)) (seq string) {
	if len(v) == 0 {
		return ""
	}
	rest := v[1:]
	switch v[0] {
	case 'v':
	case 'w':
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return ""
		}
		seq = string(rest[k : k+int(n)])
		rest = rest[k+int(n):]
	default:
		return ""
	}
	for len(rest) > 1 {
		end := slices.Index(rest[1:], 0)
		if end < 0 {
			break
		}
		yield(rest[0], string(rest[1:1+end]))
		rest = rest[end+2:]
	}
	return seq
}

// blockEdits gathers the postings a transaction takes out of blocks, or
// renames, to rewrite each block once when the transaction ends: taking
// every email of one import out of the index (a mailbox emptied, a
// selection destroyed) then writes each of the batch's blocks once, not
// once per email, which for the blocks of common words would be quadratic
// in the batch.
type blockEdits struct {
	tx store.Tx
	// edits maps a block key to the ids to change in it: to a new id, or
	// to "" to drop the posting.
	edits map[string]map[string]string
}

type blockEditsKey struct{}

// pendingBlockEdits returns the block edits of tx.
func pendingBlockEdits(tx store.Tx) *blockEdits {
	return tx.Gathered(blockEditsKey{}, func() (any, func() error) {
		b := &blockEdits{tx: tx, edits: map[string]map[string]string{}}
		return b, b.write
	}).(*blockEdits)
}

// change records that the posting of id in the block at key becomes the
// posting of newID, or goes when newID is "".
func (b *blockEdits) change(key, id, newID string) {
	m := b.edits[key]
	if m == nil {
		m = map[string]string{}
		b.edits[key] = m
	}
	m[id] = newID
}

// write rewrites each block with its edits, in key order, and deletes a
// block left empty. An id renamed and then renamed again or dropped (a
// thread merge, then a destroy) ends as its last change says.
func (b *blockEdits) write() error {
	for _, key := range slices.Sorted(maps.Keys(b.edits)) {
		edits := b.edits[key]
		v, err := b.tx.GetMeta(key)
		if err != nil {
			return err
		}
		if v == nil {
			continue
		}
		var ps []search.Posting
		if err := search.DecodeBlock(v, func(id string, f uint8) bool {
			if id = lastOf(edits, id); id != "" {
				ps = append(ps, search.Posting{ID: id, Fields: f})
			}
			return true
		}); err != nil {
			return err
		}
		if len(ps) == 0 {
			err = b.tx.DeleteMeta(key)
		} else {
			err = b.tx.PutMeta(key, search.AppendBlock(nil, ps))
		}
		if err != nil {
			return err
		}
	}
	clear(b.edits)
	return nil
}

// lastOf follows the changes of id in edits to what it ends as: a new
// id, "" when dropped, or id itself when unchanged.
func lastOf(edits map[string]string, id string) string {
	// New ids are fresh, so a chain ends; the bound is a guard.
	for range len(edits) {
		next, ok := edits[id]
		if !ok {
			break
		}
		if id = next; id == "" {
			break
		}
	}
	return id
}

// searchAdd gathers a new email (from addEmail) into the transaction's
// batch, or lists it as waiting when its body tokens are unknown.
func searchAdd(tx store.Tx, acct store.AccountID, e *emailRecord, cnt *counter) error {
	// An account whose first email this is has nothing stored before the
	// index: it is complete from the start.
	if st, err := tx.State(acct, "Email"); err != nil {
		return err
	} else if st == 0 {
		if err := tx.PutMeta(searchDoneKey(acct), searchDoneValue('2')); err != nil {
			return err
		}
	}
	if e.search == nil {
		return tx.PutMeta(waitingKey(acct, e.ID), present)
	}
	toks, masks := searchEntries(e, e.search.body)
	cnt.search.pending = append(cnt.search.pending, &pendingEmail{id: e.ID, toks: toks, masks: masks})
	return nil
}

// searchRemove takes an email out of the index (from removeEmail).
func searchRemove(tx store.Tx, acct store.AccountID, id string) error {
	return searchRewrite(tx, acct, id, "")
}

// searchMove moves the index entries of an email re-created under a new
// id by a thread merge; b is the batch of the transaction, which may hold
// the email.
func searchMove(tx store.Tx, acct store.AccountID, b *searchBatch, oldID, newID string) error {
	if p := b.find(oldID); p != nil {
		p.id = newID
		if !p.waiting {
			return nil
		}
		p.waiting = false
		return tx.DeleteMeta(waitingKey(acct, oldID))
	}
	return searchRewrite(tx, acct, oldID, newID)
}

// searchRewrite moves the index entries of id to newID, or removes them
// when newID is "".
func searchRewrite(tx store.Tx, acct store.AccountID, id, newID string) error {
	v, err := tx.GetMeta(forwardKey(acct, id))
	if err != nil {
		return err
	}
	if v == nil {
		w, err := tx.GetMeta(waitingKey(acct, id))
		if err != nil || w == nil {
			return err // not indexed yet: the backfill finds it
		}
		if err := tx.DeleteMeta(waitingKey(acct, id)); err != nil {
			return err
		}
		if newID == "" {
			return nil
		}
		return tx.PutMeta(waitingKey(acct, newID), present)
	}
	type entry struct {
		mask uint8
		tok  string
	}
	var ents []entry
	seq := forwardEntries(v, func(mask uint8, tok string) { ents = append(ents, entry{mask, tok}) })
	var blocks *blockEdits
	if seq != "" {
		blocks = pendingBlockEdits(tx)
	}
	for _, e := range ents {
		if blocks != nil {
			blocks.change(postingPrefix(acct, e.tok)+seq, id, newID)
			continue
		}
		if err := tx.DeleteMeta(postingKey(acct, e.tok, id)); err != nil {
			return err
		}
		if newID != "" {
			if err := tx.PutMeta(postingKey(acct, e.tok, newID), []byte{e.mask}); err != nil {
				return err
			}
		}
	}
	if err := tx.DeleteMeta(forwardKey(acct, id)); err != nil {
		return err
	}
	if newID == "" {
		return nil
	}
	return tx.PutMeta(forwardKey(acct, newID), v)
}

// searchTextOf returns the body tokens email id of acct was indexed with,
// or nil when it is not indexed (for Email/copy).
func searchTextOf(tx store.Tx, acct store.AccountID, id string) (*searchText, error) {
	v, err := tx.GetMeta(forwardKey(acct, id))
	if err != nil || v == nil {
		return nil, err
	}
	st := &searchText{body: []string{}}
	forwardEntries(v, func(mask uint8, tok string) {
		if mask&fieldBody != 0 {
			st.body = append(st.body, tok)
		}
	})
	return st, nil
}

// indexPending indexes the waiting emails of acct, and with backfill,
// every email of an account not marked done, then marks it.
func indexPending(ctx context.Context, st store.Store, acct store.AccountID, backfill bool) error {
	var todo []string
	done := false
	err := st.View(ctx, func(tx store.Tx) error {
		v, err := tx.GetMeta(searchDoneKey(acct))
		if err != nil {
			return err
		}
		done = v != nil
		if !done && !backfill {
			return nil
		}
		if done {
			p := waitingPrefix(acct)
			for m, err := range tx.ScanMeta(p) {
				if err != nil {
					return err
				}
				todo = append(todo, m.Key[len(p):])
			}
			return nil
		}
		n := 0
		for o, err := range tx.Scan(acct, "Email") {
			if err != nil {
				return err
			}
			if n++; n%256 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			v, err := tx.GetMeta(forwardKey(acct, o.ID))
			if err != nil {
				return err
			}
			if v == nil {
				todo = append(todo, o.ID)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for len(todo) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch := todo[:min(backfillBatch, len(todo))]
		n, err := indexBatch(ctx, st, acct, batch)
		if err != nil {
			return err
		}
		todo = todo[n:]
	}
	if done || !backfill {
		return nil
	}
	_, err = st.Update(ctx, func(tx store.Tx) error { return tx.PutMeta(searchDoneKey(acct), searchDoneValue('1')) })
	return err
}

// indexBatch indexes what it can of ids in one transaction and returns how
// many of them it dealt with (at least one).
func indexBatch(ctx context.Context, st store.Store, acct store.AccountID, ids []string) (int, error) {
	texts := make([]*searchText, len(ids))
	err := st.View(ctx, func(tx store.Tx) error {
		for i, id := range ids {
			e, err := loadEmail(tx, acct, id)
			if errors.Is(err, store.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			// The message is read outside the transaction that writes,
			// which may run again. One that cannot be read has no body
			// to search, as before the index.
			texts[i] = &searchText{}
			if m, err := openMessage(ctx, st, acct, e.BlobID); err == nil {
				texts[i] = bodySearchText(m)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	_, err = st.Update(ctx, func(tx store.Tx) error {
		n = 0
		b := &searchBatch{}
		var at []int // the index in ids of each email of the batch
		for i, id := range ids {
			e, err := loadEmail(tx, acct, id)
			if errors.Is(err, store.ErrNotFound) {
				if err := tx.DeleteMeta(waitingKey(acct, id)); err != nil {
					return err
				}
				n++
				continue
			} else if err != nil {
				return err
			}
			v, err := tx.GetMeta(forwardKey(acct, id))
			if err != nil {
				return err
			}
			if v != nil { // indexed meanwhile
				if err := tx.DeleteMeta(waitingKey(acct, id)); err != nil {
					return err
				}
				n++
				continue
			}
			if texts[i] == nil { // created since the read: next round
				break
			}
			w, err := tx.GetMeta(waitingKey(acct, id))
			if err != nil {
				return err
			}
			toks, masks := searchEntries(e, texts[i].body)
			b.pending = append(b.pending, &pendingEmail{id: id, toks: toks, masks: masks, waiting: w != nil})
			at = append(at, i)
			n++
		}
		// The batch indexes a prefix of its emails within the budget;
		// the next round starts at the first it left.
		k, err := b.flush(tx, acct)
		if k < len(at) {
			n = at[k]
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	if n == 0 {
		// Only an email absent from the read yet present at the write
		// stops a batch at its first id; ids are never reused, so that
		// cannot happen, but a loop must not depend on it.
		return len(ids), nil
	}
	return n, nil
}
