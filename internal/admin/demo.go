package admin

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jmapd/jmapd/internal/auth"
	"github.com/jmapd/jmapd/store"
)

// Demo addresses.
const (
	DemoAlice   = "alice@example.test"
	DemoBob     = "bob@example.test"
	DemoSupport = "support@example.test"
	DemoTeam    = "team@example.test"
)

// errNotEmpty ends Demo's transaction without writing when the store
// already has principals.
var errNotEmpty = errors.New("admin: store has principals")

// Demo provisions demo principals on a store that has none: the users
// alice@example.test and bob@example.test with generated passwords, the
// shared mailbox support@example.test (no password: no one logs in as it)
// and the group team@example.test with both users as members. It writes
// the logins to out, one "EMAIL<TAB>PASSWORD" line per user, and reports
// true. When any principal exists it writes nothing, changes nothing and
// reports false.
func Demo(ctx context.Context, st store.Store, out io.Writer) (created bool, err error) {
	empty := true
	err = st.View(ctx, func(tx store.Tx) error {
		empty = true
		for _, err := range tx.Principals().All() {
			if err != nil {
				return err
			}
			empty = false
			break
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("demo: %w", err)
	}
	if !empty {
		return false, nil
	}

	type login struct{ email, name, password, hash string }
	users := []*login{{email: DemoAlice, name: "Alice"}, {email: DemoBob, name: "Bob"}}
	for _, u := range users {
		u.password = auth.GeneratePassword()
		if u.hash, err = auth.HashPassword(u.password); err != nil {
			return false, fmt.Errorf("demo: hash password: %w", err)
		}
	}
	_, err = st.Update(ctx, func(tx store.Tx) error {
		pt := tx.Principals()
		for _, err := range pt.All() {
			if err != nil {
				return err
			}
			return errNotEmpty // provisioned meanwhile
		}
		team := &store.Principal{Type: store.Group, Email: DemoTeam, Name: "Team"}
		for _, u := range users {
			p := &store.Principal{Type: store.Individual, Email: u.email, Name: u.name}
			if err := newPrincipal(tx, p); err != nil {
				return err
			}
			if err := pt.SetPasswordHash(p.ID, u.hash); err != nil {
				return err
			}
			team.Members = append(team.Members, p.ID)
		}
		support := &store.Principal{Type: store.Individual, Shared: true, Email: DemoSupport, Name: "Support"}
		if err := newPrincipal(tx, support); err != nil {
			return err
		}
		return newPrincipal(tx, team)
	})
	if errors.Is(err, errNotEmpty) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("demo: %w", err)
	}
	for _, u := range users {
		if _, err := fmt.Fprintf(out, "%s\t%s\n", u.email, u.password); err != nil {
			return true, fmt.Errorf("demo: write logins: %w", err)
		}
	}
	return true, nil
}
