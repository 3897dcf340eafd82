package methods

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// The receivedAt index lists each account's emails per mailbox, and all of
// them under allMail, ordered by receivedAt and then id:
//
//	ix\0ACCT\0MAILBOX\0RECEIVEDAT\0LEN ID  →  thread id
//
// RECEIVEDAT is the UTCDate text, which sorts as time does; LEN is one
// octet holding the id's length, so that ids sort as jmap.CompareIDs orders
// them. It serves the query clients make all the time (one mailbox, newest
// first) without reading the email records (DESIGN.md).
const allMail = "*"

func indexPrefix(acct store.AccountID, mbox string) string {
	return "ix\x00" + string(acct) + "\x00" + mbox + "\x00"
}

func indexKey(acct store.AccountID, mbox, receivedAt, id string) string {
	return indexPrefix(acct, mbox) + receivedAt + "\x00" + string(rune(len(id))) + id
}

func indexID(key string) string {
	i := strings.LastIndexByte(key, 0)
	// The octet after the last NUL is the id's length, then the id.
	return key[i+2:]
}

// blobEmailKey lists email id under its message blob, so that a grantee's
// access to a blob is decided from the emails holding it without a scan.
// Emails stored before this index existed have no entry; blobReadable
// then scans.
func blobEmailKey(acct store.AccountID, blob, id string) string {
	return "eb\x00" + string(acct) + "\x00" + blob + "\x00" + id
}

// indexEmail adds (add) or removes the index entries of e for the given
// mailboxes and for all mail (when all is set).
func indexEmail(tx store.Tx, acct store.AccountID, e *emailRecord, mboxes map[string]bool, all, add bool) error {
	keys := make([]string, 0, len(mboxes)+1)
	for m := range mboxes {
		keys = append(keys, indexKey(acct, m, e.ReceivedAt, e.ID))
	}
	if all {
		keys = append(keys, indexKey(acct, allMail, e.ReceivedAt, e.ID), blobEmailKey(acct, e.BlobID, e.ID))
	}
	for _, k := range keys {
		var err error
		if add {
			err = tx.PutMeta(k, []byte(e.ThreadID))
		} else {
			err = tx.DeleteMeta(k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// indexMove updates the index for an email whose mailboxes changed.
func indexMove(tx store.Tx, acct store.AccountID, e *emailRecord, before, after map[string]bool) error {
	gone, came := map[string]bool{}, map[string]bool{}
	for m := range before {
		if !after[m] {
			gone[m] = true
		}
	}
	for m := range after {
		if !before[m] {
			came[m] = true
		}
	}
	if err := indexEmail(tx, acct, e, gone, false, false); err != nil {
		return err
	}
	return indexEmail(tx, acct, e, came, false, true)
}

// indexedQuery answers an Email/query from the index when it is the common
// shape: no filter or only inMailbox, sorted by receivedAt alone (or not
// sorted), with a non-negative position. ok is false for any other shape.
func indexedQuery(ctx context.Context, c *jmap.Call, tx store.Tx, acct store.AccountID, args *emailQueryArgs) (ids []string, pos int, total *int, ok bool, err error) {
	mbox := allMail
	if len(args.Filter) > 0 && string(args.Filter) != "null" {
		var f map[string]json.RawMessage
		if json.Unmarshal(args.Filter, &f) != nil || len(f) != 1 || f["inMailbox"] == nil {
			return nil, 0, nil, false, nil
		}
		if json.Unmarshal(f["inMailbox"], &mbox) != nil {
			return nil, 0, nil, false, nil
		}
		if real, ok := c.ResolveID(mbox); ok {
			mbox = real
		}
		if mbox == allMail {
			return nil, 0, nil, false, nil
		}
	}
	// Someone who may read only part of a shared account gets the index
	// of a mailbox they may read whole, and nothing from one they may
	// not; anything else is filtered email by email.
	access, err := callerAccess(ctx, tx, acct)
	if err != nil {
		return nil, 0, nil, false, err
	}
	if !access.Owner && mbox == allMail {
		return nil, 0, nil, false, nil
	}
	if !access.Readable(mbox) {
		zero := 0
		var total *int
		if args.CalculateTotal {
			total = &zero
		}
		if args.Anchor != nil {
			return nil, 0, nil, false, jmap.NewMethodError(jmap.ErrAnchorNotFound, "")
		}
		return []string{}, 0, total, true, nil
	}
	desc := true
	switch len(args.Sort) {
	case 0:
	case 1:
		if args.Sort[0].Property != "receivedAt" {
			return nil, 0, nil, false, nil
		}
		desc = !args.Sort[0].Ascending()
	default:
		return nil, 0, nil, false, nil
	}
	if args.Position < 0 {
		return nil, 0, nil, false, nil
	}
	scan := tx.ScanMeta
	if desc {
		scan = tx.ScanMetaReverse
	}
	limit := -1
	if args.Limit != nil {
		limit = *args.Limit
	}
	// A mailbox's total comes from its counts, kept exact on every write,
	// so the walk can stop after the page.
	var count int
	countKnown := false
	if args.CalculateTotal && mbox != allMail {
		b, err := tx.Get(acct, "Mailbox", mbox)
		if err == nil {
			var m struct{ TotalEmails, TotalThreads int }
			if json.Unmarshal(b, &m) == nil {
				count, countKnown = m.TotalEmails, true
				if args.CollapseThreads {
					count = m.TotalThreads
				}
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, 0, nil, false, err
		}
	}
	threads := map[string]bool{}
	ids = []string{}
	n, anchorAt := 0, -1
	var window []string // with an anchor: every result, windowed after
	for m, err := range scan(indexPrefix(acct, mbox)) {
		if err != nil {
			return nil, 0, nil, false, err
		}
		if n%512 == 0 && ctx.Err() != nil {
			return nil, 0, nil, false, ctx.Err()
		}
		if args.CollapseThreads {
			if threads[string(m.Value)] {
				continue
			}
			threads[string(m.Value)] = true
		}
		id := indexID(m.Key)
		if args.Anchor != nil {
			window = append(window, id)
			if id == *args.Anchor {
				anchorAt = n
			}
		} else if n >= args.Position {
			if limit < 0 || len(ids) < limit {
				ids = append(ids, id)
			} else if !args.CalculateTotal || countKnown {
				break
			}
		}
		n++
	}
	if args.Anchor != nil {
		if anchorAt < 0 {
			return nil, 0, nil, false, jmap.NewMethodError(jmap.ErrAnchorNotFound, "")
		}
		page, p, err := jmap.Window(window, &args.QueryArgs)
		if err != nil {
			return nil, 0, nil, false, err
		}
		ids, pos = page, p
	} else if countKnown {
		pos = min(args.Position, count)
	} else {
		pos = min(args.Position, n)
	}
	if args.CalculateTotal {
		if countKnown {
			n = count
		}
		total = &n
	}
	return ids, pos, total, true, nil
}
