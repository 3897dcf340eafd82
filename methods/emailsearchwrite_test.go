package methods

import (
	"slices"
	"testing"
)

// FuzzForwardEntries feeds any value to the forward entry decoder: it never
// panics, and an entry appendForward made decodes to what it was made of.
func FuzzForwardEntries(f *testing.F) {
	f.Add([]byte("w\x02a1\x20lantern\x00\x01alice\x00"), "a1", "lantern")
	f.Add([]byte("v\x20café\x00"), "", "x")
	f.Add([]byte("w\xff\xff"), "a9z", "")
	f.Fuzz(func(t *testing.T, v []byte, seq, tok string) {
		forwardEntries(v, func(uint8, string) {})
		if seq == "" || tok == "" || slices.Contains([]byte(tok), 0) {
			return
		}
		masks := map[string]uint8{tok: fieldBody, "x": fieldFrom}
		toks := []string{tok}
		if tok != "x" {
			toks = append(toks, "x")
		}
		var got []string
		gotSeq := forwardEntries(appendForward(nil, seq, toks, masks), func(m uint8, t string) {
			if m != masks[t] {
				t = "wrong mask for " + t
			}
			got = append(got, t)
		})
		if gotSeq != seq || !slices.Equal(got, toks) {
			t.Fatalf("round trip of %q %q: %q %q", seq, toks, gotSeq, got)
		}
	})
}
