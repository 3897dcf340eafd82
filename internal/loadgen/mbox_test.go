package loadgen

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readAll(t *testing.T, src Source) []string {
	t.Helper()
	var out []string
	for {
		m, err := src.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(m))
	}
}

func TestMboxReader_SplitsAndUnescapes(t *testing.T) {
	in := "From alice@example.com Mon Jan  1 00:00:00 2024\n" +
		"Subject: one\n\nHello\n>From the start of a line\n>>From twice quoted\nFrom inside a paragraph is kept\n\n" +
		"From bob@example.com Mon Jan  1 00:01:00 2024\r\n" +
		"Subject: two\r\n\r\nSecond body\r\n\r\n" +
		"From carol@example.com Mon Jan  1 00:02:00 2024\n" +
		"Subject: three\n\nno final newline"
	got := readAll(t, NewMboxReader(strings.NewReader(in)))
	want := []string{
		"Subject: one\r\n\r\nHello\r\nFrom the start of a line\r\n>From twice quoted\r\nFrom inside a paragraph is kept\r\n",
		"Subject: two\r\n\r\nSecond body\r\n",
		"Subject: three\r\n\r\nno final newline\r\n",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d messages %q, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d:\n got %q\nwant %q", i, got[i], want[i])
		}
	}
}

func TestMboxReader_RejectsNonMbox(t *testing.T) {
	_, err := NewMboxReader(strings.NewReader("Subject: not an mbox\n\nbody\n")).Next()
	if err == nil {
		t.Fatal("a file without a From line was read as an mbox")
	}
	if got := readAll(t, NewMboxReader(strings.NewReader(""))); len(got) != 0 {
		t.Errorf("empty file gave %d messages", len(got))
	}
}

// TestMboxReader_RoundTripsGenerated writes generated messages as an
// mboxrd file and reads the same messages back.
func TestMboxReader_RoundTripsGenerated(t *testing.T) {
	msgs := generate(t, 3, 50)
	var buf bytes.Buffer
	for _, m := range msgs {
		buf.WriteString("From jmapload@example.test Thu Jan  1 00:00:00 2024\n")
		for _, line := range strings.SplitAfter(string(m), "\r\n") {
			if strings.HasPrefix(strings.TrimLeft(line, ">"), "From ") {
				line = ">" + line
			}
			buf.WriteString(line)
		}
		buf.WriteString("\n")
	}
	got := readAll(t, NewMboxReader(&buf))
	if len(got) != len(msgs) {
		t.Fatalf("read %d messages, wrote %d", len(got), len(msgs))
	}
	for i := range msgs {
		if got[i] != string(msgs[i]) {
			t.Errorf("message %d differs after the round trip", i)
		}
	}
}

func TestOpenCorpus_MaildirAndLimit(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"cur/1:2,S", "new/2", ".Sent/cur/3:2,S", "tmp/ignored", "cur/.hidden"} {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("Subject: "+filepath.Base(p)+"\n\nbody\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src, closer, err := OpenCorpus(dir, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	got := readAll(t, src)
	want := []string{"Subject: 3:2,S\r\n\r\nbody\r\n", "Subject: 1:2,S\r\n\r\nbody\r\n", "Subject: 2\r\n\r\nbody\r\n"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
	mbox := filepath.Join(dir, "box.mbox")
	if err := os.WriteFile(mbox, []byte("From a\nSubject: a\n\nx\n\nFrom b\nSubject: b\n\ny\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src, closer, err = OpenCorpus(mbox, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	if got := readAll(t, src); len(got) != 1 || got[0] != "Subject: a\r\n\r\nx\r\n" {
		t.Errorf("limited mbox gave %q", got)
	}
}

// FuzzMboxReader feeds arbitrary files to the mbox reader: it must end
// with io.EOF or an error, never panic or loop, and every message it
// returns has CRLF line ends only.
func FuzzMboxReader(f *testing.F) {
	f.Add([]byte("From a\nSubject: x\n\nbody\n>From y\n\nFrom b\n\n"))
	f.Add([]byte("From \r\n\r\nFrom \r\n"))
	f.Add([]byte(""))
	f.Add([]byte("not mbox"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewMboxReader(bytes.NewReader(data))
		for range len(data) + 2 {
			m, err := r.Next()
			if err != nil {
				return
			}
			if bytes.Contains(bytes.ReplaceAll(m, []byte("\r\n"), nil), []byte("\n")) {
				t.Fatalf("bare LF in %q", m)
			}
		}
		t.Fatalf("reader did not end on %q", data)
	})
}
