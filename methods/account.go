package methods

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/jmapd/jmapd/internal/acl"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// Accounts decides which accounts a caller reaches and what each supports:
// their own, and those shared with them (internal/acl).
type Accounts struct {
	st  store.Store
	dir *acl.Directory
	// caps maps a capability URN to the account-level object an account
	// gets for it, with false for an account that does not have it.
	caps map[string]func(AccountInfo) (any, bool)
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
	return &Accounts{st: st, dir: acl.NewDirectory(), caps: map[string]func(AccountInfo) (any, bool){}}
}

// offlineAccounts returns an account model for work done outside a request
// (the share command, the notices a share delivers, seeding). Its
// provisioners are those the served methods register (registerMailbox,
// registerIdentity, registerVacation): an account first used by such work
// is marked provisioned, so it must get its Identity and its
// VacationResponse (RFC 8621 §6, §8) then, not only its mailboxes.
func offlineAccounts(st store.Store) *Accounts {
	a := NewAccounts(st)
	a.AddProvisioner(provisionMailboxes)
	a.AddProvisioner(provisionIdentity)
	a.AddProvisioner(provisionVacation)
	return a
}

// AccountInfo is what decides an account's capabilities for one caller.
type AccountInfo struct {
	ID store.AccountID
	// Owner is set when the caller owns the account.
	Owner bool
	// Rights is the union of the caller's rights over the account's
	// mailboxes (acl.All for the owner).
	Rights acl.Rights
	// Caller is the principal the account is described for.
	Caller store.PrincipalID
}

// AddCapability makes every account support urn for its owner, with the
// account-level object value returns.
func (a *Accounts) AddCapability(urn string, value func(store.AccountID) any) {
	a.caps[urn] = func(i AccountInfo) (any, bool) {
		if !i.Owner {
			return nil, false
		}
		return value(i.ID), true
	}
}

// AddCapabilityFor makes accounts support urn where value says so, shared
// ones included.
func (a *Accounts) AddCapabilityFor(urn string, value func(AccountInfo) (any, bool)) {
	a.caps[urn] = value
}

// Directory returns the membership cache the rights are computed with.
func (a *Accounts) Directory() *acl.Directory { return a.dir }

// account builds the Account object of acct as who sees it.
func (a *Accounts) account(tx store.Tx, who store.PrincipalID, acct store.AccountID, access *acl.Access) (*jmap.Account, error) {
	owner, err := tx.Principals().Get(store.PrincipalID(acct))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	name := string(acct)
	if owner != nil {
		name = owner.Email
	}
	info := AccountInfo{ID: acct, Owner: access.Owner, Rights: acl.All, Caller: who}
	if !access.Owner {
		ids, err := mailboxIDs(tx, acct)
		if err != nil {
			return nil, err
		}
		info.Rights = access.Upper(ids)
	}
	out := &jmap.Account{ID: acct, Name: name, IsPersonal: access.Owner && owner != nil && !owner.Shared,
		// RFC 8620 §2: read-only when the caller can change nothing.
		IsReadOnly: !info.Rights.Modifies(), Capabilities: map[string]any{}}
	for urn, f := range a.caps {
		if v, ok := f(info); ok {
			out.Capabilities[urn] = v
		}
	}
	return out, nil
}

// mailboxIDs lists the ids of the mailboxes of acct.
func mailboxIDs(tx store.Tx, acct store.AccountID) ([]string, error) {
	var ids []string
	for o, err := range tx.Scan(acct, "Mailbox") {
		if err != nil {
			return nil, err
		}
		ids = append(ids, o.ID)
	}
	return ids, nil
}

// listed returns the accounts other than their own that who's session
// lists: those reachable in which they subscribed to a mailbox they can
// see (RFC 9670 §1.4).
func (a *Accounts) listed(tx store.Tx, who store.PrincipalID) ([]store.AccountID, error) {
	reach, err := a.dir.Reachable(tx, who)
	if err != nil {
		return nil, err
	}
	var out []store.AccountID
	for _, acct := range reach {
		ok, err := a.subscribedIn(tx, who, acct)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, acct)
		}
	}
	return out, nil
}

// subscribedIn reports whether who subscribed to a mailbox of acct that
// they can see.
func (a *Accounts) subscribedIn(tx store.Tx, who store.PrincipalID, acct store.AccountID) (bool, error) {
	var access *acl.Access
	prefix := "sub\x00" + string(acct) + "\x00" + string(who) + "\x00"
	for m, err := range tx.ScanMeta(prefix) {
		if err != nil {
			return false, err
		}
		if string(m.Value) != "1" {
			continue
		}
		if access == nil {
			if access, err = a.dir.Access(tx, who, acct); err != nil {
				return false, err
			}
		}
		if access.Visible(m.Key[len(prefix):]) {
			return true, nil
		}
	}
	return false, nil
}

// Session lists the caller's own account, primary for every capability,
// and the shared accounts they subscribed to something in.
func (a *Accounts) Session(ctx context.Context, c *jmap.Caller) ([]*jmap.Account, map[string]store.AccountID, string, error) {
	p, err := a.principal(ctx, c.Principal)
	if err != nil {
		return nil, nil, "", fmt.Errorf("session of %s: %w", c.Principal, err)
	}
	if p.Account != "" {
		if err := a.provision(ctx, p.Account); err != nil {
			return nil, nil, "", err
		}
	}
	var shared []store.AccountID
	if err := a.st.View(ctx, func(tx store.Tx) error {
		shared, err = a.listed(tx, c.Principal)
		return err
	}); err != nil {
		return nil, nil, "", err
	}
	for _, acct := range shared {
		if err := a.provision(ctx, acct); err != nil {
			return nil, nil, "", err
		}
	}
	primary := map[string]store.AccountID{}
	var accts []*jmap.Account
	var state string
	err = a.st.View(ctx, func(tx store.Tx) error {
		if p.Account != "" {
			acct, err := a.account(tx, c.Principal, p.Account, &acl.Access{Account: p.Account, Owner: true})
			if err != nil {
				return err
			}
			accts = append(accts, acct)
			for urn := range acct.Capabilities {
				// RFC 9670 §1.5.2: the owner URN is an account key only.
				if urn != CapPrincipalsOwner {
					primary[urn] = p.Account
				}
			}
		}
		for _, id := range shared {
			access, err := a.dir.Access(tx, c.Principal, id)
			if err != nil {
				return err
			}
			acct, err := a.account(tx, c.Principal, id, access)
			if err != nil {
				return err
			}
			accts = append(accts, acct)
		}
		state, err = a.sessionState(tx, c.Principal)
		return err
	})
	if err != nil {
		return nil, nil, "", err
	}
	return accts, primary, state, nil
}

func (a *Accounts) principal(ctx context.Context, id store.PrincipalID) (*store.Principal, error) {
	var p *store.Principal
	err := a.st.View(ctx, func(tx store.Tx) error {
		var err error
		p, err = tx.Principals().Get(id)
		return err
	})
	return p, err
}

// sessionState derives the session state from the principals' state and
// the grants' epoch, which together decide what a session lists, salted
// per user so that states do not leak counts.
func (a *Accounts) sessionState(tx store.Tx, who store.PrincipalID) (string, error) {
	st, err := tx.State(store.SystemAccount, store.PrincipalRecords)
	if err != nil {
		return "", err
	}
	epoch, err := acl.Epoch(tx)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d", who, st, epoch))
	return hex.EncodeToString(sum[:6]), nil
}

// SessionState returns the caller's session state without building the
// session.
func (a *Accounts) SessionState(ctx context.Context, c *jmap.Caller) (string, error) {
	var state string
	err := a.st.View(ctx, func(tx store.Tx) error {
		var err error
		state, err = a.sessionState(tx, c.Principal)
		return err
	})
	return state, err
}

// Lookup returns the account if the caller may reach it, listed in their
// session or not (RFC 9670 §1.4: a client must be able to subscribe).
func (a *Accounts) Lookup(ctx context.Context, c *jmap.Caller, id store.AccountID) (*jmap.Account, error) {
	var acct *jmap.Account
	provisioned := false
	if _, ok := a.provisioned.Load(id); ok {
		provisioned = true
	}
	for {
		err := a.st.View(ctx, func(tx store.Tx) error {
			access, err := a.dir.Access(tx, c.Principal, id)
			if err != nil {
				return err
			}
			if access.Owner {
				// The caller must still exist.
				if _, err := tx.Principals().Get(c.Principal); err != nil {
					return err
				}
			} else if !access.Reaches() {
				return store.ErrNotFound
			}
			acct, err = a.account(tx, c.Principal, id, access)
			return err
		})
		if err != nil || provisioned {
			return acct, err
		}
		// A first use creates the account's default mailboxes, which the
		// account object (isReadOnly) depends on.
		if err := a.provision(ctx, id); err != nil {
			return nil, err
		}
		provisioned = true
	}
}

// Principals returns who gets push for acct: its owner and those who reach
// it and subscribed to something in it (RFC 9670 §1.4).
func (a *Accounts) Principals(ctx context.Context, acct store.AccountID) ([]store.PrincipalID, error) {
	var out []store.PrincipalID
	err := a.st.View(ctx, func(tx store.Tx) error {
		aud, err := a.dir.Audience(tx, acct)
		if err != nil {
			return err
		}
		for _, p := range aud {
			if store.AccountID(p) == acct {
				out = append(out, p)
				continue
			}
			ok, err := a.subscribedIn(tx, p, acct)
			if err != nil {
				return err
			}
			if ok {
				out = append(out, p)
			}
		}
		return nil
	})
	return out, err
}

// Accounts returns the accounts whose changes who is told about: their
// own and the shared ones their session lists.
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
		shared, err := a.listed(tx, who)
		out = append(out, shared...)
		return err
	})
	return out, err
}
