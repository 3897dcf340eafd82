package search

import (
	"slices"
	"strings"
	"testing"
)

// distinct is what a Vocabulary must hold: the tokens of the texts, each
// once, in order of first occurrence, at most max.
func distinct(max int, texts ...string) []string {
	var out []string
	seen := map[string]bool{}
	for _, text := range texts {
		for _, tok := range All(text) {
			if len(out) >= max {
				return out
			}
			if !seen[tok] {
				seen[tok] = true
				out = append(out, tok)
			}
		}
	}
	return out
}

// words makes a text of n distinct words.
func words(n int) string {
	var b strings.Builder
	for i := range n {
		for j := i; ; j /= 26 {
			b.WriteByte(byte('a' + j%26))
			if j < 26 {
				break
			}
		}
		b.WriteByte(' ')
	}
	return b.String()
}

func TestVocabulary(t *testing.T) {
	cases := []struct {
		name  string
		max   int
		texts []string
	}{
		{"repeats in any case", 100, []string{"Hello hello HELLO, world! World", "hello again"}},
		{"long words cut", 100, []string{strings.Repeat("Ab", 40) + " " + strings.Repeat("ab", 40)}},
		{"scripts", 100, []string{"Café CAFÉ café 東京都に行く 東京 x 東", "ÉCOLE école"}},
		{"maximum", 3, []string{"one two one three four", "five"}},
		// Each word reached once through the scanner (after a non-ASCII
		// separator) and once directly: one token each.
		{"both ways", 100, []string{"\u2014abc abc ABC \u2014ABC Abcdefghijk\u2014 abcdefghijk \u00a0ABCDEFGHIJK"}},
		{"many distinct", 5000, []string{words(3000)}},
		// Tokens alike in their first eight octets, or in length, or
		// ending where the text ends.
		{"same heads", 100, []string{"Internationally internationalization INTERNAT internat Internati internatio abcdefgh abcdefgi",
			"abcdefgh1 abcdefgh2 ABCDEFGH1 x1234567 X1234567 x12345678", "ends internationalizatioN"}},
		{"digits and marks between", 100, []string{"a1b2c3d4e5 A1B2C3D4E5 9am 9AM @home [bracket] `tick` {brace} a_b a-b", "Z@z Zz"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := NewVocabulary(tc.max)
			for _, text := range tc.texts {
				v.Add(text)
			}
			if got, want := v.Tokens(), distinct(tc.max, tc.texts...); !slices.Equal(got, want) {
				t.Errorf("Tokens() = %q\nwant       %q", got, want)
			}
		})
	}
}

// wordLanes agrees with asciiClass on every octet in every lane.
func TestWordLanes(t *testing.T) {
	for c := range 256 {
		for lane := range 8 {
			for _, around := range []uint64{0, lanes01 * 'a', lanes01 * 0xff, lanes01 * ' '} {
				x := around&^(0xff<<(8*lane)) | uint64(c)<<(8*lane)
				word, upper := wordLanes(x)
				wantWord := c < 0x80 && asciiClass[c] != 0
				wantUpper := c < 0x80 && asciiClass[c] == 2
				if got := word>>(8*lane)&0xff == 0x80; got != wantWord {
					t.Errorf("octet %#x in lane %d among %#x: word %v, want %v", c, lane, around, got, wantWord)
				}
				if got := upper>>(8*lane)&0xff == 0x80; got != wantUpper {
					t.Errorf("octet %#x in lane %d among %#x: capital %v, want %v", c, lane, around, got, wantUpper)
				}
				if word&^lanes80 != 0 || upper&^lanes80 != 0 {
					t.Fatalf("marks outside 0x80: %#x %#x", word, upper)
				}
			}
		}
	}
}

// The vocabulary keeps copies: the text may change after Add.
func TestVocabulary_KeepsCopies(t *testing.T) {
	buf := []byte("alpha beta")
	v := NewVocabulary(10)
	v.Add(string(buf))
	copy(buf, "ALPHA BETA")
	if got := v.Tokens(); !slices.Equal(got, []string{"alpha", "beta"}) {
		t.Fatalf("Tokens() = %q", got)
	}
}

// FuzzVocabulary holds a Vocabulary to the plain reading of All.
func FuzzVocabulary(f *testing.F) {
	f.Add("Hello hello HELLO", "ÉCOLE 東京都", 5)
	f.Add(strings.Repeat("Ab", 40), "\xff a\u0301 ab 東", 2)
	f.Fuzz(func(t *testing.T, a, b string, max int) {
		max = max%50 + 1
		if max < 1 {
			max += 50
		}
		v := NewVocabulary(max)
		v.Add(a)
		v.Add(b)
		if got, want := v.Tokens(), distinct(max, a, b); !slices.Equal(got, want) {
			t.Fatalf("Tokens() = %q, want %q", got, want)
		}
	})
}

// BenchmarkVocabulary collects the vocabulary of 27 KB of mail prose: a
// few hundred distinct words, most repeated, some capitalized, a few
// accented.
func BenchmarkVocabulary(b *testing.B) {
	base := strings.Fields(words(400))
	extra := []string{"Quarterly", "numbers", "lunch,", "Meeting.", "deadline", "café", "Review", "budget", "2026-12-07", "notes"}
	var sb strings.Builder
	for i := 0; sb.Len() < 27<<10; i++ {
		if i%3 == 0 {
			sb.WriteString(base[(i*31)%len(base)])
		} else {
			sb.WriteString(extra[(i*7)%len(extra)])
		}
		if i%12 == 11 {
			sb.WriteString(".\r\n")
		} else {
			sb.WriteByte(' ')
		}
	}
	text := sb.String()
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		v := NewVocabulary(2000)
		v.Add(text)
	}
}
