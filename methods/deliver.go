package methods

import (
	"errors"
	"fmt"
	"time"

	"github.com/jmapd/jmapd/internal/delivery"
	"github.com/jmapd/jmapd/internal/mime"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// mailHost is the mail store the delivery agent delivers into: Emails in
// Inboxes, statuses on EmailSubmissions, vacation responses.
type mailHost struct{ s *sender }

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
func inboxOf(tx store.Tx, acct store.AccountID) (string, error) {
	for o, err := range tx.Scan(acct, "Mailbox") {
		if err != nil {
			return "", err
		}
		role, err := loadMailboxRole(o.Data)
		if err != nil {
			return "", err
		}
		if role == "inbox" {
			return o.ID, nil
		}
	}
	return "", errors.New("the account has no inbox")
}

// Deliver adds a delivered message to the Inbox of acct and answers it
// with the vacation response when one is due.
func (h *mailHost) Deliver(tx store.Tx, acct store.AccountID, blob store.BlobInfo, raw []byte, from string) error {
	if err := h.s.accts.provisionIn(tx, acct); err != nil {
		return err
	}
	inbox, err := inboxOf(tx, acct)
	if err != nil {
		return fmt.Errorf("deliver to %s: %w", acct, err)
	}
	msg, err := mime.Parse(raw)
	if err != nil {
		return fmt.Errorf("parse delivered message: %w", err)
	}
	now := time.Now()
	cnt := newCounter(tx, acct)
	_, serr, err := newEmail(tx, acct, cnt, msg, blob, map[string]any{inbox: true}, nil,
		func(s string) (string, bool) { return s, true },
		func() (time.Time, *jmap.SetError) { return now, nil })
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("deliver to %s: %s", acct, serr.Description)
	}
	if err := cnt.flush(); err != nil {
		return err
	}
	return h.s.vacationReply(tx, acct, msg, from, now)
}

// Report records delivery statuses on a submission.
func (h *mailHost) Report(tx store.Tx, acct store.AccountID, sub string, status map[string]delivery.Status, final bool, dsn store.BlobID) error {
	return reportStatus(tx, acct, sub, status, final, dsn)
}
