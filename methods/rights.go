package methods

import (
	"context"

	"github.com/jmapd/jmapd/internal/acl"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// CapMailShare is the mailbox sharing capability of
// draft-ietf-jmap-mail-sharing §1.2.1: Mailbox shareWith and mayShare.
const CapMailShare = "urn:ietf:params:jmap:mail:share"

type accessMemo struct{ acct store.AccountID }

// ownerAccess is the access of an account's owner, and of server-internal
// work that runs outside any call.
func ownerAccess(acct store.AccountID) *acl.Access { return &acl.Access{Account: acct, Owner: true} }

// callerAccess returns what the caller of the current method call may do in
// acct, computed once per call.
func callerAccess(ctx context.Context, tx store.Tx, acct store.AccountID) (*acl.Access, error) {
	c := jmap.CallFrom(ctx)
	if c == nil || c.Caller == nil {
		return ownerAccess(acct), nil
	}
	if store.AccountID(c.Caller.Principal) == acct {
		return ownerAccess(acct), nil
	}
	if a, ok := c.Memo(accessMemo{acct}).(*acl.Access); ok {
		return a, nil
	}
	accts, ok := c.Registry().Accounts.(*Accounts)
	if !ok {
		return ownerAccess(acct), nil
	}
	a, err := accts.dir.Access(tx, c.Caller.Principal, acct)
	if err != nil {
		return nil, err
	}
	c.SetMemo(accessMemo{acct}, a)
	return a, nil
}

// usingShare reports whether the current call opted into CapMailShare, so
// that mayShare and shareWith appear (RFC 8620 §1.8).
func usingShare(ctx context.Context) bool {
	c := jmap.CallFrom(ctx)
	return c != nil && c.Using[CapMailShare]
}

// readableIn reports whether an email in the given mailboxes may be read:
// one readable mailbox is enough (RFC 8621 §2, mayReadItems).
func readableIn(a *acl.Access, mailboxes map[string]bool) bool {
	if a.Owner {
		return true
	}
	for m := range mailboxes {
		if a.Readable(m) {
			return true
		}
	}
	return false
}

// visibleMailboxes returns the mailboxes of an email the caller may see;
// the rest do not exist for them (RFC 8621 §9.5).
func visibleMailboxes(a *acl.Access, mailboxes map[string]bool) map[string]bool {
	if a.Owner {
		return mailboxes
	}
	out := make(map[string]bool, len(mailboxes))
	for m := range mailboxes {
		if a.Visible(m) {
			out[m] = true
		}
	}
	return out
}
