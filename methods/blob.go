package methods

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
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

type dataSource struct {
	AsText   *string `json:"data:asText"`
	AsBase64 *string `json:"data:asBase64"`
	BlobID   *string `json:"blobId"`
	Offset   *int64  `json:"offset"`
	Length   *int64  `json:"length"`
}

type uploadObject struct {
	Data []json.RawMessage `json:"data"`
	Type *string           `json:"type"`
}

type blobUploadArgs struct {
	AccountID string              `json:"accountId"`
	Create    jmap.OrderedObjects `json:"create"`
}

type blobUploadResponse struct {
	AccountID  string                    `json:"accountId"`
	Created    map[string]map[string]any `json:"created"`
	NotCreated map[string]*jmap.SetError `json:"notCreated"`
}

func strictDecode(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// blobUpload creates blobs from inline data and ranges of other blobs
// (RFC 9404 §4.1).
func blobUpload(ctx context.Context, c *jmap.Call) (any, error) {
	var args blobUploadArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	acct, err := c.WritableAccount(ctx, args.AccountID, jmap.CapBlob)
	if err != nil {
		return nil, err
	}
	if len(args.Create.Keys) > c.Limits().MaxObjectsInSet {
		return nil, jmap.NewMethodError(jmap.ErrRequestTooLarge, "")
	}
	resp := &blobUploadResponse{AccountID: args.AccountID}
	fail := func(cid string, serr *jmap.SetError) {
		if resp.NotCreated == nil {
			resp.NotCreated = map[string]*jmap.SetError{}
		}
		resp.NotCreated[cid] = serr
	}
	// Blobs are stored in batches, one durable commit each; a creation
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
	for _, cid := range args.Create.Keys {
		raw := args.Create.Values[cid]
		for _, p := range pendingIDs {
			if bytes.Contains(raw, []byte(`"#`+p+`"`)) {
				if err := flush(); err != nil {
					return nil, err
				}
				break
			}
		}
		data, typ, serr, err := assembleBlob(ctx, c, acct.ID, raw)
		if err != nil {
			return nil, err
		}
		if serr == nil && int64(len(data)) > c.Limits().MaxSizeUpload {
			serr = jmap.NewSetError(jmap.SetTooLarge, "the blob is larger than maxSizeBlobSet")
		}
		if serr != nil {
			fail(cid, serr)
			continue
		}
		pendingIDs = append(pendingIDs, cid)
		pending = append(pending, store.BlobInput{Type: typ, Data: data})
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return resp, nil
}

func assembleBlob(ctx context.Context, c *jmap.Call, acct store.AccountID, raw json.RawMessage) ([]byte, string, *jmap.SetError, error) {
	var obj uploadObject
	if err := strictDecode(raw, &obj); err != nil || obj.Data == nil {
		return nil, "", jmap.InvalidProperties("an UploadObject needs a data array", "data"), nil
	}
	if len(obj.Data) > maxDataSources {
		return nil, "", jmap.InvalidProperties(fmt.Sprintf("at most %d data sources", maxDataSources), "data"), nil
	}
	var buf bytes.Buffer
	max := c.Limits().MaxSizeUpload
	for i, rawSrc := range obj.Data {
		var src dataSource
		prop := fmt.Sprintf("data/%d", i)
		if err := strictDecode(rawSrc, &src); err != nil {
			return nil, "", jmap.InvalidProperties("malformed DataSourceObject", prop), nil
		}
		n := 0
		for _, set := range []bool{src.AsText != nil, src.AsBase64 != nil, src.BlobID != nil} {
			if set {
				n++
			}
		}
		if n != 1 || (src.BlobID == nil && (src.Offset != nil || src.Length != nil)) {
			return nil, "", jmap.InvalidProperties("a DataSourceObject has exactly one source", prop), nil
		}
		switch {
		case src.AsText != nil:
			if !utf8.ValidString(*src.AsText) {
				return nil, "", jmap.InvalidProperties("data:asText is not UTF-8", prop), nil
			}
			buf.WriteString(*src.AsText)
		case src.AsBase64 != nil:
			b, err := base64.StdEncoding.DecodeString(*src.AsBase64)
			if err != nil {
				return nil, "", jmap.InvalidProperties("data:asBase64 is not base64", prop), nil
			}
			buf.Write(b)
		default:
			id, ok := c.ResolveID(*src.BlobID)
			if !ok {
				return nil, "", jmap.InvalidProperties("unknown blob", prop), nil
			}
			var off int64
			if src.Offset != nil {
				off = *src.Offset
			}
			n := int64(-1)
			if src.Length != nil {
				n = *src.Length
			}
			if off < 0 || (src.Length != nil && n < 0) {
				return nil, "", jmap.InvalidProperties("offset and length must not be negative", prop), nil
			}
			info, body, err := openBlobChecked(ctx, c, acct, store.BlobID(id), off, n)
			if errors.Is(err, store.ErrNotFound) {
				return nil, "", jmap.InvalidProperties("unknown blob", prop), nil
			} else if err != nil {
				return nil, "", nil, err
			}
			// RFC 9404 §4.1: a range the blob cannot satisfy is invalid.
			if off > info.Size || (n >= 0 && off+n > info.Size) {
				body.Close()
				return nil, "", jmap.InvalidProperties("the range is outside the blob", prop), nil
			}
			_, err = io.Copy(&buf, body)
			body.Close()
			if err != nil {
				return nil, "", nil, err
			}
		}
		if int64(buf.Len()) > max {
			return nil, "", jmap.NewSetError(jmap.SetTooLarge, "the blob is larger than maxSizeBlobSet"), nil
		}
	}
	typ := ""
	if obj.Type != nil {
		typ = *obj.Type
	}
	return buf.Bytes(), typ, nil, nil
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
