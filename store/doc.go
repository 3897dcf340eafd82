// Package store is the storage contract of jmapd: accounts' object records,
// their per-type states and change logs, content-addressed blobs, principals,
// credentials and tokens.
//
// Invariants every engine keeps:
//   - Every write runs inside Update; Update returns only once the commit is
//     durable, and reports which (account, type) states it advanced.
//   - A state is a counter per (account, type) that grows by exactly one for
//     each committed transaction that touched that type in that account; the
//     change log holds one entry per such state.
//   - A record that the caller may not see and one that does not exist are
//     reported the same way (ErrNotFound).
//
// The package knows nothing of JMAP wire types: records are opaque JSON
// documents keyed by account, type name and id.
package store
