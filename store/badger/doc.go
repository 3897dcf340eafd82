// Package badger is the embedded default storage engine of jmapd, on
// github.com/dgraph-io/badger/v4.
//
// # Key space
//
// Keys are byte strings whose parts are separated by 0x00; account ids, type
// names and record ids never contain it.
//
//	o\0ACCT\0TYPE\0ID            record JSON
//	s\0ACCT\0TYPE                state counter, uint64 big-endian
//	c\0ACCT\0TYPE\0STATE         change log entry (JSON), STATE uint64 big-endian
//	cm\0ACCT\0TYPE               oldest state the change log still covers
//	m\0KEY                       meta value (indexes, settings) set by callers
//	pe\0EMAIL                    principal id by lower-cased email
//	pw\0PRINCIPAL                argon2id password hash
//	tk\0SECRETHASH               bearer token JSON
//	tp\0PRINCIPAL\0TOKENID       secret hash of a principal's token
//	bd\0SHA\0CHUNK               blob content, 1 MiB chunks, CHUNK uint32 big-endian
//	bm\0SHA                      blob meta: size, references, live uploads, type;
//	                             for a composite blob also its base SHA and its prefix
//	                             (it has no bd chunks; it holds one reference on its base);
//	                             binary (blob.go, blobMetaBinary), or JSON when written
//	                             before that form
//	br\0ACCT\0SHA                references to the blob by records of ACCT (uint64)
//	bu\0ACCT\0SHA                upload grant: expiry, unix nanoseconds (uint64)
//	bx\0EXPIRY\0ACCT\0SHA        the same grant, ordered by expiry for collection
//	seq\0id                      Badger sequence for record ids
//
// Principals are records of type "Principal" in the system account "_", so
// they get a state and a change log like any other type.
//
// # Concurrent Updates
//
// Updates do not run side by side: one caller at a time leads, running the
// Updates waiting at that moment one after the other in one Badger
// transaction (commit.go), so writers of the same keys (an account's
// states, a mailbox's counts) never conflict. Each Update still gets its
// own states and change log entries; one that fails is left out and the
// others run again.
//
// # Durability
//
// Badger runs with SyncWrites off; Update commits and then waits on a group
// syncer that runs one db.Sync for every batch of commits waiting at the same
// time, so an acknowledged write is on disk without one fsync per commit.
package badger
