package delivery

import (
	"context"
	"testing"

	"github.com/jmapd/jmapd/store"
	"github.com/jmapd/jmapd/store/badger"
)

// TestAgentResolve_CompanyGroupsFollowDirectory checks that the agent's
// cached company groups follow changes to the principals: a company group
// made, or a member removed, after mail was resolved counts at once.
func TestAgentResolve_CompanyGroupsFollowDirectory(t *testing.T) {
	db, err := badger.Open(badger.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	a := New(Options{Store: db})
	put := func(fn func(p store.PrincipalTx) error) {
		t.Helper()
		if _, err := db.Update(ctx, func(tx store.Tx) error { return fn(tx.Principals()) }); err != nil {
			t.Fatal(err)
		}
	}
	resolve := func(addr string) []store.AccountID {
		t.Helper()
		var out []store.AccountID
		err := db.View(ctx, func(tx store.Tx) error {
			ts, local, err := a.Resolve(tx, addr)
			if !local {
				t.Errorf("%s is not local", addr)
			}
			for _, x := range ts {
				out = append(out, x.Account)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	alice := &store.Principal{ID: "p1", Type: store.Individual, Email: "alice@example.test", Account: "A"}
	put(func(p store.PrincipalTx) error { return p.Create(alice) })
	if got := resolve("alice@example.test"); len(got) != 1 || got[0] != "A" {
		t.Fatalf("before the company: %v, want [A]", got)
	}
	corp := &store.Principal{ID: "p2", Type: store.Group, Email: "corp@example.test", Account: "C", Company: true, Members: []store.PrincipalID{"p1"}}
	put(func(p store.PrincipalTx) error { return p.Create(corp) })
	if got := resolve("alice@example.test"); len(got) != 2 || got[0] != "A" || got[1] != "C" {
		t.Fatalf("with the company: %v, want [A C]", got)
	}
	corp.Members = nil
	put(func(p store.PrincipalTx) error { return p.Update(corp) })
	if got := resolve("alice@example.test"); len(got) != 1 || got[0] != "A" {
		t.Fatalf("after leaving the company: %v, want [A]", got)
	}
}
