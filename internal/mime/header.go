package mime

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Header is one header field as it appears in the message: Name as written
// (without the colon and any white space before it), Value raw: everything
// after the colon up to the field's terminating line break, still folded and
// not decoded (RFC 8621 §4.1.3).
type Header struct {
	Name  string
	Value string
}

// Values returns every raw value of the header field name (matched case
// insensitively) in hs, in message order; nil when there is none.
func Values(hs []Header, name string) []string {
	var vs []string
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			vs = append(vs, h.Value)
		}
	}
	return vs
}

// Last returns the raw value of the last header field name in hs (matched
// case insensitively), as "header:{name}" asks for (RFC 8621 §4.1.3).
func Last(hs []Header, name string) (string, bool) {
	for i := len(hs) - 1; i >= 0; i-- {
		if strings.EqualFold(hs[i].Name, name) {
			return hs[i].Value, true
		}
	}
	return "", false
}

// first returns the raw value of the first header field name in hs. MIME
// fields (Content-Type and the like) are read from their first instance.
func first(hs []Header, name string) (string, bool) {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

// parseHeaderSection reads the header fields of the entity in raw[start:end]
// and returns them with the offset where the body starts. The section ends at
// the first empty line (which is skipped) or at the first line that is neither
// a field nor a continuation (which then starts the body). At the top level a
// leading mbox "From " line is skipped.
func parseHeaderSection(raw []byte, start, end int, top bool) ([]Header, int) {
	var hs []Header
	fieldStart, colon := -1, -1
	flush := func(fieldEnd int) {
		if fieldStart < 0 {
			return
		}
		name := bytes.TrimRight(raw[fieldStart:colon], " \t")
		v := raw[colon+1 : fieldEnd]
		if n := len(v); n > 0 && v[n-1] == '\n' {
			v = v[:n-1]
			if n := len(v); n > 0 && v[n-1] == '\r' {
				v = v[:n-1]
			}
		}
		hs = append(hs, Header{Name: string(name), Value: string(v)})
		fieldStart = -1
	}
	pos := start
	for pos < end {
		next := end
		if i := bytes.IndexByte(raw[pos:end], '\n'); i >= 0 {
			next = pos + i + 1
		}
		line := raw[pos:next]
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		switch {
		case len(line) == 0:
			flush(pos)
			return hs, next
		case line[0] == ' ' || line[0] == '\t':
			if fieldStart < 0 {
				return hs, pos
			}
		default:
			flush(pos)
			n := fieldName(line)
			if n < 0 {
				if top && pos == start && bytes.HasPrefix(line, []byte("From ")) {
					pos = next
					continue
				}
				return hs, pos
			}
			fieldStart, colon = pos, pos+n
		}
		pos = next
	}
	flush(end)
	return hs, end
}

// fieldName returns the index of the colon ending the field name at the start
// of line, or -1 when line does not start a header field. A name is one or
// more printable ASCII characters other than colon (RFC 5322 §2.2); white
// space between the name and the colon is tolerated (RFC 5322 §4.5.1).
func fieldName(line []byte) int {
	i := 0
	for i < len(line) && line[i] > ' ' && line[i] < 0x7f && line[i] != ':' {
		i++
	}
	if i == 0 {
		return -1
	}
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	if i == len(line) || line[i] != ':' {
		return -1
	}
	return i
}

// unfold removes the line breaks of a folded header value, keeping the white
// space that follows them (RFC 5322 §2.2.3). Stray CR and LF go too.
func unfold(v string) string {
	if strings.IndexAny(v, "\r\n") < 0 {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		if c := v[i]; c != '\r' && c != '\n' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// cleanUTF8 drops NUL octets and replaces each run of octets that is not
// valid UTF-8 with U+FFFD (RFC 8621 §4.1.2.1).
func cleanUTF8(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}

// AsRaw returns the Raw form of a header value (RFC 8621 §4.1.2.1): the octets
// as they are, with NUL dropped and invalid UTF-8 replaced by U+FFFD.
func AsRaw(v string) string {
	return cleanUTF8(v)
}

// AsText returns the Text form of a header value (RFC 8621 §4.1.2.2):
// unfolded, RFC 2047 encoded-words decoded, white space trimmed, NFC.
func AsText(v string) string {
	s := decodeWords(cleanUTF8(unfold(v)))
	s = strings.Trim(s, " \t")
	return norm.NFC.String(s)
}

// isWSP reports whether c is RFC 5234 WSP.
func isWSP(c byte) bool { return c == ' ' || c == '\t' }
