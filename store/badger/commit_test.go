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

// TestUpdate_ConcurrentEachOwnStateAndFailuresIsolated runs many Updates at
// once on the same account and type: each successful one gets a state of
// its own whose change log entry names its record alone, and one that fails
// leaves nothing behind while the Updates run beside it commit.
func TestUpdate_ConcurrentEachOwnStateAndFailuresIsolated(t *testing.T) {
	db := openStore(t, badger.Options{})
	const acct, typ = store.AccountID("a1"), "Email"
	const workers = 48
	errFail := errors.New("refused")
	var wg sync.WaitGroup
	states := make([]store.State, workers)
	errs := make([]error, workers)
	for i := range workers {
		wg.Go(func() {
			sc, err := db.Update(context.Background(), func(tx store.Tx) error {
				if err := tx.Create(acct, typ, fmt.Sprint("e", i), []byte(`{}`)); err != nil {
					return err
				}
				if err := tx.PutMeta(fmt.Sprint("k", i), []byte("v")); err != nil {
					return err
				}
				if i%5 == 0 {
					return errFail
				}
				return nil
			})
			errs[i] = err
			if len(sc) == 1 {
				states[i] = sc[0].State
			}
		})
	}
	wg.Wait()
	seen := map[store.State]int{}
	for i := range workers {
		id := fmt.Sprint("e", i)
		if i%5 == 0 {
			if !errors.Is(errs[i], errFail) {
				t.Errorf("update %d: err = %v, want its own error", i, errs[i])
			}
			wantNoRecord(t, db, acct, typ, id)
			view(t, db, func(tx store.Tx) error {
				if v, err := tx.GetMeta(fmt.Sprint("k", i)); err != nil || v != nil {
					t.Errorf("failed update %d left meta %q (%v)", i, v, err)
				}
				return nil
			})
			continue
		}
		if errs[i] != nil {
			t.Errorf("update %d: %v", i, errs[i])
			continue
		}
		wantRecord(t, db, acct, typ, id, `{}`)
		if j, dup := seen[states[i]]; dup {
			t.Errorf("updates %d and %d both got state %d", j, i, states[i])
		}
		seen[states[i]] = i
		entries, _ := changes(t, db, acct, typ, states[i]-1, 0)
		if len(entries) == 0 || entries[0].State != states[i] || len(entries[0].Created) != 1 || entries[0].Created[0] != id {
			t.Errorf("change log at state %d = %+v, want %s created alone", states[i], entries, id)
		}
	}
	ok := workers - (workers+4)/5
	if st := stateOf(t, db, acct, typ); st != store.State(ok) {
		t.Errorf("state = %d, want %d (one per successful update)", st, ok)
	}
}

// TestUpdate_PanicStaysWithItsCaller checks that a transaction that panics
// panics in its own caller alone and writes nothing, while concurrent ones
// commit.
func TestUpdate_PanicStaysWithItsCaller(t *testing.T) {
	db := openStore(t, badger.Options{})
	const acct, typ = store.AccountID("a1"), "Email"
	var wg sync.WaitGroup
	panics := make([]any, 20)
	for i := range 20 {
		wg.Go(func() {
			defer func() { panics[i] = recover() }()
			_, err := db.Update(context.Background(), func(tx store.Tx) error {
				if err := tx.Create(acct, typ, fmt.Sprint("e", i), []byte(`{}`)); err != nil {
					return err
				}
				if i == 7 {
					panic("boom")
				}
				return nil
			})
			if err != nil {
				t.Errorf("update %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	for i, p := range panics {
		if (p != nil) != (i == 7) {
			t.Errorf("update %d panicked with %v", i, p)
		}
		if i == 7 {
			wantNoRecord(t, db, acct, typ, "e7")
		} else {
			wantRecord(t, db, acct, typ, fmt.Sprint("e", i), `{}`)
		}
	}
}

// TestUpdate_ConcurrentLargeOnesSplit runs several Updates at once that
// together exceed what one Badger transaction holds: each still commits
// whole.
func TestUpdate_ConcurrentLargeOnesSplit(t *testing.T) {
	db := openStore(t, badger.Options{})
	const workers, keys = 6, 30_000
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			_, err := db.Update(context.Background(), func(tx store.Tx) error {
				for k := range keys {
					if err := tx.PutMeta(fmt.Sprintf("big/%d/%06d", i, k), []byte("v")); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Errorf("update %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	view(t, db, func(tx store.Tx) error {
		for i := range workers {
			n := 0
			for _, err := range tx.ScanMeta(fmt.Sprintf("big/%d/", i)) {
				if err != nil {
					return err
				}
				n++
			}
			if n != keys {
				t.Errorf("update %d left %d keys, want %d", i, n, keys)
			}
		}
		return nil
	})
}

// Gathered gives one value per transaction and key, and runs each finish
// once, in order of first use, after the function returned and before the
// commit: what a finish writes is committed with the rest, and a finish
// that fails leaves nothing of the transaction behind.
func TestUpdate_GatheredFinishesBeforeCommit(t *testing.T) {
	db := openStore(t, badger.Options{})
	type key struct{ n int }
	var order []int
	gather := func(tx store.Tx, n int, fail error) *[]string {
		return tx.Gathered(key{n}, func() (any, func() error) {
			v := &[]string{}
			return v, func() error {
				order = append(order, n)
				if fail != nil {
					return fail
				}
				return tx.PutMeta(fmt.Sprint("g", n), []byte(fmt.Sprint(*v)))
			}
		}).(*[]string)
	}
	_, err := db.Update(context.Background(), func(tx store.Tx) error {
		order = nil
		*gather(tx, 2, nil) = append(*gather(tx, 2, nil), "a")
		*gather(tx, 1, nil) = append(*gather(tx, 1, nil), "b")
		*gather(tx, 2, nil) = append(*gather(tx, 2, nil), "c")
		if len(order) != 0 {
			t.Errorf("finish ran before the function returned: %v", order)
		}
		return tx.Create("a1", "Note", "n1", []byte(`{}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(order) != "[2 1]" {
		t.Errorf("finishes ran in order %v, want [2 1]", order)
	}
	view(t, db, func(tx store.Tx) error {
		for k, want := range map[string]string{"g1": "[b]", "g2": "[a c]"} {
			if v, err := tx.GetMeta(k); err != nil || string(v) != want {
				t.Errorf("%s = %q (%v), want %q", k, v, err, want)
			}
		}
		return nil
	})
	errFail := errors.New("finish refused")
	_, err = db.Update(context.Background(), func(tx store.Tx) error {
		gather(tx, 3, nil)
		gather(tx, 4, errFail)
		return tx.Create("a1", "Note", "n2", []byte(`{}`))
	})
	if !errors.Is(err, errFail) {
		t.Fatalf("err = %v, want the finish's error", err)
	}
	wantNoRecord(t, db, "a1", "Note", "n2")
	view(t, db, func(tx store.Tx) error {
		if v, err := tx.GetMeta("g3"); err != nil || v != nil {
			t.Errorf("a failed transaction left g3 = %q (%v)", v, err)
		}
		return nil
	})
}
