package methods

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"time"

	"github.com/jmapd/jmapd/internal/acl"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// shareNotificationRecord is a ShareNotification as stored, in the own
// account of the user it is for (RFC 9670 §3: the account that holds the
// Principals, which for us is each user's own).
type shareNotificationRecord struct {
	ID              string          `json:"id"`
	Created         string          `json:"created"`
	ChangedBy       entity          `json:"changedBy"`
	ObjectType      string          `json:"objectType"`
	ObjectAccountID string          `json:"objectAccountId"`
	ObjectID        string          `json:"objectId"`
	OldRights       map[string]bool `json:"oldRights"`
	NewRights       map[string]bool `json:"newRights"`
	Name            string          `json:"name"`
}

// entity is who made a change (RFC 9670 §3 changedBy).
type entity struct {
	Name        string  `json:"name"`
	Email       *string `json:"email"`
	PrincipalID *string `json:"principalId"`
}

// shareNotificationType is the record type name of ShareNotification.
const shareNotificationType = "ShareNotification"

func rightsOrNull(r acl.Rights) map[string]bool {
	if !r.Any() {
		return nil
	}
	m := map[string]bool{}
	for k, v := range r.Map(true) {
		m[k] = v.(bool)
	}
	return m
}

// shareNotice is a message to deliver to a user's Inbox once the grant
// that caused it is committed.
type shareNotice struct {
	to      *store.Principal
	by      string
	owner   string
	mailbox string
	level   string
}

type noticesMemo struct{}

// noteShareChanges records grant changes for the users they affect: a
// ShareNotification each (RFC 9670 §3, SN-5), groups expanded to their
// members, and for a grant that gives something, a notice for their Inbox,
// queued on the call (or returned through ShareNotices outside one).
func noteShareChanges(ctx context.Context, tx store.Tx, by store.PrincipalID, mailboxName string, changes []acl.Change) error {
	notices, err := shareChanges(ctx, tx, by, mailboxName, changes)
	if err != nil {
		return err
	}
	if c := jmap.CallFrom(ctx); c != nil {
		q, _ := c.Memo(noticesMemo{}).([]shareNotice)
		c.SetMemo(noticesMemo{}, append(q, notices...))
	}
	return nil
}

func shareChanges(ctx context.Context, tx store.Tx, by store.PrincipalID, mailboxName string, changes []acl.Change) ([]shareNotice, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	var dir *acl.Directory
	if c := jmap.CallFrom(ctx); c != nil {
		if a, ok := c.Registry().Accounts.(*Accounts); ok {
			dir = a.dir
		}
	}
	if dir == nil {
		dir = acl.NewDirectory()
	}
	changedBy := entity{Name: "the administrator"}
	var byName string
	if by != "" {
		p, err := tx.Principals().Get(by)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if p != nil {
			id, email := string(p.ID), p.Email
			changedBy = entity{Name: p.Name, Email: &email, PrincipalID: &id}
			byName = p.Name
			if byName == "" {
				byName = p.Email
			}
		}
	}
	if byName == "" {
		byName = changedBy.Name
	}
	now := time.Now().UTC()
	var notices []shareNotice
	for _, ch := range changes {
		owner, err := tx.Principals().Get(store.PrincipalID(ch.Account))
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		ownerName := string(ch.Account)
		if owner != nil {
			ownerName = owner.Email
		}
		members, err := dir.Members(tx, ch.Grantee)
		if err != nil {
			return nil, err
		}
		// A grant on the whole account is a change on each of its
		// mailboxes: ShareNotification names one object (RFC 9670 §3).
		objects := []namedMailbox{{id: ch.Mailbox, name: mailboxName}}
		if ch.Mailbox == acl.WholeAccount {
			if objects, err = mailboxNames(tx, ch.Account); err != nil {
				return nil, err
			}
		}
		for _, m := range members {
			if m == by {
				continue
			}
			p, err := tx.Principals().Get(m)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if p.Account == "" || p.Shared {
				continue
			}
			for _, o := range objects {
				id, err := tx.NewID()
				if err != nil {
					return nil, err
				}
				rec := shareNotificationRecord{ID: id, Created: utcDate(now), ChangedBy: changedBy,
					ObjectType: "Mailbox", ObjectAccountID: string(ch.Account), ObjectID: o.id,
					OldRights: rightsOrNull(ch.Old), NewRights: rightsOrNull(ch.New), Name: o.name}
				b, err := json.Marshal(rec)
				if err != nil {
					return nil, err
				}
				if err := tx.Create(p.Account, shareNotificationType, id, b); err != nil {
					return nil, err
				}
			}
			name := mailboxName
			if ch.Mailbox == acl.WholeAccount {
				name = ownerName
			}
			if ch.New.Any() {
				level := ch.New.Level()
				if level == "" {
					level = "custom"
				}
				notices = append(notices, shareNotice{to: p, by: byName, owner: ownerName, mailbox: name, level: level})
			}
		}
	}
	return notices, nil
}

// deliverNotices puts each notice in its recipient's Inbox. A failure is
// returned but changes nothing already committed: the grants stand.
func deliverNotices(ctx context.Context, st store.Store, notices []shareNotice) error {
	var errs []error
	// A retried transaction queues its notices again.
	seen := map[shareNotice]bool{}
	for _, n := range notices {
		if seen[n] {
			continue
		}
		seen[n] = true
		raw := noticeMessage(n, time.Now())
		if err := ImportMessages(ctx, st, n.to.Account, "inbox", [][]byte{raw}); err != nil {
			errs = append(errs, fmt.Errorf("share notice to %s: %w", n.to.Email, err))
		}
	}
	return errors.Join(errs...)
}

// noticeMessage writes the short message telling a user what was shared
// with them.
func noticeMessage(n shareNotice, now time.Time) []byte {
	var b bytes.Buffer
	what := fmt.Sprintf("the mailbox %q of %s", n.mailbox, n.owner)
	if n.mailbox == n.owner {
		what = "the mailboxes of " + n.owner
	}
	subject := fmt.Sprintf("%s shared %s with you", n.by, what)
	fmt.Fprintf(&b, "From: jmapd <postmaster@localhost>\r\n")
	fmt.Fprintf(&b, "To: %s\r\n", n.to.Email)
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", subject))
	fmt.Fprintf(&b, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <share.%d.%s@jmapd>\r\n", now.UnixNano(), n.to.ID)
	fmt.Fprintf(&b, "Auto-Submitted: auto-generated\r\n")
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	fmt.Fprintf(&b, "%s shared %s with you, at the level %q.\r\n\r\n", n.by, what, n.level)
	fmt.Fprintf(&b, "It appears in your mail client once you subscribe to it.\r\n")
	return b.Bytes()
}
