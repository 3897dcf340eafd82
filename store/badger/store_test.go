package badger_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/jmapd/jmapd/store"
	"github.com/jmapd/jmapd/store/badger"
)

// openStore opens a store in a fresh temp dir and closes it when the test
// ends.
func openStore(t testing.TB, opt badger.Options) *badger.DB {
	t.Helper()
	if opt.Dir == "" {
		opt.Dir = t.TempDir()
	}
	db, err := badger.Open(opt)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return db
}

// update runs fn in an Update and fails the test on error.
func update(t testing.TB, db store.Store, fn func(tx store.Tx) error) []store.StateChange {
	t.Helper()
	sc, err := db.Update(context.Background(), fn)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	return sc
}

// view runs fn in a View and fails the test on error.
func view(t testing.TB, db store.Store, fn func(tx store.Tx) error) {
	t.Helper()
	if err := db.View(context.Background(), fn); err != nil {
		t.Fatalf("view: %v", err)
	}
}

func stateOf(t testing.TB, db store.Store, acct store.AccountID, typ string) store.State {
	t.Helper()
	var st store.State
	view(t, db, func(tx store.Tx) error {
		var err error
		st, err = tx.State(acct, typ)
		return err
	})
	return st
}

// getRecord returns the record's data, or nil and store.ErrNotFound.
func getRecord(t testing.TB, db store.Store, acct store.AccountID, typ, id string) ([]byte, error) {
	t.Helper()
	var data []byte
	err := db.View(context.Background(), func(tx store.Tx) error {
		var err error
		data, err = tx.Get(acct, typ, id)
		return err
	})
	return data, err
}

func wantRecord(t testing.TB, db store.Store, acct store.AccountID, typ, id, want string) {
	t.Helper()
	got, err := getRecord(t, db, acct, typ, id)
	if err != nil {
		t.Fatalf("get %s/%s/%s: %v", acct, typ, id, err)
	}
	if string(got) != want {
		t.Fatalf("get %s/%s/%s = %q, want %q", acct, typ, id, got, want)
	}
}

func wantNoRecord(t testing.TB, db store.Store, acct store.AccountID, typ, id string) {
	t.Helper()
	got, err := getRecord(t, db, acct, typ, id)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get %s/%s/%s = %q, %v; want store.ErrNotFound", acct, typ, id, got, err)
	}
}

func changes(t testing.TB, db store.Store, acct store.AccountID, typ string, since store.State, max int) ([]store.Change, bool) {
	t.Helper()
	var entries []store.Change
	var more bool
	view(t, db, func(tx store.Tx) error {
		var err error
		entries, more, err = tx.Changes(acct, typ, since, max)
		return err
	})
	return entries, more
}

func TestRecords_CreateGetPutDeleteScan(t *testing.T) {
	db := openStore(t, badger.Options{})
	const acct, typ = store.AccountID("a1"), "Mailbox"

	update(t, db, func(tx store.Tx) error {
		// Created out of order: Scan must still yield them in id order.
		for _, id := range []string{"m3", "m1", "m2"} {
			if err := tx.Create(acct, typ, id, []byte(`{"name":"`+id+`"}`)); err != nil {
				return err
			}
		}
		// A transaction reads its own writes.
		got, err := tx.Get(acct, typ, "m1")
		if err != nil || string(got) != `{"name":"m1"}` {
			return fmt.Errorf("get own write = %q, %v", got, err)
		}
		return nil
	})
	wantRecord(t, db, acct, typ, "m1", `{"name":"m1"}`)

	update(t, db, func(tx store.Tx) error {
		if err := tx.Put(acct, typ, "m1", []byte(`{"name":"Inbox"}`)); err != nil {
			return err
		}
		return tx.Delete(acct, typ, "m3")
	})
	wantRecord(t, db, acct, typ, "m1", `{"name":"Inbox"}`)
	wantNoRecord(t, db, acct, typ, "m3")

	// Records of another type or account never show up in a Scan.
	update(t, db, func(tx store.Tx) error {
		if err := tx.Create(acct, "Email", "m0", []byte(`{}`)); err != nil {
			return err
		}
		return tx.Create("a2", typ, "m0", []byte(`{}`))
	})
	var got []store.Object
	view(t, db, func(tx store.Tx) error {
		for o, err := range tx.Scan(acct, typ) {
			if err != nil {
				return err
			}
			got = append(got, o)
		}
		return nil
	})
	want := []store.Object{{ID: "m1", Data: []byte(`{"name":"Inbox"}`)}, {ID: "m2", Data: []byte(`{"name":"m2"}`)}}
	if !slices.EqualFunc(got, want, func(a, b store.Object) bool { return a.ID == b.ID && string(a.Data) == string(b.Data) }) {
		t.Fatalf("scan = %q, want %q", got, want)
	}

	// Stopping a Scan early is allowed.
	view(t, db, func(tx store.Tx) error {
		n := 0
		for _, err := range tx.Scan(acct, typ) {
			if err != nil {
				return err
			}
			n++
			break
		}
		if n != 1 {
			return fmt.Errorf("early break visited %d", n)
		}
		return nil
	})
}

func TestRecords_CreateExistingIsErrExists(t *testing.T) {
	db := openStore(t, badger.Options{})
	update(t, db, func(tx store.Tx) error { return tx.Create("a1", "Mailbox", "m1", []byte(`1`)) })
	before := stateOf(t, db, "a1", "Mailbox")

	_, err := db.Update(context.Background(), func(tx store.Tx) error {
		return tx.Create("a1", "Mailbox", "m1", []byte(`2`))
	})
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("create existing: err = %v, want store.ErrExists", err)
	}
	wantRecord(t, db, "a1", "Mailbox", "m1", `1`)
	if st := stateOf(t, db, "a1", "Mailbox"); st != before {
		t.Fatalf("state after failed create = %d, want %d", st, before)
	}
}

// A record created under an id of NewID needs no look for an existing
// one, but a second Create under the same id in the transaction is still
// ErrExists.
func TestRecords_CreateUnderNewIDTwiceIsErrExists(t *testing.T) {
	db := openStore(t, badger.Options{})
	var id string
	_, err := db.Update(context.Background(), func(tx store.Tx) error {
		var err error
		if id, err = tx.NewID(); err != nil {
			return err
		}
		if err := tx.Create("a1", "Email", id, []byte(`1`)); err != nil {
			return fmt.Errorf("first create: %w", err)
		}
		return tx.Create("a1", "Email", id, []byte(`2`))
	})
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("second create under a new id: err = %v, want store.ErrExists", err)
	}
	update(t, db, func(tx store.Tx) error {
		id, err := tx.NewID()
		if err != nil {
			return err
		}
		return tx.Create("a1", "Email", id, []byte(`3`))
	})
}

func TestRecords_PutOrDeleteMissingIsErrNotFound(t *testing.T) {
	db := openStore(t, badger.Options{})
	update(t, db, func(tx store.Tx) error { return tx.Create("a1", "Mailbox", "m1", []byte(`1`)) })

	for name, fn := range map[string]func(tx store.Tx) error{
		"Put":      func(tx store.Tx) error { return tx.Put("a1", "Mailbox", "nope", []byte(`x`)) },
		"PutProps": func(tx store.Tx) error { return tx.PutProps("a1", "Mailbox", "nope", []byte(`x`), []string{"name"}) },
		"Delete":   func(tx store.Tx) error { return tx.Delete("a1", "Mailbox", "nope") },
		// The same id in another account or type does not exist either.
		"PutOtherAccount": func(tx store.Tx) error { return tx.Put("a2", "Mailbox", "m1", []byte(`x`)) },
		"DeleteOtherType": func(tx store.Tx) error { return tx.Delete("a1", "Email", "m1") },
		"DeleteTwiceInTx": func(tx store.Tx) error {
			if err := tx.Delete("a1", "Mailbox", "m1"); err != nil {
				return err
			}
			return tx.Delete("a1", "Mailbox", "m1")
		},
	} {
		t.Run(name, func(t *testing.T) {
			before := stateOf(t, db, "a1", "Mailbox")
			_, err := db.Update(context.Background(), fn)
			if !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("err = %v, want store.ErrNotFound", err)
			}
			if st := stateOf(t, db, "a1", "Mailbox"); st != before {
				t.Fatalf("state = %d, want %d", st, before)
			}
			wantRecord(t, db, "a1", "Mailbox", "m1", `1`)
			wantNoRecord(t, db, "a1", "Mailbox", "nope")
			wantNoRecord(t, db, "a2", "Mailbox", "m1")
		})
	}
}

func TestUpdate_FailingFnChangesNothing(t *testing.T) {
	db := openStore(t, badger.Options{})
	update(t, db, func(tx store.Tx) error { return tx.Create("a1", "Email", "e1", []byte(`1`)) })
	before := stateOf(t, db, "a1", "Email")
	var calls int
	cancel := db.Subscribe(func([]store.StateChange) { calls++ })
	defer cancel()

	boom := errors.New("boom")
	sc, err := db.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.Create("a1", "Email", "e2", []byte(`2`)); err != nil {
			return err
		}
		if err := tx.Put("a1", "Email", "e1", []byte(`changed`)); err != nil {
			return err
		}
		if err := tx.Create("a1", "Mailbox", "m1", []byte(`3`)); err != nil {
			return err
		}
		if err := tx.PutMeta("count", []byte("9")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) || sc != nil {
		t.Fatalf("Update = %v, %v; want nil, boom", sc, err)
	}
	wantNoRecord(t, db, "a1", "Email", "e2")
	wantNoRecord(t, db, "a1", "Mailbox", "m1")
	wantRecord(t, db, "a1", "Email", "e1", `1`)
	if st := stateOf(t, db, "a1", "Email"); st != before {
		t.Fatalf("Email state = %d, want %d", st, before)
	}
	if st := stateOf(t, db, "a1", "Mailbox"); st != 0 {
		t.Fatalf("Mailbox state = %d, want 0", st)
	}
	if entries, _ := changes(t, db, "a1", "Email", before, 0); len(entries) != 0 {
		t.Fatalf("change log grew: %+v", entries)
	}
	view(t, db, func(tx store.Tx) error {
		if v, err := tx.GetMeta("count"); err != nil || v != nil {
			return fmt.Errorf("meta = %q, %v; want absent", v, err)
		}
		return nil
	})
	if calls != 0 {
		t.Fatalf("subscriber called %d times for a failed Update", calls)
	}
}

// An Update that writes more than a transaction holds fails with
// store.ErrTxnTooBig, which callers cut their work by, and writes nothing.
func TestUpdate_TooBigIsErrTxnTooBig(t *testing.T) {
	db := openStore(t, badger.Options{})
	value := bytes.Repeat([]byte("x"), 4000)
	_, err := db.Update(context.Background(), func(tx store.Tx) error {
		for i := range 5000 {
			if err := tx.PutMeta(fmt.Sprintf("big%05d", i), value); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, store.ErrTxnTooBig) {
		t.Fatalf("Update of 20 MB = %v, want store.ErrTxnTooBig", err)
	}
	view(t, db, func(tx store.Tx) error {
		if v, err := tx.GetMeta("big00000"); err != nil || v != nil {
			return fmt.Errorf("meta = %.10q, %v; want absent", v, err)
		}
		return nil
	})
}

func TestView_CannotWrite(t *testing.T) {
	db := openStore(t, badger.Options{})
	err := db.View(context.Background(), func(tx store.Tx) error {
		return tx.Create("a1", "Email", "e1", []byte(`1`))
	})
	if err == nil {
		t.Fatal("Create in View succeeded")
	}
	wantNoRecord(t, db, "a1", "Email", "e1")
	if st := stateOf(t, db, "a1", "Email"); st != 0 {
		t.Fatalf("state = %d, want 0", st)
	}
}

func TestUpdate_CanceledContextWritesNothing(t *testing.T) {
	db := openStore(t, badger.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := db.Update(ctx, func(tx store.Tx) error { return tx.Create("a1", "Email", "e1", []byte(`1`)) })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	wantNoRecord(t, db, "a1", "Email", "e1")
}

func TestNewID_UniqueAndStartsWithLetter(t *testing.T) {
	db := openStore(t, badger.Options{})
	seen := map[string]bool{}
	for range 3 {
		update(t, db, func(tx store.Tx) error {
			for range 300 { // more than one lease of the id sequence
				id, err := tx.NewID()
				if err != nil {
					return err
				}
				if seen[id] {
					return fmt.Errorf("id %q returned twice", id)
				}
				if id == "" || id[0] < 'a' || id[0] > 'z' {
					return fmt.Errorf("id %q does not start with a letter (RFC 8620 §1.2)", id)
				}
				seen[id] = true
			}
			return nil
		})
	}
}

func TestMeta_PutGetDeleteScan(t *testing.T) {
	db := openStore(t, badger.Options{})
	update(t, db, func(tx store.Tx) error {
		for _, k := range []string{"idx/b", "idx/a", "other", "idx/c"} {
			if err := tx.PutMeta(k, []byte("v-"+k)); err != nil {
				return err
			}
		}
		return tx.DeleteMeta("idx/c")
	})
	view(t, db, func(tx store.Tx) error {
		if v, err := tx.GetMeta("idx/a"); err != nil || string(v) != "v-idx/a" {
			return fmt.Errorf("GetMeta = %q, %v", v, err)
		}
		if v, err := tx.GetMeta("idx/c"); err != nil || v != nil {
			return fmt.Errorf("deleted meta = %q, %v; want nil", v, err)
		}
		var keys []string
		for m, err := range tx.ScanMeta("idx/") {
			if err != nil {
				return err
			}
			keys = append(keys, m.Key+"="+string(m.Value))
		}
		if want := []string{"idx/a=v-idx/a", "idx/b=v-idx/b"}; !slices.Equal(keys, want) {
			return fmt.Errorf("ScanMeta = %q, want %q", keys, want)
		}
		return nil
	})
	// Meta writes are outside the change log: no state moved.
	if st := stateOf(t, db, "_", "Principal"); st != 0 {
		t.Fatalf("state = %d after meta writes", st)
	}
}

func TestState_AdvancesOncePerTransaction(t *testing.T) {
	db := openStore(t, badger.Options{})
	update(t, db, func(tx store.Tx) error { return tx.Create("a2", "Email", "x", []byte(`{}`)) })

	sc := update(t, db, func(tx store.Tx) error {
		for i := range 5 {
			if err := tx.Create("a1", "Email", fmt.Sprintf("e%d", i), []byte(`{}`)); err != nil {
				return err
			}
		}
		if err := tx.Put("a1", "Email", "e0", []byte(`{"seen":true}`)); err != nil {
			return err
		}
		if err := tx.Delete("a1", "Email", "e4"); err != nil {
			return err
		}
		return tx.Create("a1", "Mailbox", "m1", []byte(`{}`))
	})
	want := []store.StateChange{{Account: "a1", Type: "Email", State: 1}, {Account: "a1", Type: "Mailbox", State: 1}}
	if !slices.Equal(sc, want) {
		t.Fatalf("Update returned %+v, want %+v", sc, want)
	}

	sc = update(t, db, func(tx store.Tx) error {
		if err := tx.Put("a1", "Email", "e1", []byte(`{}`)); err != nil {
			return err
		}
		return tx.Put("a1", "Email", "e2", []byte(`{}`))
	})
	if want := []store.StateChange{{Account: "a1", Type: "Email", State: 2}}; !slices.Equal(sc, want) {
		t.Fatalf("Update returned %+v, want %+v", sc, want)
	}

	for _, c := range []struct {
		acct store.AccountID
		typ  string
		want store.State
	}{
		{"a1", "Email", 2},
		{"a1", "Mailbox", 1},
		{"a1", "Thread", 0}, // never written
		{"a2", "Email", 1},  // another account: only its own commit
		{"a2", "Mailbox", 0},
	} {
		if st := stateOf(t, db, c.acct, c.typ); st != c.want {
			t.Errorf("state %s/%s = %d, want %d", c.acct, c.typ, st, c.want)
		}
	}

	// A transaction that only reads, or only writes meta, advances nothing.
	sc = update(t, db, func(tx store.Tx) error {
		if _, err := tx.Get("a1", "Email", "e1"); err != nil {
			return err
		}
		return tx.PutMeta("k", []byte("v"))
	})
	if len(sc) != 0 {
		t.Fatalf("read-only Update returned %+v", sc)
	}
	if st := stateOf(t, db, "a1", "Email"); st != 2 {
		t.Fatalf("Email state = %d after read-only Update, want 2", st)
	}
}

func TestSubscribe_ReceivesStateChanges(t *testing.T) {
	db := openStore(t, badger.Options{})
	var mu sync.Mutex
	var got [][]store.StateChange
	cancel := db.Subscribe(func(sc []store.StateChange) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, sc)
	})
	var other int
	cancelOther := db.Subscribe(func([]store.StateChange) { other++ })

	sc1 := update(t, db, func(tx store.Tx) error {
		if err := tx.Create("a1", "Email", "e1", []byte(`{}`)); err != nil {
			return err
		}
		return tx.Create("a2", "Mailbox", "m1", []byte(`{}`))
	})
	update(t, db, func(tx store.Tx) error { return tx.PutMeta("k", []byte("v")) }) // no state change: no call
	cancelOther()
	sc2 := update(t, db, func(tx store.Tx) error { return tx.Put("a1", "Email", "e1", []byte(`{"x":1}`)) })
	cancel()
	update(t, db, func(tx store.Tx) error { return tx.Delete("a1", "Email", "e1") })

	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || !slices.Equal(got[0], sc1) || !slices.Equal(got[1], sc2) {
		t.Fatalf("subscriber got %+v, want [%+v %+v]", got, sc1, sc2)
	}
	if want := []store.StateChange{{Account: "a1", Type: "Email", State: 1}, {Account: "a2", Type: "Mailbox", State: 1}}; !slices.Equal(sc1, want) {
		t.Fatalf("first Update returned %+v, want %+v", sc1, want)
	}
	if other != 1 {
		t.Fatalf("cancelled subscriber called %d times, want 1", other)
	}
}

func TestChanges_LogEntriesInOrder(t *testing.T) {
	db := openStore(t, badger.Options{})
	const acct, typ = store.AccountID("a1"), "Email"
	put := func(id string) func(tx store.Tx) error {
		return func(tx store.Tx) error { return tx.Put(acct, typ, id, []byte(`{"v":2}`)) }
	}
	update(t, db, func(tx store.Tx) error { // state 1
		for _, id := range []string{"e1", "e2", "e3"} {
			if err := tx.Create(acct, typ, id, []byte(`{}`)); err != nil {
				return err
			}
		}
		return nil
	})
	update(t, db, put("e1"))                                                                   // state 2
	update(t, db, func(tx store.Tx) error { return tx.Delete(acct, typ, "e2") })               // state 3
	update(t, db, func(tx store.Tx) error { return tx.Create(acct, typ, "e4", []byte(`{}`)) }) // state 4
	update(t, db, func(tx store.Tx) error { return tx.Create("a2", typ, "z", []byte(`{}`)) })  // other account

	all := []store.Change{
		{State: 1, Created: []string{"e1", "e2", "e3"}},
		{State: 2, Updated: []string{"e1"}},
		{State: 3, Destroyed: []string{"e2"}},
		{State: 4, Created: []string{"e4"}},
	}
	for _, c := range []struct {
		name  string
		since store.State
		max   int
		want  []store.Change
		more  bool
	}{
		{"all", 0, 0, all, false},
		{"since2", 2, 0, all[2:], false},
		{"current", 4, 0, nil, false},
		// The first entry alone brings the count to 3 >= 2: stop after it.
		{"maxInsideEntry", 0, 2, all[:1], true},
		{"maxExactly", 0, 3, all[:1], true},
		{"maxAcrossEntries", 0, 4, all[:2], true},
		{"maxOneEach", 1, 1, all[1:2], true},
		// max reached on the last entry: nothing more to fetch.
		{"maxAtEnd", 3, 1, all[3:], false},
		{"maxLargerThanLog", 0, 100, all, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, more := changes(t, db, acct, typ, c.since, c.max)
			if !equalChanges(got, c.want) || more != c.more {
				t.Fatalf("Changes(%d, %d) = %+v, more=%v; want %+v, more=%v", c.since, c.max, got, more, c.want, c.more)
			}
		})
	}
	if got, _ := changes(t, db, "a2", typ, 0, 0); !equalChanges(got, []store.Change{{State: 1, Created: []string{"z"}}}) {
		t.Fatalf("other account log = %+v", got)
	}
}

func TestChanges_PropsRecordedAndClearedByPlainPut(t *testing.T) {
	db := openStore(t, badger.Options{})
	const acct, typ = store.AccountID("a1"), "Mailbox"
	update(t, db, func(tx store.Tx) error { // state 1
		for _, id := range []string{"m1", "m2"} {
			if err := tx.Create(acct, typ, id, []byte(`{}`)); err != nil {
				return err
			}
		}
		return nil
	})
	update(t, db, func(tx store.Tx) error { // state 2: only counts changed
		if err := tx.PutProps(acct, typ, "m1", []byte(`{"n":1}`), []string{"totalEmails", "unreadEmails"}); err != nil {
			return err
		}
		return tx.PutProps(acct, typ, "m2", []byte(`{"n":1}`), []string{"unreadEmails", "totalEmails"})
	})
	update(t, db, func(tx store.Tx) error { // state 3: a plain Put touches any property
		if err := tx.PutProps(acct, typ, "m1", []byte(`{"n":2}`), []string{"totalEmails"}); err != nil {
			return err
		}
		return tx.Put(acct, typ, "m2", []byte(`{"name":"x"}`))
	})
	update(t, db, func(tx store.Tx) error { // state 4: Put first, then PutProps
		if err := tx.Put(acct, typ, "m2", []byte(`{"name":"y"}`)); err != nil {
			return err
		}
		return tx.PutProps(acct, typ, "m1", []byte(`{"n":3}`), []string{"totalEmails"})
	})

	got, _ := changes(t, db, acct, typ, 1, 0)
	want := []store.Change{
		{State: 2, Updated: []string{"m1", "m2"}, Props: []string{"totalEmails", "unreadEmails"}},
		{State: 3, Updated: []string{"m1", "m2"}},
		{State: 4, Updated: []string{"m2", "m1"}},
	}
	if !equalChanges(got, want) {
		t.Fatalf("Changes = %+v, want %+v", got, want)
	}

	_, err := db.Update(context.Background(), func(tx store.Tx) error {
		return tx.PutProps(acct, typ, "m1", []byte(`{}`), nil)
	})
	if err == nil {
		t.Fatal("PutProps without properties succeeded")
	}
	if st := stateOf(t, db, acct, typ); st != 4 {
		t.Fatalf("state = %d after rejected PutProps, want 4", st)
	}
}

func equalChanges(a, b []store.Change) bool {
	return slices.EqualFunc(a, b, func(x, y store.Change) bool {
		return x.State == y.State && slices.Equal(x.Created, y.Created) && slices.Equal(x.Updated, y.Updated) &&
			slices.Equal(x.Destroyed, y.Destroyed) && slices.Equal(x.Props, y.Props)
	})
}

// TestUpdate_ConcurrentIncrementsRetryConflicts has 32 goroutines increment one
// counter record: every conflicting transaction must be retried by the store,
// so no increment is lost and the state counts every commit.
func TestUpdate_ConcurrentIncrementsRetryConflicts(t *testing.T) {
	db := openStore(t, badger.Options{})
	const acct, typ, id = store.AccountID("a1"), "Counter", "c"
	const workers, each = 32, 10
	update(t, db, func(tx store.Tx) error { return tx.Create(acct, typ, id, make([]byte, 8)) })

	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range each {
				_, err := db.Update(context.Background(), func(tx store.Tx) error {
					v, err := tx.Get(acct, typ, id)
					if err != nil {
						return err
					}
					return tx.Put(acct, typ, id, binary.BigEndian.AppendUint64(nil, binary.BigEndian.Uint64(v)+1))
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("increment: %v", err)
	}

	v, err := getRecord(t, db, acct, typ, id)
	if err != nil {
		t.Fatal(err)
	}
	if n := binary.BigEndian.Uint64(v); n != workers*each {
		t.Errorf("counter = %d, want %d", n, workers*each)
	}
	// One state for the Create, one per increment.
	if st := stateOf(t, db, acct, typ); st != workers*each+1 {
		t.Errorf("state = %d, want %d", st, workers*each+1)
	}
	if entries, _ := changes(t, db, acct, typ, 0, 0); len(entries) != workers*each+1 {
		t.Errorf("change log has %d entries, want %d", len(entries), workers*each+1)
	}
}
