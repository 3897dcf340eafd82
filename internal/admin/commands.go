package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/jmapd/jmapd/internal/acl"
	"github.com/jmapd/jmapd/internal/auth"
	"github.com/jmapd/jmapd/store"
)

// maxPassword bounds a password read from stdin, in bytes.
const maxPassword = 1024

// principalOut is a principal as --json prints it.
type principalOut struct {
	ID        store.PrincipalID `json:"id"`
	Type      string            `json:"type"`
	Email     string            `json:"email"`
	Name      string            `json:"name"`
	AccountID store.AccountID   `json:"accountId,omitempty"`
	Members   []string          `json:"members,omitempty"`
	Archive   bool              `json:"archive,omitempty"`
	Company   bool              `json:"company,omitempty"`
	// Password is set only when the command generated it.
	Password string `json:"password,omitempty"`
}

// kind names a principal the way the commands do: user, shared, group.
func kind(p *store.Principal) string {
	switch {
	case p.Type == store.Group:
		return "group"
	case p.Type == store.Individual && p.Shared:
		return "shared"
	case p.Type == store.Individual:
		return "user"
	}
	return string(p.Type)
}

func isUser(p *store.Principal) bool { return p.Type == store.Individual && !p.Shared }

// tokenOut is a token as --json prints it.
type tokenOut struct {
	ID      string    `json:"id"`
	Email   string    `json:"email"`
	Name    string    `json:"name,omitempty"`
	Created time.Time `json:"created"`
	// Secret is set only by token create, the one time it is shown.
	Secret string `json:"secret,omitempty"`
}

func (c *call) printJSON(v any) error {
	enc := json.NewEncoder(c.out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

func (c *call) println(a ...string) error {
	if _, err := io.WriteString(c.out, strings.Join(a, "\t")+"\n"); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// parseEmail checks that s is a bare address (alice@example.test: no
// display name, no comment, no quoting, exactly one @) and returns it in
// lower case, the form principals are stored under.
func parseEmail(s string) (string, error) {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || strings.Count(s, "@") != 1 ||
		strings.ContainsAny(s, "\"[]() \t\r\n") {
		return "", usagef("%q is not an email address such as alice@example.test", s)
	}
	return strings.ToLower(s), nil
}

// displayName returns the --name flag, or the address's local part.
func (c *call) displayName(email string) string {
	if n := strings.TrimSpace(c.values["name"]); n != "" {
		return n
	}
	local, _, _ := strings.Cut(email, "@")
	return local
}

// password returns the password given by --password or --password-stdin,
// or a generated one when neither is.
func (c *call) password() (pw string, generated bool, err error) {
	if v, ok := c.values["password"]; ok {
		if v == "" {
			return "", false, usagef("empty password")
		}
		return v, false, nil
	}
	if !c.bools["password-stdin"] {
		return auth.GeneratePassword(), true, nil
	}
	if c.stdin == nil {
		return "", false, usagef("--password-stdin: no standard input")
	}
	b, err := io.ReadAll(io.LimitReader(c.stdin, maxPassword+1))
	if err != nil {
		return "", false, fmt.Errorf("read password from stdin: %w", err)
	}
	if len(b) > maxPassword {
		return "", false, usagef("password on stdin is longer than %d bytes", maxPassword)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if strings.ContainsAny(s, "\r\n") {
		return "", false, usagef("password on stdin must be one line")
	}
	if s == "" {
		return "", false, usagef("empty password")
	}
	return s, false, nil
}

// ensureFree fails when any principal has the address.
func ensureFree(pt store.PrincipalTx, email string) error {
	p, err := pt.ByEmail(email)
	if err == nil {
		return usagef("%s already exists (a %s)", email, kind(p))
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// findUser returns the user (an individual that is not a shared mailbox)
// with the address; role names it in the error ("user", "member").
func findUser(pt store.PrincipalTx, email, role string) (*store.Principal, error) {
	p, err := pt.ByEmail(email)
	if errors.Is(err, store.ErrNotFound) {
		return nil, usagef("unknown %s %s", role, email)
	}
	if err != nil {
		return nil, err
	}
	if !isUser(p) {
		return nil, usagef("%s is a %s, not a user", email, kind(p))
	}
	return p, nil
}

// findGroup returns the group with the address.
func findGroup(pt store.PrincipalTx, email string) (*store.Principal, error) {
	p, err := pt.ByEmail(email)
	if errors.Is(err, store.ErrNotFound) {
		return nil, usagef("unknown group %s", email)
	}
	if err != nil {
		return nil, err
	}
	if p.Type != store.Group {
		return nil, usagef("%s is a %s, not a group", email, kind(p))
	}
	return p, nil
}

// newPrincipal creates a principal with a fresh id; individuals (users and
// shared mailboxes) own the account of the same id.
func newPrincipal(tx store.Tx, p *store.Principal) error {
	id, err := tx.NewID()
	if err != nil {
		return err
	}
	p.ID = store.PrincipalID(id)
	// Users and shared mailboxes own an account; so does a group that
	// keeps an archive of its mail, and a company group, where mail to
	// any member is kept for all members to see.
	if p.Type == store.Individual || p.Archive || p.Company {
		p.Account = store.AccountID(id)
	}
	p.Created = time.Now().UTC()
	if err := tx.Principals().Create(p); err != nil {
		if errors.Is(err, store.ErrExists) {
			return usagef("%s already exists", p.Email)
		}
		return fmt.Errorf("create principal %s: %w", p.Email, err)
	}
	return nil
}

func userAdd(ctx context.Context, st store.Store, c *call) error {
	email, err := parseEmail(c.args[0])
	if err != nil {
		return err
	}
	pw, generated, err := c.password()
	if err != nil {
		return err
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	var p *store.Principal
	_, err = st.Update(ctx, func(tx store.Tx) error {
		if err := ensureFree(tx.Principals(), email); err != nil {
			return err
		}
		p = &store.Principal{Type: store.Individual, Email: email, Name: c.displayName(email)}
		if err := newPrincipal(tx, p); err != nil {
			return err
		}
		return tx.Principals().SetPasswordHash(p.ID, hash)
	})
	if err != nil {
		return err
	}
	if c.json() {
		o := principalOut{ID: p.ID, Type: kind(p), Email: p.Email, Name: p.Name, AccountID: p.Account}
		if generated {
			o.Password = pw
		}
		return c.printJSON(o)
	}
	if generated {
		return c.println(pw)
	}
	return nil
}

func userPasswd(ctx context.Context, st store.Store, c *call) error {
	email, err := parseEmail(c.args[0])
	if err != nil {
		return err
	}
	pw, generated, err := c.password()
	if err != nil {
		return err
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	_, err = st.Update(ctx, func(tx store.Tx) error {
		p, err := findUser(tx.Principals(), email, "user")
		if err != nil {
			return err
		}
		return tx.Principals().SetPasswordHash(p.ID, hash)
	})
	if err != nil || !generated {
		return err
	}
	if c.json() {
		return c.printJSON(struct {
			Email    string `json:"email"`
			Password string `json:"password"`
		}{email, pw})
	}
	return c.println(pw)
}

func userList(ctx context.Context, st store.Store, c *call) error {
	users := []principalOut{}
	err := st.View(ctx, func(tx store.Tx) error {
		users = users[:0]
		for p, err := range tx.Principals().All() {
			if err != nil {
				return err
			}
			if isUser(p) {
				users = append(users, principalOut{ID: p.ID, Type: kind(p), Email: p.Email, Name: p.Name, AccountID: p.Account})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(users, func(a, b principalOut) int { return strings.Compare(a.Email, b.Email) })
	if c.json() {
		return c.printJSON(users)
	}
	for _, u := range users {
		if err := c.println(u.Email, u.Name); err != nil {
			return err
		}
	}
	return nil
}

// userRemove deletes a user with its password and tokens and takes it out
// of every group. The records of its account stay in the store.
func userRemove(ctx context.Context, st store.Store, c *call) error {
	email, err := parseEmail(c.args[0])
	if err != nil {
		return err
	}
	var acct store.AccountID
	_, err = st.Update(ctx, func(tx store.Tx) error {
		pt := tx.Principals()
		u, err := findUser(pt, email, "user")
		if err != nil {
			return err
		}
		var groups []*store.Principal
		for p, err := range pt.All() {
			if err != nil {
				return err
			}
			if p.Type == store.Group && slices.Contains(p.Members, u.ID) {
				groups = append(groups, p)
			}
		}
		for _, g := range groups {
			g.Members = slices.DeleteFunc(g.Members, func(id store.PrincipalID) bool { return id == u.ID })
			if err := pt.Update(g); err != nil {
				return fmt.Errorf("update group %s: %w", g.Email, err)
			}
		}
		acct = u.Account
		return pt.Delete(u.ID)
	})
	if err != nil || acct == "" {
		return err
	}
	// The principal is gone, so nobody can reach the account any more;
	// its data goes after it.
	if err := st.DeleteAccount(ctx, acct); err != nil {
		return fmt.Errorf("user remove: delete the account's data: %w", err)
	}
	return nil
}

func groupAdd(ctx context.Context, st store.Store, c *call) error {
	email, err := parseEmail(c.args[0])
	if err != nil {
		return err
	}
	var members []string
	for _, m := range c.lists["member"] {
		me, err := parseEmail(m)
		if err != nil {
			return err
		}
		if !slices.Contains(members, me) {
			members = append(members, me)
		}
	}
	var p *store.Principal
	_, err = st.Update(ctx, func(tx store.Tx) error {
		pt := tx.Principals()
		if err := ensureFree(pt, email); err != nil {
			return err
		}
		p = &store.Principal{Type: store.Group, Email: email, Name: c.displayName(email),
			Archive: c.bools["archive"], Company: c.bools["company"]}
		for _, m := range members {
			u, err := findUser(pt, m, "member")
			if err != nil {
				return err
			}
			p.Members = append(p.Members, u.ID)
		}
		return newPrincipal(tx, p)
	})
	if err != nil || !c.json() {
		return err
	}
	return c.printJSON(principalOut{ID: p.ID, Type: kind(p), Email: p.Email, Name: p.Name,
		Members: members, Archive: p.Archive, Company: p.Company})
}

func groupMemberAdd(ctx context.Context, st store.Store, c *call) error {
	return groupMember(ctx, st, c, true)
}

func groupMemberRemove(ctx context.Context, st store.Store, c *call) error {
	return groupMember(ctx, st, c, false)
}

func groupMember(ctx context.Context, st store.Store, c *call, add bool) error {
	gEmail, err := parseEmail(c.args[0])
	if err != nil {
		return err
	}
	mEmail, err := parseEmail(c.args[1])
	if err != nil {
		return err
	}
	_, err = st.Update(ctx, func(tx store.Tx) error {
		pt := tx.Principals()
		g, err := findGroup(pt, gEmail)
		if err != nil {
			return err
		}
		u, err := findUser(pt, mEmail, "member")
		if err != nil {
			return err
		}
		in := slices.Contains(g.Members, u.ID)
		switch {
		case add && in:
			return usagef("%s is already a member of %s", mEmail, gEmail)
		case !add && !in:
			return usagef("%s is not a member of %s", mEmail, gEmail)
		case add:
			g.Members = append(g.Members, u.ID)
		default:
			g.Members = slices.DeleteFunc(g.Members, func(id store.PrincipalID) bool { return id == u.ID })
		}
		if err := pt.Update(g); err != nil {
			return err
		}
		// What u sees in the accounts g reaches changed: /changes from
		// before must not pretend otherwise.
		return acl.NoteMembershipChange(tx, g, u.ID)
	})
	return err
}

func sharedAdd(ctx context.Context, st store.Store, c *call) error {
	email, err := parseEmail(c.args[0])
	if err != nil {
		return err
	}
	var p *store.Principal
	_, err = st.Update(ctx, func(tx store.Tx) error {
		if err := ensureFree(tx.Principals(), email); err != nil {
			return err
		}
		p = &store.Principal{Type: store.Individual, Shared: true, Email: email, Name: c.displayName(email)}
		return newPrincipal(tx, p)
	})
	if err != nil || !c.json() {
		return err
	}
	return c.printJSON(principalOut{ID: p.ID, Type: kind(p), Email: p.Email, Name: p.Name, AccountID: p.Account})
}

func tokenCreate(ctx context.Context, st store.Store, c *call) error {
	email, err := parseEmail(c.args[0])
	if err != nil {
		return err
	}
	secret, secretHash, err := auth.NewToken()
	if err != nil {
		return fmt.Errorf("new token: %w", err)
	}
	var tok *store.Token
	_, err = st.Update(ctx, func(tx store.Tx) error {
		u, err := findUser(tx.Principals(), email, "user")
		if err != nil {
			return err
		}
		id, err := tx.NewID()
		if err != nil {
			return err
		}
		tok = &store.Token{ID: id, Principal: u.ID, Name: strings.TrimSpace(c.values["name"]), Created: time.Now().UTC()}
		return tx.Principals().CreateToken(tok, secretHash)
	})
	if err != nil {
		return err
	}
	if c.json() {
		return c.printJSON(tokenOut{ID: tok.ID, Email: email, Name: tok.Name, Created: tok.Created, Secret: secret})
	}
	return c.println(secret)
}

func tokenList(ctx context.Context, st store.Store, c *call) error {
	email, err := parseEmail(c.args[0])
	if err != nil {
		return err
	}
	toks := []tokenOut{}
	err = st.View(ctx, func(tx store.Tx) error {
		toks = toks[:0]
		u, err := findUser(tx.Principals(), email, "user")
		if err != nil {
			return err
		}
		for t, err := range tx.Principals().Tokens(u.ID) {
			if err != nil {
				return err
			}
			toks = append(toks, tokenOut{ID: t.ID, Email: email, Name: t.Name, Created: t.Created})
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(toks, func(a, b tokenOut) int { return a.Created.Compare(b.Created) })
	if c.json() {
		return c.printJSON(toks)
	}
	for _, t := range toks {
		if err := c.println(t.ID, t.Name, t.Created.Format(time.RFC3339)); err != nil {
			return err
		}
	}
	return nil
}

func tokenRevoke(ctx context.Context, st store.Store, c *call) error {
	id := c.args[0]
	_, err := st.Update(ctx, func(tx store.Tx) error {
		err := tx.Principals().DeleteToken(id)
		if errors.Is(err, store.ErrNotFound) {
			return usagef("unknown token %q", id)
		}
		return err
	})
	return err
}
