package methods

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/jmapd/jmapd/internal/acl"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// maxShareWith bounds the principals one mailbox is shared with
// (draft-ietf-jmap-mail-sharing §3.5).
const maxShareWith = 100

func forbidden(msg string) *jmap.SetError { return jmap.NewSetError(jmap.SetForbidden, msg) }

// storedParent reads the parentId a mailbox has in the store, which a
// non-owner may see differently (viewMailbox re-roots under hidden parents).
func storedParent(tx store.Tx, acct store.AccountID, id string) (any, error) {
	b, err := tx.Get(acct, "Mailbox", id)
	if err != nil {
		return nil, err
	}
	var m struct {
		ParentID *string `json:"parentId"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if m.ParentID == nil {
		return nil, nil
	}
	return *m.ParentID, nil
}

// checkMailboxRights refuses a create or update of a mailbox that the
// caller's MailboxRights do not allow (RFC 8621 §2): creating needs
// mayCreateChild on the parent (top-level mailboxes are the owner's),
// renaming or moving needs mayRename, moving also mayCreateChild on the new
// parent. It first restores the stored parent of a mailbox whose parent
// the caller cannot see and did not change.
func checkMailboxRights(tx store.Tx, acct store.AccountID, a *acl.Access, obj, old map[string]any) *jmap.SetError {
	if a.Owner {
		return nil
	}
	id := str(obj["id"])
	parent := str(obj["parentId"])
	if parent != "" && !a.Visible(parent) {
		return jmap.InvalidProperties(fmt.Sprintf("no mailbox %q", parent), "parentId")
	}
	if old == nil {
		if parent == "" {
			return forbidden("only the owner of the account creates top-level mailboxes")
		}
		if !a.Rights(parent).CreateChild {
			return forbidden("you may not create mailboxes in the parent mailbox")
		}
		return nil
	}
	moved := !reflect.DeepEqual(obj["parentId"], old["parentId"])
	if !moved {
		p, err := storedParent(tx, acct, id)
		if err != nil {
			return jmap.NewSetError(jmap.ErrServerFail, "")
		}
		obj["parentId"] = p
	}
	changed := moved
	for _, p := range []string{"name", "sortOrder", "role"} {
		if !reflect.DeepEqual(obj[p], old[p]) {
			changed = true
		}
	}
	if changed && !a.Rights(id).Rename {
		return forbidden("you may not rename or move this mailbox")
	}
	if moved {
		if parent == "" {
			return forbidden("only the owner of the account creates top-level mailboxes")
		}
		if !a.Rights(parent).CreateChild {
			return forbidden("you may not move mailboxes into the new parent")
		}
	}
	return nil
}

// applyShareWith stores a change of a mailbox's shareWith
// (draft-ietf-jmap-mail-sharing §2, RFC 9670 §4), or on create without
// one gives the new mailbox its parent's grants, as IMAP ACLs are
// inherited, so that whoever may create a child keeps seeing it.
func applyShareWith(ctx context.Context, tx store.Tx, acct store.AccountID, a *acl.Access, obj, old map[string]any) *jmap.SetError {
	id := str(obj["id"])
	var cur any
	if old != nil {
		cur = old["shareWith"]
	}
	want := obj["shareWith"]
	if old == nil && want == nil {
		if parent := str(obj["parentId"]); parent != "" {
			gs, err := acl.OnMailbox(tx, acct, parent)
			if err != nil {
				return jmap.NewSetError(jmap.ErrServerFail, "")
			}
			for _, g := range gs {
				if err := acl.Put(tx, acct, id, g.Grantee, g.Rights); err != nil {
					return jmap.NewSetError(jmap.ErrServerFail, "")
				}
			}
		}
		return nil
	}
	if reflect.DeepEqual(want, cur) {
		return nil
	}
	mine := a.Rights(id)
	if !mine.Share {
		return forbidden("you may not change who this mailbox is shared with")
	}
	c := jmap.CallerFrom(ctx)
	var caller store.PrincipalID
	if c != nil {
		caller = c.Principal
	}
	if !a.Owner {
		// Our own rule on top of the drafts (DESIGN.md): sharing a mailbox
		// of someone else's account needs a subscription to it.
		sub, err := subscribed(tx, acct, caller, id)
		if err != nil {
			return jmap.NewSetError(jmap.ErrServerFail, "")
		}
		if !sub {
			return forbidden("subscribe to the mailbox before changing who it is shared with")
		}
	}
	m, ok := want.(map[string]any)
	if want != nil && !ok {
		return jmap.InvalidProperties("shareWith must be an object or null", "shareWith")
	}
	if len(m) > maxShareWith {
		return jmap.InvalidProperties(fmt.Sprintf("a mailbox is shared with at most %d principals", maxShareWith), "shareWith")
	}
	current, err := acl.ShareWith(tx, acct, id)
	if err != nil {
		return jmap.NewSetError(jmap.ErrServerFail, "")
	}
	next := make(map[store.PrincipalID]acl.Rights, len(m))
	var view *principalView
	if jc := jmap.CallFrom(ctx); jc != nil && c != nil {
		if accts, ok := jc.Registry().Accounts.(*Accounts); ok {
			if view, err = accts.principalView(tx, caller); err != nil {
				return jmap.NewSetError(jmap.ErrServerFail, "")
			}
		}
	}
	for pid, v := range m {
		rm, ok := v.(map[string]any)
		if !ok {
			return jmap.InvalidProperties(fmt.Sprintf("shareWith/%s must be a MailboxRights object", pid), "shareWith")
		}
		r, err := acl.ParseMap(rm)
		if err != nil {
			return jmap.InvalidProperties(fmt.Sprintf("shareWith/%s: %v", pid, err), "shareWith")
		}
		p := store.PrincipalID(pid)
		// RFC 9670 §4: the owner's rights are implicit and never listed.
		if store.AccountID(p) == acct {
			return jmap.InvalidProperties("the owner of the account cannot be in shareWith", "shareWith")
		}
		pr, err := tx.Principals().Get(p)
		// A principal the caller cannot see does not exist for them, so
		// shareWith cannot probe for ids.
		if errors.Is(err, store.ErrNotFound) || (err == nil && (pr.Shared || (pr.Type != store.Individual && pr.Type != store.Group) ||
			(view != nil && r != current[p] && !view.visible(pr)))) {
			return jmap.InvalidProperties(fmt.Sprintf("no principal %q to share with", pid), "shareWith")
		}
		if err != nil {
			return jmap.NewSetError(jmap.ErrServerFail, "")
		}
		if r == current[p] {
			next[p] = r
			continue
		}
		if p == caller {
			return forbidden("you cannot change your own rights")
		}
		// Nobody grants what they do not have (draft §3.6).
		if !mine.Covers(r) {
			return forbidden("you cannot grant rights you do not have")
		}
		next[p] = r
	}
	for p, r := range current {
		if _, kept := next[p]; !kept && p == caller && r.Any() {
			return forbidden("you cannot change your own rights")
		}
	}
	changes, err := acl.SetShareWith(tx, acct, id, next)
	if err != nil {
		return jmap.NewSetError(jmap.ErrServerFail, "")
	}
	if err := noteRightsChange(tx, acct, granteesOf(changes)); err != nil {
		return jmap.NewSetError(jmap.ErrServerFail, "")
	}
	if err := noteShareChanges(ctx, tx, caller, str(obj["name"]), changes); err != nil {
		return jmap.NewSetError(jmap.ErrServerFail, "")
	}
	return nil
}
