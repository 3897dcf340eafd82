package lmtp

import (
	"bytes"
	"testing"
)

func TestCRLF(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "",
		"a\r\nb\r\n":             "a\r\nb\r\n",
		"a\nb\n":                 "a\r\nb\r\n",
		"a\r\nb\nc":              "a\r\nb\r\nc\r\n",
		"no line end":            "no line end",
		"Subject: x\n\nbody\r\n": "Subject: x\r\n\r\nbody\r\n",
	} {
		if got := string(crlf([]byte(in))); got != want {
			t.Errorf("crlf(%q) = %q, want %q", in, got, want)
		}
	}
}

// Whatever arrives, every line of the result ends in CRLF and the text
// between line ends is the input's.
func FuzzCRLF(f *testing.F) {
	f.Add([]byte("a\nb\r\nc"))
	f.Add([]byte("\r\r\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		out := crlf(in)
		if !bytes.Contains(in, []byte("\n")) {
			if !bytes.Equal(out, in) {
				t.Fatalf("crlf changed %q without line ends into %q", in, out)
			}
			return
		}
		if bytes.Count(out, []byte("\r\n")) != bytes.Count(out, []byte("\n")) {
			t.Fatalf("crlf(%q) = %q has a bare LF", in, out)
		}
		strip := func(b []byte) []byte {
			return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\n"), nil), []byte("\r"), nil)
		}
		if !bytes.Equal(strip(out), strip(in)) {
			t.Fatalf("crlf(%q) = %q changed the text", in, out)
		}
	})
}
