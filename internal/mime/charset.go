package mime

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	gmcharset "github.com/emersion/go-message/charset"
	"golang.org/x/text/encoding/charmap"
)

// normCharset returns the charset label cleaned of quotes, white space and
// case.
func normCharset(cs string) string {
	return strings.ToLower(strings.Trim(cs, " \t\"'"))
}

// isUTF8Label reports whether cs names UTF-8 or its subset US-ASCII, which
// need no conversion.
func isUTF8Label(cs string) bool {
	switch cs {
	case "utf-8", "utf8", "us-ascii", "ascii", "us", "ansi_x3.4-1968", "iso646-us", "csascii", "":
		return true
	}
	return false
}

// knownCache remembers which charset labels decode, for at most
// knownCacheMax labels (labels come from untrusted messages).
var (
	knownCache     sync.Map // label -> bool
	knownCacheSize atomic.Int32
)

const knownCacheMax = 512

// knownCharset reports whether cs can be decoded.
func knownCharset(cs string) bool {
	cs = normCharset(cs)
	if isUTF8Label(cs) {
		return true
	}
	if v, ok := knownCache.Load(cs); ok {
		return v.(bool)
	}
	_, err := gmcharset.Reader(cs, bytes.NewReader(nil))
	if knownCacheSize.Load() < knownCacheMax {
		if _, loaded := knownCache.LoadOrStore(cs, err == nil); !loaded {
			knownCacheSize.Add(1)
		}
	}
	return err == nil
}

// errUnknownCharset stands for the error of an unknown charset label.
var errUnknownCharset = errors.New("mime: unknown charset")

// decodeCharset converts b from charset cs to UTF-8. known is false when cs is
// not a charset we can decode; b is then taken as UTF-8 if valid, else as
// Windows-1252 (RFC 8621 §4.1.4 allows such heuristics). problem is true when
// the charset was unknown or b held octets invalid in it; invalid sections
// become U+FFFD. The result is always valid UTF-8.
func decodeCharset(b []byte, cs string) (s string, known, problem bool) {
	cs = normCharset(cs)
	if isUTF8Label(cs) {
		if utf8.Valid(b) {
			return string(b), true, false
		}
		return strings.ToValidUTF8(string(b), "\uFFFD"), true, true
	}
	var r io.Reader
	err := errUnknownCharset
	if knownCharset(cs) {
		r, err = gmcharset.Reader(cs, bytes.NewReader(b))
	}
	if err != nil {
		if utf8.Valid(b) {
			return string(b), false, true
		}
		out, _ := charmap.Windows1252.NewDecoder().Bytes(b)
		return strings.ToValidUTF8(string(out), "\uFFFD"), false, true
	}
	out, err := io.ReadAll(r)
	problem = err != nil || bytes.ContainsRune(out, utf8.RuneError)
	if !utf8.Valid(out) {
		out = bytes.ToValidUTF8(out, []byte("\uFFFD"))
		problem = true
	}
	return string(out), true, problem
}
