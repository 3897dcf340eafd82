package loadgen

import (
	"bytes"
	"io"
	"strings"
	"testing"

	_ "github.com/emersion/go-message/charset" // decodes ISO-8859-1 and Shift_JIS parts
	"github.com/emersion/go-message/mail"
)

func generate(t *testing.T, seed uint64, n int) [][]byte {
	t.Helper()
	g := NewGenerator(seed, n)
	var out [][]byte
	for {
		m, err := g.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	if len(out) != n {
		t.Fatalf("generated %d messages, want %d", len(out), n)
	}
	return out
}

func TestGenerator_SameSeedSameCorpus(t *testing.T) {
	a, b := generate(t, 42, 200), generate(t, 42, 200)
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("message %d differs between two runs with seed 42", i)
		}
	}
	c := generate(t, 43, 200)
	same := 0
	for i := range a {
		if bytes.Equal(a[i], c[i]) {
			same++
		}
	}
	if same > 0 {
		t.Errorf("%d messages identical for seeds 42 and 43", same)
	}
}

// TestGenerator_ValidMIME parses every message with go-message, reads
// every part through its charset, and checks the headers and the shape of
// the corpus the issue asks for.
func TestGenerator_ValidMIME(t *testing.T) {
	const n = 1500
	msgs := generate(t, 7, n)
	ids := map[string]bool{}
	var replies, forwards, withHTML, withAttachment, big, small int
	charsets := map[string]int{}
	for i, raw := range msgs {
		if len(raw) < MinMessageSize || len(raw) > MaxMessageSize {
			t.Errorf("message %d: size %d outside [%d, %d]", i, len(raw), MinMessageSize, MaxMessageSize)
		}
		if len(raw) > 50*1024 {
			big++
		}
		if len(raw) < 10*1024 {
			small++
		}
		if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
			t.Errorf("message %d has a bare LF", i)
		}
		r, err := mail.CreateReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("message %d: CreateReader: %v", i, err)
		}
		h := r.Header
		for _, f := range []string{"Message-Id", "Date", "From", "To", "Subject", "Mime-Version"} {
			if h.Get(f) == "" {
				t.Errorf("message %d: no %s header", i, f)
			}
		}
		id, err := h.MessageID()
		if err != nil || id == "" {
			t.Errorf("message %d: Message-ID %q: %v", i, h.Get("Message-Id"), err)
		}
		if ids[id] {
			t.Errorf("message %d: Message-ID %s used twice", i, id)
		}
		if _, err := h.Date(); err != nil {
			t.Errorf("message %d: Date: %v", i, err)
		}
		if _, err := h.AddressList("From"); err != nil {
			t.Errorf("message %d: From: %v", i, err)
		}
		subj, err := h.Subject()
		if err != nil || subj == "" {
			t.Errorf("message %d: Subject %q: %v", i, h.Get("Subject"), err)
		}
		if irt, _ := h.MsgIDList("In-Reply-To"); len(irt) > 0 {
			replies++
			if !ids[irt[0]] {
				t.Errorf("message %d replies to %s, which is not an earlier message", i, irt[0])
			}
			refs, _ := h.MsgIDList("References")
			if len(refs) == 0 || refs[len(refs)-1] != irt[0] {
				t.Errorf("message %d: References %v do not end with In-Reply-To %s", i, refs, irt[0])
			}
			if !strings.HasPrefix(subj, "Re: ") {
				t.Errorf("message %d: reply subject %q", i, subj)
			}
		}
		if strings.HasPrefix(subj, "Fwd: ") {
			forwards++
		}
		ids[id] = true
		for {
			p, err := r.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("message %d: NextPart: %v", i, err)
			}
			body, err := io.ReadAll(p.Body)
			if err != nil {
				t.Fatalf("message %d: read part: %v", i, err)
			}
			switch ph := p.Header.(type) {
			case *mail.InlineHeader:
				ct, params, _ := ph.ContentType()
				if ct == "text/html" {
					withHTML++
				}
				if cs := params["charset"]; cs != "" && (ct == "text/plain" || ct == "text/html") {
					charsets[cs]++
					if len(body) == 0 {
						t.Errorf("message %d: empty %s part", i, ct)
					}
				}
			case *mail.AttachmentHeader:
				withAttachment++
				if name, err := ph.Filename(); err != nil || name == "" {
					t.Errorf("message %d: attachment without a readable filename: %v", i, err)
				}
				if len(body) == 0 {
					t.Errorf("message %d: empty attachment", i)
				}
			}
		}
	}
	for _, cs := range []string{"utf-8", "iso-8859-1", "shift_jis"} {
		if charsets[cs] == 0 {
			t.Errorf("no text part in %s", cs)
		}
	}
	// The shape: threads, HTML, attachments, and a skewed size
	// distribution with most messages small and a tail of large ones.
	for _, c := range []struct {
		name     string
		got, min int
	}{
		{"replies", replies, n / 5}, {"forwards", forwards, n / 50}, {"HTML parts", withHTML, n / 5},
		{"attachments", withAttachment, n / 20}, {"messages over 50 KB", big, n / 100}, {"messages under 10 KB", small, n / 2},
	} {
		if c.got < c.min {
			t.Errorf("%s: %d in %d messages, want at least %d", c.name, c.got, n, c.min)
		}
	}
	t.Logf("replies %d forwards %d html %d attachments %d >50KB %d <10KB %d charsets %v",
		replies, forwards, withHTML, withAttachment, big, small, charsets)
}
