package badger

import (
	"errors"
	"fmt"
	"sync"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/jmapd/jmapd/store"
)

// maxBatch bounds the transactions of callers that one Badger transaction
// carries.
const maxBatch = 64

// update is one caller's transaction waiting to be run.
type update struct {
	fn      func(tx store.Tx) error
	changes []store.StateChange
	err     error
	// panicked holds what fn panicked with, to be raised again in the
	// caller's goroutine.
	panicked any
	// wake is signalled when the update has run (done) or when its caller
	// is to lead the next batch.
	wake chan struct{}
	done bool
}

// committer runs concurrent Updates one after the other inside shared
// Badger transactions: writers of the same hot keys (an account's states,
// a mailbox's counters) then never conflict, and a batch costs one commit.
// One caller at a time leads: it takes the waiting updates, runs and
// commits them, and hands the lead to the first caller still waiting.
type committer struct {
	mu      sync.Mutex
	queue   []*update
	leading bool
}

// run runs fn through the committer and returns its outcome once it is
// committed (not yet synced).
func (d *DB) run(fn func(tx store.Tx) error) ([]store.StateChange, error) {
	u := &update{fn: fn, wake: make(chan struct{}, 1)}
	c := &d.commit
	c.mu.Lock()
	c.queue = append(c.queue, u)
	lead := !c.leading
	c.leading = true
	c.mu.Unlock()
	if !lead {
		<-u.wake
	}
	if !u.done {
		d.lead()
	}
	if u.panicked != nil {
		panic(u.panicked)
	}
	return u.changes, u.err
}

// lead runs the batch at the front of the queue, then passes the lead on.
func (d *DB) lead() {
	c := &d.commit
	c.mu.Lock()
	n := min(len(c.queue), maxBatch)
	batch := c.queue[:n:n]
	c.queue = c.queue[n:]
	c.mu.Unlock()
	d.runBatchSafe(batch)
	c.mu.Lock()
	if len(c.queue) > 0 {
		c.queue[0].wake <- struct{}{}
	} else {
		c.leading = false
	}
	c.mu.Unlock()
	for _, u := range batch {
		u.done = true
	}
	for _, u := range batch {
		select {
		case u.wake <- struct{}{}:
		default:
		}
	}
}

// runBatchSafe is runBatch that turns a panic of Badger itself (those of
// the callers' functions are caught by apply) into an error for every
// update of the batch, so that the lead is still passed on.
func (d *DB) runBatchSafe(batch []*update) {
	defer func() {
		if p := recover(); p != nil {
			for _, u := range batch {
				u.changes, u.err, u.panicked = nil, fmt.Errorf("badger: commit panicked: %v", p), nil
			}
		}
	}()
	d.runBatch(batch)
}

// runBatch runs every update of batch, in order, in as few transactions as
// fit, and records each one's outcome. An update that fails changes
// nothing: the transaction is dropped and the others run again without it
// (fn must be safe to run more than once). A conflict with a writer
// outside the committer runs the batch again.
func (d *DB) runBatch(batch []*update) {
	pending := batch
	conflicts := 0
	for len(pending) > 0 {
		limit := len(pending)
	again:
		txn := d.db.NewTransaction(true)
		failed := -1
		for i, u := range pending[:limit] {
			u.changes, u.err, u.panicked = d.apply(txn, u.fn)
			if u.err == nil && u.panicked == nil {
				continue
			}
			if i > 0 && u.panicked == nil && errors.Is(u.err, bdb.ErrTxnTooBig) {
				// Commit the ones before it; it leads the next
				// transaction, alone if it must be.
				txn.Discard()
				limit = i
				goto again
			}
			failed = i
			break
		}
		if failed >= 0 {
			txn.Discard()
			rest := make([]*update, 0, len(pending)-1)
			rest = append(rest, pending[:failed]...)
			pending = append(rest, pending[failed+1:]...)
			continue
		}
		err := txn.Commit()
		if errors.Is(err, bdb.ErrConflict) {
			if conflicts++; conflicts <= d.opt.MaxRetries {
				continue
			}
			err = store.ErrConflict
		}
		if err != nil {
			for _, u := range pending[:limit] {
				u.changes, u.err = nil, err
			}
		}
		pending = pending[limit:]
	}
}

// apply runs fn as one caller's transaction inside txn and writes its
// state changes.
func (d *DB) apply(txn *bdb.Txn, fn func(tx store.Tx) error) (changes []store.StateChange, err error, panicked any) {
	defer func() {
		if p := recover(); p != nil {
			changes, err, panicked = nil, fmt.Errorf("badger: transaction panicked: %v", p), p
		}
	}()
	t := &tx{d: d, txn: txn, pending: map[typeKey]*store.Change{}}
	if err := fn(t); err != nil {
		return nil, err, nil
	}
	if err := t.finish(); err != nil {
		return nil, err, nil
	}
	changes, err = t.writeChanges()
	return changes, err, nil
}
