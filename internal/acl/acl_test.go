package acl

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jmapd/jmapd/store"
	"github.com/jmapd/jmapd/store/badger"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := badger.Open(badger.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func update(t *testing.T, st store.Store, fn func(tx store.Tx) error) {
	t.Helper()
	if _, err := st.Update(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func view(t *testing.T, st store.Store, fn func(tx store.Tx) error) {
	t.Helper()
	if err := st.View(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func TestLevels(t *testing.T) {
	tests := []struct {
		level string
		want  Rights
	}{
		{"none", Rights{}},
		{"read", Rights{ReadItems: true}},
		{"readAdvanced", Rights{ReadItems: true, SetSeen: true, SetKeywords: true}},
		{"write", Rights{ReadItems: true, SetSeen: true, SetKeywords: true, AddItems: true, RemoveItems: true, CreateChild: true, Rename: true, Delete: true}},
		{"manage", All},
	}
	for _, tc := range tests {
		got, err := ParseLevel(tc.level)
		if err != nil || got != tc.want {
			t.Errorf("ParseLevel(%q) = %+v, %v; want %+v", tc.level, got, err, tc.want)
		}
		if got.Level() != tc.level {
			t.Errorf("%+v.Level() = %q, want %q", got, got.Level(), tc.level)
		}
	}
	for _, bad := range []string{"", "Read", "admin", "all"} {
		if _, err := ParseLevel(bad); err == nil {
			t.Errorf("ParseLevel(%q) succeeded", bad)
		}
	}
	if (Rights{SetSeen: true}).Level() != "" {
		t.Error("rights matching no level have a level name")
	}
}

func TestParseMap(t *testing.T) {
	tests := []struct {
		in   map[string]any
		want Rights
		ok   bool
	}{
		{map[string]any{}, Rights{}, true},
		{map[string]any{"mayReadItems": true, "maySetSeen": true}, Rights{ReadItems: true, SetSeen: true}, true},
		{map[string]any{"mayReadItems": true, "mayShare": false}, Rights{ReadItems: true}, true},
		{All.Map(true), All, true},
		{map[string]any{"mayRead": true}, Rights{}, false},
		{map[string]any{"mayReadItems": "yes"}, Rights{}, false},
		{map[string]any{"mayReadItems": nil}, Rights{}, false},
	}
	for _, tc := range tests {
		got, err := ParseMap(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseMap(%v) = %+v, %v; want %+v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	if _, ok := Read.Map(false)["mayShare"]; ok {
		t.Error("Map(false) includes mayShare")
	}
	for _, r := range []Rights{{}, Read, Write, All, {Submit: true, Share: true}} {
		if got := fromBits(r.bits()); got != r {
			t.Errorf("bits round trip of %+v = %+v", r, got)
		}
	}
}

// TestAccess checks the rights a principal gets from grants to itself and
// its groups, on mailboxes and on the whole account.
func TestAccess(t *testing.T) {
	st := openStore(t)
	owner, alice, bob, carol := store.PrincipalID("own"), store.PrincipalID("ali"), store.PrincipalID("bob"), store.PrincipalID("car")
	team, outer := store.PrincipalID("team"), store.PrincipalID("outer")
	acct := store.AccountID(owner)
	update(t, st, func(tx store.Tx) error {
		now := time.Now()
		for _, p := range []*store.Principal{
			{ID: owner, Type: store.Individual, Email: "own@x", Account: acct, Created: now},
			{ID: alice, Type: store.Individual, Email: "ali@x", Account: "ali", Created: now},
			{ID: bob, Type: store.Individual, Email: "bob@x", Account: "bob", Created: now},
			{ID: carol, Type: store.Individual, Email: "car@x", Account: "car", Created: now},
			{ID: team, Type: store.Group, Email: "team@x", Members: []store.PrincipalID{bob}, Created: now},
			{ID: outer, Type: store.Group, Email: "outer@x", Members: []store.PrincipalID{team, carol}, Created: now},
		} {
			if err := tx.Principals().Create(p); err != nil {
				return err
			}
		}
		// alice: write on the whole account, but nothing on "private".
		if err := Put(tx, acct, WholeAccount, alice, Write); err != nil {
			return err
		}
		if err := Put(tx, acct, "private", alice, Rights{}); err != nil {
			return err
		}
		// team (bob): read on inbox; outer (bob through team, carol): seen on inbox.
		if err := Put(tx, acct, "inbox", team, Read); err != nil {
			return err
		}
		return Put(tx, acct, "inbox", outer, Rights{SetSeen: true})
	})
	d := NewDirectory()
	tests := []struct {
		who     store.PrincipalID
		mailbox string
		want    Rights
	}{
		{owner, "inbox", All},
		{owner, "anything", All},
		{alice, "inbox", Write},
		{alice, "new-folder", Write},
		{alice, "private", Rights{}},
		{bob, "inbox", Rights{ReadItems: true, SetSeen: true}},
		{bob, "private", Rights{}},
		{carol, "inbox", Rights{SetSeen: true}},
		{"nobody", "inbox", Rights{}},
	}
	view(t, st, func(tx store.Tx) error {
		for _, tc := range tests {
			a, err := d.Access(tx, tc.who, acct)
			if err != nil {
				return err
			}
			if got := a.Rights(tc.mailbox); got != tc.want {
				t.Errorf("%s on %s: %+v, want %+v", tc.who, tc.mailbox, got, tc.want)
			}
			if got := a.Reaches(); got != (tc.who != "nobody") {
				t.Errorf("%s reaches = %v", tc.who, got)
			}
		}
		got, err := d.Reachable(tx, bob)
		if err != nil {
			return err
		}
		if !slices.Equal(got, []store.AccountID{acct}) {
			t.Errorf("bob reaches %v", got)
		}
		aud, err := d.Audience(tx, acct)
		if err != nil {
			return err
		}
		slices.Sort(aud)
		if want := []store.PrincipalID{alice, bob, carol, owner}; !slices.Equal(aud, want) {
			t.Errorf("audience %v, want %v", aud, want)
		}
		sw, err := ShareWith(tx, acct, "private")
		if err != nil {
			return err
		}
		if len(sw) != 0 {
			t.Errorf("shareWith of private = %v, want none (alice's empty override)", sw)
		}
		sw, err = ShareWith(tx, acct, "inbox")
		if err != nil {
			return err
		}
		if len(sw) != 3 || sw[alice] != Write || sw[team] != Read {
			t.Errorf("shareWith of inbox = %v", sw)
		}
		return nil
	})
	// Membership changes apply at once: carol leaves outer.
	update(t, st, func(tx store.Tx) error {
		g, err := tx.Principals().Get(outer)
		if err != nil {
			return err
		}
		g.Members = []store.PrincipalID{team}
		return tx.Principals().Update(g)
	})
	view(t, st, func(tx store.Tx) error {
		a, err := d.Access(tx, carol, acct)
		if err != nil {
			return err
		}
		if a.Reaches() {
			t.Error("carol still reaches the account after leaving the group")
		}
		return nil
	})
	// Revoking alice's whole-account grant leaves the explicit nothing on
	// private to be forgotten, and alice reaches nothing.
	update(t, st, func(tx store.Tx) error {
		ch, err := SetShareWith(tx, acct, "inbox", map[store.PrincipalID]Rights{team: ReadAdvanced})
		if err != nil {
			return err
		}
		if len(ch) != 3 {
			t.Errorf("changes %+v, want alice, team and outer", ch)
		}
		return nil
	})
	view(t, st, func(tx store.Tx) error {
		a, _ := d.Access(tx, alice, acct)
		if a.Rights("inbox").Any() || !a.Rights("drafts").Any() {
			t.Errorf("alice after inbox revoke: inbox %+v drafts %+v", a.Rights("inbox"), a.Rights("drafts"))
		}
		b, _ := d.Access(tx, bob, acct)
		if b.Rights("inbox") != ReadAdvanced {
			t.Errorf("bob inbox %+v", b.Rights("inbox"))
		}
		return nil
	})
}
