package methods

import (
	"context"
	"encoding/json"
	"errors"
	"io"

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
	return callAccess(jmap.CallFrom(ctx), tx, acct)
}

// callAccess is callerAccess for the call c (nil: server-internal work).
func callAccess(c *jmap.Call, tx store.Tx, acct store.AccountID) (*acl.Access, error) {
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

// forgetAccess drops the caller's rights in acct computed earlier in the
// call, after a change of grants that may alter them.
func forgetAccess(ctx context.Context, acct store.AccountID) {
	if c := jmap.CallFrom(ctx); c != nil {
		c.SetMemo(accessMemo{acct}, nil)
	}
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

// blobReadable reports whether the caller with access may read a blob of
// acct: the owner reads what the account holds; anyone else only the
// message of an email they may read (and its parts), or an upload no email
// uses yet. Sending or sharing never makes a blob readable by itself
// (DESIGN.md).
func blobReadable(tx store.Tx, a *acl.Access, acct store.AccountID, id store.BlobID) (bool, error) {
	if _, err := tx.BlobAccess(acct, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, err
	} else if err != nil {
		// Part blobs are not stored blobs: their message must be.
		msg, _, ok := splitPartBlobID(string(id))
		if !ok {
			return false, nil
		}
		if _, err := tx.BlobAccess(acct, store.BlobID(msg)); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return false, nil
			}
			return false, err
		}
	}
	if a.Owner {
		return true, nil
	}
	msg := string(id)
	if m, _, ok := splitPartBlobID(msg); ok {
		msg = m
	}
	// Its own uploads, until something references them (RFC 8620 §6.1:
	// "unreferenced blobs MUST only be accessible to the uploader, even
	// in shared accounts"), are the cheap case: no scan.
	if len(a.Identities) > 0 {
		b, err := tx.GetMeta(uploaderKey(acct, store.BlobID(msg), a.Identities[0]))
		if err != nil {
			return false, err
		}
		if b != nil {
			return true, nil
		}
	}
	// The emails holding the blob, from the index.
	indexed := false
	prefix := blobEmailKey(acct, msg, "")
	for m, err := range tx.ScanMeta(prefix) {
		if err != nil {
			return false, err
		}
		indexed = true
		e, err := loadEmail(tx, acct, m.Key[len(prefix):])
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return false, err
		}
		if readableIn(a, e.MailboxIDs) {
			return true, nil
		}
	}
	if indexed {
		return false, nil
	}
	// Emails stored before the index: look at each.
	for o, err := range tx.Scan(acct, "Email") {
		if err != nil {
			return false, err
		}
		var e struct {
			BlobID     string          `json:"blobId"`
			MailboxIDs map[string]bool `json:"mailboxIds"`
		}
		if json.Unmarshal(o.Data, &e) != nil || e.BlobID != msg {
			continue
		}
		if readableIn(a, e.MailboxIDs) {
			return true, nil
		}
	}
	return false, nil
}

// uploaderKey marks that who, not the owner, uploaded blob id into acct:
// the blob is theirs to read while nothing references it.
func uploaderKey(acct store.AccountID, id store.BlobID, who store.PrincipalID) string {
	return "upl\x00" + string(acct) + "\x00" + string(id) + "\x00" + string(who)
}

// NoteUpload records, in a shared account, who uploaded the blobs ids, so
// that they (and no other grantee) may read them before anything
// references them; for the upload endpoint.
func (a *Accounts) NoteUpload(ctx context.Context, acct store.AccountID, who store.PrincipalID, ids ...store.BlobID) error {
	return noteUploads(ctx, a.st, acct, who, ids...)
}

// noteUploads is NoteUpload for Blob/upload and Blob/copy. The owner's own
// uploads need no record: the owner reads every blob of the account.
func noteUploads(ctx context.Context, st store.Store, acct store.AccountID, who store.PrincipalID, ids ...store.BlobID) error {
	if store.AccountID(who) == acct || len(ids) == 0 {
		return nil
	}
	_, err := st.Update(ctx, func(tx store.Tx) error {
		for _, id := range ids {
			if err := tx.PutMeta(uploaderKey(acct, id, who), []byte{1}); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}

// checkBlob answers store.ErrNotFound unless the caller of the current
// call may read the blob.
func checkBlob(ctx context.Context, tx store.Tx, acct store.AccountID, id store.BlobID) error {
	a, err := callerAccess(ctx, tx, acct)
	if err != nil {
		return err
	}
	return mayReadBlob(tx, a, acct, id)
}

// mayReadBlob answers store.ErrNotFound unless a lets its holder read the
// blob.
func mayReadBlob(tx store.Tx, a *acl.Access, acct store.AccountID, id store.BlobID) error {
	ok, err := blobReadable(tx, a, acct, id)
	if err != nil {
		return err
	}
	if !ok {
		return store.ErrNotFound
	}
	return nil
}

// openBlobChecked opens a blob of acct if the caller of the call in ctx may
// read it, and answers store.ErrNotFound otherwise. The owner reads what
// the store lets the account read: their check is openBlob's own.
func openBlobChecked(ctx context.Context, c *jmap.Call, acct store.AccountID, id store.BlobID, off, n int64) (store.BlobInfo, io.ReadSeekCloser, error) {
	if store.AccountID(c.Caller.Principal) != acct {
		if err := c.Store().View(ctx, func(tx store.Tx) error { return checkBlob(ctx, tx, acct, id) }); err != nil {
			return store.BlobInfo{}, nil, err
		}
	}
	return openBlob(ctx, c.Store(), acct, id, off, n)
}

// OpenBlob opens a blob of acct for download by the caller in ctx
// (jmap.CallerFrom), with the same rights as openBlobChecked.
func (a *Accounts) OpenBlob(ctx context.Context, acct store.AccountID, id store.BlobID, off, n int64) (store.BlobInfo, io.ReadSeekCloser, error) {
	c := jmap.CallerFrom(ctx)
	if c == nil || store.AccountID(c.Principal) == acct {
		return openBlob(ctx, a.st, acct, id, off, n)
	}
	err := a.st.View(ctx, func(tx store.Tx) error {
		access, err := a.dir.Access(tx, c.Principal, acct)
		if err != nil {
			return err
		}
		return mayReadBlob(tx, access, acct, id)
	})
	if err != nil {
		return store.BlobInfo{}, nil, err
	}
	return openBlob(ctx, a.st, acct, id, off, n)
}
