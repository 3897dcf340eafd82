package methods

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jmapd/jmapd/internal/delivery"
	"github.com/jmapd/jmapd/internal/mime"
	"github.com/jmapd/jmapd/store"
)

// mailHost is the mail store the delivery agent delivers into: Emails in
// Inboxes, statuses on EmailSubmissions, vacation responses.
type mailHost struct {
	s *sender
	// inboxes caches the Inbox id of each account (store.AccountID →
	// string); a hit is checked against the record before use.
	inboxes sync.Map
}

var _ delivery.Host = (*mailHost)(nil)

// provisionIn runs the provisioners of acct inside tx unless they ran
// before, so that mail reaches an account whose owner never logged in.
func (a *Accounts) provisionIn(tx store.Tx, acct store.AccountID) error {
	if _, ok := a.provisioned.Load(acct); ok {
		return nil
	}
	v, err := tx.GetMeta(provisionedKey(acct))
	if err != nil || v != nil {
		return err
	}
	for _, f := range a.provisioners {
		if err := f(tx, acct); err != nil {
			return err
		}
	}
	return tx.PutMeta(provisionedKey(acct), []byte("1"))
}

// inboxOf returns the id of the mailbox with role inbox in acct.
func (h *mailHost) inboxOf(tx store.Tx, acct store.AccountID) (string, error) {
	if v, ok := h.inboxes.Load(acct); ok {
		b, err := tx.Get(acct, "Mailbox", v.(string))
		if err == nil {
			if role, err := loadMailboxRole(b); err == nil && role == "inbox" {
				return v.(string), nil
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
	}
	for o, err := range tx.Scan(acct, "Mailbox") {
		if err != nil {
			return "", err
		}
		role, err := loadMailboxRole(o.Data)
		if err != nil {
			return "", err
		}
		if role == "inbox" {
			h.inboxes.Store(acct, o.ID)
			return o.ID, nil
		}
	}
	return "", errors.New("the account has no inbox")
}

// Deliver adds a delivered message to the Inbox of acct and answers it
// with the vacation response when one is due.
func (h *mailHost) Deliver(tx store.Tx, acct store.AccountID, blob store.BlobInfo, raw []byte, msg *delivery.Parsed, from string) error {
	if err := h.s.accts.provisionIn(tx, acct); err != nil {
		return err
	}
	inbox, err := h.inboxOf(tx, acct)
	if err != nil {
		return fmt.Errorf("deliver to %s: %w", acct, err)
	}
	now := time.Now()
	cnt := newCounter(tx, acct)
	facts := msg.Memo(deliveryFacts).(*emailRecord)
	e := *facts
	e.BlobID, e.MailboxIDs, e.Keywords, e.ReceivedAt = string(blob.ID), map[string]bool{inbox: true}, map[string]bool{}, utcDate(now)
	e.Size = blob.Size // msg may be the message before its trace fields
	if err := addEmail(tx, acct, &e, cnt); err != nil {
		return err
	}
	if err := cnt.flush(); err != nil {
		return err
	}
	if err := noteMDN(tx, acct, msg.Msg, blob.ID); err != nil {
		return err
	}
	if n, ok := msg.HostNote.(*deliveryNote); ok && !n.away[acct] {
		return nil
	}
	return h.s.vacationReply(tx, acct, msg.Msg, from, now)
}

// deliveryNote is what a submission works out for its local deliveries
// before the delivering transaction (delivery.Parsed.HostNote).
type deliveryNote struct {
	// away names the target accounts whose vacation response was on in
	// the snapshot that resolved the recipients. Only those are read
	// again in the delivering transaction, which writers run in turn:
	// one turned on in between answers from the next message on, as if
	// this one had come just before.
	away map[store.AccountID]bool
}

// deliveryFacts returns the Email record facts of a delivered message
// (headers, body structure, preview): the same for every copy of it.
func deliveryFacts(m *mime.Message) any {
	var e emailRecord
	recordFromMessage(m, &e)
	return &e
}

// Report records delivery statuses on a submission.
func (h *mailHost) Report(tx store.Tx, acct store.AccountID, sub string, status map[string]delivery.Status, final bool, dsn store.BlobID) error {
	return reportStatus(tx, acct, sub, status, final, dsn)
}
