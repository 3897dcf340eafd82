// Package acl is the rights model: MailboxRights (RFC 8621 §2 with mayShare
// from draft-ietf-jmap-mail-sharing §2), the four levels people pick
// (DESIGN.md "Accounts, principals, sharing"), the grants stored on
// mailboxes and accounts, group membership, and from these what a principal
// may see and do in an account.
//
// Grants live in the store's meta space, outside the mailbox records:
//
//	acl\x00f\x00ACCOUNT\x00MAILBOX\x00GRANTEE → rights   (forward: shareWith)
//	acl\x00r\x00GRANTEE\x00ACCOUNT\x00MAILBOX → rights   (reverse: what a grantee reaches)
//	acl\x00epoch                              → counter  (bumped on every grant change)
//
// MAILBOX is "*" for a grant on the whole account, which applies to every
// mailbox, present and future, unless the same grantee has a grant of its
// own on that mailbox: the mailbox grant then wins, even when it grants
// nothing. Rights are stored as a bit set.
package acl

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Rights is what a principal may do in one mailbox (RFC 8621 §2
// MailboxRights, plus mayShare of draft-ietf-jmap-mail-sharing §2).
type Rights struct {
	ReadItems   bool
	AddItems    bool
	RemoveItems bool
	SetSeen     bool
	SetKeywords bool
	CreateChild bool
	Rename      bool
	Delete      bool
	Submit      bool
	Share       bool
}

// rightNames pairs each right with its JMAP property name, in the order of
// RFC 8621 §2.
var rightNames = []struct {
	name string
	get  func(*Rights) *bool
}{
	{"mayReadItems", func(r *Rights) *bool { return &r.ReadItems }},
	{"mayAddItems", func(r *Rights) *bool { return &r.AddItems }},
	{"mayRemoveItems", func(r *Rights) *bool { return &r.RemoveItems }},
	{"maySetSeen", func(r *Rights) *bool { return &r.SetSeen }},
	{"maySetKeywords", func(r *Rights) *bool { return &r.SetKeywords }},
	{"mayCreateChild", func(r *Rights) *bool { return &r.CreateChild }},
	{"mayRename", func(r *Rights) *bool { return &r.Rename }},
	{"mayDelete", func(r *Rights) *bool { return &r.Delete }},
	{"maySubmit", func(r *Rights) *bool { return &r.Submit }},
	{"mayShare", func(r *Rights) *bool { return &r.Share }},
}

// ShareRight is the property name of the right to change shareWith; it
// exists only for clients using urn:ietf:params:jmap:mail:share.
const ShareRight = "mayShare"

// All is every right: what an account's owner has in each of its mailboxes.
var All = Rights{true, true, true, true, true, true, true, true, true, true}

// The four levels people pick from (DESIGN.md). They are presets: rights
// that match no level are kept and reported as they are.
var (
	Read         = Rights{ReadItems: true}
	ReadAdvanced = Rights{ReadItems: true, SetSeen: true, SetKeywords: true}
	Write        = Rights{ReadItems: true, SetSeen: true, SetKeywords: true, AddItems: true, RemoveItems: true,
		CreateChild: true, Rename: true, Delete: true}
	Manage = All
)

// levels lists the presets by name, weakest first.
var levels = []struct {
	name   string
	rights Rights
}{{"read", Read}, {"readAdvanced", ReadAdvanced}, {"write", Write}, {"manage", Manage}}

// ParseLevel returns the rights of a level name; "none" is no rights.
func ParseLevel(s string) (Rights, error) {
	if s == "none" {
		return Rights{}, nil
	}
	for _, l := range levels {
		if l.name == s {
			return l.rights, nil
		}
	}
	names := []string{}
	for _, l := range levels {
		names = append(names, l.name)
	}
	return Rights{}, fmt.Errorf("acl: unknown level %q (want %s or none)", s, strings.Join(names, ", "))
}

// Level names the preset r equals, or "" when it matches none ("none" for
// no rights).
func (r Rights) Level() string {
	if r == (Rights{}) {
		return "none"
	}
	for _, l := range levels {
		if l.rights == r {
			return l.name
		}
	}
	return ""
}

// Any reports whether r grants anything.
func (r Rights) Any() bool { return r != Rights{} }

// Union returns the rights of either.
func (r Rights) Union(o Rights) Rights {
	for _, n := range rightNames {
		if *n.get(&o) {
			*n.get(&r) = true
		}
	}
	return r
}

// Covers reports whether r has every right o has.
func (r Rights) Covers(o Rights) bool { return r.Union(o) == r }

// Modifies reports whether r allows any change at all: anything beyond
// reading (RFC 8620 §2 isReadOnly).
func (r Rights) Modifies() bool {
	w := r
	w.ReadItems = false
	return w.Any()
}

// Map returns r as a MailboxRights object; mayShare is included only when
// withShare is set (the client opted into the sharing capability).
func (r Rights) Map(withShare bool) map[string]any {
	m := make(map[string]any, len(rightNames))
	for _, n := range rightNames {
		if n.name == ShareRight && !withShare {
			continue
		}
		m[n.name] = *n.get(&r)
	}
	return m
}

// MarshalJSON writes r as a MailboxRights object with every right.
func (r Rights) MarshalJSON() ([]byte, error) { return json.Marshal(r.Map(true)) }

// ParseMap reads a MailboxRights object. Every key must be a known right
// with a boolean value; rights left out are false.
func ParseMap(m map[string]any) (Rights, error) {
	var r Rights
	for k, v := range m {
		i := slices.IndexFunc(rightNames, func(n struct {
			name string
			get  func(*Rights) *bool
		}) bool {
			return n.name == k
		})
		if i < 0 {
			return Rights{}, fmt.Errorf("acl: unknown right %q", k)
		}
		b, ok := v.(bool)
		if !ok {
			return Rights{}, fmt.Errorf("acl: right %q must be a boolean", k)
		}
		*rightNames[i].get(&r) = b
	}
	return r, nil
}

// bits packs r for storage, one bit per right in the order of rightNames.
func (r Rights) bits() []byte {
	var v uint16
	for i, n := range rightNames {
		if *n.get(&r) {
			v |= 1 << i
		}
	}
	return []byte{byte(v), byte(v >> 8)}
}

func fromBits(b []byte) Rights {
	var r Rights
	if len(b) < 2 {
		return r
	}
	v := uint16(b[0]) | uint16(b[1])<<8
	for i, n := range rightNames {
		if v&(1<<i) != 0 {
			*n.get(&r) = true
		}
	}
	return r
}
