package jmap

import (
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/cases"
)

// Collation algorithm names (RFC 4790 registry) the server supports.
const (
	CollationASCIICasemap   = "i;ascii-casemap"
	CollationOctet          = "i;octet"
	CollationUnicodeCasemap = "i;unicode-casemap"
)

// Collations lists the supported collation algorithms.
func Collations() []string {
	return []string{CollationASCIICasemap, CollationOctet, CollationUnicodeCasemap}
}

var folder = cases.Fold()

// CompareStrings compares a and b under the named collation; ok is false for
// an unknown collation. The empty name means i;unicode-casemap.
func CompareStrings(collation, a, b string) (int, bool) {
	switch collation {
	case CollationOctet:
		return strings.Compare(a, b), true
	case CollationASCIICasemap:
		return strings.Compare(asciiLower(a), asciiLower(b)), true
	case "", CollationUnicodeCasemap:
		if utf8.ValidString(a) && utf8.ValidString(b) {
			return strings.Compare(folder.String(a), folder.String(b)), true
		}
		return strings.Compare(a, b), true
	}
	return 0, false
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func nowSeconds() float64 { return float64(time.Now().UnixNano()) / 1e9 }
