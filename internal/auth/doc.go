// Package auth decides who sends an HTTP request: it checks the request's
// Authorization header against the principals and credentials in the store.
//
// Two schemes are accepted. "Basic" (RFC 7617) carries a principal's email
// address, compared case-insensitively, and its password; passwords are kept
// as argon2id hashes in the PHC string form. "Bearer" (RFC 6750 §2.1) carries
// a token secret made by NewToken; the store keeps only HashToken of it.
//
// Invariants:
//
//   - Only an individual principal that is not a shared mailbox logs in.
//     Groups, shared mailboxes and the other kinds of RFC 9670 §2 never do.
//   - Every failed attempt answers ErrUnauthorized, whatever the cause, and an
//     unknown address costs the same argon2 work as a wrong password, so the
//     answer does not tell which accounts exist.
//   - Verified credentials are cached for Options.CacheTTL under an HMAC of
//     the credentials with a key drawn at random by New, so only the exact
//     credentials that were verified can hit the cache and the cache holds
//     nothing from which a password could be recovered. Flush empties the
//     cache; a verification that was running while Flush ran is not cached.
//   - Failures are counted per client address and per account in fixed
//     windows. Once either has Options.MaxFailures failures in its window,
//     every attempt for it answers ErrThrottled until the window ends, right
//     credentials and cached ones included. A success removes only its own
//     provisional count, never other failures, so a valid login cannot be
//     used to reset a counter. Credentials found in the cache are known to
//     be right and are charged nothing, only checked against the counters,
//     so a user's own concurrent requests cannot throttle one another.
//   - The cache and the failure counters are bounded in size, and expired
//     entries are dropped as time passes.
package auth
