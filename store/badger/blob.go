package badger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/jmapd/jmapd/store"
)

const chunkSize = 1 << 20

// inlineUpload is the most content an upload writes inside its metadata
// transaction: its 1 MiB chunks go to the value log, so a transaction
// (capped near 15% of a 32 MB memtable) counts only a pointer for each.
const inlineUpload = 4 << 20

type blobMeta struct {
	Size    int64  `json:"s"`
	Refs    int64  `json:"r"`
	Uploads int64  `json:"u"`
	Type    string `json:"t,omitempty"`
	// Base and Prefix make a composite blob: its content is Prefix
	// followed by the content of the plain blob Base, which it holds one
	// reference on (counted in the base's Refs); it has no chunks.
	Base   string `json:"b,omitempty"`
	Prefix []byte `json:"p,omitempty"`
}

type blobStore struct{ d *DB }

// errChunksGone means the blob's content was collected between writing it and
// recording the upload: write it again.
var errChunksGone = errors.New("blob content collected meanwhile")

func shaOf(id store.BlobID) (string, bool) {
	s := string(id)
	if len(s) != 65 || s[0] != 'G' {
		return "", false
	}
	if _, err := hex.DecodeString(s[1:]); err != nil {
		return "", false
	}
	return s[1:], true
}

func (t *tx) blobMeta(sha string) (*blobMeta, error) {
	v, err := t.get(blobMetaKey(sha))
	if err != nil {
		return nil, err
	}
	var m blobMeta
	if err := decodeBlobMeta(v, &m); err != nil {
		return nil, fmt.Errorf("blob meta %s: %w", sha, err)
	}
	return &m, nil
}

func (t *tx) putBlobMeta(sha string, m *blobMeta) error {
	return t.txn.Set(blobMetaKey(sha), m.encode())
}

// blobMetaBinary is the first octet of a blob meta in its binary form:
// the octet, then size, references and uploads as varints, then type,
// base and prefix, each a uvarint length and its octets. Metas written
// before it are JSON objects, read as they are. Delivery reads and
// writes a meta several times per recipient, and JSON's reflection and
// base64 prefix cost more than the rest of the update.
const blobMetaBinary = 0x01

// encode returns the binary form of m.
func (m *blobMeta) encode() []byte {
	b := make([]byte, 0, 1+3*binary.MaxVarintLen64+3*binary.MaxVarintLen32+len(m.Type)+len(m.Base)+len(m.Prefix))
	b = append(b, blobMetaBinary)
	b = binary.AppendVarint(b, m.Size)
	b = binary.AppendVarint(b, m.Refs)
	b = binary.AppendVarint(b, m.Uploads)
	for _, f := range [][]byte{[]byte(m.Type), []byte(m.Base), m.Prefix} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// errBadMeta is returned by decodeBlobMeta for a value that is neither
// form of a blob meta.
var errBadMeta = errors.New("malformed blob meta")

// decodeBlobMeta reads a blob meta in either form into m.
func decodeBlobMeta(v []byte, m *blobMeta) error {
	if len(v) > 0 && v[0] == '{' {
		return json.Unmarshal(v, m)
	}
	if len(v) == 0 || v[0] != blobMetaBinary {
		return errBadMeta
	}
	v = v[1:]
	var out blobMeta
	for _, n := range []*int64{&out.Size, &out.Refs, &out.Uploads} {
		x, k := binary.Varint(v)
		if k <= 0 {
			return errBadMeta
		}
		*n, v = x, v[k:]
	}
	var fields [3][]byte
	for i := range fields {
		l, k := binary.Uvarint(v)
		if k <= 0 || l > uint64(len(v)-k) {
			return errBadMeta
		}
		fields[i], v = v[k:k+int(l)], v[k+int(l):]
	}
	if len(v) != 0 {
		return errBadMeta
	}
	out.Type, out.Base = string(fields[0]), string(fields[1])
	if len(fields[2]) > 0 {
		out.Prefix = bytes.Clone(fields[2])
	}
	*m = out
	return nil
}

func (t *tx) counter(key []byte) (uint64, error) {
	v, err := t.get(key)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil || len(v) != 8 {
		return 0, err
	}
	return binary.BigEndian.Uint64(v), nil
}

// markFresh records that the blob sha had no meta before this
// transaction: no account holds a reference count on it yet.
func (t *tx) markFresh(sha string) {
	if t.fresh == nil {
		t.fresh, t.freshRefs = map[string]bool{}, map[string]uint64{}
	}
	t.fresh[sha] = true
}

// refCount returns acct's reference count on blob sha and its key: for a
// blob this transaction made, the count it gave, with no look in the
// store (a delivery references each copy it makes).
func (t *tx) refCount(acct store.AccountID, sha string) (uint64, []byte, error) {
	key := blobRefKey(acct, sha)
	if t.fresh[sha] {
		return t.freshRefs[string(key)], key, nil
	}
	n, err := t.counter(key)
	return n, key, err
}

// setRefCount writes acct's reference count on blob sha, at key.
func (t *tx) setRefCount(sha string, key []byte, n uint64) error {
	if t.fresh[sha] {
		t.freshRefs[string(key)] = n
	}
	if n == 0 {
		return t.txn.Delete(key)
	}
	return t.txn.Set(key, []byte(u64(n)))
}

func (t *tx) BlobRef(acct store.AccountID, id store.BlobID) error {
	sha, ok := shaOf(id)
	if !ok {
		return store.ErrNotFound
	}
	m, err := t.blobMeta(sha)
	if err != nil {
		return err
	}
	n, key, err := t.refCount(acct, sha)
	if err != nil {
		return err
	}
	if err := t.setRefCount(sha, key, n+1); err != nil {
		return err
	}
	m.Refs++
	return t.putBlobMeta(sha, m)
}

func (t *tx) BlobUnref(acct store.AccountID, id store.BlobID) error {
	sha, ok := shaOf(id)
	if !ok {
		return store.ErrNotFound
	}
	n, key, err := t.refCount(acct, sha)
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	m, err := t.blobMeta(sha)
	if err != nil {
		return err
	}
	if err := t.setRefCount(sha, key, n-1); err != nil {
		return err
	}
	m.Refs--
	if m.Refs <= 0 && m.Uploads <= 0 {
		// Only an expiring grant brings a blob to Collect, and this one has
		// none left: give acct a grant that has already expired.
		exp := time.Now().UnixNano()
		if err := t.txn.Set(blobUploadKey(acct, sha), []byte(u64(uint64(exp)))); err != nil {
			return err
		}
		if err := t.txn.Set(blobExpiryKey(exp, acct, sha), nil); err != nil {
			return err
		}
		m.Uploads++
	}
	return t.putBlobMeta(sha, m)
}

func (t *tx) BlobAccess(acct store.AccountID, id store.BlobID) (store.BlobInfo, error) {
	sha, ok := shaOf(id)
	if !ok {
		return store.BlobInfo{}, store.ErrNotFound
	}
	m, err := t.blobMeta(sha)
	if err != nil {
		return store.BlobInfo{}, err
	}
	info := store.BlobInfo{ID: id, Size: m.Size, Type: m.Type}
	if n, err := t.counter(blobRefKey(acct, sha)); err != nil {
		return store.BlobInfo{}, err
	} else if n > 0 {
		return info, nil
	}
	exp, err := t.counter(blobUploadKey(acct, sha))
	if err != nil {
		return store.BlobInfo{}, err
	}
	if exp > 0 && time.Now().UnixNano() < int64(exp) {
		return info, nil
	}
	return store.BlobInfo{}, store.ErrNotFound
}

// Upload stores r's content once per distinct SHA-256 and grants acct access
// to it for the grace period.
func (b *blobStore) Upload(ctx context.Context, acct store.AccountID, typ string, r io.Reader, max int64) (store.BlobInfo, error) {
	if max < 0 || max == math.MaxInt64 {
		max = math.MaxInt64 - 1 // so that max+1 below cannot overflow
	}
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return store.BlobInfo{}, fmt.Errorf("read upload: %w", err)
	}
	if int64(len(data)) > max {
		return store.BlobInfo{}, store.ErrTooLarge
	}
	infos, err := b.UploadBatch(ctx, acct, []store.BlobInput{{Type: typ, Data: data}})
	if err != nil {
		return store.BlobInfo{}, err
	}
	return infos[0], nil
}

// UploadBatch stores several blobs with one durable commit. A composite
// input (Base set) stores only its prefix and a reference to its base.
func (b *blobStore) UploadBatch(ctx context.Context, acct store.AccountID, in []store.BlobInput) ([]store.BlobInfo, error) {
	shas, bases, out, err := blobIDs(in, func(id store.BlobID) ([]byte, error) {
		_, r, err := b.Open(ctx, acct, id, 0, -1)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return io.ReadAll(r)
	})
	if err != nil {
		return nil, err
	}
	expiry := time.Now().Add(b.d.opt.BlobGrace).UnixNano()
	// Content that fits one transaction is written in it, with its meta:
	// one commit per upload. Larger content goes ahead in write batches.
	inline := contentSize(in) <= inlineUpload
	for range 3 {
		if !inline {
			for i, x := range in {
				if x.Base != "" {
					continue
				}
				if err := b.writeChunks(shas[i], x.Data); err != nil {
					return nil, err
				}
			}
		}
		_, err := b.d.Update(ctx, func(stx store.Tx) error {
			return stx.(*tx).storeBlobs(acct, in, shas, bases, out, expiry, inline)
		})
		if errors.Is(err, errChunksGone) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, errors.New("badger: upload content kept being collected")
}

var _ store.BlobTx = (*tx)(nil)

// PutBlobs stores blobs within the transaction, as UploadBatch does; their
// content must fit one transaction (store.ErrTooLarge otherwise).
func (t *tx) PutBlobs(acct store.AccountID, in []store.BlobInput) ([]store.BlobInfo, error) {
	if t.readOnly {
		return nil, errors.New("badger: PutBlobs in a read-only transaction")
	}
	if contentSize(in) > inlineUpload {
		return nil, store.ErrTooLarge
	}
	shas, bases, out, err := blobIDs(in, func(id store.BlobID) ([]byte, error) {
		info, err := t.BlobAccess(acct, id)
		if err != nil {
			return nil, err
		}
		sha, _ := shaOf(id)
		m, err := t.blobMeta(sha)
		if err != nil {
			return nil, err
		}
		return t.readRange(make([]byte, 0, info.Size), sha, m, 0, info.Size)
	})
	if err != nil {
		return nil, err
	}
	expiry := time.Now().Add(t.d.opt.BlobGrace).UnixNano()
	if err := t.storeBlobs(acct, in, shas, bases, out, expiry, true); err != nil {
		return nil, err
	}
	return out, nil
}

// contentSize is the content an upload of in stores itself.
func contentSize(in []store.BlobInput) int {
	n := 0
	for _, x := range in {
		n += len(x.Data)
	}
	return n
}

// blobIDs returns the digest, the base digest (composites) and the info of
// every input; read gives the content of a base that is not among them.
func blobIDs(in []store.BlobInput, read func(store.BlobID) ([]byte, error)) (shas, bases []string, out []store.BlobInfo, err error) {
	shas = make([]string, len(in))
	bases = make([]string, len(in))
	out = make([]store.BlobInfo, len(in))
	content := map[string][]byte{} // plain content by digest, for composites
	for i, x := range in {
		if x.Base != "" {
			continue
		}
		var ok bool
		if shas[i], ok = shaOf(x.ID); !ok {
			sum := sha256.Sum256(x.Data)
			shas[i] = hex.EncodeToString(sum[:])
		}
		content[shas[i]] = x.Data
		out[i] = store.BlobInfo{ID: store.BlobID("G" + shas[i]), Size: int64(len(x.Data)), Type: x.Type}
	}
	for i, x := range in {
		if x.Base == "" {
			continue
		}
		sha, ok := shaOf(x.Base)
		if !ok {
			return nil, nil, nil, store.ErrNotFound
		}
		data, ok := content[sha]
		if !ok {
			if data, err = read(x.Base); err != nil {
				return nil, nil, nil, err
			}
			content[sha] = data
		}
		bases[i] = sha
		if shas[i], ok = shaOf(x.ID); !ok {
			h := sha256.New()
			h.Write(x.Data)
			h.Write(data)
			shas[i] = hex.EncodeToString(h.Sum(nil))
		}
		out[i] = store.BlobInfo{ID: store.BlobID("G" + shas[i]), Size: int64(len(x.Data) + len(data)), Type: x.Type}
	}
	return shas, bases, out, nil
}

// storeBlobs writes the metas (and, inline, the content) of in with acct's
// upload grants; plain blobs first, since a composite may stand on one.
func (t *tx) storeBlobs(acct store.AccountID, in []store.BlobInput, shas, bases []string, out []store.BlobInfo, expiry int64, inline bool) error {
	for i, x := range in {
		if x.Base != "" {
			continue
		}
		if inline {
			if err := t.writeChunksIfNew(shas[i], x.Data); err != nil {
				return err
			}
		}
		if err := t.grantUpload(acct, shas[i], x, expiry); err != nil {
			return err
		}
	}
	// The bases' reference counts are written once, after all the
	// composites on them.
	held := map[string]*blobMeta{}
	for i, x := range in {
		if x.Base == "" {
			continue
		}
		if err := t.grantComposite(acct, shas[i], bases[i], x, out[i].Size, expiry, held); err != nil {
			return err
		}
	}
	for sha, m := range held {
		if err := t.putBlobMeta(sha, m); err != nil {
			return err
		}
	}
	return nil
}

// grantUpload records an uploaded blob's meta and acct's upload grant
// (none for a held input).
func (t *tx) grantUpload(acct store.AccountID, sha string, x store.BlobInput, expiry int64) error {
	m, err := t.blobMeta(sha)
	if errors.Is(err, store.ErrNotFound) {
		if ok, err := t.exists(blobDataKey(sha, 0)); err != nil {
			return err
		} else if !ok && len(x.Data) > 0 {
			return errChunksGone
		}
		t.markFresh(sha)
		m = &blobMeta{Size: int64(len(x.Data))}
		if x.Held {
			m.Type = x.Type
			return t.putBlobMeta(sha, m)
		}
	} else if err != nil {
		return err
	}
	if x.Held {
		return nil
	}
	return t.grant(acct, sha, m, x.Type, expiry, false)
}

// grantComposite records a composite blob's meta, unless a blob with its
// digest is stored, and acct's upload grant. A composite of a composite
// stands on the base of the latter, with both prefixes. The metas of the
// bases it takes a reference on are in held, which the caller writes.
func (t *tx) grantComposite(acct store.AccountID, sha, base string, x store.BlobInput, size, expiry int64, held map[string]*blobMeta) error {
	m, err := t.blobMeta(sha)
	if err == nil {
		if x.Held {
			return nil
		}
		return t.grant(acct, sha, m, x.Type, expiry, false)
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	bm := held[base]
	if bm == nil {
		if bm, err = t.blobMeta(base); errors.Is(err, store.ErrNotFound) {
			return errChunksGone
		} else if err != nil {
			return err
		}
	}
	prefix := x.Data
	if bm.Base != "" {
		prefix = append(append([]byte{}, x.Data...), bm.Prefix...)
		base = bm.Base
		if bm = held[base]; bm == nil {
			if bm, err = t.blobMeta(base); err != nil {
				return err
			}
		}
	}
	bm.Refs++
	held[base] = bm
	t.markFresh(sha)
	m = &blobMeta{Size: size, Base: base, Prefix: prefix}
	if x.Held {
		m.Type = x.Type
		return t.putBlobMeta(sha, m)
	}
	return t.grant(acct, sha, m, x.Type, expiry, true)
}

// grant gives acct an upload grant on the blob sha until expiry and writes
// its meta m; fresh says the blob is new in this transaction, so acct
// has no grant on it yet.
func (t *tx) grant(acct store.AccountID, sha string, m *blobMeta, typ string, expiry int64, fresh bool) error {
	if typ != "" {
		m.Type = typ
	}
	var old uint64
	if !fresh {
		var err error
		if old, err = t.counter(blobUploadKey(acct, sha)); err != nil {
			return err
		}
	}
	if old == 0 {
		m.Uploads++
	} else if err := t.txn.Delete(blobExpiryKey(int64(old), acct, sha)); err != nil {
		return err
	}
	if err := t.txn.Set(blobUploadKey(acct, sha), []byte(u64(uint64(expiry)))); err != nil {
		return err
	}
	if err := t.txn.Set(blobExpiryKey(expiry, acct, sha), nil); err != nil {
		return err
	}
	return t.putBlobMeta(sha, m)
}

// writeChunks writes the content unless a blob with that digest is stored.
func (b *blobStore) writeChunks(sha string, data []byte) error {
	var have bool
	err := b.d.db.View(func(txn *bdb.Txn) error {
		_, err := txn.Get(blobMetaKey(sha))
		have = err == nil
		if errors.Is(err, bdb.ErrKeyNotFound) {
			return nil
		}
		return err
	})
	if err != nil || have {
		return err
	}
	wb := b.d.db.NewWriteBatch()
	defer wb.Cancel()
	for i := 0; i*chunkSize < len(data); i++ {
		end := min((i+1)*chunkSize, len(data))
		if err := wb.Set(blobDataKey(sha, uint32(i)), data[i*chunkSize:end]); err != nil {
			return err
		}
	}
	return wb.Flush()
}

// Open reads the requested range of a blob acct may read.
func (b *blobStore) Open(ctx context.Context, acct store.AccountID, id store.BlobID, off, n int64) (store.BlobInfo, io.ReadSeekCloser, error) {
	var info store.BlobInfo
	var buf []byte
	err := b.d.View(ctx, func(stx store.Tx) error {
		t := stx.(*tx)
		var err error
		info, err = t.BlobAccess(acct, id)
		if err != nil {
			return err
		}
		sha, _ := shaOf(id)
		if off < 0 || off > info.Size {
			off = info.Size
		}
		end := info.Size
		if n >= 0 && off+n < end {
			end = off + n
		}
		m, err := t.blobMeta(sha)
		if err != nil {
			return err
		}
		buf, err = t.readRange(make([]byte, 0, end-off), sha, m, off, end)
		return err
	})
	if err != nil {
		return store.BlobInfo{}, nil, err
	}
	return info, nopCloser{bytes.NewReader(buf)}, nil
}

// readRange appends bytes [off, end) of the blob sha with meta m to buf.
func (t *tx) readRange(buf []byte, sha string, m *blobMeta, off, end int64) ([]byte, error) {
	if m.Base != "" {
		p := int64(len(m.Prefix))
		if off < p {
			buf = append(buf, m.Prefix[off:min(end, p)]...)
		}
		if end <= p {
			return buf, nil
		}
		bm, err := t.blobMeta(m.Base)
		if err != nil {
			return nil, fmt.Errorf("base %s of blob %s: %w", m.Base, sha, err)
		}
		return t.readRange(buf, m.Base, bm, max(off-p, 0), end-p)
	}
	for c := off / chunkSize; c*chunkSize < end; c++ {
		v, err := t.get(blobDataKey(sha, uint32(c)))
		if err != nil {
			return nil, fmt.Errorf("blob %s chunk %d: %w", sha, c, err)
		}
		lo := max(off-c*chunkSize, 0)
		hi := min(end-c*chunkSize, int64(len(v)))
		buf = append(buf, v[lo:hi]...)
	}
	return buf, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// Collect ends expired upload grants and removes the content of blobs that
// then have neither references nor grants.
func (b *blobStore) Collect(ctx context.Context, now time.Time) (int, error) {
	type grant struct {
		key  []byte
		acct store.AccountID
		sha  string
	}
	var expired []grant
	err := b.d.db.View(func(txn *bdb.Txn) error {
		it := txn.NewIterator(bdb.IteratorOptions{Prefix: []byte(blobExpiryPrefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			rest := k[len(blobExpiryPrefix):]
			if len(rest) < 9 || int64(binary.BigEndian.Uint64(rest[:8])) > now.UnixNano() {
				break
			}
			parts := strings.SplitN(string(rest[9:]), sep, 2)
			if len(parts) != 2 {
				continue
			}
			expired = append(expired, grant{k, store.AccountID(parts[0]), parts[1]})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, g := range expired {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		var drop bool
		_, err := b.d.Update(ctx, func(stx store.Tx) error {
			t := stx.(*tx)
			drop = false
			if err := t.txn.Delete(g.key); err != nil {
				return err
			}
			exp, err := t.counter(blobUploadKey(g.acct, g.sha))
			if err != nil {
				return err
			}
			rest := g.key[len(blobExpiryPrefix):]
			if exp != binary.BigEndian.Uint64(rest[:8]) {
				return nil // the grant was renewed; this index entry is stale
			}
			if err := t.txn.Delete(blobUploadKey(g.acct, g.sha)); err != nil {
				return err
			}
			m, err := t.blobMeta(g.sha)
			if errors.Is(err, store.ErrNotFound) {
				return nil
			} else if err != nil {
				return err
			}
			m.Uploads--
			if m.Uploads <= 0 && m.Refs <= 0 {
				// Content goes in the same transaction as the meta, so an
				// upload of the same bytes racing with this conflicts and
				// writes them again.
				drop = true
				return t.dropBlob(g.sha, m)
			}
			return t.putBlobMeta(g.sha, m)
		})
		if err != nil {
			return removed, err
		}
		if drop {
			removed++
		}
	}
	return removed, nil
}

// dropBlob removes a blob nothing holds: its content and meta, and for a
// composite its reference on its base, which goes too when nothing else
// holds it.
func (t *tx) dropBlob(sha string, m *blobMeta) error {
	for c := int64(0); m.Base == "" && c*chunkSize < max(m.Size, 1); c++ {
		if err := t.txn.Delete(blobDataKey(sha, uint32(c))); err != nil {
			return err
		}
	}
	if err := t.txn.Delete(blobMetaKey(sha)); err != nil {
		return err
	}
	if m.Base == "" {
		return nil
	}
	bm, err := t.blobMeta(m.Base)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	bm.Refs--
	if bm.Refs <= 0 && bm.Uploads <= 0 {
		return t.dropBlob(m.Base, bm)
	}
	return t.putBlobMeta(m.Base, bm)
}

// writeChunksIfNew stores content in the transaction unless a blob with that
// digest exists.
func (t *tx) writeChunksIfNew(sha string, data []byte) error {
	if ok, err := t.exists(blobMetaKey(sha)); err != nil || ok {
		return err
	}
	for i := 0; i*chunkSize < len(data); i++ {
		end := min((i+1)*chunkSize, len(data))
		if err := t.txn.Set(blobDataKey(sha, uint32(i)), data[i*chunkSize:end]); err != nil {
			return err
		}
	}
	return nil
}
