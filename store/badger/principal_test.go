package badger_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jmapd/jmapd/store"
	"github.com/jmapd/jmapd/store/badger"
)

func principal(id, email string) *store.Principal {
	return &store.Principal{
		ID:      store.PrincipalID(id),
		Type:    store.Individual,
		Name:    id,
		Email:   email,
		Account: store.AccountID("acct-" + id),
		Created: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

// byEmail looks a principal up by email; it returns its id, or "" and the
// error.
func byEmail(t testing.TB, db store.Store, email string) (store.PrincipalID, error) {
	t.Helper()
	var id store.PrincipalID
	err := db.View(context.Background(), func(tx store.Tx) error {
		p, err := tx.Principals().ByEmail(email)
		if err != nil {
			return err
		}
		id = p.ID
		return nil
	})
	return id, err
}

func wantByEmail(t testing.TB, db store.Store, email string, want store.PrincipalID) {
	t.Helper()
	id, err := byEmail(t, db, email)
	if err != nil || id != want {
		t.Fatalf("ByEmail(%q) = %q, %v; want %q", email, id, err, want)
	}
}

func wantNoEmail(t testing.TB, db store.Store, email string) {
	t.Helper()
	if id, err := byEmail(t, db, email); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ByEmail(%q) = %q, %v; want store.ErrNotFound", email, id, err)
	}
}

func TestPrincipal_CreateGetByEmail(t *testing.T) {
	db := openStore(t, badger.Options{})
	alice := principal("p1", "Alice@Example.test")
	alice.Members = []store.PrincipalID{"p9"}
	sc := update(t, db, func(tx store.Tx) error { return tx.Principals().Create(alice) })
	// Principals are records of the system account, with a state of their own.
	if want := []store.StateChange{{Account: store.SystemAccount, Type: badger.PrincipalType, State: 1}}; !slices.Equal(sc, want) {
		t.Fatalf("Create returned %+v, want %+v", sc, want)
	}

	view(t, db, func(tx store.Tx) error {
		got, err := tx.Principals().Get("p1")
		if err != nil {
			return err
		}
		if got.Email != alice.Email || got.Name != alice.Name || got.Account != alice.Account ||
			!got.Created.Equal(alice.Created) || !slices.Equal(got.Members, alice.Members) {
			return fmt.Errorf("Get = %+v, want %+v", got, alice)
		}
		if _, err := tx.Principals().Get("p2"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("Get(missing) err = %v, want store.ErrNotFound", err)
		}
		return nil
	})
	for _, e := range []string{"Alice@Example.test", "alice@example.test", "ALICE@EXAMPLE.TEST", " alice@example.test "} {
		wantByEmail(t, db, e, "p1")
	}
	wantNoEmail(t, db, "bob@example.test")

	update(t, db, func(tx store.Tx) error { return tx.Principals().Create(principal("p2", "bob@example.test")) })
	update(t, db, func(tx store.Tx) error { return tx.Principals().Create(principal("p0", "")) }) // no email: no index
	var ids []store.PrincipalID
	view(t, db, func(tx store.Tx) error {
		for p, err := range tx.Principals().All() {
			if err != nil {
				return err
			}
			ids = append(ids, p.ID)
		}
		return nil
	})
	if want := []store.PrincipalID{"p0", "p1", "p2"}; !slices.Equal(ids, want) {
		t.Fatalf("All = %v, want %v", ids, want)
	}
}

func TestPrincipal_DuplicateEmailIsErrExists(t *testing.T) {
	db := openStore(t, badger.Options{})
	update(t, db, func(tx store.Tx) error { return tx.Principals().Create(principal("p1", "alice@example.test")) })
	before := stateOf(t, db, store.SystemAccount, badger.PrincipalType)

	_, err := db.Update(context.Background(), func(tx store.Tx) error {
		return tx.Principals().Create(principal("p2", "ALICE@example.test"))
	})
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("create with a taken email: err = %v, want store.ErrExists", err)
	}
	_, err = db.Update(context.Background(), func(tx store.Tx) error {
		return tx.Principals().Create(principal("p1", "other@example.test"))
	})
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("create with a taken id: err = %v, want store.ErrExists", err)
	}

	if st := stateOf(t, db, store.SystemAccount, badger.PrincipalType); st != before {
		t.Fatalf("state = %d, want %d", st, before)
	}
	wantByEmail(t, db, "alice@example.test", "p1")
	wantNoEmail(t, db, "other@example.test")
	if _, err := getRecord(t, db, store.SystemAccount, badger.PrincipalType, "p2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("p2 stored: %v", err)
	}
}

func TestPrincipal_UpdateMovesEmailIndex(t *testing.T) {
	db := openStore(t, badger.Options{})
	update(t, db, func(tx store.Tx) error {
		if err := tx.Principals().Create(principal("p1", "alice@example.test")); err != nil {
			return err
		}
		return tx.Principals().Create(principal("p2", "bob@example.test"))
	})

	update(t, db, func(tx store.Tx) error { return tx.Principals().Update(principal("p1", "Alice.Smith@example.test")) })
	wantByEmail(t, db, "alice.smith@example.test", "p1")
	wantNoEmail(t, db, "alice@example.test")

	// A change of case only keeps the index and stores the new spelling.
	update(t, db, func(tx store.Tx) error { return tx.Principals().Update(principal("p1", "alice.smith@EXAMPLE.test")) })
	wantByEmail(t, db, "Alice.Smith@example.test", "p1")
	view(t, db, func(tx store.Tx) error {
		p, err := tx.Principals().Get("p1")
		if err == nil && p.Email != "alice.smith@EXAMPLE.test" {
			err = fmt.Errorf("email = %q", p.Email)
		}
		return err
	})

	// Taking another principal's email is refused and changes nothing.
	before := stateOf(t, db, store.SystemAccount, badger.PrincipalType)
	_, err := db.Update(context.Background(), func(tx store.Tx) error {
		return tx.Principals().Update(principal("p1", "BOB@example.test"))
	})
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("update to a taken email: err = %v, want store.ErrExists", err)
	}
	wantByEmail(t, db, "bob@example.test", "p2")
	wantByEmail(t, db, "alice.smith@example.test", "p1")
	if st := stateOf(t, db, store.SystemAccount, badger.PrincipalType); st != before {
		t.Fatalf("state = %d, want %d", st, before)
	}

	// Clearing the email drops the index; the old address is free again.
	update(t, db, func(tx store.Tx) error { return tx.Principals().Update(principal("p1", "")) })
	wantNoEmail(t, db, "alice.smith@example.test")
	update(t, db, func(tx store.Tx) error { return tx.Principals().Create(principal("p3", "alice.smith@example.test")) })
	wantByEmail(t, db, "alice.smith@example.test", "p3")

	_, err = db.Update(context.Background(), func(tx store.Tx) error {
		return tx.Principals().Update(principal("p404", "x@example.test"))
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of a missing principal: err = %v, want store.ErrNotFound", err)
	}
	wantNoEmail(t, db, "x@example.test")
}

func TestPrincipal_DeleteRemovesEmailPasswordAndTokens(t *testing.T) {
	db := openStore(t, badger.Options{})
	created := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	update(t, db, func(tx store.Tx) error {
		pt := tx.Principals()
		for _, p := range []*store.Principal{principal("p1", "alice@example.test"), principal("p2", "bob@example.test")} {
			if err := pt.Create(p); err != nil {
				return err
			}
			if err := pt.SetPasswordHash(p.ID, "$argon2id$hash-of-"+string(p.ID)); err != nil {
				return err
			}
		}
		for _, tok := range []struct{ id, owner, secret string }{
			{"t1", "p1", "s1"}, {"t2", "p1", "s2"}, {"t3", "p2", "s3"},
		} {
			if err := pt.CreateToken(&store.Token{ID: tok.id, Principal: store.PrincipalID(tok.owner), Created: created}, tok.secret); err != nil {
				return err
			}
		}
		return nil
	})

	update(t, db, func(tx store.Tx) error { return tx.Principals().Delete("p1") })

	wantNoEmail(t, db, "alice@example.test")
	view(t, db, func(tx store.Tx) error {
		pt := tx.Principals()
		if _, err := pt.Get("p1"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("Get after delete: %v", err)
		}
		if h, err := pt.PasswordHash("p1"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("PasswordHash after delete = %q, %v", h, err)
		}
		for _, s := range []string{"s1", "s2"} {
			if tok, err := pt.TokenBySecret(s); !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("TokenBySecret(%s) after delete = %+v, %v", s, tok, err)
			}
		}
		if toks := tokenIDs(pt, "p1"); len(toks) != 0 {
			return fmt.Errorf("Tokens(p1) after delete = %v", toks)
		}
		// The other principal keeps everything.
		if h, err := pt.PasswordHash("p2"); err != nil || h != "$argon2id$hash-of-p2" {
			return fmt.Errorf("PasswordHash(p2) = %q, %v", h, err)
		}
		if tok, err := pt.TokenBySecret("s3"); err != nil || tok.ID != "t3" {
			return fmt.Errorf("TokenBySecret(s3) = %+v, %v", tok, err)
		}
		return nil
	})
	wantByEmail(t, db, "bob@example.test", "p2")

	_, err := db.Update(context.Background(), func(tx store.Tx) error { return tx.Principals().Delete("p1") })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: err = %v, want store.ErrNotFound", err)
	}
	// The change log tells clients p1 is gone.
	entries, _ := changes(t, db, store.SystemAccount, badger.PrincipalType, 1, 0)
	if len(entries) != 1 || !slices.Equal(entries[0].Destroyed, []string{"p1"}) {
		t.Fatalf("changes = %+v, want p1 destroyed", entries)
	}
}

func tokenIDs(pt store.PrincipalTx, id store.PrincipalID) []string {
	var out []string
	for tok, err := range pt.Tokens(id) {
		if err != nil {
			return append(out, "error: "+err.Error())
		}
		out = append(out, tok.ID)
	}
	slices.Sort(out)
	return out
}

func TestToken_CreateLookupListDelete(t *testing.T) {
	db := openStore(t, badger.Options{})
	created := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	update(t, db, func(tx store.Tx) error {
		pt := tx.Principals()
		for _, id := range []string{"p1", "p2"} {
			if err := pt.Create(principal(id, id+"@example.test")); err != nil {
				return err
			}
		}
		if err := pt.CreateToken(&store.Token{ID: "t1", Principal: "p1", Name: "laptop", Created: created}, "hash1"); err != nil {
			return err
		}
		if err := pt.CreateToken(&store.Token{ID: "t2", Principal: "p1", Name: "phone", Created: created}, "hash2"); err != nil {
			return err
		}
		return pt.CreateToken(&store.Token{ID: "t3", Principal: "p2", Created: created}, "hash3")
	})

	view(t, db, func(tx store.Tx) error {
		pt := tx.Principals()
		tok, err := pt.TokenBySecret("hash2")
		if err != nil {
			return err
		}
		if tok.ID != "t2" || tok.Principal != "p1" || tok.Name != "phone" || !tok.Created.Equal(created) {
			return fmt.Errorf("TokenBySecret = %+v", tok)
		}
		if tok, err := pt.TokenBySecret("nope"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("TokenBySecret(unknown) = %+v, %v", tok, err)
		}
		if got := tokenIDs(pt, "p1"); !slices.Equal(got, []string{"t1", "t2"}) {
			return fmt.Errorf("Tokens(p1) = %v", got)
		}
		if got := tokenIDs(pt, "p2"); !slices.Equal(got, []string{"t3"}) {
			return fmt.Errorf("Tokens(p2) = %v", got)
		}
		if got := tokenIDs(pt, "p404"); len(got) != 0 {
			return fmt.Errorf("Tokens(p404) = %v", got)
		}
		return nil
	})

	// A secret hash names one token only.
	_, err := db.Update(context.Background(), func(tx store.Tx) error {
		return tx.Principals().CreateToken(&store.Token{ID: "t4", Principal: "p2", Created: created}, "hash1")
	})
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("token with a taken secret: err = %v, want store.ErrExists", err)
	}

	update(t, db, func(tx store.Tx) error { return tx.Principals().DeleteToken("t1") })
	view(t, db, func(tx store.Tx) error {
		pt := tx.Principals()
		if tok, err := pt.TokenBySecret("hash1"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("deleted token still found: %+v, %v", tok, err)
		}
		if got := tokenIDs(pt, "p1"); !slices.Equal(got, []string{"t2"}) {
			return fmt.Errorf("Tokens(p1) after delete = %v", got)
		}
		if got := tokenIDs(pt, "p2"); !slices.Equal(got, []string{"t3"}) {
			return fmt.Errorf("Tokens(p2) after delete = %v", got)
		}
		return nil
	})

	_, err = db.Update(context.Background(), func(tx store.Tx) error { return tx.Principals().DeleteToken("t1") })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleting a deleted token: err = %v, want store.ErrNotFound", err)
	}
}

func TestPrincipal_PasswordHash(t *testing.T) {
	db := openStore(t, badger.Options{})
	update(t, db, func(tx store.Tx) error {
		if err := tx.Principals().Create(principal("p1", "alice@example.test")); err != nil {
			return err
		}
		return tx.Principals().SetPasswordHash("p1", "h1")
	})
	update(t, db, func(tx store.Tx) error { return tx.Principals().SetPasswordHash("p1", "h2") })
	view(t, db, func(tx store.Tx) error {
		if h, err := tx.Principals().PasswordHash("p1"); err != nil || h != "h2" {
			return fmt.Errorf("PasswordHash = %q, %v; want h2", h, err)
		}
		if h, err := tx.Principals().PasswordHash("p2"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("PasswordHash(missing) = %q, %v", h, err)
		}
		return nil
	})
}
