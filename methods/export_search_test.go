package methods

import (
	"context"
	"strings"

	"github.com/jmapd/jmapd/internal/search"
	"github.com/jmapd/jmapd/store"
)

// SearchToFormat1 rewrites the full-text index of acct as format 1 wrote
// it, before posting blocks: a posting key per token per email, forward
// entries starting with 'v', fd '1'.
func SearchToFormat1(ctx context.Context, st store.Store, acct store.AccountID) error {
	_, err := st.Update(ctx, func(tx store.Tx) error {
		type kv struct {
			key string
			val []byte
		}
		var blocks, fwds []kv
		for m, err := range tx.ScanMeta("fp\x00" + string(acct) + "\x00") {
			if err != nil {
				return err
			}
			if len(m.Value) > 1 {
				blocks = append(blocks, kv{m.Key, m.Value})
			}
		}
		for m, err := range tx.ScanMeta("ff\x00" + string(acct) + "\x00") {
			if err != nil {
				return err
			}
			fwds = append(fwds, kv{m.Key, m.Value})
		}
		for _, b := range blocks {
			rest := b.key[len("fp\x00"+string(acct)+"\x00"):]
			tok := rest[:strings.LastIndexByte(rest, 0)]
			var werr error
			if err := search.DecodeBlock(b.val, func(id string, f uint8) bool {
				werr = tx.PutMeta(postingKey(acct, tok, id), []byte{f})
				return werr == nil
			}); err != nil {
				return err
			}
			if werr != nil {
				return werr
			}
			if err := tx.DeleteMeta(b.key); err != nil {
				return err
			}
		}
		for _, f := range fwds {
			v := []byte{'v'}
			forwardEntries(f.val, func(mask uint8, tok string) { v = append(append(append(v, mask), tok...), 0) })
			if err := tx.PutMeta(f.key, v); err != nil {
				return err
			}
		}
		return tx.PutMeta(searchDoneKey(acct), present)
	})
	return err
}

// SearchPostingKeys counts the posting keys of tok in acct, and how many
// of them are blocks.
func SearchPostingKeys(ctx context.Context, st store.Store, acct store.AccountID, tok string) (keys, blocks int, err error) {
	err = st.View(ctx, func(tx store.Tx) error {
		for m, err := range tx.ScanMeta(postingPrefix(acct, tok)) {
			if err != nil {
				return err
			}
			keys++
			if len(m.Value) > 1 {
				blocks++
			}
		}
		return nil
	})
	return keys, blocks, err
}
