package mime

import (
	"encoding/base64"
	"strings"
)

// encodedWord is one decoded RFC 2047 encoded-word: its charset (language
// suffix of RFC 2231 §5 removed) and its octets before charset conversion.
type encodedWord struct {
	charset string
	data    []byte
}

// decodeWords decodes the RFC 2047 encoded-words of an unfolded header value.
// A word is decoded only where it stands between white space (or the ends of
// s), as RFC 2047 §5 (1) places it; words written back to back without white
// space, which mailers often produce, count as adjacent words. White space
// between adjacent encoded-words is dropped (RFC 2047 §6.2) and their octets
// are joined before charset conversion, so a character split across words
// survives. Words with an unknown charset or broken encoding stay as they are
// (RFC 8621 §4.1.2.2); NUL and control characters they encode are dropped.
func decodeWords(s string) string {
	return decodeWordsMode(s, false)
}

// decodeWordsLoose is decodeWords that also decodes words standing inside
// other text, as mailers write them in parameter values ("=?...?=.pdf").
func decodeWordsLoose(s string) string {
	return decodeWordsMode(s, true)
}

func decodeWordsMode(s string, loose bool) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	var (
		inRun    bool   // the last piece was an encoded-word
		runCS    string // charset of the octets in run
		run      []byte
		runSpace string // white space after the run, written only if a non-word follows
	)
	flush := func() {
		if len(run) > 0 {
			txt, _, _ := decodeCharset(run, runCS)
			writeNoControls(&b, txt)
		}
		run = run[:0]
	}
	literal := func(txt string) {
		if inRun {
			flush()
			b.WriteString(runSpace)
			inRun, runSpace = false, ""
		}
		b.WriteString(txt)
	}
	word := func(w encodedWord) {
		runSpace = ""
		if inRun && strings.EqualFold(w.charset, runCS) {
			run = append(run, w.data...)
			return
		}
		flush()
		inRun, runCS = true, w.charset
		run = append(run, w.data...)
	}
	i := 0
	for i < len(s) {
		j := i
		for j < len(s) && isWSP(s[j]) {
			j++
		}
		if j > i {
			if inRun {
				runSpace = s[i:j]
			} else {
				b.WriteString(s[i:j])
			}
			i = j
			continue
		}
		for j < len(s) && !isWSP(s[j]) {
			j++
		}
		tok := s[i:j]
		i = j
		if words, ok := splitEncodedWords(tok); ok {
			for _, w := range words {
				word(w)
			}
			continue
		}
		if !loose {
			literal(tok)
			continue
		}
		for len(tok) > 0 {
			k := strings.Index(tok, "=?")
			if k < 0 {
				literal(tok)
				break
			}
			w, n, ok := parseEncodedWord(tok[k:])
			if !ok {
				literal(tok[:k+2])
				tok = tok[k+2:]
				continue
			}
			if k > 0 {
				literal(tok[:k])
			}
			word(w)
			tok = tok[k+n:]
		}
	}
	flush()
	b.WriteString(runSpace)
	return b.String()
}

// writeNoControls writes s to b without C0 controls and DEL.
func writeNoControls(b *strings.Builder, s string) {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			continue
		}
		b.WriteRune(r)
	}
}

// splitEncodedWords parses tok as one or more encoded-words written back to
// back. ok is false when tok is anything else or a word cannot be decoded.
func splitEncodedWords(tok string) (words []encodedWord, ok bool) {
	for len(tok) > 0 {
		w, n, ok := parseEncodedWord(tok)
		if !ok {
			return nil, false
		}
		words = append(words, w)
		tok = tok[n:]
	}
	return words, len(words) > 0
}

// parseEncodedWord parses the encoded-word "=?charset?B|Q?text?=" at the
// start of s and returns it with its length. ok is false when s does not
// start with one, or its charset is unknown or its text does not decode.
func parseEncodedWord(s string) (w encodedWord, n int, ok bool) {
	if !strings.HasPrefix(s, "=?") {
		return w, 0, false
	}
	q1 := strings.IndexByte(s[2:], '?')
	if q1 <= 0 {
		return w, 0, false
	}
	q1 += 2
	cs := s[2:q1]
	if q1+3 > len(s) || s[q1+2] != '?' {
		return w, 0, false
	}
	enc := s[q1+1]
	rest := s[q1+3:]
	q2 := strings.IndexByte(rest, '?')
	if q2 < 0 || q2+1 >= len(rest) || rest[q2+1] != '=' {
		return w, 0, false
	}
	text := rest[:q2]
	n = q1 + 3 + q2 + 2
	if k := strings.IndexByte(cs, '*'); k >= 0 {
		cs = cs[:k] // RFC 2231 §5 language
	}
	if cs == "" || !knownCharset(cs) {
		return w, 0, false
	}
	switch enc {
	case 'B', 'b':
		d, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(text, "="))
		if err != nil {
			return w, 0, false
		}
		w.data = d
	case 'Q', 'q':
		w.data = decodeQWord(text)
	default:
		return w, 0, false
	}
	w.charset = cs
	return w, n, true
}

// decodeQWord decodes the "Q" encoding of RFC 2047 §4.2; a malformed "=" is
// kept as a literal.
func decodeQWord(text string) []byte {
	out := make([]byte, 0, len(text))
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '_':
			out = append(out, ' ')
		case c == '=' && i+2 < len(text) && isHex(text[i+1]) && isHex(text[i+2]):
			out = append(out, unhex(text[i+1])<<4|unhex(text[i+2]))
			i += 2
		default:
			out = append(out, c)
		}
	}
	return out
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 0
}
