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

// Tokens calls yield with each token of text, in order, with repeats,
// until yield returns false. A token that is already lower case in text is
// a substring of text, not a copy: a caller that keeps tokens while text
// may be large should clone them (strings.Clone).
func Tokens(text string, yield func(tok string) bool) {
	// The current word is text[ws:ws+n] while lowered is false; once a
	// rune changes case, or is left out by the length cut, the word is
	// built in buf instead.
	inWord, lowered := false, false
	ws, n := 0, 0
	var buf []byte
	var run []rune // an unspaced run, lower-cased
	flushWord := func() bool {
		if !inWord {
			return true
		}
		inWord = false
		if lowered {
			return yield(string(buf))
		}
		return yield(text[ws : ws+n])
	}
	flushRun := func() bool {
		defer func() { run = run[:0] }()
		if len(run) == 1 {
			return yield(string(run))
		}
		for i := 0; i+1 < len(run); i++ {
			if !yield(string(run[i : i+2])) {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			// ASCII: letters and digits are words, the rest divides.
			lc := c
			if 'A' <= c && c <= 'Z' {
				lc = c + 'a' - 'A'
			} else if !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
				if !flushWord() {
					return
				}
				if len(run) > 0 && !flushRun() {
					return
				}
				i++
				continue
			}
			if len(run) > 0 && !flushRun() {
				return
			}
			if !inWord {
				inWord, lowered, ws, n = true, false, i, 0
			}
			fits := n+1 <= MaxTokenBytes
			if !lowered && (lc != c || !fits) {
				buf, lowered = append(buf[:0], text[ws:ws+n]...), true
			}
			if fits {
				if lowered {
					buf = append(buf, lc)
				}
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		switch {
		case isUnspaced(r) && isWord(r):
			if !flushWord() {
				return
			}
			run = append(run, unicode.ToLower(r))
		case isWord(r):
			if len(run) > 0 && !flushRun() {
				return
			}
			if !inWord {
				inWord, lowered, ws, n = true, false, i, 0
			}
			lr := unicode.ToLower(r)
			ls := utf8.RuneLen(lr)
			fits := n+ls <= MaxTokenBytes
			if !lowered && (lr != r || !fits) {
				buf, lowered = append(buf[:0], text[ws:ws+n]...), true
			}
			if fits {
				if lowered {
					buf = utf8.AppendRune(buf, lr)
				}
				n += ls
			}
		default:
			if !flushWord() {
				return
			}
			if len(run) > 0 && !flushRun() {
				return
			}
		}
		i += size
	}
	if flushWord() && len(run) > 0 {
		flushRun()
	}
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
