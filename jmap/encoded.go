package jmap

import (
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// Encoded is a method response already encoded exactly as json.Marshal
// would encode it: compact, valid and HTML-escaped. A handler that returns
// one spares the dispatcher another pass over every byte of it.
type Encoded []byte

// AppendString appends s to dst as a JSON string exactly as json.Marshal
// encodes it: <, > and & escaped, invalid UTF-8 as U+FFFD, and U+2028 and
// U+2029 escaped.
func AppendString(dst []byte, s string) []byte { return appendString(dst, s, true) }

// appendString is AppendString, with <, > and & escaped only when html is
// set (as an Encoder with SetEscapeHTML(false) leaves them).
func appendString(dst []byte, s string, html bool) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!html || c != '<' && c != '>' && c != '&') {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// EncodeGetResponse encodes r as json.Marshal does, copying each item of
// r.List as it is: every item must itself be the output of json.Marshal
// (or of an encoder held to the same bytes).
func EncodeGetResponse(r *GetResponse) (Encoded, error) {
	size := 0
	for _, item := range r.List {
		if len(item) == 0 {
			return nil, errors.New("jmap: empty item in a /get list")
		}
		size += len(item) + 1
	}
	if r.List == nil {
		return EncodeGetResponseItems(r, -1, 0, nil), nil
	}
	return EncodeGetResponseItems(r, len(r.List), size, func(b []byte, i int) []byte { return append(b, r.List[i]...) }), nil
}

// EncodeGetResponseItems is EncodeGetResponse with the n items of the list
// written in place by item (r.List is not read), which saves building
// them apart and copying them: item(b, i) appends the i-th as json.Marshal
// would encode it. n < 0 writes a null list. size is a hint of the items'
// total length.
func EncodeGetResponseItems(r *GetResponse, n, size int, item func(b []byte, i int) []byte) Encoded {
	size += 64 + len(r.AccountID) + len(r.State)
	for _, id := range r.NotFound {
		size += len(id) + 3
	}
	b := make([]byte, 0, size)
	b = append(b, `{"accountId":`...)
	b = AppendString(b, r.AccountID)
	b = append(b, `,"state":`...)
	b = AppendString(b, r.State)
	b = append(b, `,"list":`...)
	if n < 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range n {
			if i > 0 {
				b = append(b, ',')
			}
			b = item(b, i)
		}
		b = append(b, ']')
	}
	b = append(b, `,"notFound":`...)
	if r.NotFound == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, id := range r.NotFound {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendString(b, id)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

var _ json.Marshaler = Encoded(nil)

// MarshalJSON returns e itself, so that an Encoded value that reaches
// json.Marshal some other way encodes as the JSON it holds.
func (e Encoded) MarshalJSON() ([]byte, error) {
	if len(e) == 0 {
		return []byte("null"), nil
	}
	return e, nil
}
