package methods

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/jmapd/jmapd/internal/mime"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// The email record is stored as the JSON json.Marshal makes of emailRecord.
// A list view reads fifty of them per request, so the record is read and
// the list properties written here without reflection. decodeEmailRecord
// reads the form marshalEmail writes (and any JSON that only differs in
// white space or string escapes); on anything else it leaves the record to
// json.Unmarshal, so the result is always json.Unmarshal's.
// FuzzDecodeEmailRecord and FuzzAppendEmailProps hold both to it.

// recordViewer is a store.Tx that lends a record's bytes for the length of
// fn instead of copying them out (store/badger's tx is one).
type recordViewer interface {
	ViewRecord(acct store.AccountID, typ, id string, fn func([]byte) error) error
}

// decodeEmailRecord reads b into e as json.Unmarshal would. Nothing of e
// refers to b afterwards.
func decodeEmailRecord(b []byte, e *emailRecord) error {
	var fast emailRecord
	// One string holds the record's text; fields without escapes are
	// slices of it, which saves an allocation per field.
	if (&recordScanner{b: b, src: string(b)}).record(&fast) {
		*e = fast
		return nil
	}
	return json.Unmarshal(b, e)
}

// recordScanner reads one email record; each method reports false for
// anything outside the form it knows, and the caller then falls back.
type recordScanner struct {
	b   []byte
	src string // b as a string, when strings may be slices of it
	i   int
}

func (s *recordScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next returns the next byte after white space, or 0 at the end.
func (s *recordScanner) next() byte {
	s.space()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *recordScanner) take(c byte) bool {
	if s.next() == c {
		s.i++
		return true
	}
	return false
}

func (s *recordScanner) literal(lit string) bool {
	s.space()
	if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		s.i += len(lit)
		return true
	}
	return false
}

// str reads a string. Strings with invalid UTF-8 or escaped surrogates
// (which json.Unmarshal replaces) are left to the fallback.
func (s *recordScanner) str() (string, bool) {
	if s.next() != '"' {
		return "", false
	}
	start := s.i + 1
	ascii := true
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			raw := s.b[start:j]
			if !ascii && !utf8.Valid(raw) {
				return "", false
			}
			s.i = j + 1
			if len(s.src) == len(s.b) {
				return s.src[start:j], true
			}
			return string(raw), true
		case c == '\\':
			return s.escaped(start)
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// escaped reads the string starting at start (after the quote) that holds
// escapes.
func (s *recordScanner) escaped(start int) (string, bool) {
	out := make([]byte, 0, 64)
	for j := start; j < len(s.b); {
		c := s.b[j]
		switch {
		case c == '"':
			if !utf8.Valid(out) {
				return "", false
			}
			s.i = j + 1
			return string(out), true
		case c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
			j++
			continue
		}
		if j+1 >= len(s.b) {
			return "", false
		}
		switch e := s.b[j+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if j+6 > len(s.b) {
				return "", false
			}
			n, err := strconv.ParseUint(string(s.b[j+2:j+6]), 16, 16)
			if err != nil || (n >= 0xd800 && n < 0xe000) {
				return "", false
			}
			out = utf8.AppendRune(out, rune(n))
			j += 6
			continue
		default:
			return "", false
		}
		j += 2
	}
	return "", false
}

// nullableStr reads a string or null (nil).
func (s *recordScanner) nullableStr() (*string, bool) {
	if s.literal("null") {
		return nil, true
	}
	v, ok := s.str()
	return &v, ok
}

// int reads an integer that fits int64 without doubt.
func (s *recordScanner) int() (int64, bool) {
	s.space()
	j := s.i
	if j < len(s.b) && s.b[j] == '-' {
		j++
	}
	d := j
	for j < len(s.b) && s.b[j] >= '0' && s.b[j] <= '9' {
		j++
	}
	if j == d || j-d > 18 || (s.b[d] == '0' && j-d > 1) {
		return 0, false
	}
	if j < len(s.b) && (s.b[j] == '.' || s.b[j] == 'e' || s.b[j] == 'E') {
		return 0, false
	}
	n, err := strconv.ParseInt(string(s.b[s.i:j]), 10, 64)
	s.i = j
	return n, err == nil
}

// members reads an object, calling member for each name with the scanner
// at its value.
func (s *recordScanner) members(member func(name string) bool) bool {
	if !s.take('{') {
		return false
	}
	if s.take('}') {
		return true
	}
	for {
		name, ok := s.str()
		if !ok || !s.take(':') || !member(name) {
			return false
		}
		if s.take('}') {
			return true
		}
		if !s.take(',') {
			return false
		}
	}
}

// elements reads an array, calling elem with the scanner at each element.
func (s *recordScanner) elements(elem func() bool) bool {
	if !s.take('[') {
		return false
	}
	if s.take(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if s.take(']') {
			return true
		}
		if !s.take(',') {
			return false
		}
	}
}

// set reads a map of booleans, or null (nil).
func (s *recordScanner) set() (map[string]bool, bool) {
	if s.literal("null") {
		return nil, true
	}
	m := map[string]bool{}
	return m, s.members(func(name string) bool {
		switch {
		case s.literal("true"):
			m[name] = true
		case s.literal("false"):
			m[name] = false
		default:
			return false
		}
		return true
	})
}

// strs reads an array of strings, or null (nil).
func (s *recordScanner) strs() ([]string, bool) {
	if s.literal("null") {
		return nil, true
	}
	out := []string{}
	return out, s.elements(func() bool {
		v, ok := s.str()
		out = append(out, v)
		return ok
	})
}

// addresses reads an array of EmailAddress objects, or null (nil).
func (s *recordScanner) addresses() ([]mime.Address, bool) {
	if s.literal("null") {
		return nil, true
	}
	out := []mime.Address{}
	return out, s.elements(func() bool {
		var a mime.Address
		ok := s.members(func(name string) bool {
			var ok bool
			switch name {
			case "name":
				a.Name, ok = s.nullableStr()
			case "email":
				if s.literal("null") {
					return true
				}
				a.Email, ok = s.str()
			}
			return ok
		})
		out = append(out, a)
		return ok
	})
}

// recordFields are the JSON names of emailRecord, in its order; a name
// read twice is left to the fallback.
var recordFields = []string{"id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt",
	"messageId", "inReplyTo", "references", "sender", "from", "to", "cc", "bcc", "replyTo", "subject",
	"sentAt", "hasAttachment", "preview", "left"}

// record reads a whole record into e, which must be zero.
func (s *recordScanner) record(e *emailRecord) bool {
	var seen uint32
	ok := s.members(func(name string) bool {
		f := slices.Index(recordFields, name)
		if f < 0 || seen&(1<<f) != 0 {
			return false
		}
		seen |= 1 << f
		// null leaves a string, number or bool as it is (zero).
		if name != "subject" && name != "sentAt" && s.literal("null") {
			switch name {
			case "mailboxIds":
				e.MailboxIDs = nil
			case "keywords":
				e.Keywords = nil
			case "left":
				e.Left = nil
			}
			return true
		}
		var ok bool
		switch name {
		case "id":
			e.ID, ok = s.str()
		case "blobId":
			e.BlobID, ok = s.str()
		case "threadId":
			e.ThreadID, ok = s.str()
		case "mailboxIds":
			e.MailboxIDs, ok = s.set()
		case "keywords":
			e.Keywords, ok = s.set()
		case "size":
			e.Size, ok = s.int()
		case "receivedAt":
			e.ReceivedAt, ok = s.str()
		case "messageId":
			e.MessageID, ok = s.strs()
		case "inReplyTo":
			e.InReplyTo, ok = s.strs()
		case "references":
			e.References, ok = s.strs()
		case "sender":
			e.Sender, ok = s.addresses()
		case "from":
			e.From, ok = s.addresses()
		case "to":
			e.To, ok = s.addresses()
		case "cc":
			e.Cc, ok = s.addresses()
		case "bcc":
			e.Bcc, ok = s.addresses()
		case "replyTo":
			e.ReplyTo, ok = s.addresses()
		case "subject":
			e.Subject, ok = s.nullableStr()
		case "sentAt":
			e.SentAt, ok = s.nullableStr()
		case "hasAttachment":
			switch {
			case s.literal("true"):
				e.HasAttachment, ok = true, true
			case s.literal("false"):
				e.HasAttachment, ok = false, true
			}
		case "preview":
			e.Preview, ok = s.str()
		case "left":
			e.Left, ok = s.set()
		}
		return ok
	})
	if !ok {
		return false
	}
	s.space()
	return s.i == len(s.b)
}

// sortedProps returns "id" and props, sorted and without repeats: the
// order in which json.Marshal writes the keys of renderEmail's map.
func sortedProps(props []string) []string {
	out := append([]string{"id"}, props...)
	slices.Sort(out)
	return slices.Compact(out)
}

// appendEmailProps appends the properties sorted (from sortedProps) of e,
// all of them stored ones (storedEmailProps), exactly as json.Marshal
// encodes what renderEmail returns for them.
func appendEmailProps(b []byte, e *emailRecord, sorted []string) []byte {
	b = append(b, '{')
	for i, p := range sorted {
		if i > 0 {
			b = append(b, ',')
		}
		b = jmap.AppendString(b, p)
		b = append(b, ':')
		switch p {
		case "id":
			b = jmap.AppendString(b, e.ID)
		case "blobId":
			b = jmap.AppendString(b, e.BlobID)
		case "threadId":
			b = jmap.AppendString(b, e.ThreadID)
		case "mailboxIds":
			b = appendSet(b, e.MailboxIDs)
		case "keywords":
			b = appendSet(b, e.Keywords)
		case "size":
			b = strconv.AppendInt(b, e.Size, 10)
		case "receivedAt":
			b = jmap.AppendString(b, e.ReceivedAt)
		case "messageId":
			b = appendStrs(b, e.MessageID)
		case "inReplyTo":
			b = appendStrs(b, e.InReplyTo)
		case "references":
			b = appendStrs(b, e.References)
		case "sender":
			b = appendAddresses(b, e.Sender)
		case "from":
			b = appendAddresses(b, e.From)
		case "to":
			b = appendAddresses(b, e.To)
		case "cc":
			b = appendAddresses(b, e.Cc)
		case "bcc":
			b = appendAddresses(b, e.Bcc)
		case "replyTo":
			b = appendAddresses(b, e.ReplyTo)
		case "subject":
			b = appendNullable(b, e.Subject)
		case "sentAt":
			b = appendNullable(b, e.SentAt)
		case "hasAttachment":
			b = strconv.AppendBool(b, e.HasAttachment)
		case "preview":
			b = jmap.AppendString(b, e.Preview)
		default:
			b = append(b, "null"...)
		}
	}
	return append(b, '}')
}

// appendSet writes a map of booleans with sorted keys; nil is {} as
// emailRecord.property answers it.
func appendSet(b []byte, m map[string]bool) []byte {
	b = append(b, '{')
	var keys [8]string
	ks := keys[:0]
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	for i, k := range ks {
		if i > 0 {
			b = append(b, ',')
		}
		b = jmap.AppendString(b, k)
		b = append(b, ':')
		b = strconv.AppendBool(b, m[k])
	}
	return append(b, '}')
}

func appendStrs(b []byte, list []string) []byte {
	if list == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = jmap.AppendString(b, s)
	}
	return append(b, ']')
}

func appendNullable(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return jmap.AppendString(b, *s)
}

func appendAddresses(b []byte, list []mime.Address) []byte {
	if list == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, a := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendNullable(b, a.Name)
		b = append(b, `,"email":`...)
		b = jmap.AppendString(b, a.Email)
		b = append(b, '}')
	}
	return append(b, ']')
}
