package jmap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// Reader reads a JSON value front to back, each octet once, for arguments
// so large that the general decoding, which reads a value once more at
// every level it is nested in, costs more than the rest of the method: the
// inline data of a Blob/upload. The caller says what it expects next
// (Object, Array, String, ...); a value it does not want is skipped.
// Strings decode as encoding/json decodes them.
type Reader struct {
	b     []byte
	i     int
	depth int
}

// ErrSyntax is what a Reader reports for input that is not the JSON the
// caller expected.
var ErrSyntax = errors.New("jmap: unexpected JSON")

// NewReader reads the JSON in b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Next returns the first octet of the next value ('{', '[', '"', 'n', 't',
// 'f', or one of a number), or 0 at the end of the input.
func (r *Reader) Next() byte {
	r.i = skipSpace(r.b, r.i)
	if r.i >= len(r.b) {
		return 0
	}
	return r.b[r.i]
}

// End reports whether nothing but white space is left.
func (r *Reader) End() bool {
	r.i = skipSpace(r.b, r.i)
	return r.i >= len(r.b)
}

// Null consumes a null and reports whether there was one.
func (r *Reader) Null() bool {
	if r.Next() == 'n' && bytes.HasPrefix(r.b[r.i:], []byte("null")) {
		r.i += 4
		return true
	}
	return false
}

// Skip consumes the next value whatever it is.
func (r *Reader) Skip() error {
	r.Next()
	end, ok := SkipValue(r.b, r.i)
	if !ok {
		return ErrSyntax
	}
	r.i = end
	return nil
}

// Raw consumes the next value and returns its text, a slice of the input.
func (r *Reader) Raw() ([]byte, error) {
	start := skipSpace(r.b, r.i)
	if err := r.Skip(); err != nil {
		return nil, err
	}
	return r.b[start:r.i], nil
}

// Object consumes a JSON object, calling fn with each member's name in
// document order; fn reads the member's value (what it leaves unread is
// skipped). An error of fn ends the reading and is returned.
func (r *Reader) Object(fn func(name string) error) error {
	return r.container('{', '}', func(int) error {
		if r.Next() != '"' {
			return ErrSyntax
		}
		name, err := r.AppendString(nil)
		if err != nil {
			return err
		}
		if r.Next() != ':' {
			return ErrSyntax
		}
		r.i++
		return r.member(func() error { return fn(string(name)) })
	})
}

// Array consumes a JSON array, calling fn for each element, which reads
// it (what it leaves unread is skipped).
func (r *Reader) Array(fn func(i int) error) error {
	return r.container('[', ']', func(n int) error {
		return r.member(func() error { return fn(n) })
	})
}

// container consumes an object or an array, from its open to its close
// octet, calling item for each member or element in turn.
func (r *Reader) container(open, close byte, item func(n int) error) error {
	if r.Next() != open || r.depth >= maxSkipDepth {
		return ErrSyntax
	}
	r.depth++
	defer func() { r.depth-- }()
	r.i++
	if r.Next() == close {
		r.i++
		return nil
	}
	for n := 0; ; n++ {
		if err := item(n); err != nil {
			return err
		}
		switch r.Next() {
		case ',':
			r.i++
		case close:
			r.i++
			return nil
		default:
			return ErrSyntax
		}
	}
}

// member runs read on the value at the reader's position and skips the
// value if read left it unread.
func (r *Reader) member(read func() error) error {
	start := skipSpace(r.b, r.i)
	if start >= len(r.b) {
		return ErrSyntax
	}
	if err := read(); err != nil {
		return err
	}
	if skipSpace(r.b, r.i) == start {
		return r.Skip()
	}
	return nil
}

// Int consumes an integer that fits an int64.
func (r *Reader) Int() (int64, error) {
	raw, err := r.Raw()
	if err != nil {
		return 0, err
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, fmt.Errorf("%w: %s is not an integer", ErrSyntax, raw)
	}
	return n, nil
}

// String consumes a JSON string and returns it decoded.
func (r *Reader) String() (string, error) {
	b, err := r.AppendString(nil)
	return string(b), err
}

// AppendString consumes a JSON string and appends it, decoded, to dst. As
// with encoding/json, an octet that is not UTF-8 and an escaped surrogate
// that is not half of a pair decode as U+FFFD.
func (r *Reader) AppendString(dst []byte) ([]byte, error) {
	if r.Next() != '"' {
		return dst, ErrSyntax
	}
	b := r.b
	for i := r.i + 1; ; {
		// Copy the run up to the next octet that needs a look. It ends
		// at an ASCII octet, so it splits no UTF-8 sequence.
		j := stringStop(b, i)
		if run := b[i:j]; utf8.Valid(run) {
			dst = append(dst, run...)
		} else {
			dst = appendValidUTF8(dst, run)
		}
		i = j
		if i >= len(b) {
			return dst, ErrSyntax
		}
		switch c := b[i]; {
		case c == '"':
			r.i = i + 1
			return dst, nil
		case c < 0x20:
			return dst, ErrSyntax
		default: // an escape
			n := escapeLen(b[i:])
			if n == 0 {
				return dst, ErrSyntax
			}
			if n == 2 {
				dst = append(dst, unescape[b[i+1]])
				i += 2
				continue
			}
			ru := rune(hex4(b[i+2 : i+6]))
			i += 6
			if utf16.IsSurrogate(ru) {
				ru2 := rune(-1)
				if i < len(b) && b[i] == '\\' && escapeLen(b[i:]) == 6 && b[i+1] == 'u' {
					ru2 = rune(hex4(b[i+2 : i+6]))
				}
				if d := utf16.DecodeRune(ru, ru2); d != utf8.RuneError {
					ru = d
					i += 6
				} else {
					ru = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, ru)
		}
	}
}

// appendValidUTF8 appends b with each octet that is not part of a UTF-8
// sequence replaced by U+FFFD, as encoding/json decodes it.
func appendValidUTF8(dst, b []byte) []byte {
	for len(b) > 0 {
		ru, n := utf8.DecodeRune(b)
		if ru == utf8.RuneError && n == 1 {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		} else {
			dst = append(dst, b[:n]...)
		}
		b = b[n:]
	}
	return dst
}

// unescape maps the letter of a two-octet escape to what it stands for.
var unescape = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// hex4 reads four hexadecimal digits (checked by escapeLen).
func hex4(b []byte) uint16 {
	var n uint16
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		n = n<<4 | uint16(c)
	}
	return n
}
