package methods

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
	"github.com/jmapd/jmapd/store/badger"
)

// Accounts decides which accounts a caller reaches and what each supports.
// Until sharing lands, a user reaches exactly their own personal account.
type Accounts struct {
	st store.Store
	// caps maps a capability URN to the account-level object every account
	// gets for it.
	caps map[string]func(store.AccountID) any
	// provisioners create what a new account starts with (the default
	// mailboxes); they run once per account, on its first use.
	provisioners []func(tx store.Tx, acct store.AccountID) error
	provisioned  sync.Map // store.AccountID → true
}

// AddProvisioner adds a step run once for every account, in the same
// transaction as the other steps.
func (a *Accounts) AddProvisioner(f func(tx store.Tx, acct store.AccountID) error) {
	a.provisioners = append(a.provisioners, f)
}

func provisionedKey(acct store.AccountID) string { return "provisioned\x00" + string(acct) }

// provision runs the provisioners of acct unless they ran before.
func (a *Accounts) provision(ctx context.Context, acct store.AccountID) error {
	if len(a.provisioners) == 0 {
		return nil
	}
	if _, ok := a.provisioned.Load(acct); ok {
		return nil
	}
	var done bool
	if err := a.st.View(ctx, func(tx store.Tx) error {
		v, err := tx.GetMeta(provisionedKey(acct))
		done = v != nil
		return err
	}); err != nil {
		return err
	}
	if !done {
		_, err := a.st.Update(ctx, func(tx store.Tx) error {
			if v, err := tx.GetMeta(provisionedKey(acct)); err != nil || v != nil {
				return err
			}
			for _, f := range a.provisioners {
				if err := f(tx, acct); err != nil {
					return err
				}
			}
			return tx.PutMeta(provisionedKey(acct), []byte("1"))
		})
		if err != nil {
			return fmt.Errorf("provision account %s: %w", acct, err)
		}
	}
	a.provisioned.Store(acct, true)
	return nil
}

var _ jmap.Accounts = (*Accounts)(nil)

// NewAccounts returns the account model over st.
func NewAccounts(st store.Store) *Accounts {
	return &Accounts{st: st, caps: map[string]func(store.AccountID) any{}}
}

// AddCapability makes every account support urn with the account-level
// object value returns.
func (a *Accounts) AddCapability(urn string, value func(store.AccountID) any) { a.caps[urn] = value }

func (a *Accounts) account(p *store.Principal) *jmap.Account {
	acct := &jmap.Account{ID: p.Account, Name: p.Email, IsPersonal: true, Capabilities: map[string]any{}}
	for urn, f := range a.caps {
		acct.Capabilities[urn] = f(p.Account)
	}
	return acct
}

// Session lists the caller's own account as primary for every capability.
func (a *Accounts) Session(ctx context.Context, c *jmap.Caller) ([]*jmap.Account, map[string]store.AccountID, string, error) {
	var p *store.Principal
	var st store.State
	err := a.st.View(ctx, func(tx store.Tx) error {
		var err error
		if p, err = tx.Principals().Get(c.Principal); err != nil {
			return err
		}
		st, err = tx.State(store.SystemAccount, badger.PrincipalType)
		return err
	})
	if err != nil {
		return nil, nil, "", fmt.Errorf("session of %s: %w", c.Principal, err)
	}
	primary := map[string]store.AccountID{}
	var accts []*jmap.Account
	if p.Account != "" {
		if err := a.provision(ctx, p.Account); err != nil {
			return nil, nil, "", err
		}
		acct := a.account(p)
		accts = append(accts, acct)
		for urn := range acct.Capabilities {
			primary[urn] = p.Account
		}
	}
	return accts, primary, sessionState(c.Principal, st), nil
}

// sessionState derives the session state: the session changes when
// principals change, so the state follows the principal type's state,
// salted per user so that states do not leak counts.
func sessionState(who store.PrincipalID, st store.State) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d", who, st))
	return hex.EncodeToString(sum[:6])
}

// SessionState returns the caller's session state without building the
// session.
func (a *Accounts) SessionState(ctx context.Context, c *jmap.Caller) (string, error) {
	var st store.State
	err := a.st.View(ctx, func(tx store.Tx) error {
		var err error
		st, err = tx.State(store.SystemAccount, badger.PrincipalType)
		return err
	})
	if err != nil {
		return "", err
	}
	return sessionState(c.Principal, st), nil
}

// Lookup returns the account if the caller may reach it.
func (a *Accounts) Lookup(ctx context.Context, c *jmap.Caller, id store.AccountID) (*jmap.Account, error) {
	var p *store.Principal
	err := a.st.View(ctx, func(tx store.Tx) error {
		var err error
		p, err = tx.Principals().Get(c.Principal)
		return err
	})
	if errors.Is(err, store.ErrNotFound) || (err == nil && p.Account != id) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if err := a.provision(ctx, id); err != nil {
		return nil, err
	}
	return a.account(p), nil
}

// Principals returns who may see changes in acct: its owner, for now.
func (a *Accounts) Principals(ctx context.Context, acct store.AccountID) ([]store.PrincipalID, error) {
	var out []store.PrincipalID
	err := a.st.View(ctx, func(tx store.Tx) error {
		// The owner's principal id is the account id (internal/admin).
		p, err := tx.Principals().Get(store.PrincipalID(acct))
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if p.Account == acct {
			out = append(out, p.ID)
		}
		return nil
	})
	return out, err
}

// Accounts returns the accounts who sees: their own, for now.
func (a *Accounts) Accounts(ctx context.Context, who store.PrincipalID) ([]store.AccountID, error) {
	var out []store.AccountID
	err := a.st.View(ctx, func(tx store.Tx) error {
		p, err := tx.Principals().Get(who)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if p.Account != "" {
			out = append(out, p.Account)
		}
		return nil
	})
	return out, err
}
