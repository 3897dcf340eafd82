package search

import (
	"math/bits"
	"math/rand/v2"
	"unicode/utf8"
)

// Vocabulary collects the distinct tokens of texts, in the order they
// first occur, up to a maximum: what the index keeps of a message body. A
// body repeats most of its words many times: an ASCII word, most words of
// most mail, is found, hashed as its lower-case form eight octets at a
// time and looked up without being copied. Other words go through the
// scanner. The tokens kept are stored end to end in one buffer.
type Vocabulary struct {
	arena  []byte  // the tokens kept, end to end
	ends   []int32 // where each token ends in arena
	hashes []uint64
	slots  []uint32 // index into ends plus one; 0 is empty
	max    int
	s      scanner
}

// hashSeed starts every token hash: chosen at random for each process, so
// that the words of a message cannot be picked to collide.
var hashSeed = rand.Uint64()

// hashMul is an odd constant with its bits well spread (2^64 / φ).
const hashMul = 0x9e3779b97f4a7c15

// hashToken hashes a token; with fold, tok is an ASCII word of letters
// and digits and is hashed as its lower-case form (setting 0x20 lowers a
// capital and leaves a lower-case letter or a digit as it is).
func hashToken(tok string, fold bool) uint64 { return hashAt(tok, 0, len(tok), fold) }

// hashAt is hashToken of s[start:end], which reads s eight octets at a
// time: past end too, while within s, masking off what is not the token.
func hashAt(s string, start, end int, fold bool) uint64 {
	var f uint64
	if fold {
		f = 0x2020202020202020
	}
	h := hashSeed ^ uint64(end-start)
	i := start
	for ; i+8 <= end; i += 8 {
		h = bits.RotateLeft64((h^(load64(s, i)|f))*hashMul, 29)
	}
	if n := end - i; n > 0 {
		keep := uint64(1)<<(8*n) - 1
		var x uint64
		if i+8 <= len(s) {
			x = load64(s, i)
		} else {
			for k := end - 1; k >= i; k-- {
				x = x<<8 | uint64(s[k])
			}
		}
		h = bits.RotateLeft64((h^((x|f)&keep))*hashMul, 29)
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	return h ^ h>>33
}

// load64 reads the eight octets of s from i, little-endian.
func load64(s string, i int) uint64 {
	b := s[i : i+8]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// NewVocabulary returns an empty vocabulary that keeps at most max tokens.
func NewVocabulary(max int) *Vocabulary {
	return &Vocabulary{max: max, slots: make([]uint32, 1024), arena: make([]byte, 0, 4096),
		ends: make([]int32, 0, 256), hashes: make([]uint64, 0, 256)}
}

// Add adds the tokens of text not seen before, and reports false once the
// vocabulary holds its maximum (what is past it is left out).
func (v *Vocabulary) Add(text string) bool {
	i := 0
	for len(v.ends) < v.max {
		for i < len(text) && text[i] < utf8.RuneSelf && asciiClass[text[i]] == 0 {
			i++
		}
		if i >= len(text) {
			break
		}
		start := i
		var class uint8
		for i < len(text) && text[i] < utf8.RuneSelf && asciiClass[text[i]] != 0 {
			class |= asciiClass[text[i]]
			i++
		}
		if start == i || (i < len(text) && text[i] >= utf8.RuneSelf) {
			// A word that starts or goes on outside ASCII, or an
			// unspaced run: the scanner reads it from its start.
			i = v.addScanned(text, start)
			continue
		}
		end := min(i, start+MaxTokenBytes)
		capitals := class&2 != 0
		v.add(text[start:end], hashAt(text, start, end, capitals), capitals)
	}
	return len(v.ends) < v.max
}

// addScanned adds the tokens the scanner finds from text[at] up to the end
// of the first token (of the whole run, for an unspaced one) and returns
// where it stopped.
func (v *Vocabulary) addScanned(text string, at int) int {
	v.s = scanner{text: text, i: at, buf: v.s.buf, run: v.s.run[:0], runAt: -1}
	for len(v.ends) < v.max && v.s.next() {
		tok, fold := v.s.tok, v.s.fold
		v.add(tok, hashToken(tok, fold), fold)
		if v.s.run == nil || v.s.runAt < 0 {
			break
		}
	}
	if len(v.ends) >= v.max {
		return len(text)
	}
	return v.s.i
}

// Tokens returns the distinct tokens in the order they first occurred.
func (v *Vocabulary) Tokens() []string {
	all := string(v.arena)
	out := make([]string, len(v.ends))
	start := int32(0)
	for n, end := range v.ends {
		out[n] = all[start:end]
		start = end
	}
	return out
}

// token returns the bytes of the nth token kept.
func (v *Vocabulary) token(n int) []byte {
	start := int32(0)
	if n > 0 {
		start = v.ends[n-1]
	}
	return v.arena[start:v.ends[n]]
}

// add keeps w unless the vocabulary holds it; with fold, w is an ASCII
// word whose token is w lower-cased. h is the token's hash.
func (v *Vocabulary) add(w string, h uint64, fold bool) {
	mask := uint64(len(v.slots) - 1)
	i := h & mask
	for {
		s := v.slots[i]
		if s == 0 {
			break
		}
		if v.hashes[s-1] == h && sameToken(v.token(int(s-1)), w, fold) {
			return
		}
		i = (i + 1) & mask
	}
	at := len(v.arena)
	v.arena = append(v.arena, w...)
	if fold {
		for k := at; k < len(v.arena); k++ {
			v.arena[k] |= 0x20
		}
	}
	v.ends = append(v.ends, int32(len(v.arena)))
	v.hashes = append(v.hashes, h)
	v.slots[i] = uint32(len(v.ends))
	if 2*len(v.ends) > len(v.slots) {
		v.grow()
	}
}

// sameToken reports whether tok is w, lower-cased with fold.
func sameToken(tok []byte, w string, fold bool) bool {
	if !fold {
		return string(tok) == w
	}
	if len(tok) != len(w) {
		return false
	}
	for i := 0; i < len(w); i++ {
		if tok[i] != w[i]|0x20 {
			return false
		}
	}
	return true
}

// grow doubles the table and places every token again.
func (v *Vocabulary) grow() {
	v.slots = make([]uint32, 2*len(v.slots))
	mask := uint64(len(v.slots) - 1)
	for n, h := range v.hashes {
		i := h & mask
		for v.slots[i] != 0 {
			i = (i + 1) & mask
		}
		v.slots[i] = uint32(n + 1)
	}
}
