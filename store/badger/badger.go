package badger

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"sort"
	"strconv"
	"sync"
	"time"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/jmapd/jmapd/store"
)

// Options configures Open. The zero value of every field but Dir means its
// default.
type Options struct {
	// Dir is the data directory; required.
	Dir string
	// BlobGrace is how long an uploaded blob nothing references stays
	// readable (default 24h; RFC 8620 §6.1 asks for at least one hour).
	BlobGrace time.Duration
	// MaxRetries bounds the retries of a batch of Updates that conflicts
	// with a writer outside them (default 16).
	MaxRetries int
	// Logf receives Badger's own warnings and errors; nil discards them.
	Logf func(level, msg string)
	// MappedBudget bounds the file-backed memory resident in the process
	// (RssFile), most of it Badger's mapped files: above it, the mapped
	// logs, then the tables, are handed back to the kernel (trimMappings)
	// (default 128 MiB; negative for no bound). Under it, what the server
	// reads stays in memory.
	MappedBudget int64
	// TrimCheck is how often the budget is checked (default 2s).
	TrimCheck time.Duration
}

// DB is a Store on Badger.
type DB struct {
	db    *bdb.DB
	opt   Options
	seq   *bdb.Sequence
	sync  *groupSyncer
	subMu sync.RWMutex
	subs  map[int]func([]store.StateChange)
	subN  int
	blobs *blobStore
	// stopGC ends gcLoop; gcDone is closed when it has.
	stopGC chan struct{}
	gcDone chan struct{}

	// commit runs Updates in shared transactions.
	commit committer
}

var _ store.Store = (*DB)(nil)

type badgerLogger struct{ f func(level, msg string) }

func (l badgerLogger) Errorf(f string, a ...any) { l.f("error", fmt.Sprintf(f, a...)) }
func (l badgerLogger) Warningf(f string, a ...any) {
	l.f("warn", fmt.Sprintf(f, a...))
}
func (l badgerLogger) Infof(string, ...any)  {}
func (l badgerLogger) Debugf(string, ...any) {}

// Open opens (creating if needed) the store in opt.Dir. Badger locks the
// directory: a second Open of the same directory fails.
func Open(opt Options) (*DB, error) {
	if opt.Dir == "" {
		return nil, errors.New("badger: no data directory")
	}
	if opt.BlobGrace == 0 {
		opt.BlobGrace = 24 * time.Hour
	}
	if opt.MaxRetries == 0 {
		opt.MaxRetries = 16
	}
	if opt.MappedBudget == 0 {
		opt.MappedBudget = 128 << 20
	}
	if opt.TrimCheck == 0 {
		opt.TrimCheck = 2 * time.Second
	}
	bo := bdb.DefaultOptions(opt.Dir).
		WithSyncWrites(false).
		// Updates run one after the other (commit.go) and the only other
		// writer, writeChunks, writes content that is the same for the
		// same key and is checked for by the Update that follows it: no
		// conflict is left to detect, so Badger need not track every key
		// a transaction reads or writes.
		WithDetectConflicts(false).
		WithLogger(nil).
		WithNumVersionsToKeep(1).
		WithCompactL0OnClose(true).
		// Message content and blob chunks go to the value log, so the
		// LSM tree holds keys and small records: far fewer memtable
		// flushes and compactions on import. The value log is collected
		// in the background (gcLoop).
		WithValueThreshold(8 << 10).
		// Memory. Badger's 256 MB block cache alone is near what a
		// mid-size server should use; the operating system's page cache
		// serves the rest. A memtable's arena is allocated whole on the
		// Go heap: 32 MB memtables (arenas of 41 MB) bound one
		// transaction to about 50,000 entries, which Updates respect
		// (Email/import of 1,000 messages and its full-text budget,
		// methods.searchTxBudget).
		WithMemTableSize(32 << 20).
		WithNumMemtables(3).
		WithNumCompactors(2).
		WithBlockCacheSize(32 << 20).
		// Value log files are preallocated: 128 MB ones instead of 1 GB
		// keep a small server small on disk.
		WithValueLogFileSize(128 << 20).
		// Table indexes and bloom filters live in a bounded cache rather
		// than all in memory: the full-text index makes many tables.
		WithIndexCacheSize(32 << 20)
	if opt.Logf != nil {
		bo = bo.WithLogger(badgerLogger{opt.Logf})
	}
	db, err := bdb.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", opt.Dir, err)
	}
	seq, err := db.GetSequence(idSequenceKey, 256)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open id sequence: %w", err)
	}
	closed := newClosedLogs(opt.Dir)
	syncAll := func() error {
		if err := db.Sync(); err != nil {
			return err
		}
		return closed.sync()
	}
	d := &DB{db: db, opt: opt, seq: seq, sync: &groupSyncer{sync: syncAll}, subs: map[int]func([]store.StateChange){}}
	d.sync.cond = sync.NewCond(&d.sync.mu)
	d.blobs = &blobStore{d: d}
	d.stopGC, d.gcDone = make(chan struct{}), make(chan struct{})
	go d.gcLoop(10 * time.Minute)
	return d, nil
}

// gcLoop rewrites value log files that are mostly garbage (deleted blobs
// and records) every interval, and keeps the mapped files within their
// budget (trim), until Close.
func (d *DB) gcLoop(interval time.Duration) {
	defer close(d.gcDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	var checks <-chan time.Time
	if d.opt.MappedBudget > 0 {
		tt := time.NewTicker(d.opt.TrimCheck)
		defer tt.Stop()
		checks = tt.C
	}
	for {
		select {
		case <-d.stopGC:
			return
		case <-checks:
			if err := d.trim(); err != nil {
				// Nothing is lost: the pages stay until the kernel
				// wants them.
				if errors.Is(err, errUnsupported) {
					checks = nil
				}
				if d.opt.Logf != nil {
					d.opt.Logf("warn", "trim mapped files: "+err.Error())
				}
			}
		case <-t.C:
			// Each call collects at most one file; go on while there is
			// something to collect.
			for range 16 {
				if d.db.RunValueLogGC(0.5) != nil {
					break
				}
			}
		}
	}
}

// trim hands mapped pages back to the kernel while the file-backed memory
// resident in the process is over its budget: first the logs, which the
// server seldom reads (a message body when it is opened, the write-ahead
// log on recovery), then, if that was not enough, the tables.
func (d *DB) trim() error {
	for _, kind := range [][]string{{".vlog", ".mem"}, {".sst"}} {
		n, err := residentFile()
		if err != nil || n <= d.opt.MappedBudget {
			return err
		}
		if _, err := trimMappings(d.opt.Dir, kind...); err != nil {
			return err
		}
	}
	return nil
}

// Close releases the id sequence, syncs and closes Badger.
func (d *DB) Close() error {
	close(d.stopGC)
	<-d.gcDone
	err := d.seq.Release()
	if serr := d.db.Sync(); err == nil {
		err = serr
	}
	if cerr := d.db.Close(); err == nil {
		err = cerr
	}
	return err
}

// Size reports the bytes of the LSM tree and value log.
func (d *DB) Size() int64 {
	lsm, vlog := d.db.Size()
	return lsm + vlog
}

// Blobs returns the blob store.
func (d *DB) Blobs() store.BlobStore { return d.blobs }

// Subscribe registers fn for every durable commit that changed a state.
func (d *DB) Subscribe(fn func([]store.StateChange)) func() {
	d.subMu.Lock()
	defer d.subMu.Unlock()
	d.subN++
	n := d.subN
	d.subs[n] = fn
	return func() {
		d.subMu.Lock()
		defer d.subMu.Unlock()
		delete(d.subs, n)
	}
}

// View runs fn in a read-only snapshot.
func (d *DB) View(ctx context.Context, fn func(tx store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return d.db.View(func(txn *bdb.Txn) error {
		return fn(&tx{d: d, txn: txn, readOnly: true})
	})
}

// Update runs fn in a read-write transaction and returns after the commit
// is durable, or under a context from store.DeferSync, once committed,
// leaving the wait for durability (and the announcement of its changes)
// to the Deferral. Concurrent Updates run one after the other in shared
// Badger transactions (committer), so they do not conflict with each
// other.
func (d *DB) Update(ctx context.Context, fn func(tx store.Tx) error) ([]store.StateChange, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	changes, err := d.run(fn)
	if errors.Is(err, bdb.ErrTxnTooBig) && !errors.Is(err, store.ErrTxnTooBig) {
		err = fmt.Errorf("%w: %w", store.ErrTxnTooBig, err)
	}
	if err != nil {
		return nil, err
	}
	if later := store.DeferralFrom(ctx); later != nil && !d.sync.each {
		ticket := d.sync.register()
		if err := later.Add(func() error {
			if err := d.sync.waitFor(ticket); err != nil {
				return fmt.Errorf("sync store: %w", err)
			}
			d.announce(changes)
			return nil
		}); err != nil {
			return nil, err
		}
		return changes, nil
	}
	if err := d.sync.wait(); err != nil {
		return nil, fmt.Errorf("sync store: %w", err)
	}
	d.announce(changes)
	return changes, nil
}

// announce tells the subscribers of changes made durable.
func (d *DB) announce(changes []store.StateChange) {
	if len(changes) == 0 {
		return
	}
	d.subMu.RLock()
	for _, s := range d.subs {
		s(changes)
	}
	d.subMu.RUnlock()
}

// groupSyncer makes many concurrent commits share one db.Sync: a waiter
// either starts a sync that covers every commit registered before it began,
// or waits for such a sync to finish.
type groupSyncer struct {
	sync    func() error
	mu      sync.Mutex
	cond    *sync.Cond
	joined  uint64 // commits registered
	synced  uint64 // commits covered by a finished sync
	running bool
	err     error
	errAt   uint64

	// each makes every waiter run a sync of its own: only the benchmark
	// that measures what group commit saves sets it.
	each bool
}

// wait returns once a sync has covered every commit made before the call.
func (g *groupSyncer) wait() error {
	if g.each {
		return g.sync()
	}
	return g.waitFor(g.register())
}

// register counts a commit just made and returns its number, for waitFor.
func (g *groupSyncer) register() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.joined++
	return g.joined
}

// waitFor returns once a sync has covered commit mine: at once when one
// already has, or after waiting for the sync in progress, or after a sync
// of its own.
func (g *groupSyncer) waitFor(mine uint64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.synced < mine {
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		target := g.joined
		g.mu.Unlock()
		err := g.sync()
		g.mu.Lock()
		g.running = false
		g.synced = target
		if err != nil {
			g.err, g.errAt = err, target
		}
		g.cond.Broadcast()
	}
	if g.err != nil && g.errAt >= mine {
		return g.err
	}
	return nil
}

type typeKey struct {
	acct store.AccountID
	typ  string
}

type tx struct {
	d        *DB
	txn      *bdb.Txn
	readOnly bool
	pending  map[typeKey]*store.Change
	// propsAll marks pending changes with an update that touched any
	// property, which clears the entry's property list.
	propsAll map[typeKey]bool
	// minted holds the ids NewID gave this transaction that no record
	// has yet: ids of the store's sequence are new, so creating a record
	// under one needs no look for an existing one.
	minted map[string]bool
	// fresh marks the blobs this transaction made (markFresh), and
	// freshRefs holds the reference counts it gave them, by key.
	fresh     map[string]bool
	freshRefs map[string]uint64
	// gathered holds the values of Gathered, and finishes their end-of-
	// transaction work in order.
	gathered map[any]any
	finishes []func() error
}

func (t *tx) Gathered(key any, start func() (value any, finish func() error)) any {
	if v, ok := t.gathered[key]; ok {
		return v
	}
	v, finish := start()
	if t.gathered == nil {
		t.gathered = map[any]any{}
	}
	t.gathered[key] = v
	if finish != nil {
		t.finishes = append(t.finishes, finish)
	}
	return v
}

// finish runs the finish functions of Gathered, including those a finish
// function registers.
func (t *tx) finish() error {
	for i := 0; i < len(t.finishes); i++ {
		if err := t.finishes[i](); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) NewID() (string, error) {
	n, err := t.d.seq.Next()
	if err != nil {
		return "", fmt.Errorf("next id: %w", err)
	}
	// A letter first: ids that start with a digit or dash are best avoided
	// (RFC 8620 §1.2).
	id := "a" + strconv.FormatUint(n+1, 36)
	if t.minted == nil {
		t.minted = map[string]bool{}
	}
	t.minted[id] = true
	return id, nil
}

func (t *tx) State(acct store.AccountID, typ string) (store.State, error) {
	item, err := t.txn.Get(stateKey(acct, typ))
	if errors.Is(err, bdb.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var st store.State
	err = item.Value(func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("state of %s/%s: bad length %d", acct, typ, len(v))
		}
		st = store.State(binary.BigEndian.Uint64(v))
		return nil
	})
	return st, err
}

func (t *tx) States(acct store.AccountID) (map[string]store.State, error) {
	prefix := []byte("s" + sep + string(acct) + sep)
	it := t.txn.NewIterator(bdb.IteratorOptions{Prefix: prefix, PrefetchValues: false})
	defer it.Close()
	out := map[string]store.State{}
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		err := item.Value(func(v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("state %q: bad length %d", item.Key(), len(v))
			}
			out[string(item.Key()[len(prefix):])] = store.State(binary.BigEndian.Uint64(v))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (t *tx) get(key []byte) ([]byte, error) {
	item, err := t.txn.Get(key)
	if errors.Is(err, bdb.ErrKeyNotFound) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

func (t *tx) Get(acct store.AccountID, typ, id string) ([]byte, error) {
	return t.get(objKey(acct, typ, id))
}

// ViewRecord calls fn with the bytes of a record, which are Badger's own
// and valid only until fn returns, or returns store.ErrNotFound. A reader
// that copies what it keeps (a decoder) saves a copy of the whole record.
func (t *tx) ViewRecord(acct store.AccountID, typ, id string, fn func([]byte) error) error {
	item, err := t.txn.Get(objKey(acct, typ, id))
	if errors.Is(err, bdb.ErrKeyNotFound) {
		return store.ErrNotFound
	}
	if err != nil {
		return err
	}
	return item.Value(fn)
}

func (t *tx) Scan(acct store.AccountID, typ string) iter.Seq2[store.Object, error] {
	prefix := objPrefix(acct, typ)
	return func(yield func(store.Object, error) bool) {
		it := t.txn.NewIterator(bdb.IteratorOptions{Prefix: prefix, PrefetchValues: false})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			v, err := item.ValueCopy(nil)
			if !yield(store.Object{ID: string(item.Key()[len(prefix):]), Data: v}, err) || err != nil {
				return
			}
		}
	}
}

func (t *tx) change(acct store.AccountID, typ string) *store.Change {
	k := typeKey{acct, typ}
	c := t.pending[k]
	if c == nil {
		c = &store.Change{}
		t.pending[k] = c
	}
	return c
}

func (t *tx) exists(key []byte) (bool, error) {
	_, err := t.txn.Get(key)
	if errors.Is(err, bdb.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (t *tx) Create(acct store.AccountID, typ, id string, data []byte) error {
	key := objKey(acct, typ, id)
	if t.minted[id] {
		delete(t.minted, id) // a second Create under it looks
	} else if ok, err := t.exists(key); err != nil {
		return err
	} else if ok {
		return store.ErrExists
	}
	if err := t.txn.Set(key, data); err != nil {
		return err
	}
	c := t.change(acct, typ)
	c.Created = append(c.Created, id)
	return nil
}

func (t *tx) Put(acct store.AccountID, typ, id string, data []byte) error {
	return t.put(acct, typ, id, data, nil)
}

func (t *tx) PutProps(acct store.AccountID, typ, id string, data []byte, props []string) error {
	if len(props) == 0 {
		return errors.New("badger: PutProps without properties")
	}
	return t.put(acct, typ, id, data, props)
}

func (t *tx) put(acct store.AccountID, typ, id string, data []byte, props []string) error {
	key := objKey(acct, typ, id)
	if ok, err := t.exists(key); err != nil {
		return err
	} else if !ok {
		return store.ErrNotFound
	}
	if err := t.txn.Set(key, data); err != nil {
		return err
	}
	c := t.change(acct, typ)
	c.Updated = append(c.Updated, id)
	k := typeKey{acct, typ}
	if props == nil {
		if t.propsAll == nil {
			t.propsAll = map[typeKey]bool{}
		}
		t.propsAll[k] = true
	} else {
		c.Props = append(c.Props, props...)
	}
	return nil
}

func (t *tx) Delete(acct store.AccountID, typ, id string) error {
	key := objKey(acct, typ, id)
	if ok, err := t.exists(key); err != nil {
		return err
	} else if !ok {
		return store.ErrNotFound
	}
	if err := t.txn.Delete(key); err != nil {
		return err
	}
	c := t.change(acct, typ)
	c.Destroyed = append(c.Destroyed, id)
	return nil
}

// writeChanges advances the state of every type the transaction touched and
// appends its change log entry.
func (t *tx) writeChanges() ([]store.StateChange, error) {
	if len(t.pending) == 0 {
		return nil, nil
	}
	out := make([]store.StateChange, 0, len(t.pending))
	for k, c := range t.pending {
		st, err := t.State(k.acct, k.typ)
		if err != nil {
			return nil, err
		}
		st++
		if t.propsAll[k] || len(c.Props) == 0 {
			c.Props = nil
		} else {
			c.Props = dedupe(c.Props)
		}
		entry, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		if err := t.txn.Set(stateKey(k.acct, k.typ), []byte(u64(uint64(st)))); err != nil {
			return nil, err
		}
		if err := t.txn.Set(changeKey(k.acct, k.typ, st), entry); err != nil {
			return nil, err
		}
		out = append(out, store.StateChange{Account: k.acct, Type: k.typ, State: st})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Account != out[j].Account {
			return out[i].Account < out[j].Account
		}
		return out[i].Type < out[j].Type
	})
	return out, nil
}

func dedupe(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func (t *tx) Changes(acct store.AccountID, typ string, since store.State, max int) ([]store.Change, bool, error) {
	if b, err := t.get(changeMinKey(acct, typ)); err == nil && len(b) == 8 {
		if since < store.State(binary.BigEndian.Uint64(b)) {
			return nil, false, store.ErrChangesPruned
		}
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, false, err
	}
	prefix := changePrefix(acct, typ)
	it := t.txn.NewIterator(bdb.IteratorOptions{Prefix: prefix, PrefetchValues: false})
	defer it.Close()
	var out []store.Change
	n := 0
	for it.Seek(changeKey(acct, typ, since+1)); it.Valid(); it.Next() {
		if max > 0 && n >= max {
			return out, true, nil
		}
		item := it.Item()
		var c store.Change
		if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &c) }); err != nil {
			return nil, false, fmt.Errorf("change log %s/%s: %w", acct, typ, err)
		}
		c.State = store.State(binary.BigEndian.Uint64(item.Key()[len(prefix):]))
		out = append(out, c)
		n += len(c.Created) + len(c.Updated) + len(c.Destroyed)
	}
	return out, false, nil
}

func (t *tx) GetMeta(key string) ([]byte, error) {
	v, err := t.get(metaKey(key))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return v, err
}

func (t *tx) PutMeta(key string, value []byte) error { return t.txn.Set(metaKey(key), value) }

func (t *tx) DeleteMeta(key string) error { return t.txn.Delete(metaKey(key)) }

func (t *tx) ScanMeta(prefix string) iter.Seq2[store.Meta, error] {
	return t.scanMeta(prefix, false)
}

// ViewMetas calls fn with each meta value under each of prefixes, in key
// order within a prefix, with the key after the prefix; the bytes are
// Badger's own, valid only until fn returns. One iterator serves all the
// prefixes, which should lie close together (one index of one account):
// reading hundreds of short runs of keys costs one iterator, not one each,
// and no copy of any value.
func (t *tx) ViewMetas(prefixes []string, fn func(i int, rest, value []byte) error) error {
	if len(prefixes) == 0 {
		return nil
	}
	common := prefixes[0]
	for _, p := range prefixes[1:] {
		n := 0
		for n < len(common) && n < len(p) && common[n] == p[n] {
			n++
		}
		common = common[:n]
	}
	it := t.txn.NewIterator(bdb.IteratorOptions{Prefix: metaKey(common), PrefetchValues: false})
	defer it.Close()
	for i, prefix := range prefixes {
		p := metaKey(prefix)
		for it.Seek(p); it.ValidForPrefix(p); it.Next() {
			item := it.Item()
			rest := item.Key()[len(p):]
			if err := item.Value(func(v []byte) error { return fn(i, rest, v) }); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *tx) ScanMetaReverse(prefix string) iter.Seq2[store.Meta, error] {
	return t.scanMeta(prefix, true)
}

func (t *tx) scanMeta(prefix string, reverse bool) iter.Seq2[store.Meta, error] {
	p := metaKey(prefix)
	return func(yield func(store.Meta, error) bool) {
		it := t.txn.NewIterator(bdb.IteratorOptions{Prefix: p, PrefetchValues: false, Reverse: reverse})
		defer it.Close()
		start := p
		if reverse {
			// In reverse mode Seek lands on the last key <= start: past
			// every key under the prefix but those with 32 0xff octets
			// after it, which no caller writes (keys are text, ids and
			// big-endian times).
			start = append(append([]byte{}, p...), bytes.Repeat([]byte{0xff}, 32)...)
		}
		for it.Seek(start); it.Valid(); it.Next() {
			item := it.Item()
			v, err := item.ValueCopy(nil)
			if !yield(store.Meta{Key: string(item.Key()[metaPrefixLen:]), Value: v}, err) || err != nil {
				return
			}
		}
	}
}
