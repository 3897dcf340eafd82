package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
)

// mailUsing is the capability list of mail requests.
var mailUsing = []string{CapCore, CapMail}

// User is a login given on the command line.
type User struct {
	Email    string
	Password string
}

// ParseUser reads "EMAIL:PASSWORD".
func ParseUser(s string) (User, error) {
	email, pw, ok := strings.Cut(s, ":")
	if !ok || email == "" || pw == "" {
		return User{}, fmt.Errorf("user %q is not EMAIL:PASSWORD", s)
	}
	return User{Email: email, Password: pw}, nil
}

// mailbox is the part of a Mailbox the tool uses.
type mailbox struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Role        string `json:"role"`
	TotalEmails int    `json:"totalEmails"`
}

// account is a user's mail account as discovered from the session.
type account struct {
	user       User
	sessionURL string
	session    *Session
	id         string
	inbox      string
	archive    string // the move target; "" when none could be found or made
	sent       string
}

// discover fetches the session and the mailboxes of a user; it creates a
// folder to move messages to when the account has no Archive.
func discover(ctx context.Context, c *Client, u User, notices *Notices) (*account, error) {
	s, err := c.FetchSession(ctx)
	if err != nil {
		return nil, fmt.Errorf("session for %s: %w", u.Email, err)
	}
	if !s.Has(CapMail) {
		return nil, fmt.Errorf("session for %s: no %s capability", u.Email, CapMail)
	}
	a := &account{user: u, sessionURL: c.SessionURL, session: s, id: s.MailAccount()}
	if a.id == "" {
		return nil, fmt.Errorf("session for %s: no primary mail account", u.Email)
	}
	boxes, err := mailboxes(ctx, c, a.id)
	if err != nil {
		return nil, fmt.Errorf("mailboxes of %s: %w", u.Email, err)
	}
	for _, m := range boxes {
		switch strings.ToLower(m.Role) {
		case "inbox":
			a.inbox = m.ID
		case "archive":
			a.archive = m.ID
		case "sent":
			a.sent = m.ID
		}
	}
	if a.inbox == "" {
		return nil, fmt.Errorf("account of %s has no Inbox", u.Email)
	}
	if a.archive == "" {
		for _, m := range boxes {
			if m.Name == "jmapload" {
				a.archive = m.ID
			}
		}
	}
	if a.archive == "" {
		res, err := c.API(ctx, mailUsing, Call{"Mailbox/set", map[string]any{"accountId": a.id,
			"create": map[string]any{"m": map[string]any{"name": "jmapload", "parentId": nil}}}, "0"})
		if err == nil {
			var r struct {
				Created map[string]struct {
					ID string `json:"id"`
				} `json:"created"`
			}
			if json.Unmarshal(res["0"], &r) == nil {
				a.archive = r.Created["m"].ID
			}
		}
		if a.archive == "" {
			notices.Add("no Archive mailbox and none could be created for %s: the move operation is skipped", u.Email)
		}
	}
	return a, nil
}

func mailboxes(ctx context.Context, c *Client, acct string) ([]mailbox, error) {
	res, err := c.API(ctx, mailUsing, Call{"Mailbox/get", map[string]any{"accountId": acct, "ids": nil,
		"properties": []string{"id", "name", "role", "totalEmails"}}, "0"})
	if err != nil {
		return nil, err
	}
	var r struct {
		List []mailbox `json:"list"`
	}
	if err := json.Unmarshal(res["0"], &r); err != nil {
		return nil, &Error{Kind: "decode", Type: "Mailbox/get", Detail: err.Error()}
	}
	return r.List, nil
}

// Notices collects the steps skipped and other remarks for the report.
type Notices struct {
	mu   sync.Mutex
	list []string
	seen map[string]bool
	// Print, when set, is called for each new notice.
	Print func(string)
}

// Add records a notice once.
func (n *Notices) Add(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.seen == nil {
		n.seen = map[string]bool{}
	}
	if n.seen[s] {
		return
	}
	n.seen[s] = true
	n.list = append(n.list, s)
	if n.Print != nil {
		n.Print(s)
	}
}

// List returns the notices in order.
func (n *Notices) List() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.list...)
}
