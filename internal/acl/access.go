package acl

import (
	"errors"
	"slices"
	"sync"

	"github.com/jmapd/jmapd/store"
)

// Directory answers membership questions from the principals, cached until
// a principal changes.
type Directory struct {
	mu    sync.Mutex
	state store.State
	valid bool
	// groups maps a principal to the groups it belongs to, directly or
	// through nested groups.
	groups map[store.PrincipalID][]store.PrincipalID
	// members maps a group to its individual members, through nested
	// groups.
	members map[store.PrincipalID][]store.PrincipalID
	// archives marks groups whose account (an archive of mail to the
	// group, or a company's mail to any member) their members read.
	archives map[store.PrincipalID]bool
}

// NewDirectory returns an empty directory cache.
func NewDirectory() *Directory { return &Directory{} }

// load refreshes the cache when the principals changed since it was built.
func (d *Directory) load(tx store.Tx) error {
	st, err := tx.State(store.SystemAccount, store.PrincipalRecords)
	if err != nil {
		return err
	}
	if d.valid && d.state == st {
		return nil
	}
	direct := map[store.PrincipalID][]store.PrincipalID{} // group → direct members
	archives := map[store.PrincipalID]bool{}
	isGroup := map[store.PrincipalID]bool{}
	for p, err := range tx.Principals().All() {
		if err != nil {
			return err
		}
		if p.Type == store.Group {
			isGroup[p.ID] = true
			direct[p.ID] = p.Members
			if (p.Archive || p.Company) && p.Account != "" {
				archives[p.ID] = true
			}
		}
	}
	members := map[store.PrincipalID][]store.PrincipalID{}
	groups := map[store.PrincipalID][]store.PrincipalID{}
	for g := range direct {
		seen := map[store.PrincipalID]bool{g: true}
		var walk func(store.PrincipalID)
		walk = func(x store.PrincipalID) {
			for _, m := range direct[x] {
				if seen[m] {
					continue
				}
				seen[m] = true
				groups[m] = append(groups[m], g)
				if isGroup[m] {
					walk(m)
				} else {
					members[g] = append(members[g], m)
				}
			}
		}
		walk(g)
	}
	for _, v := range groups {
		slices.Sort(v)
	}
	d.state, d.valid, d.groups, d.members, d.archives = st, true, groups, members, archives
	return nil
}

// Identities returns who and every group who belongs to: the principals
// whose grants apply to who.
func (d *Directory) Identities(tx store.Tx, who store.PrincipalID) ([]store.PrincipalID, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.load(tx); err != nil {
		return nil, err
	}
	return append([]store.PrincipalID{who}, d.groups[who]...), nil
}

// Members returns the individual members of a group, nested groups
// expanded; for any other principal, the principal itself.
func (d *Directory) Members(tx store.Tx, p store.PrincipalID) ([]store.PrincipalID, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.load(tx); err != nil {
		return nil, err
	}
	if m, ok := d.members[p]; ok {
		return slices.Clone(m), nil
	}
	pr, err := tx.Principals().Get(p)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if pr.Type == store.Group {
		return nil, nil
	}
	return []store.PrincipalID{p}, nil
}

func (d *Directory) isArchiveOf(who store.PrincipalID, acct store.AccountID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	g := store.PrincipalID(acct)
	return d.archives[g] && slices.Contains(d.groups[who], g)
}

// Access is what one principal may do in one account.
type Access struct {
	Account store.AccountID
	// Owner is set for the account's owner, who may do everything.
	Owner bool
	// Identities are the principals whose grants apply: the caller and
	// their groups (nil for the owner).
	Identities []store.PrincipalID
	// base applies to every mailbox (an archive group's members read).
	base Rights
	ids  []identityGrants
}

type identityGrants struct {
	whole    Rights
	mailbox  map[string]Rights
	hasWhole bool
	lost     map[string]bool
}

// Access computes what who may do in acct.
func (d *Directory) Access(tx store.Tx, who store.PrincipalID, acct store.AccountID) (*Access, error) {
	a := &Access{Account: acct}
	// An account's id is its owner's principal id.
	if store.AccountID(who) == acct {
		a.Owner = true
		return a, nil
	}
	ids, err := d.Identities(tx, who)
	if err != nil {
		return nil, err
	}
	a.Identities = ids
	if d.isArchiveOf(who, acct) {
		a.base = Read
	}
	for _, id := range ids {
		g := identityGrants{}
		err := granted(tx, id, acct, func(gr Grant) error {
			if gr.Mailbox == WholeAccount {
				g.whole, g.hasWhole = gr.Rights, true
				return nil
			}
			if g.mailbox == nil {
				g.mailbox = map[string]Rights{}
			}
			g.mailbox[gr.Mailbox] = gr.Rights
			return nil
		})
		if err != nil {
			return nil, err
		}
		prefix := lostPrefix + string(id) + "\x00" + string(acct) + "\x00"
		for m, err := range tx.ScanMeta(prefix) {
			if err != nil {
				return nil, err
			}
			if g.lost == nil {
				g.lost = map[string]bool{}
			}
			g.lost[m.Key[len(prefix):]] = true
		}
		if g.hasWhole || g.mailbox != nil || g.lost != nil {
			a.ids = append(a.ids, g)
		}
	}
	return a, nil
}

// Rights returns the rights on a mailbox.
func (a *Access) Rights(mailbox string) Rights {
	if a.Owner {
		return All
	}
	r := a.base
	for _, g := range a.ids {
		if mr, ok := g.mailbox[mailbox]; ok {
			r = r.Union(mr)
		} else if g.hasWhole {
			r = r.Union(g.whole)
		}
	}
	return r
}

// Visible reports whether the mailbox exists for the principal: any right
// on it (RFC 8621 §9.5: what they may not access does not exist for them).
func (a *Access) Visible(mailbox string) bool { return a.Owner || a.Rights(mailbox).Any() }

// Readable reports whether mail in the mailbox may be read.
func (a *Access) Readable(mailbox string) bool { return a.Owner || a.Rights(mailbox).ReadItems }

// Lost reports whether the principal once had rights on the mailbox (or
// the whole account) that a grant change took away.
func (a *Access) Lost(mailbox string) bool {
	for _, g := range a.ids {
		if g.lost[mailbox] || g.lost[WholeAccount] {
			return true
		}
	}
	return false
}

// SeesAll reports whether the principal's rights cover every mailbox of
// the account, present and future (a whole-account grant or an archive).
func (a *Access) SeesAll() bool {
	if a.Owner || a.base.Any() {
		return true
	}
	for _, g := range a.ids {
		if g.hasWhole && g.whole.Any() {
			return true
		}
	}
	return false
}

// Reaches reports whether the principal may reach the account at all.
func (a *Access) Reaches() bool {
	if a.Owner || a.base.Any() {
		return true
	}
	for _, g := range a.ids {
		if g.whole.Any() {
			return true
		}
		for _, r := range g.mailbox {
			if r.Any() {
				return true
			}
		}
	}
	return false
}

// Upper returns the union of the rights on every mailbox of the account,
// given the account's mailbox ids: what the principal may do somewhere.
func (a *Access) Upper(mailboxes []string) Rights {
	if a.Owner {
		return All
	}
	r := a.base
	for _, m := range mailboxes {
		r = r.Union(a.Rights(m))
	}
	return r
}

// Reachable returns the accounts other than its own in which who holds any
// right, through its own grants, its groups' or a group archive.
func (d *Directory) Reachable(tx store.Tx, who store.PrincipalID) ([]store.AccountID, error) {
	ids, err := d.Identities(tx, who)
	if err != nil {
		return nil, err
	}
	seen := map[store.AccountID]bool{}
	var out []store.AccountID
	add := func(a store.AccountID) {
		if a != store.AccountID(who) && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, id := range ids {
		if id != who && d.isArchiveOf(who, store.AccountID(id)) {
			add(store.AccountID(id))
		}
		err := granted(tx, id, "", func(g Grant) error {
			if g.Rights.Any() {
				add(g.Account)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.Sort(out)
	return out, nil
}

// Audience returns the individuals who may reach acct: its owner and every
// grantee, groups expanded to their members.
func (d *Directory) Audience(tx store.Tx, acct store.AccountID) ([]store.PrincipalID, error) {
	seen := map[store.PrincipalID]bool{}
	var out []store.PrincipalID
	add := func(ps ...store.PrincipalID) {
		for _, p := range ps {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	owner, err := tx.Principals().Get(store.PrincipalID(acct))
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, err
	case owner.Type == store.Group:
		if owner.Archive || owner.Company {
			m, err := d.Members(tx, owner.ID)
			if err != nil {
				return nil, err
			}
			add(m...)
		}
	case !owner.Shared:
		add(owner.ID)
	}
	err = grantees(tx, acct, func(g Grant) error {
		if !g.Rights.Any() {
			return nil
		}
		m, err := d.Members(tx, g.Grantee)
		if err != nil {
			return err
		}
		add(m...)
		return nil
	})
	return out, err
}
