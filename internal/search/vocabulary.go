package search

import "hash/maphash"

// Vocabulary collects the distinct tokens of texts, in the order they
// first occur, up to a maximum: what the index keeps of a message body. A
// body repeats most of its words many times; each repeat costs a hash of
// the word as it stands in the text and a probe of a table that holds
// only the vocabulary, with no copy and no lower-casing.
type Vocabulary struct {
	list   []string
	hashes []uint64 // of each of list
	slots  []uint32 // index into list plus one; 0 is empty
	max    int
	seed   maphash.Seed
	s      scanner
}

// NewVocabulary returns an empty vocabulary that keeps at most max tokens.
func NewVocabulary(max int) *Vocabulary {
	return &Vocabulary{max: max, slots: make([]uint32, 256), seed: maphash.MakeSeed()}
}

// Add adds the tokens of text not seen before, and reports false once the
// vocabulary holds its maximum (what is past it is left out).
func (v *Vocabulary) Add(text string) bool {
	v.s = scanner{text: text, buf: v.s.buf, run: v.s.run[:0]}
	for len(v.list) < v.max && v.s.next() {
		tok := v.s.tok
		if v.s.fold {
			tok = string(lowerASCII(tok, &v.s.buf)) // a word with capitals
		}
		v.add(tok)
	}
	return len(v.list) < v.max
}

// Tokens returns the distinct tokens in the order they first occurred;
// the slice is the vocabulary's own until the next Add.
func (v *Vocabulary) Tokens() []string { return v.list }

// add keeps a copy of tok unless the vocabulary holds it.
func (v *Vocabulary) add(tok string) {
	h := maphash.String(v.seed, tok)
	mask := uint64(len(v.slots) - 1)
	i := h & mask
	for {
		s := v.slots[i]
		if s == 0 {
			break
		}
		if v.hashes[s-1] == h && v.list[s-1] == tok {
			return
		}
		i = (i + 1) & mask
	}
	v.list = append(v.list, string(append([]byte(nil), tok...)))
	v.hashes = append(v.hashes, h)
	v.slots[i] = uint32(len(v.list))
	if 2*len(v.list) > len(v.slots) {
		v.grow()
	}
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
