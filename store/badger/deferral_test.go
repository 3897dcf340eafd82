package badger_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jmapd/jmapd/store"
	"github.com/jmapd/jmapd/store/badger"
)

// Updates under store.DeferSync return once committed, without a sync and
// without telling subscribers; Settle then syncs once for them all and
// announces their changes, in order.
func TestDeferSync_OneSyncAtSettle(t *testing.T) {
	db := openStore(t, badger.Options{})
	syncs := badger.CountSyncs(db)
	var mu sync.Mutex
	var heard []store.State
	cancel := db.Subscribe(func(sc []store.StateChange) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range sc {
			heard = append(heard, c.State)
		}
	})
	defer cancel()
	var later store.Deferral
	ctx := store.DeferSync(context.Background(), &later)
	for i := range 3 {
		if _, err := db.Update(ctx, func(tx store.Tx) error {
			return tx.Create("a1", "Email", fmt.Sprint("e", i), []byte(`{}`))
		}); err != nil {
			t.Fatal(err)
		}
	}
	// Committed: readable at once.
	wantRecord(t, db, "a1", "Email", "e2", `{}`)
	mu.Lock()
	early := len(heard)
	mu.Unlock()
	if n := syncs(); n != 0 || early != 0 {
		t.Fatalf("before Settle: %d syncs, %d changes announced; want none", n, early)
	}
	if err := later.Settle(); err != nil {
		t.Fatal(err)
	}
	if n := syncs(); n != 1 {
		t.Errorf("Settle ran %d syncs, want 1 for the three commits", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(heard) != "[1 2 3]" {
		t.Errorf("announced states %v, want [1 2 3]", heard)
	}
}

// A durable Update after the deferred ones covers them: Settle has no
// sync left to run.
func TestDeferSync_LaterDurableWriteCovers(t *testing.T) {
	db := openStore(t, badger.Options{})
	syncs := badger.CountSyncs(db)
	var later store.Deferral
	if _, err := db.Update(store.DeferSync(context.Background(), &later), func(tx store.Tx) error {
		return tx.PutMeta("k1", []byte("v"))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Update(context.Background(), func(tx store.Tx) error {
		return tx.PutMeta("k2", []byte("v"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := later.Settle(); err != nil {
		t.Fatal(err)
	}
	if n := syncs(); n != 1 {
		t.Errorf("%d syncs, want the durable write's one", n)
	}
}

// A failed sync is Settle's error, and nothing is announced.
func TestDeferSync_FailedSync(t *testing.T) {
	db := openStore(t, badger.Options{})
	errDisk := errors.New("disk gone")
	badger.FailSyncs(db, errDisk)
	announced := 0
	defer db.Subscribe(func([]store.StateChange) { announced++ })()
	var later store.Deferral
	if _, err := db.Update(store.DeferSync(context.Background(), &later), func(tx store.Tx) error {
		return tx.Create("a1", "Email", "e1", []byte(`{}`))
	}); err != nil {
		t.Fatalf("the deferred Update itself: %v", err)
	}
	if err := later.Settle(); !errors.Is(err, errDisk) {
		t.Errorf("Settle: %v, want the sync's error", err)
	}
	if announced != 0 {
		t.Errorf("%d announcements of changes not made durable", announced)
	}
}

// An Update under a Deferral that has settled (a write that outlived its
// request) waits for the disk itself and announces its changes.
func TestDeferSync_AfterSettleWaitsItself(t *testing.T) {
	db := openStore(t, badger.Options{})
	syncs := badger.CountSyncs(db)
	announced := 0
	defer db.Subscribe(func([]store.StateChange) { announced++ })()
	var later store.Deferral
	if err := later.Settle(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Update(store.DeferSync(context.Background(), &later), func(tx store.Tx) error {
		return tx.Create("a1", "Email", "e1", []byte(`{}`))
	}); err != nil {
		t.Fatal(err)
	}
	if n := syncs(); n != 1 || announced != 1 {
		t.Errorf("after Settle: %d syncs and %d announcements, want 1 and 1", n, announced)
	}
}
