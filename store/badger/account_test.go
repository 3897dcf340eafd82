package badger_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
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

// ScanMeta and ScanMetaReverse yield exactly the keys under the prefix, in
// opposite orders.
func TestScanMetaBothWays(t *testing.T) {
	db, err := badger.Open(badger.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	keys := []string{"ix\x00a", "ix\x00b", "ix\x00b\xff", "ix\x00c", "iy", "iw"}
	if _, err := db.Update(ctx, func(tx store.Tx) error {
		for _, k := range keys {
			if err := tx.PutMeta(k, []byte(k)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var fwd, rev []string
	err = db.View(ctx, func(tx store.Tx) error {
		for m, err := range tx.ScanMeta("ix\x00") {
			if err != nil {
				return err
			}
			fwd = append(fwd, m.Key)
		}
		for m, err := range tx.ScanMetaReverse("ix\x00") {
			if err != nil {
				return err
			}
			rev = append(rev, m.Key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ix\x00a", "ix\x00b", "ix\x00b\xff", "ix\x00c"}
	if strings.Join(fwd, "|") != strings.Join(want, "|") {
		t.Errorf("forward %q, want %q", fwd, want)
	}
	slices.Reverse(want)
	if strings.Join(rev, "|") != strings.Join(want, "|") {
		t.Errorf("reverse %q, want %q", rev, want)
	}
}
