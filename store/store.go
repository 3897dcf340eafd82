package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"iter"
	"time"
)

// ErrNotFound is returned when the record does not exist or the caller may not
// see it. The two cases must answer the same on the wire.
var ErrNotFound = errors.New("store: not found")

// ErrExists is returned when a record with the same unique key (an email
// address, a token) already exists.
var ErrExists = errors.New("store: already exists")

// ErrConflict is returned by Update when a transaction kept conflicting with
// concurrent writers after the store's bounded retries.
var ErrConflict = errors.New("store: conflict after retries")

// ErrChangesPruned is returned by Changes when the requested state is older
// than the oldest change the log still holds.
var ErrChangesPruned = errors.New("store: changes since that state are no longer kept")

// ErrTxnTooBig is returned by Update when what fn wrote is more than one
// transaction of the store holds; nothing was written.
var ErrTxnTooBig = errors.New("store: transaction too big")

// ErrTooLarge is returned when a blob exceeds the size the caller allowed.
var ErrTooLarge = errors.New("store: too large")

// AccountID names an account: the unit of data ownership (RFC 8620 §1.6.2).
type AccountID string

// PrincipalID names a principal (RFC 9670 §2).
type PrincipalID string

// SystemAccount is the pseudo-account that holds server-wide records such as
// principals.
const SystemAccount AccountID = "_"

// PrincipalRecords is the record type principals are stored under in
// SystemAccount; its state changes whenever a principal does.
const PrincipalRecords = "Principal"

// State is a monotonically increasing counter for one (account, type).
type State uint64

// StateChange reports that a transaction advanced the state of a type in an
// account.
type StateChange struct {
	Account AccountID
	Type    string
	State   State
}

// Store is a storage engine.
type Store interface {
	// View runs fn in a read-only snapshot.
	View(ctx context.Context, fn func(tx Tx) error) error
	// Update runs fn in a read-write transaction, retrying it on conflicts,
	// and returns once the commit is durable, with the states it advanced.
	// fn must be safe to run more than once and must not do network I/O.
	Update(ctx context.Context, fn func(tx Tx) error) ([]StateChange, error)
	// Blobs gives access to the content-addressed blob store.
	Blobs() BlobStore
	// Subscribe calls fn after every durable commit that changed a state.
	// It returns a function that ends the subscription.
	Subscribe(fn func([]StateChange)) (cancel func())
	// DeleteAccount removes every record, state, change log entry and blob
	// reference of acct. Run it after the owning principal is gone; it is
	// not atomic, but running it again finishes an interrupted removal.
	DeleteAccount(ctx context.Context, acct AccountID) error
	// Size reports the bytes the store occupies on disk.
	Size() int64
	// Close flushes and closes the store.
	Close() error
}

// Object is a stored record with its id.
type Object struct {
	ID   string
	Data []byte
}

// Change is one change log entry: the ids a single commit created, updated
// and destroyed for one (account, type).
type Change struct {
	State     State    `json:"-"`
	Created   []string `json:"c,omitempty"`
	Updated   []string `json:"u,omitempty"`
	Destroyed []string `json:"d,omitempty"`
	// Props, when not empty, lists the only properties the updates touched
	// (RFC 8621 §2.2 updatedProperties); empty means "any".
	Props []string `json:"p,omitempty"`
}

// Tx is a transaction. Objects written through it are recorded in the change
// log and advance the type's state once per transaction.
type Tx interface {
	// NewID returns a fresh, never reused record id.
	NewID() (string, error)

	// State returns the current state of typ in acct (0 when nothing was
	// ever written).
	State(acct AccountID, typ string) (State, error)
	// States returns the state of every type ever written in acct.
	States(acct AccountID) (map[string]State, error)
	// Get returns the record, or ErrNotFound.
	Get(acct AccountID, typ, id string) ([]byte, error)
	// Scan yields every record of typ in acct in id order.
	Scan(acct AccountID, typ string) iter.Seq2[Object, error]
	// Create stores a new record and logs it as created.
	Create(acct AccountID, typ, id string, data []byte) error
	// Put replaces a record and logs it as updated.
	Put(acct AccountID, typ, id string, data []byte) error
	// PutProps replaces a record and logs it as updated in only the named
	// properties.
	PutProps(acct AccountID, typ, id string, data []byte, props []string) error
	// Delete removes a record and logs it as destroyed.
	Delete(acct AccountID, typ, id string) error
	// Changes returns the log entries after since, in order, stopping after
	// the entry that brings the number of ids to at least max (0: no limit).
	// It returns ErrChangesPruned when since is older than the log.
	Changes(acct AccountID, typ string, since State, max int) (entries []Change, more bool, err error)

	// GetMeta and PutMeta hold small keyed values outside the change log
	// (indexes, counters, settings). A nil value from GetMeta means absent.
	GetMeta(key string) ([]byte, error)
	PutMeta(key string, value []byte) error
	DeleteMeta(key string) error
	// ScanMeta yields the meta keys that start with prefix, in order.
	ScanMeta(prefix string) iter.Seq2[Meta, error]
	// ScanMetaReverse yields the meta keys that start with prefix, last
	// first.
	ScanMetaReverse(prefix string) iter.Seq2[Meta, error]

	// Principal records and credentials.
	Principals() PrincipalTx

	// Gathered returns the transaction's value for key, made by start on
	// first use: work a transaction gathers as it goes and writes once at
	// its end. The finish function start returns runs after the
	// transaction's function has returned without error and before the
	// commit, in the order of first use; its error fails the transaction.
	// In a read-only transaction finish never runs.
	Gathered(key any, start func() (value any, finish func() error)) any

	// BlobRef and BlobUnref count references to a blob held by records of
	// acct; a referenced blob stays readable from that account.
	BlobRef(acct AccountID, id BlobID) error
	BlobUnref(acct AccountID, id BlobID) error
	// BlobAccess reports whether acct may read the blob: it uploaded it
	// within the grace period or a record of it references it.
	BlobAccess(acct AccountID, id BlobID) (BlobInfo, error)
}

// BlobTx is a Tx that can also store blobs: they exist if and only if the
// transaction commits.
type BlobTx interface {
	Tx
	// PutBlobs stores blobs as BlobStore.UploadBatch does, within the
	// transaction. Content too large for one transaction is refused with
	// ErrTooLarge; UploadBatch takes it.
	PutBlobs(acct AccountID, blobs []BlobInput) ([]BlobInfo, error)
}

// Meta is a key and value from ScanMeta.
type Meta struct {
	Key   string
	Value []byte
}

// BlobID names a blob by its content: "G" followed by the hex SHA-256.
type BlobID string

// BlobIDOf returns the id of a blob whose content is data.
func BlobIDOf(data []byte) BlobID {
	sum := sha256.Sum256(data)
	return BlobID("G" + hex.EncodeToString(sum[:]))
}

// CompositeID returns the id of a blob whose content is prefix followed by
// base.
func CompositeID(prefix, base []byte) BlobID {
	h := sha256.New()
	h.Write(prefix)
	h.Write(base)
	return BlobID("G" + hex.EncodeToString(h.Sum(nil)))
}

// BlobInfo describes a stored blob.
type BlobInfo struct {
	ID   BlobID
	Size int64
	// Type is the media type given when it was last uploaded, if any.
	Type string
}

// BlobInput is one blob of an UploadBatch.
type BlobInput struct {
	Type string
	Data []byte
	// Base, when set, makes a composite blob: its content is Data followed
	// by the content of the blob Base, which the account must be able to
	// read (or which comes earlier in the same batch). Only Data is
	// stored; the blob's id and size are those of the whole content.
	Base BlobID
	// ID, when set, is the blob's id as BlobIDOf (or CompositeID) gives
	// it for the whole content, worked out by the caller; the store takes
	// it as it is.
	ID BlobID
	// Held, for BlobTx.PutBlobs only, stores the blob without an upload
	// grant: in the same transaction the caller references it (BlobRef),
	// or it is the base of composites of the same batch, which hold it.
	// A delivery's copies are stored so, and leave nothing to collect.
	Held bool
}

// BlobStore holds blob contents, deduplicated by SHA-256.
type BlobStore interface {
	// Upload stores data read from r (at most max bytes, or ErrTooLarge and
	// nothing kept) and grants acct access for the grace period.
	Upload(ctx context.Context, acct AccountID, typ string, r io.Reader, max int64) (BlobInfo, error)
	// UploadBatch stores several blobs, granting acct access to each, with
	// one durable commit.
	UploadBatch(ctx context.Context, acct AccountID, blobs []BlobInput) ([]BlobInfo, error)
	// Open returns a reader of bytes [off, off+n) of a blob (n < 0: to the
	// end), after checking that acct may read it; ErrNotFound otherwise.
	Open(ctx context.Context, acct AccountID, id BlobID, off, n int64) (BlobInfo, io.ReadSeekCloser, error)
	// Collect removes blobs nothing references and whose upload grace ended
	// before now, and returns how many it removed.
	Collect(ctx context.Context, now time.Time) (int, error)
}

// PrincipalTx reads and writes principals within a transaction.
type PrincipalTx interface {
	Get(id PrincipalID) (*Principal, error)
	ByEmail(email string) (*Principal, error)
	All() iter.Seq2[*Principal, error]
	Create(p *Principal) error
	Update(p *Principal) error
	Delete(id PrincipalID) error

	PasswordHash(id PrincipalID) (string, error)
	SetPasswordHash(id PrincipalID, hash string) error

	CreateToken(t *Token, secretHash string) error
	TokenBySecret(secretHash string) (*Token, error)
	Tokens(id PrincipalID) iter.Seq2[*Token, error]
	DeleteToken(tokenID string) error
}

// PrincipalType is the kind of a principal (RFC 9670 §2).
type PrincipalType string

// Principal kinds of RFC 9670 §2. A shared mailbox is an Individual with
// Shared set: RFC 9670 has no kind of its own for it.
const (
	Individual PrincipalType = "individual"
	Group      PrincipalType = "group"
	Resource   PrincipalType = "resource"
	Location   PrincipalType = "location"
	Other      PrincipalType = "other"
)

// Principal is a user, group, shared mailbox or other entity (RFC 9670 §2).
type Principal struct {
	ID          PrincipalID   `json:"id"`
	Type        PrincipalType `json:"type"`
	Name        string        `json:"name"`
	Description string        `json:"description,omitempty"`
	Email       string        `json:"email"`
	TimeZone    string        `json:"timeZone,omitempty"`
	// Account is the account the principal owns; empty for groups.
	Account AccountID `json:"account,omitempty"`
	// Shared marks a shared mailbox principal (a team address): it owns a
	// non-personal account and no one logs in as it.
	Shared bool `json:"shared,omitempty"`
	// Members lists a group's member principals.
	Members []PrincipalID `json:"members,omitempty"`
	// Archive keeps a group's own copy of mail sent to it.
	Archive bool `json:"archive,omitempty"`
	// Company makes mail delivered to one member visible to every member.
	Company bool      `json:"company,omitempty"`
	Created time.Time `json:"created"`
}

// Token is a bearer token for a principal; only a hash of its secret is
// stored.
type Token struct {
	ID        string      `json:"id"`
	Principal PrincipalID `json:"principal"`
	Name      string      `json:"name,omitempty"`
	Created   time.Time   `json:"created"`
}
