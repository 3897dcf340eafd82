package admin

import (
	"context"
	"errors"

	"github.com/jmapd/jmapd/internal/acl"
	"github.com/jmapd/jmapd/store"
)

// Sharer carries out a share command: it sets the rights of grantee on the
// mailbox named mailbox of acct ("" for the whole account). The mail model
// (package methods) provides it; admin only checks the command line.
type Sharer func(ctx context.Context, st store.Store, acct store.AccountID, grantee store.PrincipalID, mailbox string, r acl.Rights) error

type sharerKey struct{}

// WithSharer returns ctx carrying the Sharer that share commands run with.
func WithSharer(ctx context.Context, s Sharer) context.Context {
	return context.WithValue(ctx, sharerKey{}, s)
}

// Usage marks err as a mistake of the operator (a mailbox that does not
// exist), shown to them as it is, rather than a failure.
func Usage(err error) error { return &usageError{err.Error()} }

func share(ctx context.Context, st store.Store, c *call) error {
	owner, err := parseEmail(c.args[0])
	if err != nil {
		return err
	}
	with, ok := c.values["with"]
	if !ok {
		return usagef("--with PRINCIPAL_EMAIL is required")
	}
	granteeEmail, err := parseEmail(with)
	if err != nil {
		return err
	}
	level, ok := c.values["rights"]
	if !ok {
		return usagef("--rights LEVEL is required")
	}
	rights, err := acl.ParseLevel(level)
	if err != nil {
		return usagef("unknown level %q: use read, readAdvanced, write, manage or none", level)
	}
	var acct store.AccountID
	var grantee store.PrincipalID
	err = st.View(ctx, func(tx store.Tx) error {
		pt := tx.Principals()
		o, err := pt.ByEmail(owner)
		if errors.Is(err, store.ErrNotFound) {
			return usagef("no account %s", owner)
		}
		if err != nil {
			return err
		}
		if o.Account == "" {
			return usagef("%s has no account to share", owner)
		}
		g, err := pt.ByEmail(granteeEmail)
		if errors.Is(err, store.ErrNotFound) {
			return usagef("no user or group %s", granteeEmail)
		}
		if err != nil {
			return err
		}
		if g.Shared || (g.Type != store.Individual && g.Type != store.Group) {
			return usagef("%s is a shared mailbox; share with users and groups", granteeEmail)
		}
		if g.ID == o.ID {
			return usagef("%s owns the account; owners have every right", granteeEmail)
		}
		acct, grantee = o.Account, g.ID
		return nil
	})
	if err != nil {
		return err
	}
	mailbox := c.values["mailbox"]
	if _, given := c.values["mailbox"]; given && mailbox == "" {
		return usagef("--mailbox needs a name")
	}
	sharer, _ := ctx.Value(sharerKey{}).(Sharer)
	if sharer == nil {
		return errors.New("sharing is not available in this build")
	}
	return sharer(ctx, st, acct, grantee, mailbox, rights)
}
