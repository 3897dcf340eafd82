package badger_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jmapd/jmapd/store"
	"github.com/jmapd/jmapd/store/badger"
)

// DeleteAccount removes the account's records, states and change log,
// releases its blob references, and leaves other accounts alone.
func TestDeleteAccount(t *testing.T) {
	dir := t.TempDir()
	db, err := badger.Open(badger.Options{Dir: dir, BlobGrace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	gone, kept := store.AccountID("gone"), store.AccountID("kept")
	info, err := db.Blobs().Upload(ctx, gone, "text/plain", bytes.NewReader([]byte("only gone holds this")), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for i, acct := range []store.AccountID{gone, kept} {
		_, err := db.Update(ctx, func(tx store.Tx) error {
			for _, id := range []string{"r1", "r2"} {
				if err := tx.Create(acct, "Note", id, []byte(`{}`)); err != nil {
					return err
				}
			}
			if i == 0 {
				return tx.BlobRef(acct, info.ID)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.DeleteAccount(ctx, gone); err != nil {
		t.Fatal(err)
	}
	err = db.View(ctx, func(tx store.Tx) error {
		if _, err := tx.Get(gone, "Note", "r1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("record survived: %v", err)
		}
		if st, _ := tx.State(gone, "Note"); st != 0 {
			t.Errorf("state survived: %d", st)
		}
		if _, more, err := tx.Changes(gone, "Note", 0, 0); err != nil || more {
			t.Errorf("changes: %v %v", more, err)
		}
		if _, err := tx.Get(kept, "Note", "r1"); err != nil {
			t.Errorf("other account lost a record: %v", err)
		}
		if st, _ := tx.State(kept, "Note"); st != 1 {
			t.Errorf("other account state %d", st)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// With its only reference and grant gone, the blob is collected.
	n, err := db.Blobs().Collect(ctx, time.Now().Add(time.Second))
	if err != nil || n != 1 {
		t.Errorf("Collect = %d, %v; want the account's blob collected", n, err)
	}
	if err := db.DeleteAccount(ctx, store.SystemAccount); err == nil {
		t.Error("deleting the system account was allowed")
	}
}
