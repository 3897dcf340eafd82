package methods

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	stdmime "mime"
	"mime/quotedprintable"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// headerProperty maps the Email properties that stand for header fields to
// their field name and parsed form (RFC 8621 §4.1.3).
var headerProperty = map[string][2]string{
	"messageId": {"Message-ID", "MessageIds"}, "inReplyTo": {"In-Reply-To", "MessageIds"},
	"references": {"References", "MessageIds"}, "sender": {"Sender", "Addresses"},
	"from": {"From", "Addresses"}, "to": {"To", "Addresses"}, "cc": {"Cc", "Addresses"},
	"bcc": {"Bcc", "Addresses"}, "replyTo": {"Reply-To", "Addresses"}, "subject": {"Subject", "Text"},
	"sentAt": {"Date", "Date"},
}

// field is one header field to write.
type field struct {
	name, value string
	// raw marks a value given in Raw form: the octets after the colon,
	// written as they are (RFC 8621 §4.1.2.1), where other values get the
	// usual space after the colon.
	raw bool
}

// builder builds the message of an Email/set create (RFC 8621 §4.6).
type builder struct {
	ctx        context.Context
	c          *jmap.Call
	acct       store.AccountID
	bodyValues map[string]string
	missing    []string // blob ids not found
	attachSize int64
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func encodeText(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 || s[i] < 0x20 && s[i] != '\t' {
			return stdmime.QEncoding.Encode("utf-8", s)
		}
	}
	return s
}

func formatAddress(a map[string]any) (string, bool) {
	email, ok := a["email"].(string)
	if !ok || strings.ContainsAny(email, "\r\n<>") {
		return "", false
	}
	name, _ := a["name"].(string)
	if name == "" {
		return email, true
	}
	if strings.ContainsAny(name, "\r\n") {
		return "", false
	}
	enc := encodeText(name)
	if enc == name && strings.ContainsAny(name, `()<>[]:;@\,."`) {
		enc = `"` + strings.ReplaceAll(strings.ReplaceAll(name, `\`, `\\`), `"`, `\"`) + `"`
	}
	return enc + " <" + email + ">", true
}

// encodeHeader writes a value given in a parsed form as header field text.
func encodeHeader(form string, v any) (string, bool) {
	switch form {
	case "Raw":
		s, ok := v.(string)
		// A raw value may fold, but never end the field early.
		return s, ok && !strings.Contains(strings.NewReplacer("\r\n ", "", "\r\n\t", "").Replace(s), "\n") && !strings.Contains(s, "\r\n\r\n")
	case "Text":
		s, ok := v.(string)
		return encodeText(s), ok && !strings.ContainsAny(s, "\r\n")
	case "Addresses":
		list, ok := v.([]any)
		if !ok {
			return "", false
		}
		out := make([]string, 0, len(list))
		for _, x := range list {
			m, ok := x.(map[string]any)
			if !ok {
				return "", false
			}
			s, ok := formatAddress(m)
			if !ok {
				return "", false
			}
			out = append(out, s)
		}
		return strings.Join(out, ", "), true
	case "GroupedAddresses":
		list, ok := v.([]any)
		if !ok {
			return "", false
		}
		var out []string
		for _, x := range list {
			g, ok := x.(map[string]any)
			if !ok {
				return "", false
			}
			addrs, ok := encodeHeader("Addresses", g["addresses"])
			if !ok {
				return "", false
			}
			if name, _ := g["name"].(string); name != "" {
				out = append(out, encodeText(name)+": "+addrs+";")
			} else if addrs != "" {
				out = append(out, addrs)
			}
		}
		return strings.Join(out, ", "), true
	case "MessageIds":
		list, ok := v.([]any)
		if !ok {
			return "", false
		}
		out := make([]string, 0, len(list))
		for _, x := range list {
			s, ok := x.(string)
			if !ok || s == "" || strings.ContainsAny(s, "<> \r\n") {
				return "", false
			}
			out = append(out, "<"+s+">")
		}
		return strings.Join(out, " "), true
	case "Date":
		s, ok := v.(string)
		t, err := time.Parse(time.RFC3339, s)
		if !ok || err != nil {
			return "", false
		}
		return t.Format(time.RFC1123Z), true
	case "URLs":
		list, ok := v.([]any)
		if !ok {
			return "", false
		}
		out := make([]string, 0, len(list))
		for _, x := range list {
			s, ok := x.(string)
			if !ok || strings.ContainsAny(s, "<> \r\n") {
				return "", false
			}
			out = append(out, "<"+s+">")
		}
		return strings.Join(out, ", "), true
	}
	return "", false
}

// headerFields turns the header properties of an object (Email or body
// part) into fields, rejecting duplicates and forbidden forms.
func headerFields(obj map[string]any, seen map[string]bool, topLevel bool) ([]field, *jmap.SetError) {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []field
	for _, k := range keys {
		v := obj[k]
		var name, form string
		all := false
		if hp, ok := headerProperty[k]; ok && topLevel {
			name, form = hp[0], hp[1]
		} else if strings.HasPrefix(k, "header:") {
			h, ok := parseHeaderProp(k)
			if !ok {
				return nil, jmap.InvalidProperties("unknown or forbidden header form", k)
			}
			name, form, all = h.name, h.form, h.all
		} else {
			continue
		}
		low := strings.ToLower(name)
		if seen[low] {
			return nil, jmap.InvalidProperties("the header field is given twice", k)
		}
		seen[low] = true
		if topLevel && strings.HasPrefix(low, "content-") {
			return nil, jmap.InvalidProperties("Content-* header fields belong on body parts", k)
		}
		if low == "content-transfer-encoding" {
			return nil, jmap.InvalidProperties("Content-Transfer-Encoding is chosen by the server", k)
		}
		if v == nil {
			continue
		}
		// RFC 8621 §4.1.3: with :all the value is an array, one item per
		// instance of the field; the rules above hold for it too.
		values := []any{v}
		if all {
			list, isList := v.([]any)
			if !isList {
				return nil, jmap.InvalidProperties("a :all header takes an array", k)
			}
			values = list
		}
		for _, item := range values {
			enc, ok := encodeHeader(form, item)
			if !ok {
				return nil, jmap.InvalidProperties("bad header value", k)
			}
			out = append(out, field{name: name, value: enc, raw: form == "Raw"})
		}
	}
	return out, nil
}

// part is a body part ready to write.
type part struct {
	fields  []field
	ctype   string
	params  map[string]string
	content []byte
	// fromBlob marks content taken from a blob, which must come back
	// octet for octet (RFC 8621 §4.6: its size "is actually calculated
	// from the blob content itself"), so its line breaks are not touched.
	fromBlob bool
	subParts []*part
}

func (b *builder) buildPart(obj map[string]any, top map[string]bool) (*part, *jmap.SetError) {
	for k := range obj {
		switch k {
		case "partId", "blobId", "size", "name", "type", "charset", "disposition", "cid", "language", "location", "subParts":
		default:
			if !strings.HasPrefix(k, "header:") {
				return nil, jmap.InvalidProperties(fmt.Sprintf("%q cannot be set on a body part", k), k)
			}
		}
	}
	seen := map[string]bool{}
	for k := range top {
		seen[k] = true
	}
	fields, serr := headerFields(obj, seen, false)
	if serr != nil {
		return nil, serr
	}
	for k := range seen {
		if top[k] && strings.HasPrefix(k, "content-") {
			return nil, jmap.InvalidProperties("header field given twice", "bodyStructure")
		}
	}
	p := &part{fields: fields, params: map[string]string{}}
	typ, _ := obj["type"].(string)
	partID, hasPart := obj["partId"].(string)
	blobID, hasBlob := obj["blobId"].(string)
	if subs, ok := obj["subParts"].([]any); ok && len(subs) > 0 {
		if typ == "" {
			typ = "multipart/mixed"
		}
		if !strings.HasPrefix(strings.ToLower(typ), "multipart/") || hasPart || hasBlob {
			return nil, jmap.InvalidProperties("only a multipart part has subParts", "subParts")
		}
		for _, s := range subs {
			sm, ok := s.(map[string]any)
			if !ok {
				return nil, jmap.InvalidProperties("subParts holds body parts", "subParts")
			}
			sp, serr := b.buildPart(sm, nil)
			if serr != nil {
				return nil, serr
			}
			p.subParts = append(p.subParts, sp)
		}
		p.ctype = strings.ToLower(typ)
		p.params["boundary"] = "=_" + randomToken(12)
		return p, nil
	}
	switch {
	case hasPart && hasBlob:
		return nil, jmap.InvalidProperties("a body part has a partId or a blobId, not both", "partId")
	case hasPart:
		if _, ok := obj["charset"]; ok {
			return nil, jmap.InvalidProperties("charset is chosen by the server for bodyValues", "charset")
		}
		if _, ok := obj["size"]; ok {
			return nil, jmap.InvalidProperties("size cannot be given with a partId", "size")
		}
		v, ok := b.bodyValues[partID]
		if !ok {
			return nil, jmap.InvalidProperties(fmt.Sprintf("no bodyValues entry %q", partID), "partId")
		}
		if typ == "" {
			typ = "text/plain"
		}
		p.content = []byte(v)
		p.params["charset"] = "utf-8"
	case hasBlob:
		id, ok := b.c.ResolveID(blobID)
		if !ok {
			b.missing = append(b.missing, blobID)
			return p, nil
		}
		_, body, err := openBlobChecked(b.ctx, b.c, b.acct, store.BlobID(id), 0, -1)
		if errors.Is(err, store.ErrNotFound) {
			b.missing = append(b.missing, blobID)
			return p, nil
		} else if err != nil {
			return nil, jmap.NewSetError(jmap.ErrServerFail, "")
		}
		p.content, err = io.ReadAll(body)
		p.fromBlob = true
		body.Close()
		if err != nil {
			return nil, jmap.NewSetError(jmap.ErrServerFail, "")
		}
		b.attachSize += int64(len(p.content))
		if typ == "" {
			typ = "application/octet-stream"
		}
		if cs, ok := obj["charset"].(string); ok && strings.HasPrefix(strings.ToLower(typ), "text/") {
			p.params["charset"] = cs
		}
	default:
		return nil, jmap.InvalidProperties("a body part needs a partId, a blobId or subParts", "partId")
	}
	if strings.HasPrefix(strings.ToLower(typ), "multipart/") {
		return nil, jmap.InvalidProperties("a multipart part needs subParts", "type")
	}
	if _, _, err := stdmime.ParseMediaType(typ); err != nil {
		return nil, jmap.InvalidProperties("bad media type", "type")
	}
	p.ctype = strings.ToLower(typ)
	name, _ := obj["name"].(string)
	if name != "" {
		p.params["name"] = name
	}
	disp, _ := obj["disposition"].(string)
	if disp != "" || name != "" {
		if disp == "" {
			disp = "attachment"
		}
		dp := map[string]string{}
		if name != "" {
			dp["filename"] = name
		}
		p.fields = append(p.fields, field{name: "Content-Disposition", value: stdmime.FormatMediaType(disp, dp)})
	}
	if cid, _ := obj["cid"].(string); cid != "" && !strings.ContainsAny(cid, "<>\r\n ") {
		p.fields = append(p.fields, field{name: "Content-ID", value: "<" + cid + ">"})
	}
	if langs, ok := obj["language"].([]any); ok && len(langs) > 0 {
		var ls []string
		for _, l := range langs {
			if s, ok := l.(string); ok && !strings.ContainsAny(s, "\r\n,") {
				ls = append(ls, s)
			}
		}
		p.fields = append(p.fields, field{name: "Content-Language", value: strings.Join(ls, ", ")})
	}
	if loc, _ := obj["location"].(string); loc != "" && !strings.ContainsAny(loc, "\r\n") {
		p.fields = append(p.fields, field{name: "Content-Location", value: loc})
	}
	return p, nil
}

func writeFields(w *bytes.Buffer, fs []field) {
	for _, f := range fs {
		w.WriteString(f.name)
		w.WriteString(":")
		if !f.raw {
			w.WriteString(" ")
		}
		w.WriteString(f.value)
		w.WriteString("\r\n")
	}
}

// write emits the part's header fields (Content-Type, transfer encoding)
// and body.
func (p *part) write(w *bytes.Buffer) {
	ct := stdmime.FormatMediaType(p.ctype, p.params)
	if ct == "" {
		ct = p.ctype
	}
	w.WriteString("Content-Type: " + ct + "\r\n")
	writeFields(w, p.fields)
	if p.subParts != nil {
		w.WriteString("\r\n")
		boundary := p.params["boundary"]
		for _, s := range p.subParts {
			w.WriteString("--" + boundary + "\r\n")
			s.write(w)
			w.WriteString("\r\n")
		}
		w.WriteString("--" + boundary + "--\r\n")
		return
	}
	if strings.HasPrefix(p.ctype, "text/") && utf8.Valid(p.content) && !p.fromBlob {
		w.WriteString("Content-Transfer-Encoding: quoted-printable\r\n\r\n")
		qp := quotedprintable.NewWriter(w)
		_, _ = qp.Write(bytes.ReplaceAll(bytes.ReplaceAll(p.content, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n")))
		_ = qp.Close()
		return
	}
	w.WriteString("Content-Transfer-Encoding: base64\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(p.content)
	for len(enc) > 76 {
		w.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	w.WriteString(enc + "\r\n")
}

func multipart(typ string, subs ...*part) *part {
	return &part{ctype: typ, params: map[string]string{"boundary": "=_" + randomToken(12)}, subParts: subs}
}

// buildMessage makes the RFC 5322 message of an Email/set create object
// (RFC 8621 §4.6). A SetError rejects this email only.
func (b *builder) buildMessage(obj map[string]any) ([]byte, *jmap.SetError) {
	for k := range obj {
		switch k {
		case "mailboxIds", "keywords", "receivedAt", "bodyStructure", "bodyValues", "textBody", "htmlBody", "attachments":
		default:
			if _, ok := headerProperty[k]; !ok && !strings.HasPrefix(k, "header:") {
				return nil, jmap.InvalidProperties(fmt.Sprintf("%q cannot be set on a new email", k), k)
			}
		}
	}
	b.bodyValues = map[string]string{}
	if bv, ok := obj["bodyValues"]; ok && bv != nil {
		m, ok := bv.(map[string]any)
		if !ok {
			return nil, jmap.InvalidProperties("bodyValues maps part ids to values", "bodyValues")
		}
		for id, x := range m {
			v, ok := x.(map[string]any)
			val, isStr := v["value"].(string)
			if !ok || !isStr {
				return nil, jmap.InvalidProperties("a body value needs a value", "bodyValues")
			}
			if v["isEncodingProblem"] == true || v["isTruncated"] == true {
				return nil, jmap.InvalidProperties("isEncodingProblem and isTruncated must be false", "bodyValues")
			}
			b.bodyValues[id] = val
		}
	}
	seen := map[string]bool{}
	fields, serr := headerFields(obj, seen, true)
	if serr != nil {
		return nil, serr
	}
	var root *part
	if bs, ok := obj["bodyStructure"]; ok && bs != nil {
		for _, k := range []string{"textBody", "htmlBody", "attachments"} {
			if obj[k] != nil {
				return nil, jmap.InvalidProperties("bodyStructure excludes textBody, htmlBody and attachments", k)
			}
		}
		m, ok := bs.(map[string]any)
		if !ok {
			return nil, jmap.InvalidProperties("bodyStructure is a body part", "bodyStructure")
		}
		if root, serr = b.buildPart(m, seen); serr != nil {
			return nil, serr
		}
	} else {
		one := func(k, typ string) (*part, *jmap.SetError) {
			v, ok := obj[k]
			if !ok || v == nil {
				return nil, nil
			}
			list, ok := v.([]any)
			if !ok || len(list) != 1 {
				return nil, jmap.InvalidProperties(k+" holds exactly one body part", k)
			}
			m, ok := list[0].(map[string]any)
			if !ok {
				return nil, jmap.InvalidProperties(k+" holds exactly one body part", k)
			}
			if t, _ := m["type"].(string); t != "" && !strings.EqualFold(t, typ) {
				return nil, jmap.InvalidProperties(k+" must be "+typ, k)
			}
			if m = maps.Clone(m); m == nil {
				m = map[string]any{}
			}
			m["type"] = typ
			return b.buildPart(m, seen)
		}
		text, serr := one("textBody", "text/plain")
		if serr != nil {
			return nil, serr
		}
		html, serr := one("htmlBody", "text/html")
		if serr != nil {
			return nil, serr
		}
		var inline, attached []*part
		if a, ok := obj["attachments"]; ok && a != nil {
			list, ok := a.([]any)
			if !ok {
				return nil, jmap.InvalidProperties("attachments holds body parts", "attachments")
			}
			for _, x := range list {
				m, ok := x.(map[string]any)
				if !ok {
					return nil, jmap.InvalidProperties("attachments holds body parts", "attachments")
				}
				p, serr := b.buildPart(m, seen)
				if serr != nil {
					return nil, serr
				}
				if d, _ := m["disposition"].(string); strings.EqualFold(d, "inline") && m["cid"] != nil && html != nil {
					inline = append(inline, p)
				} else {
					attached = append(attached, p)
				}
			}
		}
		switch {
		case text != nil && html != nil:
			if len(inline) > 0 {
				html = multipart("multipart/related", append([]*part{html}, inline...)...)
			}
			root = multipart("multipart/alternative", text, html)
		case html != nil:
			root = html
			if len(inline) > 0 {
				root = multipart("multipart/related", append([]*part{html}, inline...)...)
			}
		case text != nil:
			root = text
		default:
			root = &part{ctype: "text/plain", params: map[string]string{"charset": "utf-8"}}
		}
		if len(attached) > 0 {
			root = multipart("multipart/mixed", append([]*part{root}, attached...)...)
		}
	}
	if len(b.missing) > 0 {
		return nil, &jmap.SetError{Type: "blobNotFound", Description: "some blobs do not exist", NotFound: b.missing}
	}
	if b.attachSize > b.c.Limits().MaxSizeUpload {
		return nil, jmap.NewSetError(jmap.SetTooLarge, "the attachments are larger than maxSizeAttachmentsPerEmail")
	}
	// RFC 8621 §4.6: the server sets Message-ID and Date when missing.
	if !seen["message-id"] {
		host, _ := os.Hostname()
		if host == "" {
			host = "jmapd.invalid"
		}
		fields = append(fields, field{name: "Message-ID", value: "<" + randomToken(16) + "@" + host + ">"})
	}
	if !seen["date"] {
		fields = append(fields, field{name: "Date", value: time.Now().Format(time.RFC1123Z)})
	}
	var w bytes.Buffer
	writeFields(&w, fields)
	w.WriteString("MIME-Version: 1.0\r\n")
	root.write(&w)
	return w.Bytes(), nil
}
