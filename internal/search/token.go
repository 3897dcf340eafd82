// Package search splits text into the tokens of jmapd's full-text index.
//
// A token is a maximal run of letters, digits and combining marks,
// lower-cased rune by rune as strings.ToLower does, so that "a query
// string is a substring of the text, ignoring case" holds exactly when every
// token of the query is a substring of some token of the text. Scripts
// written without spaces between words (Han, Hiragana, Katakana, Hangul,
// Thai, Lao, Khmer, Myanmar) have no runs to speak of: each run of such
// characters becomes its overlapping bigrams, or the lone character when the
// run has one. A token is cut to MaxTokenBytes at a rune boundary.
package search

import (
	"unicode"
	"unicode/utf8"
)

// MaxTokenBytes is the longest token kept; longer runs are cut.
const MaxTokenBytes = 64

// MaxSuffixRunes is the longest token whose every suffix is listed by
// Suffixes; a longer token is listed whole only, so that inside it only
// its prefixes can be found.
const MaxSuffixRunes = 24

// unspaced are the scripts indexed by bigrams.
var unspaced = []*unicode.RangeTable{unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul,
	unicode.Thai, unicode.Lao, unicode.Khmer, unicode.Myanmar}

func isUnspaced(r rune) bool {
	if r < 0x0e00 {
		return false
	}
	return unicode.IsOneOf(unspaced, r)
}

// isWord reports whether r belongs in a token.
func isWord(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
}

// asciiClass tells, for each octet below utf8.RuneSelf, whether it
// divides words (0), is a lower-case letter or digit (1), or is an
// upper-case letter (2).
var asciiClass = func() (t [utf8.RuneSelf]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = 1
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = 1
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = 2
	}
	return t
}()

// Tokens calls yield with each token of text, in order, with repeats,
// until yield returns false. A token that is already lower case in text is
// a substring of text, not a copy: a caller that keeps tokens while text
// may be large should clone them (strings.Clone).
func Tokens(text string, yield func(tok string) bool) {
	s := scanner{text: text}
	for s.next() {
		tok := s.tok
		if s.fold {
			tok = string(lowerASCII(tok, &s.buf))
		}
		if !yield(tok) {
			return
		}
	}
}

// scanner reads the tokens of a text one at a time.
type scanner struct {
	text string
	i    int
	// tok is the token next found. When fold is true it is an ASCII word
	// as it stands in the text (cut to MaxTokenBytes) and the token is
	// tok lower-cased; otherwise it is the token itself. It is valid
	// until the following call of next.
	tok  string
	fold bool
	buf  []byte // a word being lowered or cut
	run  []rune // an unspaced run, lower-cased
	// runAt is the next bigram of run to give, or -1 when run is done.
	runAt int
}

// next finds the next token and reports whether there is one.
func (s *scanner) next() bool {
	if s.run != nil && s.runAt >= 0 {
		return s.nextBigram()
	}
	text := s.text
	for i := s.i; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf && asciiClass[c] == 0 {
			i++
			continue
		}
		start := i
		if c < utf8.RuneSelf {
			// A word that starts in ASCII: most words of most mail are
			// ASCII throughout, and need neither decoding nor a copy.
			var class uint8
			for i < len(text) {
				c := text[i]
				if c >= utf8.RuneSelf || asciiClass[c] == 0 {
					break
				}
				class |= asciiClass[c]
				i++
			}
			whole := i == len(text) || text[i] < utf8.RuneSelf
			if !whole {
				// A non-ASCII octet: the word may go on in another
				// script.
				r, _ := utf8.DecodeRuneInString(text[i:])
				whole = !isWord(r) || isUnspaced(r)
			}
			if whole {
				s.i, s.tok, s.fold = i, text[start:min(i, start+MaxTokenBytes)], class&2 != 0
				return true
			}
		} else {
			r, size := utf8.DecodeRuneInString(text[i:])
			if !isWord(r) {
				i += size
				continue
			}
			if isUnspaced(r) {
				s.run = s.run[:0]
				for i < len(text) {
					r, size := utf8.DecodeRuneInString(text[i:])
					if r < utf8.RuneSelf || !isUnspaced(r) || !isWord(r) {
						break
					}
					s.run = append(s.run, unicode.ToLower(r))
					i += size
				}
				s.i, s.runAt = i, 0
				return s.nextBigram()
			}
		}
		// A word with a non-ASCII rune, from start: each rune lowered and
		// kept while it fits.
		s.tok, s.i = word(text, start, &s.buf)
		s.fold = false
		return true
	}
	s.i = len(text)
	return false
}

// nextBigram gives the next token of the unspaced run: its overlapping
// bigrams, or its lone rune.
func (s *scanner) nextBigram() bool {
	n := len(s.run)
	switch {
	case n == 1:
		s.tok, s.runAt = string(s.run), -1
	case s.runAt+1 < n:
		s.tok = string(s.run[s.runAt : s.runAt+2])
		if s.runAt++; s.runAt+1 >= n {
			s.runAt = -1
		}
	default:
		s.runAt = -1
		return s.next()
	}
	s.fold = false
	return true
}

// lowerASCII returns the ASCII word w lower-cased, built in buf.
func lowerASCII(w string, buf *[]byte) []byte {
	b := (*buf)[:0]
	for i := 0; i < len(w); i++ {
		c := w[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	*buf = b
	return b
}

// word reads the word that starts at text[start] and holds a non-ASCII
// rune, up to the first rune that is no word character or is unspaced. It
// returns the token, a substring of text when lowering and cutting change
// nothing, and the index after the word.
func word(text string, start int, buf *[]byte) (string, int) {
	b := (*buf)[:0]
	same := true // b equals text[start:i]
	i := start
	for i < len(text) {
		r, size := rune(text[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(text[i:])
			if !isWord(r) || isUnspaced(r) {
				break
			}
		} else if asciiClass[r] == 0 {
			break
		}
		lr := unicode.ToLower(r)
		if n := utf8.RuneLen(lr); len(b)+n <= MaxTokenBytes {
			b = utf8.AppendRune(b, lr)
			same = same && lr == r
		} else {
			same = false
		}
		i += size
	}
	*buf = b
	if same {
		return text[start:i], i
	}
	return string(b), i
}

// All returns the tokens of text, with repeats.
func All(text string) []string {
	var out []string
	Tokens(text, func(t string) bool { out = append(out, t); return true })
	return out
}

// Whole reports whether s is exactly one token as Tokens makes it (after
// lower-casing): then "s occurs in the text, ignoring case" is the same as
// "s occurs in a token of the text".
func Whole(s string) bool {
	toks := All(s)
	if len(toks) != 1 {
		return false
	}
	lower := make([]byte, 0, len(s))
	for _, r := range s {
		lower = utf8.AppendRune(lower, unicode.ToLower(r))
	}
	return toks[0] == string(lower)
}

// Suffixes returns the suffixes of tok, starting with tok itself, at rune
// boundaries; a token of more than MaxSuffixRunes runes gives itself only.
// A string occurs in tok exactly when it is a prefix of one of them.
func Suffixes(tok string) []string {
	if utf8.RuneCountInString(tok) > MaxSuffixRunes {
		return []string{tok}
	}
	out := make([]string, 0, len(tok))
	for i := range tok {
		out = append(out, tok[i:])
	}
	return out
}
