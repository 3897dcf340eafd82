package jmap

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// Scanning of JSON without decoding it: checking a request body, finding
// the end of a value. Member reads compact JSON only, the form the server
// writes itself (a stored record, an earlier response of the request).

// stopOctet marks the octets a scan of a string's content stops at: its
// closing quote, an escape, or a control character, which JSON forbids
// unescaped.
var stopOctet = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// SkipString returns the index after the JSON string that starts at b[i],
// and false when none starts there.
func SkipString(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	for j := i + 1; ; {
		j = stringStop(b, j)
		if j >= len(b) {
			return 0, false
		}
		switch b[j] {
		case '"':
			return j + 1, true
		case '\\':
			n := escapeLen(b[j:])
			if n == 0 {
				return 0, false
			}
			j += n
		default:
			return 0, false
		}
	}
}

// Broadcasts of an octet to the eight of a word, for stringStop.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// stringStop returns the index of the first octet at or after j that ends
// a run of a JSON string's plain content (a quote, a backslash or a
// control character), or len(b). It looks at eight octets at a time: the
// content of a large string (a message in a Blob/upload) is most of what a
// request body holds.
func stringStop(b []byte, j int) int {
	for ; j+8 <= len(b); j += 8 {
		x := binary.LittleEndian.Uint64(b[j:])
		q, bs := x^(ones*'"'), x^(ones*'\\')
		// An octet's high bit is set in m where it is zero in q or bs,
		// or below 0x20 in x; a false mark only ever sits above a true
		// one, so the lowest mark is exact.
		m := ((q - ones) &^ q) | ((bs - ones) &^ bs) | ((x - ones*0x20) &^ x)
		if m &= highs; m != 0 {
			return j + bits.TrailingZeros64(m)/8
		}
	}
	for ; j < len(b) && !stopOctet[b[j]]; j++ {
	}
	return j
}

// escapeLen returns the length of the JSON escape at the start of b, or 0
// when it is none.
func escapeLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	switch b[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
		if len(b) < 6 {
			return 0
		}
		for _, c := range b[2:6] {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return 0
			}
		}
		return 6
	}
	return 0
}

// SkipValue returns the index after the JSON value that starts at b[i]
// (white space is allowed inside it, not before it), checking its grammar
// on the way, and false when none starts there or it nests deeper than
// maxSkipDepth. It reads JSON without decoding it.
func SkipValue(b []byte, i int) (int, bool) { return skipNested(b, i, 0, maxSkipDepth) }

// maxSkipDepth bounds the nesting SkipValue follows.
const maxSkipDepth = 64

// maxValidDepth is the nesting validJSON accepts, encoding/json's.
const maxValidDepth = 10000

// validJSON reports whether b is one JSON value, with white space around
// it, as json.Valid does, in about half its time: it is the first read of
// every request body.
func validJSON(b []byte) bool {
	end, ok := skipNested(b, skipSpace(b, 0), 0, maxValidDepth)
	return ok && skipSpace(b, end) == len(b)
}

// skipSpace returns the index of the first octet at or after i that is
// not JSON white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// skipNested is SkipValue for a value inside depth arrays and objects, of
// at most limit.
func skipNested(b []byte, i, depth, limit int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return SkipString(b, i)
	case '{', '[':
		if depth >= limit {
			return 0, false
		}
		obj, closing := b[i] == '{', byte(']')
		if obj {
			closing = '}'
		}
		j := skipSpace(b, i+1)
		if j < len(b) && b[j] == closing {
			return j + 1, true
		}
		for {
			var ok bool
			if obj {
				if j, ok = SkipString(b, j); !ok {
					return 0, false
				}
				if j = skipSpace(b, j); j >= len(b) || b[j] != ':' {
					return 0, false
				}
				j = skipSpace(b, j+1)
			}
			if j, ok = skipNested(b, j, depth+1, limit); !ok {
				return 0, false
			}
			if j = skipSpace(b, j); j >= len(b) {
				return 0, false
			}
			switch b[j] {
			case ',':
				j = skipSpace(b, j+1)
			case closing:
				return j + 1, true
			default:
				return 0, false
			}
		}
	}
	for _, lit := range []string{"true", "false", "null"} {
		if bytes.HasPrefix(b[i:], []byte(lit)) {
			return i + len(lit), true
		}
	}
	return skipNumber(b, i)
}

// skipNumber returns the index after the JSON number at b[i].
func skipNumber(b []byte, i int) (int, bool) {
	digits := func(j int) int {
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
		return j
	}
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch k := digits(j); {
	case k == j:
		return 0, false
	case b[j] == '0' && k > j+1:
		return 0, false
	default:
		j = k
	}
	if j < len(b) && b[j] == '.' {
		k := digits(j + 1)
		if k == j+1 {
			return 0, false
		}
		j = k
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		k := digits(j)
		if k == j {
			return 0, false
		}
		j = k
	}
	return j, true
}

// Member returns the value of the member name of the compact JSON object
// obj, and false when obj is no such object or has no such member.
func Member(obj []byte, name string) ([]byte, bool) {
	if len(obj) < 2 || obj[0] != '{' {
		return nil, false
	}
	if obj[1] == '}' {
		return nil, false
	}
	for i := 1; ; {
		end, ok := SkipString(obj, i)
		if !ok || end >= len(obj) || obj[end] != ':' {
			return nil, false
		}
		key := obj[i+1 : end-1]
		start := end + 1
		if end, ok = SkipValue(obj, start); !ok || end >= len(obj) {
			return nil, false
		}
		if string(key) == name {
			return obj[start:end], true
		}
		switch obj[end] {
		case ',':
			i = end + 1
		default:
			return nil, false
		}
	}
}
