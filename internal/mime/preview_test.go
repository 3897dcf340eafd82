package mime

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"mime/quotedprintable"
	"strings"
	"testing"

	"golang.org/x/text/encoding/japanese"
)

// Preview reads the first previewQuick octets of a long plain text part
// first; whatever the body, its answer is the one made from the whole
// part. Bodies are long (up to 20 KB) with quoted runs, signatures, long
// lines, non-ASCII text, and each transfer encoding and a stateful
// charset, so that the quick read often cuts a line, a rune, an escape or
// a base64 quantum.
func TestPreview_QuickReadAgreesWithWholeParts(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	words := []string{"meeting", "budget", "café", "naïve", "東京", "résumé", "plan", "Zürich", "ok", "—"}
	quick := 0
	for n := range 600 {
		var body strings.Builder
		size := 1 + rng.IntN(20000)
		for body.Len() < size {
			switch r := rng.IntN(40); {
			case r == 0:
				body.WriteString("\n-- \nSignature line\n")
			case r < 6:
				body.WriteString("\n> quoted " + words[rng.IntN(len(words))] + "\n")
			case r < 8:
				body.WriteString("\n\n")
			case r == 8:
				body.WriteString(strings.Repeat("x", 3000+rng.IntN(3000)))
			default:
				body.WriteString(words[rng.IntN(len(words))] + " ")
			}
		}
		text := strings.ReplaceAll(body.String(), "\n", "\r\n")
		cs, data := "utf-8", []byte(text)
		if rng.IntN(4) == 0 {
			cs = "iso-2022-jp"
			enc, err := japanese.ISO2022JP.NewEncoder().String(strings.NewReplacer("café", "cafe", "naïve", "naive", "résumé", "resume", "Zürich", "Zurich", "—", "-").Replace(text))
			if err != nil {
				t.Fatal(err)
			}
			data = []byte(enc)
		}
		var cte, encoded string
		switch rng.IntN(3) {
		case 0:
			cte, encoded = "8bit", string(data)
		case 1:
			var b strings.Builder
			w := quotedprintable.NewWriter(&b)
			w.Write(data)
			w.Close()
			cte, encoded = "quoted-printable", b.String()
		default:
			s := base64.StdEncoding.EncodeToString(data)
			var b strings.Builder
			for len(s) > 76 {
				b.WriteString(s[:76] + "\r\n")
				s = s[76:]
			}
			b.WriteString(s)
			cte, encoded = "base64", b.String()
		}
		raw := fmt.Sprintf("From: a@b.c\r\nSubject: s\r\nContent-Type: text/plain; charset=%s\r\nContent-Transfer-Encoding: %s\r\n\r\n%s", cs, cte, encoded)
		m, err := Parse([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		text2, _, _ := m.BodyLists()
		got, want := m.Preview(), m.previewFrom(text2)
		if got != want {
			t.Fatalf("message %d (%s, %s, %d octets): preview\n%q\nfrom the whole part\n%q", n, cs, cte, len(encoded), got, want)
		}
		if len(encoded) > previewQuick && len([]rune(got)) == previewLen {
			quick++
		}
	}
	if quick < 100 {
		t.Errorf("only %d long bodies made a full preview: the quick read is hardly tested", quick)
	}
}

// The quick read that ends inside a character, right where the preview's
// last character comes from, does not make the preview: the whole part
// does.
func TestPreview_QuickReadCutInsideACharacter(t *testing.T) {
	// Quoted lines, skipped, fill the quick read but for 511 octets: 255
	// characters "é" and the first octet of the 256th.
	var q strings.Builder
	for q.Len() < previewQuick-511-2-100 {
		q.WriteString("> " + strings.Repeat("q", 96) + "\r\n")
	}
	q.WriteString("> " + strings.Repeat("q", previewQuick-511-2-q.Len()-4) + "\r\n")
	body := q.String() + "\r\n" + strings.Repeat("é", 300) + "\r\n"
	if got := strings.Index(body, "é"); got != previewQuick-511 {
		t.Fatalf("text starts at %d, want %d", got, previewQuick-511)
	}
	m, err := Parse([]byte("From: a@b.c\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Preview(), strings.Repeat("é", previewLen); got != want {
		t.Errorf("preview %q, want 256 times é", got)
	}
}
