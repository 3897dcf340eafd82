package methods

import (
	"context"
	"strings"

	"github.com/jmapd/jmapd/store"
)

// SetParseHook makes queries call f with the blob id of each message they
// open; nil removes it.
func SetParseHook(f func(blobID string)) {
	if f == nil {
		parseHook.Store(nil)
		return
	}
	parseHook.Store(&f)
}

// SetSearchWalkMin sets the candidate count from which a search walks the
// receivedAt index, and returns a function restoring it.
func SetSearchWalkMin(n int) func() {
	old := searchWalkMin.Swap(int64(n))
	return func() { searchWalkMin.Store(old) }
}

// SearchWalks returns how many searches walked the receivedAt index.
func SearchWalks() int64 { return searchWalks.Load() }

// DropSearchIndex removes every full-text index key of acct, leaving the
// account as one stored before the index existed.
func DropSearchIndex(ctx context.Context, st store.Store, acct store.AccountID) error {
	_, err := st.Update(ctx, func(tx store.Tx) error {
		for _, p := range []string{"fp", "ff", "fs", "fq", "fd"} {
			var keys []string
			for m, err := range tx.ScanMeta(p + "\x00" + string(acct)) {
				if err != nil {
					return err
				}
				if strings.HasPrefix(m.Key, p+"\x00"+string(acct)+"\x00") || m.Key == p+"\x00"+string(acct) {
					keys = append(keys, m.Key)
				}
			}
			for _, k := range keys {
				if err := tx.DeleteMeta(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return err
}

// SearchIndexKeys counts the full-text index keys of acct by kind (fp, ff,
// fs, fq, fd).
func SearchIndexKeys(ctx context.Context, st store.Store, acct store.AccountID) (map[string]int, error) {
	out := map[string]int{}
	err := st.View(ctx, func(tx store.Tx) error {
		for _, p := range []string{"fp", "ff", "fs", "fq", "fd"} {
			for m, err := range tx.ScanMeta(p + "\x00" + string(acct)) {
				if err != nil {
					return err
				}
				if strings.HasPrefix(m.Key, p+"\x00"+string(acct)+"\x00") || m.Key == p+"\x00"+string(acct) {
					out[p]++
				}
			}
		}
		return nil
	})
	return out, err
}

// SearchTxBudget is searchTxBudget, for the tests.
const SearchTxBudget = searchTxBudget
