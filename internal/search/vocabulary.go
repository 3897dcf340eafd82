package search

import (
	"math/bits"
	"math/rand/v2"
	"unicode/utf8"
)

// Vocabulary collects the distinct tokens of texts, in the order they
// first occur, up to a maximum: what the index keeps of a message body. A
// body repeats most of its words many times: an ASCII word, most words of
// most mail, is found eight octets at a time, hashed as its lower-case
// form and looked up without being copied; a word of eight octets or
// fewer is told from the others by its octets as one number. Other words
// go through the scanner. The tokens kept are stored end to end in one
// buffer.
type Vocabulary struct {
	arena  []byte   // the tokens kept, end to end
	ends   []int32  // where each token ends in arena
	hashes []uint64 // of each token, to place it again when slots grow
	slots  []vocabSlot
	max    int
	s      scanner
}

// vocabSlot is a place of the Vocabulary's hash table.
type vocabSlot struct {
	head uint64 // the token's first eight octets, as wordKey gives them
	n    uint32 // index into ends plus one; 0 is empty
	size uint32 // the token's length
}

// hashSeed starts every token hash: chosen at random for each process, so
// that the words of a message cannot be picked to collide.
var hashSeed = rand.Uint64()

// hashMul is an odd constant with its bits well spread (2^64 / φ).
const hashMul = 0x9e3779b97f4a7c15

// wordKey hashes the token s[start:end] and returns its first eight
// octets as a little-endian number, zero past its end. With fold, the
// token is an ASCII word of letters and digits, taken in its lower-case
// form (setting 0x20 lowers a capital and leaves a lower-case letter or a
// digit as it is). It reads s eight octets at a time, past end too while
// within s, masking off what is not the token.
func wordKey(s string, start, end int, fold bool) (h, head uint64) {
	var f uint64
	if fold {
		f = 0x2020202020202020
	}
	h = hashSeed ^ uint64(end-start)
	i := start
	for ; i+8 <= end; i += 8 {
		x := load64(s, i) | f
		if i == start {
			head = x
		}
		h = bits.RotateLeft64((h^x)*hashMul, 29)
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
		x = (x | f) & keep
		if i == start {
			head = x
		}
		h = bits.RotateLeft64((h^x)*hashMul, 29)
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	return h ^ h>>33, head
}

// load64 reads the eight octets of s from i, little-endian.
func load64(s string, i int) uint64 {
	b := s[i : i+8]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// The lanes of a word of eight octets, for wordLanes.
const (
	lanes01 = 0x0101010101010101
	lanes80 = 0x8080808080808080
)

// wordLanes marks (0x80) each octet of x, read by load64, that is an
// ASCII letter or digit, and in upper each that is a capital.
func wordLanes(x uint64) (word, upper uint64) {
	high := x & lanes80 // octets outside ASCII
	a := x &^ high
	digit := octetsIn(a, '0', '9')
	letter := octetsIn(a|0x20*lanes01, 'a', 'z')
	upper = octetsIn(a, 'A', 'Z') &^ high & lanes80
	return (digit | letter) &^ high & lanes80, upper
}

// octetsIn marks (0x80) each octet of a, all below 0x80, from lo to hi: a
// plus 0x80-lo has 0x80 set when the octet is lo or more, a plus 0x7f-hi
// when it is more than hi, and neither sum carries into the next octet.
func octetsIn(a uint64, lo, hi byte) uint64 {
	return (a + (0x80-uint64(lo))*lanes01) &^ (a + (0x7f-uint64(hi))*lanes01)
}

// NewVocabulary returns an empty vocabulary that keeps at most max tokens.
func NewVocabulary(max int) *Vocabulary {
	return &Vocabulary{max: max, slots: make([]vocabSlot, 1024), arena: make([]byte, 0, 4096),
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
		var upper uint64
		for i+8 <= len(text) {
			word, up := wordLanes(load64(text, i))
			if word != lanes80 {
				n := bits.TrailingZeros64(^word&lanes80) / 8
				upper |= up & (uint64(1)<<(8*n) - 1)
				i += n
				break
			}
			upper |= up
			i += 8
		}
		if i+8 > len(text) {
			for i < len(text) && text[i] < utf8.RuneSelf && asciiClass[text[i]] != 0 {
				upper |= uint64(asciiClass[text[i]] & 2)
				i++
			}
		}
		if start == i || (i < len(text) && text[i] >= utf8.RuneSelf) {
			// A word that starts or goes on outside ASCII, or an
			// unspaced run: the scanner reads it from its start.
			i = v.addScanned(text, start)
			continue
		}
		end := min(i, start+MaxTokenBytes)
		capitals := upper != 0
		h, head := wordKey(text, start, end, capitals)
		v.add(text[start:end], h, head, capitals)
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
		h, head := wordKey(tok, 0, len(tok), fold)
		v.add(tok, h, head, fold)
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
// word whose token is w lower-cased. h and head are the token's wordKey.
func (v *Vocabulary) add(w string, h, head uint64, fold bool) {
	mask := uint64(len(v.slots) - 1)
	i := h & mask
	for {
		s := v.slots[i]
		if s.n == 0 {
			break
		}
		// Equal heads and lengths are equal tokens up to eight octets.
		if s.head == head && s.size == uint32(len(w)) && (len(w) <= 8 || sameToken(v.token(int(s.n - 1))[8:], w[8:], fold)) {
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
	v.slots[i] = vocabSlot{head: head, n: uint32(len(v.ends)), size: uint32(len(w))}
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
	old := v.slots
	v.slots = make([]vocabSlot, 2*len(old))
	mask := uint64(len(v.slots) - 1)
	for _, s := range old {
		if s.n == 0 {
			continue
		}
		i := v.hashes[s.n-1] & mask
		for v.slots[i].n != 0 {
			i = (i + 1) & mask
		}
		v.slots[i] = s
	}
}
