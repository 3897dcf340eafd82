package methods

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jmapd/jmapd/internal/delivery"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// CapSubmission is the JMAP capability of Identity and EmailSubmission
// (RFC 8621 §1.3.2).
const CapSubmission = "urn:ietf:params:jmap:submission"

// CapVacation is the JMAP capability of VacationResponse (RFC 8621
// §1.3.3).
const CapVacation = "urn:ietf:params:jmap:vacationresponse"

// SendAs decides whether caller may send mail from address in account
// acct: as the From of a message, the email of an Identity, or the
// envelope sender. The default lets a user send only from their own
// address in their own personal account; the sharing rules (a shared
// mailbox's address for those who manage it) replace it. A group's
// address is never allowed.
var SendAs = func(ctx context.Context, tx store.Tx, caller store.PrincipalID, acct store.AccountID, address string) (bool, error) {
	p, err := tx.Principals().Get(caller)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return p.Type == store.Individual && !p.Shared && p.Account == acct && strings.EqualFold(p.Email, address), nil
}

// identityType is the Identity data type (RFC 8621 §6).
var identityType = &jmap.Type{
	Name:       "Identity",
	Capability: CapSubmission,
	Properties: []string{"id", "name", "email", "replyTo", "bcc", "textSignature", "htmlSignature", "mayDelete"},
	ServerSet:  []string{"mayDelete"},
	Immutable:  []string{"email"},
	Defaults: func() map[string]any {
		return map[string]any{"name": "", "replyTo": nil, "bcc": nil, "textSignature": "", "htmlSignature": "",
			"mayDelete": true}
	},
	Validate:  validateIdentity,
	OnDestroy: destroyIdentity,
}

func registerIdentity(r *jmap.Registry, accts *Accounts) {
	r.Register(identityType, "get", "changes", "set")
	accts.AddProvisioner(provisionIdentity)
}

// provisionIdentity gives a new account an Identity for its owner's
// address, which cannot be deleted.
func provisionIdentity(tx store.Tx, acct store.AccountID) error {
	// The owner's principal id is the account id (internal/admin).
	p, err := tx.Principals().Get(store.PrincipalID(acct))
	if errors.Is(err, store.ErrNotFound) || (err == nil && (p.Account != acct || p.Type == store.Group)) {
		return nil
	}
	if err != nil {
		return err
	}
	id, err := tx.NewID()
	if err != nil {
		return err
	}
	m := identityType.Defaults()
	m["id"], m["name"], m["email"], m["mayDelete"] = id, p.Name, p.Email, false
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return tx.Create(acct, "Identity", id, b)
}

// validAddressList checks an EmailAddress[]|null value.
func validAddressList(v any) bool {
	if v == nil {
		return true
	}
	list, ok := v.([]any)
	if !ok {
		return false
	}
	for _, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			return false
		}
		for k := range m {
			if k != "name" && k != "email" {
				return false
			}
		}
		if n, ok := m["name"]; ok && n != nil {
			if _, ok := n.(string); !ok {
				return false
			}
		}
		e, ok := m["email"].(string)
		if !ok {
			return false
		}
		if _, err := delivery.ParseAddress(e); err != nil {
			return false
		}
	}
	return true
}

func validateIdentity(ctx context.Context, tx store.Tx, acct store.AccountID, obj, old map[string]any) *jmap.SetError {
	for _, p := range []string{"name", "textSignature", "htmlSignature"} {
		if _, ok := obj[p].(string); !ok {
			return jmap.InvalidProperties(p+" must be a string", p)
		}
	}
	for _, p := range []string{"replyTo", "bcc"} {
		if !validAddressList(obj[p]) {
			return jmap.InvalidProperties(p+" must be a list of EmailAddress objects or null", p)
		}
	}
	email, ok := obj["email"].(string)
	if !ok {
		return jmap.InvalidProperties("email is required", "email")
	}
	if old != nil {
		return nil
	}
	norm, err := delivery.ParseAddress(email)
	if err != nil && !strings.HasPrefix(email, "*@") {
		return jmap.InvalidProperties("email must be an email address", "email")
	}
	if err == nil {
		obj["email"] = norm
	}
	c := jmap.CallerFrom(ctx)
	if c == nil {
		return jmap.NewSetError("forbiddenFrom", "")
	}
	may, err := SendAs(ctx, tx, c.Principal, acct, email)
	if err != nil {
		return jmap.NewSetError(jmap.ErrServerFail, "")
	}
	if !may {
		// RFC 8621 §6.3.
		return jmap.NewSetError("forbiddenFrom", fmt.Sprintf("you may not send as %s", email))
	}
	obj["mayDelete"] = true
	return nil
}

func destroyIdentity(ctx context.Context, tx store.Tx, acct store.AccountID, obj map[string]any) *jmap.SetError {
	if obj["mayDelete"] == false {
		return jmap.NewSetError(jmap.SetForbidden, "this identity cannot be deleted") // RFC 8621 §6
	}
	return nil
}

// loadIdentity returns a stored Identity.
func loadIdentity(tx store.Tx, acct store.AccountID, id string) (map[string]any, error) {
	b, err := tx.Get(acct, "Identity", id)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

// identityAllows reports whether an Identity's email covers addr: the same
// address, or any address of the domain for "*@domain" (RFC 8621 §6).
func identityAllows(identity, addr string) bool {
	if d, ok := strings.CutPrefix(identity, "*@"); ok {
		return strings.EqualFold(delivery.Domain(addr), d)
	}
	return strings.EqualFold(identity, addr)
}

// UpgradeAccounts gives accounts provisioned before sending existed what
// new accounts get now: the owner's Identity and the VacationResponse.
// It runs at start and does nothing for accounts that have them.
func UpgradeAccounts(ctx context.Context, st store.Store) error {
	var accts []store.AccountID
	err := st.View(ctx, func(tx store.Tx) error {
		for p, err := range tx.Principals().All() {
			if err != nil {
				return err
			}
			if p.Account == "" {
				continue
			}
			done, err := tx.GetMeta(provisionedKey(p.Account))
			if err != nil {
				return err
			}
			if done == nil {
				continue // provisioned on first use, with everything
			}
			_, err = tx.Get(p.Account, "VacationResponse", vacationID)
			if errors.Is(err, store.ErrNotFound) {
				accts = append(accts, p.Account)
			} else if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, acct := range accts {
		_, err := st.Update(ctx, func(tx store.Tx) error {
			if _, err := tx.Get(acct, "VacationResponse", vacationID); err == nil {
				return nil
			}
			n := 0
			for _, err := range tx.Scan(acct, "Identity") {
				if err != nil {
					return err
				}
				n++
			}
			if n == 0 {
				if err := provisionIdentity(tx, acct); err != nil {
					return err
				}
			}
			return provisionVacation(tx, acct)
		})
		if err != nil {
			return fmt.Errorf("upgrade account %s: %w", acct, err)
		}
	}
	return nil
}
