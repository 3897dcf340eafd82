// Package push tells connected clients that data changed (RFC 8620 §7):
// a broker fed by the store's commits fans StateChange objects out to the
// principals who can see each account, and three channels carry them:
// EventSource (RFC 8620 §7.3), JMAP over WebSocket (RFC 8887, which also
// carries API requests) and Web Push to PushSubscriptions (RFC 8620 §7.2,
// RFC 8030/8291/8292).
//
// Invariants:
//   - A commit never waits on a client: each subscriber keeps the latest
//     state per (account, type) it has not yet sent, and a slow client gets
//     one coalesced StateChange instead of a queue.
//   - The broker does not decide rights: it asks its Audience who may see
//     an account.
//   - An idle EventSource (HTTP/1) or WebSocket connection holds one small
//     goroutine and no HTTP handler: writes run on goroutines started when
//     there is something to write, pings on timers.
//   - The event id and the pushState encode what the connection's client
//     has been told; a client coming back with one is sent what changed
//     since, never less.
//   - Nothing but the PushVerification goes to a PushSubscription's URL
//     until the client has set the verification code it carried.
//   - Tickets and access tokens in URLs are accepted only on the
//     EventSource and WebSocket endpoints and never logged.
package push
