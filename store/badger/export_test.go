package badger

import (
	"sync/atomic"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/jmapd/jmapd/store"
)

// BlobChunkVersions returns the Badger version of each stored content chunk
// of blob id, in chunk order. Writing the content again changes them, so
// equal versions prove the bytes were stored once.
func BlobChunkVersions(d *DB, id store.BlobID) ([]uint64, error) {
	sha, ok := shaOf(id)
	if !ok {
		return nil, store.ErrNotFound
	}
	var out []uint64
	err := d.db.View(func(txn *bdb.Txn) error {
		it := txn.NewIterator(bdb.IteratorOptions{Prefix: blobDataPrefix(sha)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			out = append(out, it.Item().Version())
		}
		return nil
	})
	return out, err
}

// SyncEachCommit makes every commit of d wait for a db.Sync of its own
// instead of sharing one with the commits waiting beside it. Call it before
// the first Update.
func SyncEachCommit(d *DB) { d.sync.each = true }

// CountSyncs makes d count its db.Sync calls and returns a function that
// reports how many ran. Call it before the first Update.
func CountSyncs(d *DB) func() int64 {
	var n atomic.Int64
	next := d.sync.sync
	d.sync.sync = func() error {
		n.Add(1)
		return next()
	}
	return n.Load
}

// TrimMappings is trimMappings, for the tests.
var TrimMappings = trimMappings

// ResidentFile is residentFile, for the tests.
var ResidentFile = residentFile

// Trim runs one check of the mapped files' budget.
func Trim(d *DB) error { return d.trim() }

// FailSyncs makes every later db.Sync of d fail with err, after counting
// it with what CountSyncs set. Call it while no Update runs.
func FailSyncs(d *DB, err error) {
	next := d.sync.sync
	d.sync.sync = func() error {
		_ = next()
		return err
	}
}
