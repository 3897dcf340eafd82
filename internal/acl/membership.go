package acl

import (
	"encoding/binary"

	"github.com/jmapd/jmapd/store"
)

// A change of a group's members changes what the member (and, for a group
// member, each of its own members) may see in every account the group
// reaches, although no grant moved. It is recorded per member and account
// as the Mailbox, Email and Thread states at the change:
//
//	acl\0m\0MEMBER\0ACCT → 3 × uint64 big-endian (Mailbox, Email, Thread)
//
// /changes of those types from an earlier state then answers
// cannotCalculateChanges to anyone who has MEMBER among their identities
// (MembershipChangedSince), so that a client whose view moved resyncs.

// Indexes of the states a membership record holds.
const (
	MailboxState = iota
	EmailState
	ThreadState
)

var membershipTypes = [...]string{MailboxState: "Mailbox", EmailState: "Email", ThreadState: "Thread"}

func membershipKey(member store.PrincipalID, acct store.AccountID) string {
	return "acl\x00m\x00" + string(member) + "\x00" + string(acct)
}

// NoteMembershipChange records that member joined or left group, in every
// account group reaches (through grants to it or to groups it is in, and
// its own account when its members read it), and moves those accounts'
// Mailbox, Email and Thread states on by rewriting one record of each, so
// that a client syncing afresh gets a state after the change. Call it in
// the transaction that changes the members.
func NoteMembershipChange(tx store.Tx, group *store.Principal, member store.PrincipalID) error {
	d := NewDirectory()
	accts, err := d.Reachable(tx, group.ID)
	if err != nil {
		return err
	}
	if group.Account != "" && (group.Archive || group.Company) {
		accts = append(accts, group.Account)
	}
	for _, acct := range accts {
		var b [8 * len(membershipTypes)]byte
		for i, typ := range membershipTypes {
			st, err := tx.State(acct, typ)
			if err != nil {
				return err
			}
			binary.BigEndian.PutUint64(b[8*i:], uint64(st))
		}
		if err := tx.PutMeta(membershipKey(member, acct), b[:]); err != nil {
			return err
		}
		if err := Touch(tx, acct, membershipTypes[:]...); err != nil {
			return err
		}
	}
	return nil
}

// Touch moves the states of types in acct on by rewriting one record of
// each, unchanged: a client that synchronises afresh after a change of
// rights then gets a state later than the one the change was recorded at.
func Touch(tx store.Tx, acct store.AccountID, types ...string) error {
	for _, typ := range types {
		for o, err := range tx.Scan(acct, typ) {
			if err != nil {
				return err
			}
			if err := tx.Put(acct, typ, o.ID, o.Data); err != nil {
				return err
			}
			break
		}
	}
	return nil
}

// MembershipChangedSince reports whether a membership change concerning one
// of identities happened in acct after state since of the type at index
// typ (MailboxState, EmailState or ThreadState).
func MembershipChangedSince(tx store.Tx, identities []store.PrincipalID, acct store.AccountID, typ int, since store.State) (bool, error) {
	for _, p := range identities {
		b, err := tx.GetMeta(membershipKey(p, acct))
		if err != nil {
			return false, err
		}
		if len(b) == 8*len(membershipTypes) && uint64(since) <= binary.BigEndian.Uint64(b[8*typ:]) {
			return true, nil
		}
	}
	return false, nil
}
