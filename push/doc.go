// Package push tells connected clients that data changed (RFC 8620 §7):
// a broker fed by the store's commits fans StateChange objects out to the
// principals who can see each account, and the EventSource endpoint
// (§7.3) streams them.
//
// Invariants:
//   - A commit never waits on a client: each subscriber keeps the latest
//     state per (account, type) it has not yet sent, and a slow client gets
//     one coalesced StateChange instead of a queue.
//   - The broker does not decide rights: it asks its Audience who may see
//     an account.
package push
