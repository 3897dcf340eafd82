package methods

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// maxDataSources is the number of DataSourceObjects one Blob/upload creation
// may concatenate (RFC 9404 §3.1: at least 64).
const maxDataSources = 64

// BlobLookup finds the ids of records of one type that reference a blob, for
// Blob/lookup (RFC 9404 §4.3).
type BlobLookup func(ctx context.Context, tx store.Tx, acct store.AccountID, blob store.BlobID) ([]string, error)

// blobLookups holds the lookups of every type that references blobs. It is
// fixed at build time: servers started side by side share it.
var blobLookups = map[string]BlobLookup{"Email": lookupEmailBlob, "Thread": lookupThreadBlob}

type blobCapability struct {
	MaxSizeBlobSet            int64    `json:"maxSizeBlobSet"`
	MaxDataSources            int      `json:"maxDataSources"`
	SupportedTypeNames        []string `json:"supportedTypeNames"`
	SupportedDigestAlgorithms []string `json:"supportedDigestAlgorithms"`
}

// registerBlob adds Blob/copy (RFC 8620 §6.3) and the methods of RFC 9404.
func registerBlob(r *jmap.Registry, st store.Store, accts *Accounts) {
	r.AddCapability(jmap.CapBlob, struct{}{})
	lim := r.Limits
	// Shared accounts too: a grantee reads the blobs of emails they may
	// read, and uploads what they add.
	accts.AddCapabilityFor(jmap.CapBlob, func(AccountInfo) (any, bool) {
		names := make([]string, 0, len(blobLookups))
		for n := range blobLookups {
			names = append(names, n)
		}
		slices.Sort(names)
		return blobCapability{MaxSizeBlobSet: lim.MaxSizeUpload, MaxDataSources: maxDataSources,
			SupportedTypeNames: names, SupportedDigestAlgorithms: []string{"sha", "sha-256"}}, true
	})
	r.Handle("Blob/copy", jmap.CapCore, blobCopy)
	r.Handle("Blob/upload", jmap.CapBlob, blobUpload)
	r.Handle("Blob/get", jmap.CapBlob, blobGet)
	r.Handle("Blob/lookup", jmap.CapBlob, blobLookup)
}

type blobCopyArgs struct {
	FromAccountID string   `json:"fromAccountId"`
	AccountID     string   `json:"accountId"`
	BlobIDs       []string `json:"blobIds"`
}

type blobCopyResponse struct {
	FromAccountID string                    `json:"fromAccountId"`
	AccountID     string                    `json:"accountId"`
	Copied        map[string]string         `json:"copied"`
	NotCopied     map[string]*jmap.SetError `json:"notCopied"`
}

// blobCopy makes blobs of one account readable in another (RFC 8620 §6.3).
func blobCopy(ctx context.Context, c *jmap.Call) (any, error) {
	var args blobCopyArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	from, err := c.FromAccount(ctx, args.FromAccountID, jmap.CapCore)
	if err != nil {
		return nil, err
	}
	to, err := c.WritableAccount(ctx, args.AccountID, jmap.CapCore)
	if err != nil {
		return nil, err
	}
	resp := &blobCopyResponse{FromAccountID: args.FromAccountID, AccountID: args.AccountID}
	for _, raw := range args.BlobIDs {
		id, ok := c.ResolveID(raw)
		var info store.BlobInfo
		var body io.ReadSeekCloser
		if ok {
			info, body, err = openBlobChecked(ctx, c, from.ID, store.BlobID(id), 0, -1)
		}
		if !ok || errors.Is(err, store.ErrNotFound) {
			if resp.NotCopied == nil {
				resp.NotCopied = map[string]*jmap.SetError{}
			}
			resp.NotCopied[raw] = jmap.NewSetError(jmap.SetNotFound, "")
			continue
		}
		if err != nil {
			return nil, err
		}
		copied, err := c.Store().Blobs().Upload(ctx, to.ID, info.Type, body, info.Size)
		body.Close()
		if err != nil {
			return nil, err
		}
		if err := noteUploads(ctx, c.Store(), to.ID, c.Caller.Principal, copied.ID); err != nil {
			return nil, err
		}
		if resp.Copied == nil {
			resp.Copied = map[string]string{}
		}
		resp.Copied[raw] = id
	}
	return resp, nil
}

// dataSource is one DataSourceObject of a Blob/upload (RFC 9404 §4.1):
// inline data, or a range of another blob.
type dataSource struct {
	// text and b64 hold the inline octets: data:asText as is,
	// data:asBase64 still encoded.
	text, b64      []byte
	asText, asB64  bool
	blobID         *string
	offset, length *int64
}

// uploadItem is one creation of a Blob/upload as read from the request;
// serr says what is wrong with it.
type uploadItem struct {
	cid  string
	srcs []dataSource
	typ  string
	serr *jmap.SetError
}

type blobUploadResponse struct {
	AccountID  string                    `json:"accountId"`
	Created    map[string]map[string]any `json:"created"`
	NotCreated map[string]*jmap.SetError `json:"notCreated"`
}

// readBlobUpload reads the arguments of Blob/upload front to back, each
// octet once: the inline data of many large blobs is most of them. A
// malformed creation is answered on its own (serr); anything else malformed
// fails the call with invalidArguments.
func readBlobUpload(args []byte) (accountID string, items []*uploadItem, err error) {
	bad := func(format string, a ...any) error { return jmap.InvalidArguments(format, a...) }
	r := jmap.NewReader(args)
	byID := map[string]*uploadItem{}
	err = r.Object(func(name string) error {
		switch name {
		case "accountId":
			if r.Null() {
				return nil
			}
			id, err := r.String()
			if err != nil {
				return bad("accountId must be a string")
			}
			accountID = id
		case "create":
			if r.Null() {
				return nil
			}
			if r.Next() != '{' {
				return bad("create must be an object")
			}
			return r.Object(func(cid string) error {
				it := readUploadObject(r)
				it.cid = cid
				if old := byID[cid]; old != nil {
					*old = *it // the last of a repeated key, in the place of the first
					return nil
				}
				byID[cid] = it
				items = append(items, it)
				return nil
			})
		default:
			return bad("unknown argument %q", name)
		}
		return nil
	})
	if err == nil && !r.End() {
		err = jmap.ErrSyntax
	}
	if errors.Is(err, jmap.ErrSyntax) {
		err = bad("malformed arguments")
	}
	return accountID, items, err
}

// readUploadObject reads one UploadObject; what is wrong with it is in the
// item's serr, and what is left of it unread is skipped by the caller.
func readUploadObject(r *jmap.Reader) *uploadItem {
	it := &uploadItem{}
	if r.Next() != '{' {
		it.serr = jmap.InvalidProperties("an UploadObject is a JSON object")
		return it
	}
	hasData := false
	err := r.Object(func(name string) error {
		switch name {
		case "type":
			if r.Null() {
				it.typ = ""
				return nil
			}
			t, err := r.String()
			if err != nil {
				it.serr = jmap.InvalidProperties("type must be a string", "type")
			}
			it.typ = t
		case "data":
			if r.Next() != '[' {
				it.serr = jmap.InvalidProperties("an UploadObject needs a data array", "data")
				return nil
			}
			hasData = true
			it.srcs = it.srcs[:0]
			return r.Array(func(i int) error {
				if i >= maxDataSources {
					it.serr = jmap.InvalidProperties(fmt.Sprintf("at most %d data sources", maxDataSources), "data")
					return nil
				}
				src, ok := readDataSource(r)
				if !ok && it.serr == nil {
					it.serr = jmap.InvalidProperties("malformed DataSourceObject", fmt.Sprintf("data/%d", i))
				}
				it.srcs = append(it.srcs, src)
				return nil
			})
		default:
			it.serr = jmap.InvalidProperties("unknown UploadObject property", name)
		}
		return nil
	})
	switch {
	case err != nil:
		it.serr = jmap.InvalidProperties("malformed UploadObject")
	case it.serr == nil && !hasData:
		it.serr = jmap.InvalidProperties("an UploadObject needs a data array", "data")
	}
	return it
}

// readDataSource reads one DataSourceObject; ok is false when it is not
// one. A member that is null is absent.
func readDataSource(r *jmap.Reader) (src dataSource, ok bool) {
	if r.Next() != '{' {
		return src, false
	}
	ok = true
	str := func() *string {
		s, err := r.String()
		if err != nil {
			ok = false
			return nil
		}
		return &s
	}
	integer := func() *int64 {
		n, err := r.Int()
		if err != nil {
			ok = false
			return nil
		}
		return &n
	}
	err := r.Object(func(name string) error {
		if r.Null() {
			switch name {
			case "data:asText":
				src.asText, src.text = false, nil
			case "data:asBase64":
				src.asB64, src.b64 = false, nil
			case "blobId":
				src.blobID = nil
			case "offset":
				src.offset = nil
			case "length":
				src.length = nil
			default:
				ok = false
			}
			return nil
		}
		switch name {
		case "data:asText", "data:asBase64":
			data, err := r.AppendString(nil)
			if err != nil {
				ok = false
				return nil
			}
			if name == "data:asText" {
				src.asText, src.text = true, data
			} else {
				src.asB64, src.b64 = true, data
			}
		case "blobId":
			src.blobID = str()
		case "offset":
			src.offset = integer()
		case "length":
			src.length = integer()
		default:
			ok = false
		}
		return nil
	})
	return src, ok && err == nil
}

// blobUpload creates blobs from inline data and ranges of other blobs
// (RFC 9404 §4.1).
func blobUpload(ctx context.Context, c *jmap.Call) (any, error) {
	accountID, items, err := readBlobUpload(c.Args)
	if err != nil {
		return nil, err
	}
	acct, err := c.WritableAccount(ctx, accountID, jmap.CapBlob)
	if err != nil {
		return nil, err
	}
	if len(items) > c.Limits().MaxObjectsInSet {
		return nil, jmap.NewMethodError(jmap.ErrRequestTooLarge, "")
	}
	// Storing blobs has no effect outside the store: the request's one
	// wait for the disk covers them, with an Email/import that follows.
	ctx = c.SyncLater(ctx)
	resp := &blobUploadResponse{AccountID: accountID}
	fail := func(cid string, serr *jmap.SetError) {
		if resp.NotCreated == nil {
			resp.NotCreated = map[string]*jmap.SetError{}
		}
		resp.NotCreated[cid] = serr
	}
	// Blobs are stored in batches, one commit each; a creation
	// that reads a blob created earlier in this call flushes the batch.
	var pendingIDs []string
	var pending []store.BlobInput
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		infos, err := c.Store().Blobs().UploadBatch(ctx, acct.ID, pending)
		if err != nil {
			return err
		}
		ids := make([]store.BlobID, len(infos))
		for i, info := range infos {
			ids[i] = info.ID
		}
		if err := noteUploads(ctx, c.Store(), acct.ID, c.Caller.Principal, ids...); err != nil {
			return err
		}
		for i, info := range infos {
			if resp.Created == nil {
				resp.Created = map[string]map[string]any{}
			}
			var t any = pending[i].Type
			if pending[i].Type == "" {
				t = nil
			}
			resp.Created[pendingIDs[i]] = map[string]any{"id": info.ID, "type": t, "size": info.Size}
			c.Created(pendingIDs[i], string(info.ID))
		}
		pendingIDs, pending = nil, nil
		return nil
	}
	for _, it := range items {
		if refersTo(it, pendingIDs) {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		data, serr, err := assembleBlob(ctx, c, acct.ID, it)
		if err != nil {
			return nil, err
		}
		if serr == nil && int64(len(data)) > c.Limits().MaxSizeUpload {
			serr = jmap.NewSetError(jmap.SetTooLarge, "the blob is larger than maxSizeBlobSet")
		}
		if serr != nil {
			fail(it.cid, serr)
			continue
		}
		pendingIDs = append(pendingIDs, it.cid)
		pending = append(pending, store.BlobInput{Type: it.typ, Data: data})
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return resp, nil
}

// refersTo reports whether a data source of it names one of the creation
// ids by reference ("#id").
func refersTo(it *uploadItem, cids []string) bool {
	for _, src := range it.srcs {
		if src.blobID == nil {
			continue
		}
		if ref, ok := strings.CutPrefix(*src.blobID, "#"); ok && slices.Contains(cids, ref) {
			return true
		}
	}
	return false
}

// assembleBlob concatenates the data sources of one creation.
func assembleBlob(ctx context.Context, c *jmap.Call, acct store.AccountID, it *uploadItem) ([]byte, *jmap.SetError, error) {
	if it.serr != nil {
		return nil, it.serr, nil
	}
	// One source of inline text is the blob itself: no copy.
	if len(it.srcs) == 1 && it.srcs[0].asText && !it.srcs[0].asB64 && it.srcs[0].blobID == nil &&
		it.srcs[0].offset == nil && it.srcs[0].length == nil {
		return it.srcs[0].text, nil, nil
	}
	var buf bytes.Buffer
	max := c.Limits().MaxSizeUpload
	for i, src := range it.srcs {
		prop := fmt.Sprintf("data/%d", i)
		n := 0
		for _, set := range []bool{src.asText, src.asB64, src.blobID != nil} {
			if set {
				n++
			}
		}
		if n != 1 || (src.blobID == nil && (src.offset != nil || src.length != nil)) {
			return nil, jmap.InvalidProperties("a DataSourceObject has exactly one source", prop), nil
		}
		switch {
		case src.asText:
			buf.Write(src.text)
		case src.asB64:
			b, err := base64.StdEncoding.AppendDecode(nil, src.b64)
			if err != nil {
				return nil, jmap.InvalidProperties("data:asBase64 is not base64", prop), nil
			}
			buf.Write(b)
		default:
			id, ok := c.ResolveID(*src.blobID)
			if !ok {
				return nil, jmap.InvalidProperties("unknown blob", prop), nil
			}
			var off int64
			if src.offset != nil {
				off = *src.offset
			}
			n := int64(-1)
			if src.length != nil {
				n = *src.length
			}
			if off < 0 || (src.length != nil && n < 0) {
				return nil, jmap.InvalidProperties("offset and length must not be negative", prop), nil
			}
			info, body, err := openBlobChecked(ctx, c, acct, store.BlobID(id), off, n)
			if errors.Is(err, store.ErrNotFound) {
				return nil, jmap.InvalidProperties("unknown blob", prop), nil
			} else if err != nil {
				return nil, nil, err
			}
			// RFC 9404 §4.1: a range the blob cannot satisfy is invalid.
			if off > info.Size || (n >= 0 && off+n > info.Size) {
				body.Close()
				return nil, jmap.InvalidProperties("the range is outside the blob", prop), nil
			}
			_, err = io.Copy(&buf, body)
			body.Close()
			if err != nil {
				return nil, nil, err
			}
		}
		if int64(buf.Len()) > max {
			return nil, jmap.NewSetError(jmap.SetTooLarge, "the blob is larger than maxSizeBlobSet"), nil
		}
	}
	return buf.Bytes(), nil, nil
}

type blobGetArgs struct {
	AccountID  string    `json:"accountId"`
	IDs        *[]string `json:"ids"`
	Properties *[]string `json:"properties"`
	Offset     *int64    `json:"offset"`
	Length     *int64    `json:"length"`
}

type blobGetResponse struct {
	AccountID string           `json:"accountId"`
	List      []map[string]any `json:"list"`
	NotFound  []string         `json:"notFound"`
}

func validBlobProperty(p string) bool {
	switch p {
	case "id", "data", "data:asText", "data:asBase64", "digest:sha", "digest:sha-256", "size":
		return true
	}
	return false
}

// blobGet reads blob contents, ranges and digests (RFC 9404 §4.2).
func blobGet(ctx context.Context, c *jmap.Call) (any, error) {
	var args blobGetArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	acct, err := c.Account(ctx, args.AccountID, jmap.CapBlob)
	if err != nil {
		return nil, err
	}
	if args.IDs == nil {
		return nil, jmap.InvalidArguments("ids is required: blobs cannot be listed")
	}
	if len(*args.IDs) > c.Limits().MaxObjectsInGet {
		return nil, jmap.NewMethodError(jmap.ErrRequestTooLarge, "")
	}
	props := []string{"data", "size"}
	if args.Properties != nil {
		props = *args.Properties
	}
	for _, p := range props {
		if !validBlobProperty(p) {
			return nil, jmap.InvalidArguments("unknown property %q", p)
		}
	}
	var off int64
	if args.Offset != nil {
		off = *args.Offset
	}
	n := int64(-1)
	if args.Length != nil {
		n = *args.Length
	}
	if off < 0 || (args.Length != nil && n < 0) {
		return nil, jmap.InvalidArguments("offset and length must not be negative")
	}
	needData := slices.ContainsFunc(props, func(p string) bool { return p != "id" && p != "size" })
	resp := &blobGetResponse{AccountID: args.AccountID, List: []map[string]any{}, NotFound: []string{}}
	for _, raw := range *args.IDs {
		id, ok := c.ResolveID(raw)
		if !ok {
			resp.NotFound = append(resp.NotFound, raw)
			continue
		}
		info, body, err := openBlobChecked(ctx, c, acct.ID, store.BlobID(id), off, n)
		if errors.Is(err, store.ErrNotFound) {
			resp.NotFound = append(resp.NotFound, raw)
			continue
		}
		if err != nil {
			return nil, err
		}
		var data []byte
		if needData {
			data, err = io.ReadAll(body)
		}
		body.Close()
		if err != nil {
			return nil, err
		}
		resp.List = append(resp.List, blobProperties(id, info.Size, data, props, off, n))
	}
	return resp, nil
}

func blobProperties(id string, size int64, data []byte, props []string, off, n int64) map[string]any {
	out := map[string]any{"id": id}
	valid := utf8.Valid(data)
	for _, p := range props {
		switch p {
		case "size":
			out["size"] = size
		case "data":
			if valid {
				out["data:asText"] = string(data)
			} else {
				out["data:asBase64"] = base64.StdEncoding.EncodeToString(data)
				out["isEncodingProblem"] = true
			}
		case "data:asText":
			if valid {
				out["data:asText"] = string(data)
			} else {
				out["data:asText"] = nil
				out["isEncodingProblem"] = true
			}
		case "data:asBase64":
			out["data:asBase64"] = base64.StdEncoding.EncodeToString(data)
		case "digest:sha":
			sum := sha1.Sum(data)
			out[p] = base64.StdEncoding.EncodeToString(sum[:])
		case "digest:sha-256":
			sum := sha256.Sum256(data)
			out[p] = base64.StdEncoding.EncodeToString(sum[:])
		}
	}
	// RFC 9404 §4.2: a range that runs past the end is truncated.
	if off > size || (n >= 0 && off+n > size) {
		out["isTruncated"] = true
	}
	return out
}

type blobLookupArgs struct {
	AccountID string   `json:"accountId"`
	TypeNames []string `json:"typeNames"`
	IDs       []string `json:"ids"`
}

type blobLookupItem struct {
	ID         string              `json:"id"`
	MatchedIDs map[string][]string `json:"matchedIds"`
}

type blobLookupResponse struct {
	AccountID string           `json:"accountId"`
	List      []blobLookupItem `json:"list"`
	NotFound  []string         `json:"notFound"`
}

// blobLookup finds the records that reference each blob (RFC 9404 §4.3).
func blobLookup(ctx context.Context, c *jmap.Call) (any, error) {
	var args blobLookupArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	acct, err := c.Account(ctx, args.AccountID, jmap.CapBlob)
	if err != nil {
		return nil, err
	}
	if args.TypeNames == nil || args.IDs == nil {
		return nil, jmap.InvalidArguments("typeNames and ids are required")
	}
	for _, t := range args.TypeNames {
		if _, ok := blobLookups[t]; !ok {
			return nil, jmap.NewMethodError(jmap.ErrUnknownDataType, fmt.Sprintf("cannot look up blobs in %q", t))
		}
	}
	if len(args.IDs) > c.Limits().MaxObjectsInGet {
		return nil, jmap.NewMethodError(jmap.ErrRequestTooLarge, "")
	}
	resp := &blobLookupResponse{AccountID: args.AccountID, List: []blobLookupItem{}, NotFound: []string{}}
	err = c.Store().View(ctx, func(tx store.Tx) error {
		for _, raw := range args.IDs {
			id, ok := c.ResolveID(raw)
			if !ok {
				resp.NotFound = append(resp.NotFound, raw)
				continue
			}
			if err := checkBlob(ctx, tx, acct.ID, store.BlobID(id)); errors.Is(err, store.ErrNotFound) {
				resp.NotFound = append(resp.NotFound, raw)
				continue
			} else if err != nil {
				return err
			}
			item := blobLookupItem{ID: id, MatchedIDs: map[string][]string{}}
			for _, t := range args.TypeNames {
				ids, err := blobLookups[t](ctx, tx, acct.ID, store.BlobID(id))
				if err != nil {
					return err
				}
				if ids == nil {
					ids = []string{}
				}
				item.MatchedIDs[t] = ids
			}
			resp.List = append(resp.List, item)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}
