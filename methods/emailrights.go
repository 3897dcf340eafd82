package methods

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	stdmaps "maps"

	"github.com/jmapd/jmapd/internal/acl"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// viewEmail hides an email the caller may not read and the mailboxes of it
// they may not see (RFC 8621 §9.5), for the generic /set.
func viewEmail(ctx context.Context, tx store.Tx, acct store.AccountID, obj map[string]any) error {
	a, err := callerAccess(ctx, tx, acct)
	if err != nil || a.Owner {
		return err
	}
	in := idSet(obj["mailboxIds"])
	if !readableIn(a, in) {
		return jmap.ErrHidden
	}
	obj["mailboxIds"] = idMap(visibleMailboxes(a, in))
	return nil
}

// idSet reads a set of ids ({"id": true}) from a decoded record.
func idSet(v any) map[string]bool {
	m, _ := v.(map[string]any)
	out := make(map[string]bool, len(m))
	for k, b := range m {
		if b == true {
			out[k] = true
		}
	}
	return out
}

// idMap turns a set of ids into its JSON form, the inverse of idSet.
func idMap(s map[string]bool) map[string]any {
	out := make(map[string]any, len(s))
	for k := range s {
		out[k] = true
	}
	return out
}

// checkAddRights refuses a new email (import, create, copy) in mailboxes
// the caller may not add to; mailboxes they cannot see do not exist.
func checkAddRights(a *acl.Access, mailboxIDs any, resolve func(string) (string, bool)) *jmap.SetError {
	if a.Owner {
		return nil
	}
	m, _ := mailboxIDs.(map[string]any)
	for raw := range m {
		id, ok := resolve(raw)
		if !ok {
			continue // checkMailboxIDs answers it
		}
		if !a.Visible(id) {
			return jmap.InvalidProperties(fmt.Sprintf("no mailbox %q", raw), "mailboxIds")
		}
		if !a.Rights(id).AddItems {
			return forbidden(fmt.Sprintf("you may not add emails to mailbox %s", raw))
		}
	}
	return nil
}

// checkEmailUpdate applies the MailboxRights to an Email/set update by a
// caller who does not own the account (RFC 8621 §2): adding to a mailbox
// needs mayAddItems there, removing mayRemoveItems; changing $seen needs
// maySetSeen and any other keyword maySetKeywords, on every mailbox the
// email is in. The mailboxes the caller cannot see stay as they are.
// stored is the email as stored; obj holds the caller's new mailboxIds
// and keywords and gets the full new mailboxIds.
func checkEmailUpdate(a *acl.Access, stored *emailRecord, obj map[string]any, kw, mboxes map[string]bool) (map[string]bool, *jmap.SetError) {
	if a.Owner {
		return mboxes, nil
	}
	before := visibleMailboxes(a, stored.MailboxIDs)
	for m := range mboxes {
		if !a.Visible(m) {
			return nil, jmap.InvalidProperties(fmt.Sprintf("no mailbox %q", m), "mailboxIds")
		}
		if !before[m] && !a.Rights(m).AddItems {
			return nil, forbidden(fmt.Sprintf("you may not add emails to mailbox %s", m))
		}
	}
	for m := range before {
		if !mboxes[m] && !a.Rights(m).RemoveItems {
			return nil, forbidden(fmt.Sprintf("you may not remove emails from mailbox %s", m))
		}
	}
	seenChanged := kw["$seen"] != stored.Keywords["$seen"]
	otherChanged := false
	for k := range kw {
		if k != "$seen" && !stored.Keywords[k] {
			otherChanged = true
		}
	}
	for k := range stored.Keywords {
		if k != "$seen" && !kw[k] {
			otherChanged = true
		}
	}
	for m := range stored.MailboxIDs {
		r := a.Rights(m)
		if seenChanged && !r.SetSeen {
			return nil, forbidden("you may not change $seen on this email")
		}
		if otherChanged && !r.SetKeywords {
			return nil, forbidden("you may not change the keywords of this email")
		}
	}
	all := stdmaps.Clone(mboxes)
	for m := range stored.MailboxIDs {
		if !a.Visible(m) {
			all[m] = true
		}
	}
	return all, nil
}

// checkEmailDestroy refuses destroying an email unless the caller may
// remove it from every mailbox it is in.
func checkEmailDestroy(a *acl.Access, stored *emailRecord) *jmap.SetError {
	if a.Owner {
		return nil
	}
	for m := range stored.MailboxIDs {
		if !a.Rights(m).RemoveItems {
			return forbidden("you may not destroy this email")
		}
	}
	return nil
}

// noteLeft adds the mailboxes an email is taken out of to its Left set.
func noteLeft(e *emailRecord, before, after map[string]bool) {
	for m := range before {
		if !after[m] {
			if e.Left == nil {
				e.Left = map[string]bool{}
			}
			e.Left[m] = true
		}
	}
}

func tombstoneKey(acct store.AccountID, id string) string {
	return "gone\x00" + string(acct) + "\x00" + id
}

// putTombstone remembers where a destroyed email was, so that /changes
// reports its destruction to those who could read it there and to nobody
// else.
func putTombstone(tx store.Tx, acct store.AccountID, e *emailRecord) error {
	where := stdmaps.Clone(e.MailboxIDs)
	if where == nil {
		where = map[string]bool{}
	}
	stdmaps.Copy(where, e.Left)
	b, err := json.Marshal(where)
	if err != nil {
		return err
	}
	return tx.PutMeta(tombstoneKey(acct, e.ID), b)
}

// filterEmailChanges keeps from an Email/changes answer only what the
// caller may read: an email they cannot read now is reported destroyed
// when they could read it in a mailbox it left, and not at all otherwise.
func filterEmailChanges(ctx context.Context, tx store.Tx, acct store.AccountID, set *jmap.ChangeSet) error {
	a, err := callerAccess(ctx, tx, acct)
	if err != nil || a.Owner {
		return err
	}
	if err := rightsChangedSince(tx, a, acct, 0, set.Since); err != nil {
		return err
	}
	var created, updated, destroyed []string
	for _, id := range set.Created {
		e, err := loadEmail(tx, acct, id)
		if err != nil {
			continue
		}
		if readableIn(a, e.MailboxIDs) {
			created = append(created, id)
		}
	}
	for _, id := range set.Updated {
		e, err := loadEmail(tx, acct, id)
		if err != nil {
			continue
		}
		switch {
		case readableIn(a, e.MailboxIDs):
			updated = append(updated, id)
		case readableIn(a, e.Left):
			destroyed = append(destroyed, id)
		}
	}
	for _, id := range set.Destroyed {
		b, err := tx.GetMeta(tombstoneKey(acct, id))
		if err != nil {
			return err
		}
		var where map[string]bool
		if b != nil && json.Unmarshal(b, &where) == nil && readableIn(a, where) {
			destroyed = append(destroyed, id)
		}
	}
	set.Created, set.Updated, set.Destroyed = orEmpty(created), orEmpty(updated), orEmpty(destroyed)
	return nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// threadReadable reports whether the caller may read some email of a
// thread, and returns the ids of those they may read.
func threadReadable(tx store.Tx, a *acl.Access, acct store.AccountID, t *threadRecord) ([]string, error) {
	if a.Owner {
		return t.EmailIDs, nil
	}
	var ids []string
	for _, id := range t.EmailIDs {
		e, err := loadEmail(tx, acct, id)
		if err != nil {
			continue
		}
		if readableIn(a, e.MailboxIDs) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// filterThreadChanges keeps from a Thread/changes answer the threads the
// caller may read an email of; destroyed threads are reported only to
// those who see the whole account.
func filterThreadChanges(ctx context.Context, tx store.Tx, acct store.AccountID, set *jmap.ChangeSet) error {
	a, err := callerAccess(ctx, tx, acct)
	if err != nil || a.Owner {
		return err
	}
	if err := rightsChangedSince(tx, a, acct, 1, set.Since); err != nil {
		return err
	}
	keep := func(ids []string) ([]string, error) {
		out := []string{}
		for _, id := range ids {
			t, err := loadThread(tx, acct, id)
			if err != nil {
				continue
			}
			r, err := threadReadable(tx, a, acct, t)
			if err != nil {
				return nil, err
			}
			if len(r) > 0 {
				out = append(out, id)
			}
		}
		return out, nil
	}
	if set.Created, err = keep(set.Created); err != nil {
		return err
	}
	if set.Updated, err = keep(set.Updated); err != nil {
		return err
	}
	if !a.SeesAll() {
		set.Destroyed = []string{}
	}
	return nil
}

func rightsChangeKey(grantee store.PrincipalID, acct store.AccountID) string {
	return "rchg\x00" + string(grantee) + "\x00" + string(acct)
}

// noteRightsChange records that the rights of grantees in acct changed, at
// the current Email and Thread states, and moves those states on (touching
// one email and one thread), so that /changes from an earlier state
// answers cannotCalculateChanges to them (DESIGN.md "Durability and
// state") while a client that synchronises afresh gets a later state.
func noteRightsChange(tx store.Tx, acct store.AccountID, grantees []store.PrincipalID) error {
	if len(grantees) == 0 {
		return nil
	}
	var b [16]byte
	for i, typ := range []string{"Email", "Thread"} {
		st, err := tx.State(acct, typ)
		if err != nil {
			return err
		}
		binary.BigEndian.PutUint64(b[8*i:], uint64(st))
	}
	for _, g := range grantees {
		if err := tx.PutMeta(rightsChangeKey(g, acct), b[:]); err != nil {
			return err
		}
	}
	// The owner's Principal changes for the grantees (its accounts), and
	// writing it pushes a Principal StateChange (RFC 9670 §2).
	if owner, err := tx.Principals().Get(store.PrincipalID(acct)); err == nil {
		if err := tx.Principals().Update(owner); err != nil {
			return err
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return acl.Touch(tx, acct, "Email", "Thread")
}

// rightsChangedSince answers cannotCalculateChanges when the caller's
// rights in acct changed after the state a /changes starts from.
func rightsChangedSince(tx store.Tx, a *acl.Access, acct store.AccountID, typ int, since store.State) error {
	moved, err := acl.MembershipChangedSince(tx, a.Identities, acct, acl.EmailState+typ, since)
	if err != nil {
		return err
	}
	if moved {
		return jmap.NewMethodError(jmap.ErrCannotCalculateChanges, "your access to this account changed")
	}
	for _, p := range a.Identities {
		b, err := tx.GetMeta(rightsChangeKey(p, acct))
		if err != nil {
			return err
		}
		if len(b) == 16 && uint64(since) <= binary.BigEndian.Uint64(b[8*typ:]) {
			return jmap.NewMethodError(jmap.ErrCannotCalculateChanges, "your access to this account changed")
		}
	}
	return nil
}
