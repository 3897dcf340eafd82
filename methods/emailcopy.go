package methods

import (
	"context"
	"encoding/json"
	"fmt"

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
	var resp *jmap.CopyResponse
	var originals []string
	changes, err := c.Store().Update(ctx, func(tx store.Tx) error {
		resp = &jmap.CopyResponse{FromAccountID: args.FromAccountID, AccountID: args.AccountID,
			Created: map[string]map[string]any{}, NotCreated: map[string]*jmap.SetError{}}
		originals = nil
		fromState, err := tx.State(from.ID, "Email")
		if err != nil {
			return err
		}
		if args.IfFromInState != nil && *args.IfFromInState != jmap.FormatState(uint64(fromState)) {
			return jmap.NewMethodError(jmap.ErrStateMismatch, "fromAccountId is not in the given state")
		}
		st, err := tx.State(to.ID, "Email")
		if err != nil {
			return err
		}
		resp.OldState = jmap.FormatState(uint64(st))
		if args.IfInState != nil && *args.IfInState != resp.OldState {
			return jmap.NewMethodError(jmap.ErrStateMismatch, "")
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
		for _, cid := range args.Create.Keys {
			var item map[string]any
			if err := json.Unmarshal(args.Create.Values[cid], &item); err != nil || item == nil {
				resp.NotCreated[cid] = jmap.InvalidProperties("the EmailCopy is not a JSON object")
				continue
			}
			if serr := checkCopyProperties(item); serr != nil {
				resp.NotCreated[cid] = serr
				continue
			}
			srcID, _ := item["id"].(string)
			srcID, ok := c.ResolveID(srcID)
			var src *emailRecord
			if ok && srcID != "" {
				src, err = loadEmail(tx, from.ID, srcID)
				if err != nil {
					src = nil
				}
			}
			if src == nil || !readableIn(fromAccess, src.MailboxIDs) {
				resp.NotCreated[cid] = jmap.NewSetError(jmap.SetNotFound, "no such email to copy")
				continue
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
				resp.NotCreated[cid] = serr
				continue
			}
			mb, serr := checkMailboxIDs(tx, to.ID, mboxes, c.ResolveID)
			if serr != nil {
				resp.NotCreated[cid] = serr
				continue
			}
			kws, serr := normalizeKeywords(kw)
			if serr != nil {
				resp.NotCreated[cid] = serr
				continue
			}
			at := src.ReceivedAt
			if v, given := item["receivedAt"]; given && v != nil {
				s, _ := v.(string)
				t, ok := parseUTCDate(s)
				if !ok {
					resp.NotCreated[cid] = jmap.InvalidProperties("receivedAt must be a UTCDate", "receivedAt")
					continue
				}
				at = utcDate(t)
			}
			e := *src
			e.ID, e.ThreadID, e.MailboxIDs, e.Keywords, e.ReceivedAt, e.Left = "", "", mb, kws, at, nil
			if e.search, err = searchTextOf(tx, from.ID, srcID); err != nil {
				return err
			}
			if err := addEmail(tx, to.ID, &e, cnt); err != nil {
				return err
			}
			resp.Created[cid] = map[string]any{"id": e.ID, "blobId": e.BlobID, "threadId": e.ThreadID, "size": e.Size}
			originals = append(originals, srcID)
		}
		return cnt.flush()
	})
	if err != nil {
		return nil, err
	}
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
