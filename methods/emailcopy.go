package methods

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jmapd/jmapd/internal/acl"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// emailCopy copies emails between accounts (RFC 8621 §4.7, RFC 8620
// §5.4): the new email has the same message, and the mailboxIds, keywords
// and receivedAt given, or the original's. The message blob is shared, not
// duplicated. Reading the original needs mayReadItems on one of its
// mailboxes; adding the copy needs mayAddItems on each target mailbox.
func emailCopy(ctx context.Context, c *jmap.Call) (any, error) {
	var args jmap.CopyArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	if args.FromAccountID == args.AccountID {
		return nil, jmap.InvalidArguments("fromAccountId must differ from accountId")
	}
	from, err := c.FromAccount(ctx, args.FromAccountID, CapMail)
	if err != nil {
		return nil, err
	}
	to, err := c.WritableAccount(ctx, args.AccountID, CapMail)
	if err != nil {
		return nil, err
	}
	if len(args.Create.Keys) > c.Limits().MaxObjectsInSet {
		return nil, jmap.NewMethodError(jmap.ErrRequestTooLarge, fmt.Sprintf("at most %d objects", c.Limits().MaxObjectsInSet))
	}
	resp := &jmap.CopyResponse{FromAccountID: args.FromAccountID, AccountID: args.AccountID,
		Created: map[string]map[string]any{}, NotCreated: map[string]*jmap.SetError{}}
	// Each copy stands alone (RFC 8620 §5.4: created or notCreated per
	// item), so many large ones commit in chunks that a transaction of the
	// store holds, weighed by the size of the records they copy.
	sizes := map[string]int{}
	if err := c.Store().View(ctx, func(tx store.Tx) error {
		for _, cid := range args.Create.Keys {
			var item struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(args.Create.Values[cid], &item) != nil {
				continue
			}
			if id, ok := c.ResolveID(item.ID); ok && id != "" {
				if b, err := tx.Get(from.ID, "Email", id); err == nil {
					sizes[cid] = len(b)
				}
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	var originals []string
	var newest []store.StateChange
	for _, chunk := range chunksOf(args.Create.Keys, func(cid string) int { return sizes[cid] }) {
		first := len(resp.Created)+len(resp.NotCreated) == 0
		created, notCreated := map[string]map[string]any{}, map[string]*jmap.SetError{}
		var copied []string
		changes, err := c.Store().Update(ctx, func(tx store.Tx) error {
			clear(created)
			clear(notCreated)
			copied = copied[:0]
			if first {
				if _, err := jmap.CheckState(tx, from.ID, "Email", args.IfFromInState, "fromAccountId"); err != nil {
					return err
				}
				var err error
				if resp.OldState, err = jmap.CheckState(tx, to.ID, "Email", args.IfInState, ""); err != nil {
					return err
				}
			}
			fromAccess, err := callerAccess(ctx, tx, from.ID)
			if err != nil {
				return err
			}
			toAccess, err := callerAccess(ctx, tx, to.ID)
			if err != nil {
				return err
			}
			cnt := newCounter(tx, to.ID)
			for _, cid := range chunk {
				made, srcID, serr, err := copyEmail(tx, c, from.ID, to.ID, fromAccess, toAccess, cnt, args.Create.Values[cid])
				if err != nil {
					return err
				}
				if serr != nil {
					notCreated[cid] = serr
					continue
				}
				created[cid] = made
				copied = append(copied, srcID)
			}
			return cnt.flush()
		})
		committed, err := addChunk(ctx, to.ID, "copy", chunk, first, err, resp.Created, resp.NotCreated, &newest,
			created, notCreated, changes)
		if err != nil {
			return nil, err
		}
		if committed {
			originals = append(originals, copied...)
		}
	}
	changes := newest
	for cid, v := range resp.Created {
		c.Created(cid, v["id"].(string))
	}
	resp.NewState = jmap.NewState(changes, to.ID, "Email", resp.OldState)
	if len(resp.Created) == 0 {
		resp.Created = nil
	}
	if len(resp.NotCreated) == 0 {
		resp.NotCreated = nil
	}
	if args.OnSuccessDestroyOriginal && len(originals) > 0 {
		if err := emailType.ImplicitDestroy(ctx, c, args.FromAccountID, args.DestroyFromIfInState, originals); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// copyEmail makes one copy of an Email/copy in account to: the created
// entry and the id of the original, or the SetError that refuses it.
func copyEmail(tx store.Tx, c *jmap.Call, from, to store.AccountID, fromAccess, toAccess *acl.Access, cnt *counter,
	raw json.RawMessage) (map[string]any, string, *jmap.SetError, error) {
	var item map[string]any
	if err := json.Unmarshal(raw, &item); err != nil || item == nil {
		return nil, "", jmap.InvalidProperties("the EmailCopy is not a JSON object"), nil
	}
	if serr := checkCopyProperties(item); serr != nil {
		return nil, "", serr, nil
	}
	srcID, _ := item["id"].(string)
	srcID, ok := c.ResolveID(srcID)
	var src *emailRecord
	if ok && srcID != "" {
		if e, err := loadEmail(tx, from, srcID); err == nil {
			src = e
		}
	}
	if src == nil || !readableIn(fromAccess, src.MailboxIDs) {
		return nil, "", jmap.NewSetError(jmap.SetNotFound, "no such email to copy"), nil
	}
	mboxes, given := item["mailboxIds"]
	if !given {
		mboxes = idMap(src.MailboxIDs)
	}
	kw, given := item["keywords"]
	if !given {
		kw = idMap(src.Keywords)
	}
	if serr := checkAddRights(toAccess, mboxes, c.ResolveID); serr != nil {
		return nil, "", serr, nil
	}
	mb, serr := checkMailboxIDs(tx, to, mboxes, c.ResolveID)
	if serr != nil {
		return nil, "", serr, nil
	}
	kws, serr := normalizeKeywords(kw)
	if serr != nil {
		return nil, "", serr, nil
	}
	at := src.ReceivedAt
	if v, given := item["receivedAt"]; given && v != nil {
		s, _ := v.(string)
		t, ok := parseUTCDate(s)
		if !ok {
			return nil, "", jmap.InvalidProperties("receivedAt must be a UTCDate", "receivedAt"), nil
		}
		at = utcDate(t)
	}
	e := *src
	e.ID, e.ThreadID, e.MailboxIDs, e.Keywords, e.ReceivedAt, e.Left = "", "", mb, kws, at, nil
	var err error
	if e.search, err = searchTextOf(tx, from, srcID); err != nil {
		return nil, "", nil, err
	}
	if err := addEmail(tx, to, &e, cnt); err != nil {
		return nil, "", nil, err
	}
	return map[string]any{"id": e.ID, "blobId": e.BlobID, "threadId": e.ThreadID, "size": e.Size}, srcID, nil, nil
}

// checkCopyProperties allows only id, mailboxIds, keywords and receivedAt
// in an EmailCopy (RFC 8621 §4.7).
func checkCopyProperties(item map[string]any) *jmap.SetError {
	for k := range item {
		switch k {
		case "id", "mailboxIds", "keywords", "receivedAt":
		default:
			return jmap.InvalidProperties(fmt.Sprintf("%q cannot be set on a copy", k), k)
		}
	}
	return nil
}
