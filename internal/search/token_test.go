package search

import (
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestTokens(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want []string
	}{
		{"words and punctuation", "Hello, World! it's 2026", []string{"hello", "world", "it", "s", "2026"}},
		{"address", "Alice Adams <alice.adams@Example.ORG>", []string{"alice", "adams", "alice", "adams", "example", "org"}},
		{"accents precomposed", "Café Noël", []string{"café", "noël"}},
		{"accents combining", "Cafe\u0301 au lait", []string{"cafe\u0301", "au", "lait"}},
		{"upper non-ASCII", "ÉCOLE ÖSTERREICH", []string{"école", "österreich"}},
		{"han bigrams", "東京都に行く", []string{"東京", "京都", "都に", "に行", "行く"}},
		{"lone han", "東 京", []string{"東", "京"}},
		{"han next to latin", "abc東京def", []string{"abc", "東京", "def"}},
		{"hangul", "안녕하세요", []string{"안녕", "녕하", "하세", "세요"}},
		{"empty", "", nil},
		{"only punctuation", " -- !! @ ", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := All(tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("All(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestTokens_LongRunIsCut(t *testing.T) {
	got := All(strings.Repeat("é", 100) + " x")
	if len(got) != 2 || len(got[0]) > MaxTokenBytes || !utf8.ValidString(got[0]) || got[1] != "x" {
		t.Fatalf("All = %q", got)
	}
}

func TestWhole(t *testing.T) {
	for s, want := range map[string]bool{
		"ell": true, "ELL": true, "Café": true, "東京": true, "京": true, "2026": true,
		"東京都": false, "example.org": false, "a b": false, "": false, "-": false,
		strings.Repeat("a", MaxTokenBytes+1): false,
	} {
		if got := Whole(s); got != want {
			t.Errorf("Whole(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestSuffixes(t *testing.T) {
	if got, want := Suffixes("noël"), []string{"noël", "oël", "ël", "l"}; !slices.Equal(got, want) {
		t.Errorf("Suffixes = %q, want %q", got, want)
	}
	long := strings.Repeat("a", MaxSuffixRunes+1)
	if got := Suffixes(long); !slices.Equal(got, []string{long}) {
		t.Errorf("Suffixes(long) = %q", got)
	}
}

// FuzzTokens checks the invariants the index relies on: tokens are valid
// UTF-8, non-empty, at most MaxTokenBytes, lower-case, made only of word
// characters; a Whole query found in a text (ignoring case) is inside one
// of the text's tokens; and every token of a substring of the text is
// inside some token of the text.
func FuzzTokens(f *testing.F) {
	for _, s := range []string{"Hello, World", "東京都に行く", "Cafe\u0301", "a\xffb", "ÉCOLE", "안녕하세요 abc", "x" + strings.Repeat("é", 40)} {
		f.Add(s, 1, 3)
	}
	f.Fuzz(func(t *testing.T, text string, from, to int) {
		toks := All(text)
		for _, tok := range toks {
			if tok == "" || len(tok) > MaxTokenBytes || !utf8.ValidString(tok) {
				t.Fatalf("bad token %q from %q", tok, text)
			}
			if strings.ToLower(tok) != tok {
				t.Fatalf("token %q is not lower-case", tok)
			}
			for _, r := range tok {
				if !isWord(r) {
					t.Fatalf("token %q holds %q", tok, r)
				}
			}
			if sfx := Suffixes(tok); len(sfx) == 0 || sfx[0] != tok {
				t.Fatalf("Suffixes(%q) = %q", tok, sfx)
			}
		}
		if !utf8.ValidString(text) || len(text) == 0 {
			return
		}
		// A substring of the text, at rune boundaries.
		runes := []rune(text)
		from, to = abs(from)%len(runes), abs(to)%(len(runes)+1)
		if from > to {
			from, to = to, from
		}
		sub := string(runes[from:to])
		inSome := func(q string) bool {
			return slices.ContainsFunc(toks, func(tok string) bool { return strings.Contains(tok, q) })
		}
		// A run cut at MaxTokenBytes loses what follows; only texts
		// without a cut run must keep every substring findable.
		cut := slices.ContainsFunc(toks, func(tok string) bool { return len(tok) > MaxTokenBytes-utf8.UTFMax })
		for _, q := range All(sub) {
			if !cut && !inSome(q) {
				t.Fatalf("token %q of substring %q is in no token of %q (%q)", q, sub, text, toks)
			}
		}
		if !cut && Whole(sub) && strings.Contains(strings.ToLower(text), strings.ToLower(sub)) && !inSome(strings.ToLower(sub)) {
			t.Fatalf("whole %q is in %q but in none of %q", sub, text, toks)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// refTokens is the plain rune-by-rune tokenizer Tokens must agree with:
// every rune decoded, lower-cased and copied.
func refTokens(text string) []string {
	var out []string
	var buf []byte
	var run []rune
	flushWord := func() {
		if len(buf) > 0 {
			out = append(out, string(buf))
			buf = buf[:0]
		}
	}
	flushRun := func() {
		if len(run) == 1 {
			out = append(out, string(run))
		}
		for i := 0; i+1 < len(run); i++ {
			out = append(out, string(run[i:i+2]))
		}
		run = run[:0]
	}
	for _, r := range text {
		switch {
		case isUnspaced(r) && isWord(r):
			flushWord()
			run = append(run, unicode.ToLower(r))
		case isWord(r):
			flushRun()
			lr := unicode.ToLower(r)
			if len(buf)+utf8.RuneLen(lr) <= MaxTokenBytes {
				buf = utf8.AppendRune(buf, lr)
			}
		default:
			flushWord()
			flushRun()
		}
	}
	flushWord()
	flushRun()
	return out
}

func TestTokens_AgreesWithReference(t *testing.T) {
	for _, in := range []string{
		"Hello, World! it's 2026", "ÉCOLE österreich", "abc東京def", "MiXeD CaSe ünd Straße",
		strings.Repeat("a", 70) + "B" + strings.Repeat("é", 3), strings.Repeat("a", 63) + "éa",
		"İstanbul KELVIN\u212a", "bad \xff\xfe utf-8 \xc3", "x\u0301y", "",
	} {
		if got, want := All(in), refTokens(in); !slices.Equal(got, want) {
			t.Errorf("All(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzTokensReference checks the tokenizer against the reference on any
// input.
func FuzzTokensReference(f *testing.F) {
	for _, s := range []string{"Hello, World", "ÉCOLE 東京都", strings.Repeat("Ab", 40), "\xff a\u0301"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if got, want := All(in), refTokens(in); !slices.Equal(got, want) {
			t.Fatalf("All(%q) = %q, want %q", in, got, want)
		}
	})
}

// BenchmarkTokens tokenizes 20 KB of English-like text, the body of a
// typical message.
func BenchmarkTokens(b *testing.B) {
	words := []string{"Quarterly", "numbers", "lunch,", "meeting", "deadline.", "draft", "review", "budget", "café", "notes"}
	var sb strings.Builder
	for i := 0; sb.Len() < 20<<10; i++ {
		sb.WriteString(words[i*7%len(words)])
		sb.WriteByte(' ')
	}
	text := sb.String()
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		Tokens(text, func(string) bool { return true })
	}
}
