package methods

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jmapd/jmapd/internal/acl"
	"github.com/jmapd/jmapd/store"
)

// ErrNoMailbox is returned by Share when the account has no mailbox of the
// given name.
var ErrNoMailbox = errors.New("no such mailbox")

// ErrAmbiguousMailbox is returned by Share when several mailboxes answer to
// the given name.
var ErrAmbiguousMailbox = errors.New("several mailboxes have this name")

// Share sets the rights of grantee in the account acct, as an operator
// does with "jmapd share": on the mailbox named mailbox (a name, a path
// such as "Projects/2026", or a role such as "inbox"), or on the whole
// account, present and future mailboxes, when mailbox is "". No rights
// revoke. Those whose rights change get a ShareNotification, and a notice
// in their Inbox when they gain something.
func Share(ctx context.Context, st store.Store, acct store.AccountID, grantee store.PrincipalID, mailbox string, r acl.Rights) error {
	if err := offlineAccounts(st).provision(ctx, acct); err != nil {
		return err
	}
	var notices []shareNotice
	_, err := st.Update(ctx, func(tx store.Tx) error {
		boxes, err := mailboxNames(tx, acct)
		if err != nil {
			return err
		}
		var changes []acl.Change
		var touched []string
		name := ""
		if mailbox == "" {
			old, _, err := acl.Stored(tx, acct, acl.WholeAccount, grantee)
			if err != nil {
				return err
			}
			// The level applies to every mailbox: earlier grants on single
			// mailboxes go.
			if err := acl.Put(tx, acct, acl.WholeAccount, grantee, acl.Rights{}); err != nil {
				return err
			}
			for _, b := range boxes {
				if _, had, err := acl.Stored(tx, acct, b.id, grantee); err != nil {
					return err
				} else if had {
					if err := acl.Put(tx, acct, b.id, grantee, acl.Rights{}); err != nil {
						return err
					}
				}
				touched = append(touched, b.id)
			}
			if err := acl.Put(tx, acct, acl.WholeAccount, grantee, r); err != nil {
				return err
			}
			if old != r {
				changes = append(changes, acl.Change{Account: acct, Mailbox: acl.WholeAccount, Grantee: grantee, Old: old, New: r})
			}
		} else {
			b, err := findMailbox(boxes, mailbox)
			if err != nil {
				return err
			}
			cur, err := acl.ShareWith(tx, acct, b.id)
			if err != nil {
				return err
			}
			if err := acl.Put(tx, acct, b.id, grantee, r); err != nil {
				return err
			}
			touched, name = []string{b.id}, b.name
			if cur[grantee] != r {
				changes = append(changes, acl.Change{Account: acct, Mailbox: b.id, Grantee: grantee, Old: cur[grantee], New: r})
			}
		}
		// The mailboxes' shareWith and myRights changed: their state moves
		// and /changes reports them.
		for _, id := range touched {
			data, err := tx.Get(acct, "Mailbox", id)
			if err != nil {
				return err
			}
			if err := tx.Put(acct, "Mailbox", id, data); err != nil {
				return err
			}
		}
		if err := noteRightsChange(tx, acct, granteesOf(changes)); err != nil {
			return err
		}
		notices, err = shareChanges(ctx, tx, "", name, changes)
		return err
	})
	if err != nil {
		return err
	}
	return deliverNotices(ctx, st, notices)
}

type namedMailbox struct {
	id, name, path, role string
}

// mailboxNames lists the mailboxes of acct with their paths.
func mailboxNames(tx store.Tx, acct store.AccountID) ([]namedMailbox, error) {
	type rec struct {
		Name     string  `json:"name"`
		ParentID *string `json:"parentId"`
		Role     *string `json:"role"`
	}
	all := map[string]rec{}
	var order []string
	for o, err := range tx.Scan(acct, "Mailbox") {
		if err != nil {
			return nil, err
		}
		var m rec
		if err := json.Unmarshal(o.Data, &m); err != nil {
			return nil, err
		}
		all[o.ID] = m
		order = append(order, o.ID)
	}
	out := make([]namedMailbox, 0, len(order))
	for _, id := range order {
		m := all[id]
		path := m.Name
		for p, depth := m.ParentID, 0; p != nil && depth < maxMailboxDepth; depth++ {
			parent := all[*p]
			path = parent.Name + "/" + path
			p = parent.ParentID
		}
		role := ""
		if m.Role != nil {
			role = *m.Role
		}
		out = append(out, namedMailbox{id: id, name: m.Name, path: path, role: role})
	}
	return out, nil
}

// findMailbox picks the mailbox a person means by name: its exact path,
// else its path or name in any case, else its role.
func findMailbox(boxes []namedMailbox, name string) (namedMailbox, error) {
	tests := []func(b namedMailbox) bool{
		func(b namedMailbox) bool { return b.path == name },
		func(b namedMailbox) bool { return strings.EqualFold(b.path, name) },
		func(b namedMailbox) bool { return strings.EqualFold(b.name, name) },
		func(b namedMailbox) bool { return b.role != "" && strings.EqualFold(b.role, name) },
	}
	for _, t := range tests {
		var hits []namedMailbox
		for _, b := range boxes {
			if t(b) {
				hits = append(hits, b)
			}
		}
		switch len(hits) {
		case 0:
			continue
		case 1:
			return hits[0], nil
		default:
			return namedMailbox{}, fmt.Errorf("%w: %q (give its path, such as Parent/Child)", ErrAmbiguousMailbox, name)
		}
	}
	return namedMailbox{}, fmt.Errorf("%w: %q", ErrNoMailbox, name)
}

// granteesOf lists the principals whose grants changed.
func granteesOf(changes []acl.Change) []store.PrincipalID {
	var out []store.PrincipalID
	for _, c := range changes {
		out = append(out, c.Grantee)
	}
	return out
}

// Subscribe subscribes who to every mailbox of acct they can see, as their
// client would with Mailbox/set isSubscribed (for seeding demo data).
func Subscribe(ctx context.Context, st store.Store, acct store.AccountID, who store.PrincipalID) error {
	_, err := st.Update(ctx, func(tx store.Tx) error {
		a, err := acl.NewDirectory().Access(tx, who, acct)
		if err != nil {
			return err
		}
		ids, err := mailboxIDs(tx, acct)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if a.Visible(id) {
				if err := tx.PutMeta(subscriptionKey(acct, who, id), []byte("1")); err != nil {
					return err
				}
			}
		}
		return acl.BumpEpoch(tx)
	})
	return err
}
