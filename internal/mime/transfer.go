package mime

import "strings"

// transferEncoding is a Content-Transfer-Encoding (RFC 2045 §6).
type transferEncoding uint8

const (
	encIdentity transferEncoding = iota // 7bit, 8bit, binary or absent
	encBase64
	encQuotedPrintable
	encUnknown // decoded as identity, reported as an encoding problem (RFC 8621 §4.1.4)
)

// parseTransferEncoding reads a Content-Transfer-Encoding value.
func parseTransferEncoding(v string) transferEncoding {
	switch strings.ToLower(strings.TrimSpace(stripComments(unfold(v)))) {
	case "base64":
		return encBase64
	case "quoted-printable":
		return encQuotedPrintable
	case "7bit", "8bit", "binary", "":
		return encIdentity
	}
	return encUnknown
}

// base64Value maps an octet to its base64 value, or 0xFF outside the
// alphabet.
var base64Value = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// base64Tail is the number of octets a final quantum of q characters
// decodes to.
var base64Tail = [4]int{0, 0, 1, 2}

// decodeBase64 decodes src best-effort (RFC 2045 §6.8): octets outside the
// alphabet are ignored, "=" ends a quantum early (so concatenated encodings
// decode), and a missing pad is tolerated. It appends to dst; the number of
// octets appended is base64Len(src).
func decodeBase64(dst, src []byte) []byte {
	var acc uint32
	q := 0
	for _, c := range src {
		v := base64Value[c]
		if v == 0xFF {
			if c == '=' {
				dst = base64Flush(dst, acc, q)
				acc, q = 0, 0
			}
			continue
		}
		acc = acc<<6 | uint32(v)
		if q++; q == 4 {
			dst = append(dst, byte(acc>>16), byte(acc>>8), byte(acc))
			acc, q = 0, 0
		}
	}
	return base64Flush(dst, acc, q)
}

// base64Flush appends the octets of a partial quantum of q characters.
func base64Flush(dst []byte, acc uint32, q int) []byte {
	switch q {
	case 2:
		return append(dst, byte(acc>>4))
	case 3:
		return append(dst, byte(acc>>10), byte(acc>>2))
	}
	return dst
}

// base64Len returns the length of decodeBase64(nil, src) without decoding.
func base64Len(src []byte) int {
	n, q := 0, 0
	for _, c := range src {
		if base64Value[c] != 0xFF {
			if q++; q == 4 {
				n, q = n+3, 0
			}
		} else if c == '=' {
			n, q = n+base64Tail[q], 0
		}
	}
	return n + base64Tail[q]
}

// decodeQuotedPrintable decodes src best-effort (RFC 2045 §6.7): "=XX" in
// either case is an octet, "=" before a line break (after optional white
// space) is a soft line break, any other "=" is kept, and white space at the
// end of a line is dropped. Line breaks are kept as they are. It appends to
// dst; the number of octets appended is quotedPrintableLen(src).
func decodeQuotedPrintable(dst, src []byte) []byte {
	dst, _ = quotedPrintable(dst, src, false)
	return dst
}

// quotedPrintableLen returns the length of decodeQuotedPrintable(nil, src)
// without decoding.
func quotedPrintableLen(src []byte) int {
	_, n := quotedPrintable(nil, src, true)
	return n
}

// quotedPrintable decodes src onto dst, or with countOnly only counts.
func quotedPrintable(dst, src []byte, countOnly bool) ([]byte, int) {
	n := 0
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '=':
			if i+2 < len(src) && isHex(src[i+1]) && isHex(src[i+2]) {
				if !countOnly {
					dst = append(dst, unhex(src[i+1])<<4|unhex(src[i+2]))
				}
				n++
				i += 3
				continue
			}
			j := i + 1
			for j < len(src) && isWSP(src[j]) {
				j++
			}
			if l, ok := lineBreakAt(src, j); ok {
				i = j + l // soft line break
				continue
			}
			if !countOnly {
				dst = append(dst, '=')
			}
			n++
			i++
		case isWSP(c):
			j := i + 1
			for j < len(src) && isWSP(src[j]) {
				j++
			}
			if _, ok := lineBreakAt(src, j); !ok {
				if !countOnly {
					dst = append(dst, src[i:j]...)
				}
				n += j - i
			}
			i = j
		default:
			// Copy the run up to the next octet that needs a look.
			j := i + 1
			for j < len(src) && src[j] != '=' && src[j] != ' ' && src[j] != '\t' {
				j++
			}
			if !countOnly {
				dst = append(dst, src[i:j]...)
			}
			n += j - i
			i = j
		}
	}
	return dst, n
}

// lineBreakAt returns the length of the line break at src[j]; the end of src
// counts as a break of length 0. ok is false when there is no break at j.
func lineBreakAt(src []byte, j int) (int, bool) {
	switch {
	case j == len(src):
		return 0, true
	case src[j] == '\n':
		return 1, true
	case src[j] == '\r' && j+1 < len(src) && src[j+1] == '\n':
		return 2, true
	}
	return 0, false
}
