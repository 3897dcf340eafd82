package badger_test

import (
	"errors"
	"testing"

	"github.com/jmapd/jmapd/store"
	"github.com/jmapd/jmapd/store/badger"
)

// ViewRecord lends the bytes Get returns, and answers ErrNotFound for a
// record that is not there, deleted or never written.
func TestViewRecord_SameBytesAsGet(t *testing.T) {
	db := openStore(t, badger.Options{})
	const acct = store.AccountID("a1")
	update(t, db, func(tx store.Tx) error {
		if err := tx.Create(acct, "Email", "e1", []byte(`{"id":"e1"}`)); err != nil {
			return err
		}
		if err := tx.Create(acct, "Email", "e2", []byte(`{"id":"e2"}`)); err != nil {
			return err
		}
		return tx.Delete(acct, "Email", "e2")
	})
	type viewer interface {
		ViewRecord(acct store.AccountID, typ, id string, fn func([]byte) error) error
	}
	view(t, db, func(tx store.Tx) error {
		v, ok := tx.(viewer)
		if !ok {
			t.Fatal("the badger Tx has no ViewRecord")
		}
		var got string
		if err := v.ViewRecord(acct, "Email", "e1", func(b []byte) error { got = string(b); return nil }); err != nil {
			t.Fatal(err)
		}
		if got != `{"id":"e1"}` {
			t.Errorf("ViewRecord e1 = %q", got)
		}
		for _, id := range []string{"e2", "e3"} {
			called := false
			err := v.ViewRecord(acct, "Email", id, func([]byte) error { called = true; return nil })
			if !errors.Is(err, store.ErrNotFound) || called {
				t.Errorf("ViewRecord %s: err %v, fn called %v; want ErrNotFound", id, err, called)
			}
		}
		// An error of fn is the answer.
		boom := errors.New("boom")
		if err := v.ViewRecord(acct, "Email", "e1", func([]byte) error { return boom }); !errors.Is(err, boom) {
			t.Errorf("ViewRecord with a failing fn: %v", err)
		}
		return nil
	})
}
