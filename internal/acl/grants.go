package acl

import (
	"encoding/binary"
	"strings"

	"github.com/jmapd/jmapd/store"
)

// WholeAccount is the mailbox name of a grant on a whole account.
const WholeAccount = "*"

const (
	forwardPrefix = "acl\x00f\x00"
	reversePrefix = "acl\x00r\x00"
	lostPrefix    = "acl\x00l\x00"
	epochKey      = "acl\x00epoch"
)

func forwardKey(acct store.AccountID, mailbox string, grantee store.PrincipalID) string {
	return forwardPrefix + string(acct) + "\x00" + mailbox + "\x00" + string(grantee)
}

func reverseKey(grantee store.PrincipalID, acct store.AccountID, mailbox string) string {
	return reversePrefix + string(grantee) + "\x00" + string(acct) + "\x00" + mailbox
}

// lostKey marks that grantee lost every right on a mailbox (or the whole
// account) it once had, so that /changes reports it destroyed to them
// rather than hiding a change they could once see.
func lostKey(grantee store.PrincipalID, acct store.AccountID, mailbox string) string {
	return lostPrefix + string(grantee) + "\x00" + string(acct) + "\x00" + mailbox
}

// Grant is one stored grant.
type Grant struct {
	Account store.AccountID
	Mailbox string // a mailbox id, or WholeAccount
	Grantee store.PrincipalID
	Rights  Rights
}

// Stored returns the grant of grantee on mailbox, and whether there is one.
func Stored(tx store.Tx, acct store.AccountID, mailbox string, grantee store.PrincipalID) (Rights, bool, error) {
	v, err := tx.GetMeta(forwardKey(acct, mailbox, grantee))
	if err != nil || v == nil {
		return Rights{}, false, err
	}
	return fromBits(v), true, nil
}

// Put stores the grant of grantee on mailbox. On a mailbox, no rights are
// kept as an explicit "nothing here" when the grantee holds a grant on the
// whole account, and forgotten otherwise; on the whole account, no rights
// remove the grant.
func Put(tx store.Tx, acct store.AccountID, mailbox string, grantee store.PrincipalID, r Rights) error {
	keep := r.Any()
	if !keep && mailbox != WholeAccount {
		_, whole, err := Stored(tx, acct, WholeAccount, grantee)
		if err != nil {
			return err
		}
		keep = whole
	}
	if err := bumpEpoch(tx); err != nil {
		return err
	}
	old, had, err := Stored(tx, acct, mailbox, grantee)
	if err != nil {
		return err
	}
	if !had && mailbox != WholeAccount {
		if old, had, err = Stored(tx, acct, WholeAccount, grantee); err != nil {
			return err
		}
	}
	if r.Any() {
		if err := tx.DeleteMeta(lostKey(grantee, acct, mailbox)); err != nil {
			return err
		}
	} else if had && old.Any() {
		if err := tx.PutMeta(lostKey(grantee, acct, mailbox), []byte{1}); err != nil {
			return err
		}
	}
	fk, rk := forwardKey(acct, mailbox, grantee), reverseKey(grantee, acct, mailbox)
	if !keep {
		if err := tx.DeleteMeta(fk); err != nil {
			return err
		}
		return tx.DeleteMeta(rk)
	}
	if err := tx.PutMeta(fk, r.bits()); err != nil {
		return err
	}
	return tx.PutMeta(rk, r.bits())
}

// OnMailbox returns the grants stored on mailbox (not those on the whole
// account).
func OnMailbox(tx store.Tx, acct store.AccountID, mailbox string) ([]Grant, error) {
	prefix := forwardPrefix + string(acct) + "\x00" + mailbox + "\x00"
	var out []Grant
	for m, err := range tx.ScanMeta(prefix) {
		if err != nil {
			return nil, err
		}
		out = append(out, Grant{Account: acct, Mailbox: mailbox,
			Grantee: store.PrincipalID(m.Key[len(prefix):]), Rights: fromBits(m.Value)})
	}
	return out, nil
}

// ShareWith returns the effective grants on mailbox: the whole-account
// grants overlaid by the mailbox's own, without the empty ones (the
// Mailbox's shareWith, draft-ietf-jmap-mail-sharing §2).
func ShareWith(tx store.Tx, acct store.AccountID, mailbox string) (map[store.PrincipalID]Rights, error) {
	whole, err := OnMailbox(tx, acct, WholeAccount)
	if err != nil {
		return nil, err
	}
	own, err := OnMailbox(tx, acct, mailbox)
	if err != nil {
		return nil, err
	}
	out := map[store.PrincipalID]Rights{}
	for _, g := range whole {
		out[g.Grantee] = g.Rights
	}
	for _, g := range own {
		out[g.Grantee] = g.Rights
	}
	for p, r := range out {
		if !r.Any() {
			delete(out, p)
		}
	}
	return out, nil
}

// SetShareWith makes the effective grants on mailbox equal want, writing
// mailbox grants where they differ. It returns the grantees whose rights
// changed, with their rights before and after.
func SetShareWith(tx store.Tx, acct store.AccountID, mailbox string, want map[store.PrincipalID]Rights) ([]Change, error) {
	cur, err := ShareWith(tx, acct, mailbox)
	if err != nil {
		return nil, err
	}
	var changes []Change
	seen := map[store.PrincipalID]bool{}
	apply := func(p store.PrincipalID, r Rights) error {
		if seen[p] {
			return nil
		}
		seen[p] = true
		if cur[p] == r {
			return nil
		}
		if err := Put(tx, acct, mailbox, p, r); err != nil {
			return err
		}
		changes = append(changes, Change{Account: acct, Mailbox: mailbox, Grantee: p, Old: cur[p], New: r})
		return nil
	}
	for p, r := range want {
		if err := apply(p, r); err != nil {
			return nil, err
		}
	}
	for p := range cur {
		if err := apply(p, Rights{}); err != nil {
			return nil, err
		}
	}
	return changes, nil
}

// Change is a change of one grantee's rights on a mailbox (or on the whole
// account), for share notifications.
type Change struct {
	Account  store.AccountID
	Mailbox  string
	Grantee  store.PrincipalID
	Old, New Rights
}

// ForgetMailbox removes every grant on a mailbox being destroyed.
func ForgetMailbox(tx store.Tx, acct store.AccountID, mailbox string) error {
	gs, err := OnMailbox(tx, acct, mailbox)
	if err != nil {
		return err
	}
	for _, g := range gs {
		if err := tx.DeleteMeta(forwardKey(acct, mailbox, g.Grantee)); err != nil {
			return err
		}
		if err := tx.DeleteMeta(reverseKey(g.Grantee, acct, mailbox)); err != nil {
			return err
		}
		if g.Rights.Any() {
			if err := tx.PutMeta(lostKey(g.Grantee, acct, mailbox), []byte{1}); err != nil {
				return err
			}
		}
	}
	if len(gs) > 0 {
		return bumpEpoch(tx)
	}
	return nil
}

// ForgetPrincipal removes every grant to and on the accounts of a principal
// being removed.
func ForgetPrincipal(tx store.Tx, p store.PrincipalID, acct store.AccountID) error {
	var keys []string
	for m, err := range tx.ScanMeta(reversePrefix + string(p) + "\x00") {
		if err != nil {
			return err
		}
		rest := strings.SplitN(m.Key[len(reversePrefix)+len(p)+1:], "\x00", 2)
		if len(rest) == 2 {
			keys = append(keys, m.Key, forwardKey(store.AccountID(rest[0]), rest[1], p))
		}
	}
	if acct != "" {
		prefix := forwardPrefix + string(acct) + "\x00"
		for m, err := range tx.ScanMeta(prefix) {
			if err != nil {
				return err
			}
			rest := strings.SplitN(m.Key[len(prefix):], "\x00", 2)
			if len(rest) == 2 {
				keys = append(keys, m.Key, reverseKey(store.PrincipalID(rest[1]), acct, rest[0]))
			}
		}
	}
	for _, k := range keys {
		if err := tx.DeleteMeta(k); err != nil {
			return err
		}
	}
	return bumpEpoch(tx)
}

// granted yields the grants held by grantee in acct (every account when
// acct is empty).
func granted(tx store.Tx, grantee store.PrincipalID, acct store.AccountID, yield func(Grant) error) error {
	prefix := reversePrefix + string(grantee) + "\x00"
	if acct != "" {
		prefix += string(acct) + "\x00"
	}
	base := len(reversePrefix) + len(grantee) + 1
	for m, err := range tx.ScanMeta(prefix) {
		if err != nil {
			return err
		}
		rest := strings.SplitN(m.Key[base:], "\x00", 2)
		if len(rest) != 2 {
			continue
		}
		if err := yield(Grant{Account: store.AccountID(rest[0]), Mailbox: rest[1], Grantee: grantee, Rights: fromBits(m.Value)}); err != nil {
			return err
		}
	}
	return nil
}

// grantees yields every grant on the mailboxes and the whole of acct.
func grantees(tx store.Tx, acct store.AccountID, yield func(Grant) error) error {
	prefix := forwardPrefix + string(acct) + "\x00"
	for m, err := range tx.ScanMeta(prefix) {
		if err != nil {
			return err
		}
		rest := strings.SplitN(m.Key[len(prefix):], "\x00", 2)
		if len(rest) != 2 {
			continue
		}
		if err := yield(Grant{Account: acct, Mailbox: rest[0], Grantee: store.PrincipalID(rest[1]), Rights: fromBits(m.Value)}); err != nil {
			return err
		}
	}
	return nil
}

// Epoch returns a counter that changes whenever any grant does.
func Epoch(tx store.Tx) (uint64, error) {
	v, err := tx.GetMeta(epochKey)
	if err != nil || len(v) != 8 {
		return 0, err
	}
	return binary.BigEndian.Uint64(v), nil
}

// BumpEpoch advances the epoch; subscription changes in shared accounts use
// it too, since they change which accounts a session lists.
func BumpEpoch(tx store.Tx) error { return bumpEpoch(tx) }

func bumpEpoch(tx store.Tx) error {
	n, err := Epoch(tx)
	if err != nil {
		return err
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n+1)
	return tx.PutMeta(epochKey, b[:])
}
