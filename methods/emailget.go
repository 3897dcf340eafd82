package methods

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmapd/jmapd/internal/mime"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// defaultEmailProps is the property list of Email/get when none is given
// (RFC 8621 §4.2).
var defaultEmailProps = []string{"id", "blobId", "threadId", "mailboxIds", "keywords", "size",
	"receivedAt", "messageId", "inReplyTo", "references", "sender", "from", "to", "cc", "bcc", "replyTo",
	"subject", "sentAt", "hasAttachment", "preview", "bodyValues", "textBody", "htmlBody", "attachments"}

// defaultBodyProps is the default bodyProperties list (RFC 8621 §4.2).
var defaultBodyProps = []string{"partId", "blobId", "size", "name", "type", "charset", "disposition",
	"cid", "language", "location"}

var messageEmailProps = []string{"headers", "bodyStructure", "bodyValues", "textBody", "htmlBody", "attachments"}

var bodyPartProps = []string{"partId", "blobId", "size", "headers", "name", "type", "charset",
	"disposition", "cid", "language", "location", "subParts"}

// Header fields defined by RFC 5322 and RFC 2369, and the parsed forms each
// allows (RFC 8621 §4.1.2); other fields allow every form.
var headerForms = map[string][]string{
	"date": {"Date"}, "resent-date": {"Date"},
	"from": {"Addresses", "GroupedAddresses"}, "sender": {"Addresses", "GroupedAddresses"},
	"reply-to": {"Addresses", "GroupedAddresses"}, "to": {"Addresses", "GroupedAddresses"},
	"cc": {"Addresses", "GroupedAddresses"}, "bcc": {"Addresses", "GroupedAddresses"},
	"resent-from": {"Addresses", "GroupedAddresses"}, "resent-sender": {"Addresses", "GroupedAddresses"},
	"resent-reply-to": {"Addresses", "GroupedAddresses"}, "resent-to": {"Addresses", "GroupedAddresses"},
	"resent-cc": {"Addresses", "GroupedAddresses"}, "resent-bcc": {"Addresses", "GroupedAddresses"},
	"message-id": {"MessageIds"}, "in-reply-to": {"MessageIds"}, "references": {"MessageIds"},
	"resent-message-id": {"MessageIds"},
	"subject":           {"Text"}, "comments": {"Text"}, "keywords": {"Text"},
	"list-help": {"URLs"}, "list-unsubscribe": {"URLs"}, "list-subscribe": {"URLs"}, "list-post": {"URLs"},
	"list-owner": {"URLs"}, "list-archive": {"URLs"}, "list-id": {"Text"},
	"return-path": {}, "received": {}, "resent-message": {},
}

// headerProp is a parsed "header:NAME[:asFORM][:all]" property.
type headerProp struct {
	prop, name, form string
	all              bool
}

func parseHeaderProp(p string) (headerProp, bool) {
	rest, ok := strings.CutPrefix(p, "header:")
	if !ok || rest == "" {
		return headerProp{}, false
	}
	parts := strings.Split(rest, ":")
	h := headerProp{prop: p, name: parts[0], form: "Raw"}
	// RFC 8621 §4.1.3: the name is "one or more printable ASCII characters
	// (i.e., characters that have values between 33 and 126, inclusive),
	// except for colon".
	if h.name == "" || strings.ContainsFunc(h.name, func(r rune) bool { return r < 33 || r > 126 }) {
		return headerProp{}, false
	}
	parts = parts[1:]
	if len(parts) > 0 && parts[len(parts)-1] == "all" {
		h.all = true
		parts = parts[:len(parts)-1]
	}
	if len(parts) > 1 {
		return headerProp{}, false
	}
	if len(parts) == 1 {
		form, ok := strings.CutPrefix(parts[0], "as")
		if !ok {
			return headerProp{}, false
		}
		switch form {
		case "Raw", "Text", "Addresses", "GroupedAddresses", "MessageIds", "Date", "URLs":
			h.form = form
		default:
			return headerProp{}, false
		}
	}
	if h.form != "Raw" {
		if allowed, defined := headerForms[strings.ToLower(h.name)]; defined && !slices.Contains(allowed, h.form) {
			return headerProp{}, false
		}
	}
	return h, true
}

// value returns the header's value in its form: the last instance, or all
// of them with :all (RFC 8621 §4.1.3).
func (h headerProp) value(hs []mime.Header) any {
	vals := mime.Values(hs, h.name)
	conv := func(v string) any {
		switch h.form {
		case "Text":
			return mime.AsText(v)
		case "Addresses":
			return mime.AsAddresses(v)
		case "GroupedAddresses":
			return mime.AsGroupedAddresses(v)
		case "MessageIds":
			if ids := mime.AsMessageIDs(v); ids != nil {
				return ids
			}
			return nil
		case "Date":
			if t := mime.AsDate(v); t != nil {
				return t.Format(time.RFC3339)
			}
			return nil
		case "URLs":
			if u := mime.AsURLs(v); u != nil {
				return u
			}
			return nil
		}
		return mime.AsRaw(v)
	}
	if h.all {
		out := make([]any, len(vals))
		for i, v := range vals {
			out[i] = conv(v)
		}
		return out
	}
	if len(vals) == 0 {
		return nil
	}
	return conv(vals[len(vals)-1])
}

type emailGetArgs struct {
	jmap.GetArgs
	BodyProperties      *[]string `json:"bodyProperties"`
	FetchTextBodyValues bool      `json:"fetchTextBodyValues"`
	FetchHTMLBodyValues bool      `json:"fetchHTMLBodyValues"`
	FetchAllBodyValues  bool      `json:"fetchAllBodyValues"`
	MaxBodyValueBytes   int       `json:"maxBodyValueBytes"`
}

// partBlobID names the decoded content of one body part: the message blob
// and the part id, hex-encoded so that the result is a valid Id.
func partBlobID(msgBlob, partID string) string {
	return msgBlob + "_" + hex.EncodeToString([]byte(partID))
}

// splitPartBlobID undoes partBlobID. It cuts at the last "_", so that msgBlob
// may itself be a part blob id: the parts of an attached message, which
// Email/parse reads from the attachment's blobId (RFC 8621 §4.1.4).
func splitPartBlobID(id string) (msgBlob, partID string, ok bool) {
	i := strings.LastIndexByte(id, '_')
	if i < 0 {
		return "", "", false
	}
	b, p := id[:i], id[i+1:]
	raw, err := hex.DecodeString(p)
	if err != nil || len(raw) == 0 {
		return "", "", false
	}
	return b, string(raw), true
}

// openBlob opens a blob of acct: a stored blob, or the decoded content of a
// body part named by partBlobID. It answers store.ErrNotFound for anything
// the account may not read; what the caller may read within the account is
// for openBlobChecked to decide.
func openBlob(ctx context.Context, st store.Store, acct store.AccountID, id store.BlobID, off, n int64) (store.BlobInfo, io.ReadSeekCloser, error) {
	msgBlob, partID, ok := splitPartBlobID(string(id))
	if !ok {
		return st.Blobs().Open(ctx, acct, id, off, n)
	}
	m, err := openMessage(ctx, st, acct, msgBlob)
	if err != nil {
		return store.BlobInfo{}, nil, err
	}
	p := m.Find(partID)
	if p == nil || p.SubParts != nil {
		return store.BlobInfo{}, nil, store.ErrNotFound
	}
	data := m.Content(p)
	size := int64(len(data))
	if off < 0 || off > size {
		off = size
	}
	end := size
	if n >= 0 && off+n < end {
		end = off + n
	}
	return store.BlobInfo{ID: id, Size: size, Type: p.Type}, readSeekNopCloser{strings.NewReader(string(data[off:end]))}, nil
}

type readSeekNopCloser struct{ *strings.Reader }

func (readSeekNopCloser) Close() error { return nil }

// openMessage parses the message in a blob, which may be a part blob id
// (an attached message/rfc822 part).
func openMessage(ctx context.Context, st store.Store, acct store.AccountID, blob string) (*mime.Message, error) {
	_, body, err := openBlob(ctx, st, acct, store.BlobID(blob), 0, -1)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	raw, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	m, err := mime.Parse(raw)
	if errors.Is(err, mime.ErrNotMessage) {
		return nil, store.ErrNotFound
	}
	return m, err
}

// bodyPart renders one EmailBodyPart with the requested properties.
func bodyPart(m *mime.Message, msgBlob string, p *mime.Part, props []string, hprops []headerProp) map[string]any {
	out := map[string]any{}
	for _, prop := range props {
		switch prop {
		case "partId":
			if p.PartID == "" {
				out[prop] = nil
			} else {
				out[prop] = p.PartID
			}
		case "blobId":
			if p.PartID == "" {
				out[prop] = nil
			} else {
				out[prop] = partBlobID(msgBlob, p.PartID)
			}
		case "size":
			out[prop] = m.Size(p)
		case "headers":
			out[prop] = headerList(p.Headers)
		case "name":
			out[prop] = p.Name
		case "type":
			out[prop] = p.Type
		case "charset":
			out[prop] = p.Charset
		case "disposition":
			out[prop] = p.Disposition
		case "cid":
			out[prop] = p.Cid
		case "language":
			if p.Language == nil {
				out[prop] = nil
			} else {
				out[prop] = p.Language
			}
		case "location":
			out[prop] = p.Location
		case "subParts":
			if p.SubParts == nil {
				out[prop] = nil
			} else {
				subs := make([]any, len(p.SubParts))
				for i, s := range p.SubParts {
					subs[i] = bodyPart(m, msgBlob, s, props, hprops)
				}
				out[prop] = subs
			}
		}
	}
	for _, h := range hprops {
		out[h.prop] = h.value(p.Headers)
	}
	return out
}

func headerList(hs []mime.Header) []map[string]string {
	out := make([]map[string]string, len(hs))
	for i, h := range hs {
		out[i] = map[string]string{"name": h.Name, "value": mime.AsRaw(h.Value)}
	}
	return out
}

// truncateUTF8 cuts s to at most n octets without splitting a character
// (RFC 8621 §4.2 maxBodyValueBytes), and not inside an HTML tag when html.
func truncateUTF8(s string, n int, html bool) (string, bool) {
	if n <= 0 || len(s) <= n {
		return s, false
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if html {
		if lt := strings.LastIndexByte(s[:cut], '<'); lt >= 0 && strings.IndexByte(s[lt:cut], '>') < 0 {
			cut = lt
		}
	}
	return s[:cut], true
}

// emailGet fetches emails (RFC 8621 §4.2): list-view properties from the
// record, everything else from the parsed message.
func emailGet(ctx context.Context, c *jmap.Call) (any, error) {
	var args emailGetArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	if args.MaxBodyValueBytes < 0 {
		return nil, jmap.InvalidArguments("maxBodyValueBytes must not be negative")
	}
	acct, err := c.Account(ctx, args.AccountID, CapMail)
	if err != nil {
		return nil, err
	}
	props := defaultEmailProps
	if args.Properties != nil {
		props = *args.Properties
	}
	plain, hprops, bplain, bhprops, err := emailPropertyLists(props, &args)
	if err != nil {
		return nil, err
	}
	needMessage := len(hprops) > 0 || slices.ContainsFunc(plain, func(p string) bool { return slices.Contains(messageEmailProps, p) })
	var ids []string
	resp := &jmap.GetResponse{AccountID: args.AccountID, List: []json.RawMessage{}, NotFound: []string{}}
	var records []*emailRecord
	var raws []*loadedEmail
	err = c.Store().View(ctx, func(tx store.Tx) error {
		st, err := tx.State(acct.ID, "Email")
		if err != nil {
			return err
		}
		resp.State = jmap.FormatState(uint64(st))
		if args.IDs == nil {
			for o, err := range tx.Scan(acct.ID, "Email") {
				if err != nil {
					return err
				}
				if len(ids) >= c.Limits().MaxObjectsInGet {
					return jmap.NewMethodError(jmap.ErrRequestTooLarge, "too many emails to return them all; give ids")
				}
				ids = append(ids, o.ID)
			}
		} else {
			if len(*args.IDs) > c.Limits().MaxObjectsInGet {
				return jmap.NewMethodError(jmap.ErrRequestTooLarge, "")
			}
			ids = *args.IDs
		}
		seen := map[string]bool{}
		unique := ids[:0:0]
		for _, raw := range ids {
			if !seen[raw] {
				seen[raw] = true
				unique = append(unique, raw)
			}
		}
		if !needMessage {
			access, err := callAccess(c, tx, acct.ID)
			if err != nil {
				return err
			}
			if access.Owner {
				raws, resp.NotFound, err = loadRawEmails(tx, c, acct.ID, unique)
				return err
			}
		}
		records, resp.NotFound, err = loadEmails(tx, c, acct.ID, unique)
		return err
	})
	if err != nil {
		return nil, err
	}
	if raws != nil {
		// The owner's answer is copied from the records (emailraw.go).
		sorted := sortedProps(plain)
		size := 0
		for _, r := range raws {
			size += len(r.raw.b)
		}
		return jmap.EncodeGetResponseItems(resp, len(raws), size, func(b []byte, i int) []byte {
			if r := raws[i]; r.record == nil {
				return appendRawEmailProps(b, &r.raw, sorted)
			}
			return appendEmailProps(b, raws[i].record, sorted)
		}), nil
	}
	if !needMessage {
		// Every property is in the record: written straight from it.
		sorted := sortedProps(plain)
		return jmap.EncodeGetResponseItems(resp, len(records), 640*len(records), func(b []byte, i int) []byte {
			return appendEmailProps(b, records[i], sorted)
		}), nil
	}
	for _, e := range records {
		out, err := emailProperties(ctx, c, acct.ID, e, plain, hprops, needMessage, bplain, bhprops, &args)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(out)
		if err != nil {
			return nil, err
		}
		resp.List = append(resp.List, b)
	}
	return jmap.EncodeGetResponse(resp)
}

// emailPropertyLists checks the requested Email and body part properties
// and splits off the header:* forms (RFC 8621 §4.2).
func emailPropertyLists(props []string, args *emailGetArgs) (plain []string, hprops []headerProp, bplain []string, bhprops []headerProp, err error) {
	for _, p := range props {
		if strings.HasPrefix(p, "header:") {
			h, ok := parseHeaderProp(p)
			if !ok {
				return nil, nil, nil, nil, jmap.InvalidArguments("unknown or forbidden header property %q", p)
			}
			hprops = append(hprops, h)
			continue
		}
		if !slices.Contains(storedEmailProps, p) && !slices.Contains(messageEmailProps, p) {
			return nil, nil, nil, nil, jmap.InvalidArguments("unknown property %q", p)
		}
		plain = append(plain, p)
	}
	bprops := defaultBodyProps
	if args.BodyProperties != nil {
		bprops = *args.BodyProperties
	}
	for _, p := range bprops {
		if strings.HasPrefix(p, "header:") {
			h, ok := parseHeaderProp(p)
			if !ok {
				return nil, nil, nil, nil, jmap.InvalidArguments("unknown or forbidden header property %q", p)
			}
			bhprops = append(bhprops, h)
			continue
		}
		if !slices.Contains(bodyPartProps, p) {
			return nil, nil, nil, nil, jmap.InvalidArguments("unknown body property %q", p)
		}
		bplain = append(bplain, p)
	}
	return plain, hprops, bplain, bhprops, nil
}

func emailProperties(ctx context.Context, c *jmap.Call, acct store.AccountID, e *emailRecord, props []string, hprops []headerProp,
	needMessage bool, bprops []string, bhprops []headerProp, args *emailGetArgs) (map[string]any, error) {
	var m *mime.Message
	if needMessage {
		var err error
		m, err = openMessage(ctx, c.Store(), acct, e.BlobID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("message blob %s of email %s is missing", e.BlobID, e.ID)
		}
		if err != nil {
			return nil, err
		}
	}
	return renderEmail(m, e, props, hprops, bprops, bhprops, args)
}

// renderEmail returns the requested properties of an email; m is needed
// only for properties the record does not hold.
func renderEmail(m *mime.Message, e *emailRecord, props []string, hprops []headerProp, bprops []string, bhprops []headerProp, args *emailGetArgs) (map[string]any, error) {
	out := map[string]any{"id": e.ID}
	var textBody, htmlBody, attachments []*mime.Part
	if m != nil {
		textBody, htmlBody, attachments = m.BodyLists()
	}
	parts := func(list []*mime.Part) []any {
		out := make([]any, len(list))
		for i, p := range list {
			out[i] = bodyPart(m, e.BlobID, p, bprops, bhprops)
		}
		return out
	}
	for _, p := range props {
		switch p {
		case "headers":
			out[p] = headerList(m.Headers)
		case "bodyStructure":
			out[p] = bodyPart(m, e.BlobID, m.Root, bprops, bhprops)
		case "textBody":
			out[p] = parts(textBody)
		case "htmlBody":
			out[p] = parts(htmlBody)
		case "attachments":
			out[p] = parts(attachments)
		case "bodyValues":
			out[p] = bodyValues(m, textBody, htmlBody, args)
		default:
			out[p] = e.property(p)
		}
	}
	for _, h := range hprops {
		out[h.prop] = h.value(m.Headers)
	}
	return out, nil
}

// property returns one stored property of the record as it goes on the
// wire (nil slices and pointers are null).
func (e *emailRecord) property(p string) any {
	addrs := func(a []mime.Address) any {
		if a == nil {
			return nil
		}
		return a
	}
	strs := func(s []string) any {
		if s == nil {
			return nil
		}
		return s
	}
	switch p {
	case "id":
		return e.ID
	case "blobId":
		return e.BlobID
	case "threadId":
		return e.ThreadID
	case "mailboxIds":
		if e.MailboxIDs == nil {
			return map[string]bool{}
		}
		return e.MailboxIDs
	case "keywords":
		if e.Keywords == nil {
			return map[string]bool{}
		}
		return e.Keywords
	case "size":
		return e.Size
	case "receivedAt":
		return e.ReceivedAt
	case "messageId":
		return strs(e.MessageID)
	case "inReplyTo":
		return strs(e.InReplyTo)
	case "references":
		return strs(e.References)
	case "sender":
		return addrs(e.Sender)
	case "from":
		return addrs(e.From)
	case "to":
		return addrs(e.To)
	case "cc":
		return addrs(e.Cc)
	case "bcc":
		return addrs(e.Bcc)
	case "replyTo":
		return addrs(e.ReplyTo)
	case "subject":
		if e.Subject == nil {
			return nil
		}
		return *e.Subject
	case "sentAt":
		if e.SentAt == nil {
			return nil
		}
		return *e.SentAt
	case "hasAttachment":
		return e.HasAttachment
	case "preview":
		return e.Preview
	}
	return nil
}

// bodyValues decodes the text parts the fetch arguments select
// (RFC 8621 §4.2).
func bodyValues(m *mime.Message, textBody, htmlBody []*mime.Part, args *emailGetArgs) map[string]any {
	out := map[string]any{}
	add := func(p *mime.Part) {
		if p.PartID == "" || !strings.HasPrefix(p.Type, "text/") {
			return
		}
		if _, done := out[p.PartID]; done {
			return
		}
		text, problem := m.Text(p)
		text, cut := truncateUTF8(text, args.MaxBodyValueBytes, p.Type == "text/html")
		out[p.PartID] = map[string]any{"value": text, "isEncodingProblem": problem, "isTruncated": cut}
	}
	if args.FetchAllBodyValues {
		var walk func(p *mime.Part)
		walk = func(p *mime.Part) {
			add(p)
			for _, s := range p.SubParts {
				walk(s)
			}
		}
		walk(m.Root)
		return out
	}
	if args.FetchTextBodyValues {
		for _, p := range textBody {
			add(p)
		}
	}
	if args.FetchHTMLBodyValues {
		for _, p := range htmlBody {
			add(p)
		}
	}
	return out
}

// loadEmails reads the emails that request ids (or creation ids) name,
// listing the ids that name none in notFound.
func loadEmails(tx store.Tx, c *jmap.Call, acct store.AccountID, raws []string) (records []*emailRecord, notFound []string, err error) {
	notFound = []string{}
	access, err := callAccess(c, tx, acct)
	if err != nil {
		return nil, nil, err
	}
	for _, raw := range raws {
		id, ok := c.ResolveID(raw)
		var e *emailRecord
		if ok {
			e, err = loadEmail(tx, acct, id)
		}
		if !ok || errors.Is(err, store.ErrNotFound) || (err == nil && !readableIn(access, e.MailboxIDs)) {
			notFound = append(notFound, raw)
			continue
		} else if err != nil {
			return nil, nil, err
		}
		e.MailboxIDs = visibleMailboxes(access, e.MailboxIDs)
		records = append(records, e)
	}
	return records, notFound, nil
}

// loadedEmail is a stored email record as the owner's Email/get reads it:
// its bytes with their members found, or, for a record not in the form
// scanRawEmail knows, the decoded record.
type loadedEmail struct {
	raw    rawEmail
	record *emailRecord
}

// loadRawEmails reads the records of the emails raws names, for the owner
// of acct, who sees every email whole; like loadEmails, ids that name no
// email are returned as notFound.
func loadRawEmails(tx store.Tx, c *jmap.Call, acct store.AccountID, raws []string) (out []*loadedEmail, notFound []string, err error) {
	notFound = []string{}
	out = make([]*loadedEmail, 0, len(raws))
	for _, raw := range raws {
		id, ok := c.ResolveID(raw)
		if !ok {
			notFound = append(notFound, raw)
			continue
		}
		var b []byte
		if v, ok := tx.(recordViewer); ok {
			err = v.ViewRecord(acct, "Email", id, func(rec []byte) error {
				b = bytes.Clone(rec)
				return nil
			})
		} else {
			b, err = tx.Get(acct, "Email", id)
		}
		if errors.Is(err, store.ErrNotFound) {
			notFound = append(notFound, raw)
			continue
		} else if err != nil {
			return nil, nil, err
		}
		l := &loadedEmail{}
		if !scanRawEmail(b, &l.raw) {
			var e emailRecord
			if err := decodeEmailRecord(b, &e); err != nil {
				return nil, nil, fmt.Errorf("email %s: %w", id, err)
			}
			l.record = &e
		}
		out = append(out, l)
	}
	return out, notFound, nil
}
