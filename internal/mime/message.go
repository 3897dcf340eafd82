package mime

import (
	"bytes"
	"errors"
	"iter"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

const (
	// maxDepth is how many multipart levels Parse follows; a multipart
	// nested deeper is an opaque application/octet-stream part.
	maxDepth = 20
	// maxParts is how many parts Parse makes; parts beyond it are dropped and
	// multiparts met after it are opaque.
	maxParts = 1000
)

// ErrNotMessage is returned by Parse when the input is not an RFC 5322
// message at all: it has no header section, as with empty input or binary
// data with no "Name: value" line before the first empty line.
var ErrNotMessage = errors.New("mime: not a message")

// Part is a MIME body part (RFC 8621 §4.1.4 EmailBodyPart). Its content is
// decoded on demand by Message.Content and Message.Text.
type Part struct {
	// PartID is "" for multipart/* parts (partId null) and otherwise the
	// part's IMAP section number: "1", "2", "2.1", ...
	PartID string
	// Headers are the part's header fields in order (for the root part, the
	// message's header fields).
	Headers []Header
	// Name is the filename of Content-Disposition, else the name parameter
	// of Content-Type, RFC 2231 and RFC 2047 decoded; nil when absent.
	Name *string
	// Type is the lower-cased media type without parameters; text/plain
	// when absent or invalid, message/rfc822 inside multipart/digest, and
	// application/octet-stream for a multipart beyond the parser's limits.
	Type string
	// Charset is the charset parameter as written for text/* parts, or
	// "us-ascii" when they have none; nil for other types.
	Charset *string
	// Disposition is the lower-cased Content-Disposition value without
	// parameters; nil when absent.
	Disposition *string
	// Cid is the Content-Id without angle brackets and CFWS; nil when absent.
	Cid *string
	// Language holds the Content-Language tags; nil when absent or empty.
	Language []string
	// Location is the Content-Location URI; nil when absent.
	Location *string
	// SubParts are the children of a multipart/* part.
	SubParts []*Part

	bodyStart, bodyEnd int // the body's octets in Message.Raw
	enc                transferEncoding
}

// IsMultipart reports whether p is a multipart/* part, which has SubParts and
// no content of its own.
func (p *Part) IsMultipart() bool {
	return strings.HasPrefix(p.Type, "multipart/")
}

// Message is a parsed RFC 5322 message.
type Message struct {
	// Raw is the message as given to Parse; parts point into it, so it
	// must not be changed.
	Raw []byte
	// Headers are the top-level header fields in order.
	Headers []Header
	// Root is the top-level body part; its Headers are the top-level
	// header fields.
	Root *Part
}

// Parse parses raw, which it keeps as Message.Raw. It returns ErrNotMessage
// when raw has no header section; anything else is parsed best-effort, with
// bounded work: broken or missing boundaries, unknown charsets and encodings
// and over-deep nesting give a usable, if approximate, structure.
func Parse(raw []byte) (*Message, error) {
	hs, bodyStart := parseHeaderSection(raw, 0, len(raw), true)
	if len(hs) == 0 {
		return nil, ErrNotMessage
	}
	p := parser{raw: raw}
	root := p.part(hs, bodyStart, len(raw), 0, "text/plain", "")
	return &Message{Raw: raw, Headers: hs, Root: root}, nil
}

// HeaderSize is the length in octets of the message's top-level header
// section.
func (m *Message) HeaderSize() int {
	if m.Root == nil {
		return 0
	}
	return m.Root.bodyStart
}

// parser holds the state of one Parse.
type parser struct {
	raw   []byte
	parts int
}

// part builds the part with header fields hs and body raw[bodyStart:end].
// section is its IMAP section number, "" for the root.
func (ps *parser) part(hs []Header, bodyStart, end, depth int, defaultType, section string) *Part {
	ps.parts++
	if hs == nil {
		hs = []Header{} // headers is EmailHeader[], never null
	}
	p := &Part{Headers: hs, bodyStart: bodyStart, bodyEnd: end}
	typ, params := "", map[string]string(nil)
	if v, ok := first(hs, "Content-Type"); ok {
		typ, params = parseParamHeader(v)
		if !validMediaType(typ) {
			typ, params = "", nil // RFC 2045 §5.2: invalid means the default
		}
	}
	if typ == "" {
		typ = defaultType
	}
	boundary := params["boundary"]
	if strings.HasPrefix(typ, "multipart/") && (depth >= maxDepth || ps.parts >= maxParts) {
		typ, boundary = "application/octet-stream", ""
	}
	p.Type = typ
	if strings.HasPrefix(typ, "text/") {
		cs := cleanUTF8(strings.Trim(params["charset"], " \t\"'"))
		if cs == "" {
			cs = "us-ascii"
		}
		p.Charset = &cs
	}
	var dparams map[string]string
	if v, ok := first(hs, "Content-Disposition"); ok {
		var d string
		d, dparams = parseParamHeader(v)
		if d = cleanUTF8(d); d != "" {
			p.Disposition = &d
		}
	}
	name := dparams["filename"]
	if strings.Trim(name, " \t") == "" {
		name = params["name"]
	}
	// Mailers put RFC 2047 words in quoted parameters against RFC 2047 §5;
	// decode them wherever they stand.
	name = strings.Trim(decodeWordsLoose(cleanUTF8(name)), " \t")
	if name = norm.NFC.String(name); name != "" {
		p.Name = &name
	}
	if v, ok := first(hs, "Content-Id"); ok {
		cid := ""
		if ids := bracketed(v); len(ids) > 0 {
			cid = ids[0]
		} else {
			cid = strings.TrimSpace(stripComments(cleanUTF8(unfold(v))))
		}
		if cid != "" {
			p.Cid = &cid
		}
	}
	if v, ok := first(hs, "Content-Language"); ok {
		for _, tag := range strings.Split(stripComments(cleanUTF8(unfold(v))), ",") {
			if tag = strings.TrimSpace(tag); tag != "" {
				p.Language = append(p.Language, tag)
			}
		}
	}
	if v, ok := first(hs, "Content-Location"); ok {
		// RFC 2557 §4.4.2: a long URI may be folded; white space is not
		// part of it.
		loc := strings.Join(strings.Fields(stripComments(cleanUTF8(unfold(v)))), "")
		if loc != "" {
			p.Location = &loc
		}
	}

	if strings.HasPrefix(typ, "multipart/") {
		childType := "text/plain"
		if typ == "multipart/digest" {
			childType = "message/rfc822" // RFC 2046 §5.1.5
		}
		for i, r := range ps.split(bodyStart, end, boundary) {
			if ps.parts >= maxParts {
				break
			}
			var chs []Header
			cbody := r.start
			if !r.headerless {
				chs, cbody = parseHeaderSection(ps.raw, r.start, r.end, false)
			}
			id := strconv.Itoa(i + 1)
			if section != "" {
				id = section + "." + id
			}
			p.SubParts = append(p.SubParts, ps.part(chs, cbody, r.end, depth+1, childType, id))
		}
		return p
	}

	p.PartID = section
	if p.PartID == "" {
		p.PartID = "1"
	}
	if v, ok := first(hs, "Content-Transfer-Encoding"); ok {
		p.enc = parseTransferEncoding(v)
	}
	return p
}

// span is the range raw[start:end] of one body part in a multipart.
type span struct {
	start, end int
	headerless bool // the part has no header section
}

// split returns the body parts of the multipart body raw[start:end] with the
// given boundary (RFC 2046 §5.1.1). A delimiter line is "--boundary"
// followed by white space only, or "--boundary--" (the close delimiter), at
// the start of a line; the line break before it belongs to it. Without a
// close delimiter the last part runs to end. When there is no boundary or the
// body has no delimiter at all, the whole body is taken as one part without
// header fields, so that its text is not lost. At most the parser's remaining
// part budget is returned.
func (ps *parser) split(start, end int, boundary string) []span {
	if boundary == "" {
		return []span{{start, end, true}}
	}
	var parts []span
	budget := maxParts - ps.parts
	raw := ps.raw
	delim := []byte("--" + boundary)
	partStart := -1
	pos := start
	for pos < end && len(parts) < budget {
		i := bytes.Index(raw[pos:end], delim)
		if i < 0 {
			break
		}
		at := pos + i
		if at > start && raw[at-1] != '\n' {
			pos = at + 1
			continue
		}
		after := at + len(delim)
		closing := after+2 <= end && raw[after] == '-' && raw[after+1] == '-'
		lineEnd := end
		if nl := bytes.IndexByte(raw[after:end], '\n'); nl >= 0 {
			lineEnd = after + nl + 1
		}
		if !closing && len(bytes.Trim(raw[after:lineEnd], " \t\r\n")) > 0 {
			pos = at + 1
			continue
		}
		if partStart >= 0 {
			pe := at
			if pe > start {
				pe-- // the LF
				if pe > partStart && raw[pe-1] == '\r' {
					pe--
				}
			}
			parts = append(parts, span{start: partStart, end: max(pe, partStart)})
		}
		if closing {
			if partStart < 0 {
				break // a close delimiter first: no parts
			}
			return parts
		}
		partStart, pos = lineEnd, lineEnd
	}
	if partStart < 0 {
		return []span{{start, end, true}}
	}
	if len(parts) < budget && (partStart < end || len(parts) == 0) {
		parts = append(parts, span{start: partStart, end: end})
	}
	return parts
}

// validMediaType reports whether t is "type/subtype" made of RFC 2045 token
// characters.
func validMediaType(t string) bool {
	slash := strings.IndexByte(t, '/')
	if slash <= 0 || slash == len(t)-1 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if i == slash {
			continue
		}
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?=", c) >= 0 {
			return false
		}
	}
	return true
}

// Parts returns every part of m depth first, multipart parts included.
func (m *Message) Parts() iter.Seq[*Part] {
	return func(yield func(*Part) bool) {
		var walk func(p *Part) bool
		walk = func(p *Part) bool {
			if !yield(p) {
				return false
			}
			for _, c := range p.SubParts {
				if !walk(c) {
					return false
				}
			}
			return true
		}
		if m.Root != nil {
			walk(m.Root)
		}
	}
}

// Find returns the part with partId partID, or nil.
func (m *Message) Find(partID string) *Part {
	if partID == "" {
		return nil
	}
	for p := range m.Parts() {
		if p.PartID == partID {
			return p
		}
	}
	return nil
}

// Content returns the decoded bytes of a leaf part: transfer encoding removed
// (base64 and quoted-printable best-effort; an unknown encoding is left as
// is). Without a transfer encoding the result shares memory with m.Raw and
// must not be changed. It is nil for a multipart part.
func (m *Message) Content(p *Part) []byte {
	return m.content(p, -1)
}

// Size returns the size of p's content after transfer decoding, the
// length of Content(p) (0 for a multipart part), counted when asked: a
// message stored or delivered has no need of it.
func (m *Message) Size(p *Part) int64 {
	src := m.body(p)
	switch p.enc {
	case encBase64:
		return int64(base64Len(src))
	case encQuotedPrintable:
		return int64(quotedPrintableLen(src))
	}
	return int64(len(src))
}

// body returns the encoded body of a leaf part, nil for a multipart one.
func (m *Message) body(p *Part) []byte {
	if p == nil || p.PartID == "" {
		return nil
	}
	s, e := min(max(p.bodyStart, 0), len(m.Raw)), min(max(p.bodyEnd, 0), len(m.Raw))
	if e < s {
		e = s
	}
	return m.Raw[s:e:e]
}

// content is Content reading at most limit octets of the encoded body when
// limit >= 0.
func (m *Message) content(p *Part, limit int) []byte {
	src := m.body(p)
	if limit >= 0 && len(src) > limit {
		src = src[:limit:limit]
	}
	switch p.enc {
	case encBase64:
		return decodeBase64(make([]byte, 0, len(src)/4*3+3), src)
	case encQuotedPrintable:
		return decodeQuotedPrintable(make([]byte, 0, len(src)), src)
	}
	return src
}

// Text returns a leaf part's content converted to UTF-8 from its charset
// (UTF-8 assumed for parts that are not text/*), with every CRLF replaced by
// LF as RFC 8621 §4.1.4 asks of bodyValues. problem is RFC 8621
// isEncodingProblem: the charset or transfer encoding was unknown, or the
// octets were invalid in the charset (such sections become U+FFFD).
func (m *Message) Text(p *Part) (text string, problem bool) {
	return m.text(p, -1)
}

// text is Text reading at most limit octets of the encoded body when
// limit >= 0.
func (m *Message) text(p *Part, limit int) (string, bool) {
	if p == nil || p.PartID == "" {
		return "", false
	}
	cs := "utf-8"
	if p.Charset != nil {
		cs = *p.Charset
	}
	raw := m.content(p, limit)
	if isUTF8Label(normCharset(cs)) && utf8.Valid(raw) {
		// Most text: one copy, its line ends changed on the way.
		return lfString(raw), p.enc == encUnknown
	}
	s, known, problem := decodeCharset(raw, cs)
	if !known || p.enc == encUnknown {
		problem = true
	}
	if strings.IndexByte(s, '\r') >= 0 {
		s = strings.ReplaceAll(s, "\r\n", "\n")
	}
	return s, problem
}

// lfString returns b as a string with every CRLF replaced by LF.
func lfString(b []byte) string {
	i := bytes.Index(b, []byte("\r\n"))
	if i < 0 {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b))
	for i >= 0 {
		sb.Write(b[:i])
		sb.WriteByte('\n')
		b = b[i+2:]
		i = bytes.Index(b, []byte("\r\n"))
	}
	sb.Write(b)
	return sb.String()
}
