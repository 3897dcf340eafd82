package badger

import (
	"context"
	"errors"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/jmapd/jmapd/store"
)

// deleteBatch is how many keys one transaction of DeleteAccount removes.
const deleteBatch = 1000

// DeleteAccount removes the account's records, states, change logs, blob
// references and upload grants, in batches.
func (d *DB) DeleteAccount(ctx context.Context, acct store.AccountID) error {
	if acct == "" || acct == store.SystemAccount {
		return errors.New("badger: refusing to delete the system account")
	}
	a := string(acct) + sep
	for _, prefix := range []string{"o" + sep + a, "s" + sep + a, "c" + sep + a, "cm" + sep + a} {
		if err := d.deletePrefix(ctx, []byte(prefix), nil); err != nil {
			return err
		}
	}
	// Blob references and grants also adjust the blob's counts, so its
	// content is collected once nothing else holds it.
	if err := d.deletePrefix(ctx, []byte("br"+sep+a), func(t *tx, key []byte) error {
		n, err := t.counter(key)
		if err != nil {
			return err
		}
		sha := string(key[len("br"+sep+a):])
		m, err := t.blobMeta(sha)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		m.Refs -= int64(n)
		return t.putBlobMeta(sha, m)
	}); err != nil {
		return err
	}
	// An upload grant expires by itself; ending it early lets the next
	// collection drop content only this account uploaded.
	return d.deletePrefix(ctx, []byte("bu"+sep+a), func(t *tx, key []byte) error {
		exp, err := t.counter(key)
		if err != nil {
			return err
		}
		sha := string(key[len("bu"+sep+a):])
		if err := t.txn.Delete(blobExpiryKey(int64(exp), acct, sha)); err != nil {
			return err
		}
		// Re-file the grant as already expired so Collect settles the
		// counts in one place.
		return t.txn.Set(blobExpiryKey(0, acct, sha), nil)
	})
}

// deletePrefix deletes every key with prefix, calling each (when set) on
// the key first inside the same transaction.
func (d *DB) deletePrefix(ctx context.Context, prefix []byte, each func(t *tx, key []byte) error) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var keys [][]byte
		err := d.db.View(func(txn *bdb.Txn) error {
			it := txn.NewIterator(bdb.IteratorOptions{Prefix: prefix})
			defer it.Close()
			for it.Rewind(); it.Valid() && len(keys) < deleteBatch; it.Next() {
				keys = append(keys, it.Item().KeyCopy(nil))
			}
			return nil
		})
		if err != nil || len(keys) == 0 {
			return err
		}
		_, err = d.Update(ctx, func(stx store.Tx) error {
			t := stx.(*tx)
			for _, k := range keys {
				if each != nil {
					if err := each(t, k); err != nil {
						return err
					}
				}
				if err := t.txn.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
}
