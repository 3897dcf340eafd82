package delivery

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// ErrBadAddress is returned by ParseAddress for text that is not an
// RFC 5321 Mailbox.
var ErrBadAddress = errors.New("delivery: not an email address")

// ParseAddress checks that s is a Mailbox as the Forward-path and
// Reverse-path of SMTP take it (RFC 5321 §4.1.2): a dot-string or quoted
// local part of at most 64 octets, "@", and a domain of dot-separated
// letters, digits and hyphens, or an address literal. UTF-8 is allowed as
// RFC 6531 allows it. It returns the address with the domain in lower
// case.
func ParseAddress(s string) (string, error) {
	if s == "" || len(s) > 254 || !utf8.ValidString(s) {
		return "", ErrBadAddress
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return "", ErrBadAddress
	}
	local, domain := s[:at], s[at+1:]
	if len(local) > 64 || !validLocal(local) || !validDomain(domain) {
		return "", ErrBadAddress
	}
	return local + "@" + strings.ToLower(domain), nil
}

// atext reports whether c may stand in an atom (RFC 5322 §3.2.3); octets
// of UTF-8 sequences count as atext (RFC 6531 §3.3).
func atext(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c >= 0x80:
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

func validLocal(s string) bool {
	if s[0] == '"' {
		// quoted-string: qtext or quoted-pair, printable ASCII or UTF-8;
		// angle brackets are refused even quoted, so that no address can
		// end the path of an SMTP command early.
		if len(s) < 2 || s[len(s)-1] != '"' {
			return false
		}
		for i := 1; i < len(s)-1; i++ {
			c := s[i]
			switch {
			case c == '\\':
				i++
				if i >= len(s)-1 || s[i] < 0x20 || s[i] == 0x7f || s[i] == '<' || s[i] == '>' {
					return false
				}
			case c == '"' || c < 0x20 || c == 0x7f || c == '<' || c == '>':
				return false
			}
		}
		return true
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" {
			return false
		}
		for i := 0; i < len(part); i++ {
			if !atext(part[i]) {
				return false
			}
		}
	}
	return true
}

func validDomain(s string) bool {
	if len(s) > 253 {
		return false
	}
	if s[0] == '[' {
		// address-literal: a bracketed IPv4 or tagged address, printable
		// ASCII without brackets or backslash.
		if len(s) < 3 || s[len(s)-1] != ']' {
			return false
		}
		for i := 1; i < len(s)-1; i++ {
			if c := s[i]; c < 0x21 || c > 0x7e || c == '[' || c == ']' || c == '\\' {
				return false
			}
		}
		return true
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c >= 0x80) {
				return false
			}
		}
	}
	return true
}

// Domain returns the domain of an address checked by ParseAddress.
func Domain(addr string) string {
	return addr[strings.LastIndexByte(addr, '@')+1:]
}
