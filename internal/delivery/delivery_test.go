package delivery

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
)

func TestParseAddress(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		ok             bool
	}{
		{"plain", "alice@example.test", "alice@example.test", true},
		{"domain lower-cased, local kept", "Alice@EXAMPLE.test", "Alice@example.test", true},
		{"atext", "a.b+c!#$%&'*/=?^_`{|}~-@x.test", "a.b+c!#$%&'*/=?^_`{|}~-@x.test", true},
		{"quoted local", `"a b"@x.test`, `"a b"@x.test`, true},
		{"quoted pair", `"a\"b"@x.test`, `"a\"b"@x.test`, true},
		{"address literal", "a@[192.0.2.1]", "a@[192.0.2.1]", true},
		{"utf-8", "jörg@exämple.test", "jörg@exämple.test", true},
		{"empty", "", "", false},
		{"no at", "alice", "", false},
		{"no local", "@x.test", "", false},
		{"no domain", "a@", "", false},
		{"two ats", "a@b@x.test", "", false},
		{"space", "a b@x.test", "", false},
		{"angle", "<a@x.test>", "", false},
		{"leading dot", ".a@x.test", "", false},
		{"double dot", "a..b@x.test", "", false},
		{"label hyphen", "a@-x.test", "", false},
		{"empty label", "a@x..test", "", false},
		{"crlf", "a@x.test\r\nRCPT TO:<b@y>", "", false},
		{"long local", strings.Repeat("a", 65) + "@x.test", "", false},
		{"unterminated quote", `"ab@x.test`, "", false},
		{"bad utf-8", "a\xff@x.test", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAddress(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("ParseAddress(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
}

// FuzzParseAddress checks that an accepted address is safe to put in an
// SMTP command and parses again to itself.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"a@b.c", `"x y"@[1.2.3.4]`, "A@B.C", "a@b@c", "a\r\n@b", "jörg@ä.test", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseAddress(s)
		if err != nil {
			return
		}
		if strings.ContainsAny(got, "\r\n<>\x00") || len(got) > 254 {
			t.Fatalf("ParseAddress(%q) = %q: unsafe", s, got)
		}
		again, err := ParseAddress(got)
		if err != nil || again != got {
			t.Fatalf("ParseAddress(%q) = %q, which parses to %q, %v", s, got, again, err)
		}
		if !strings.Contains(Domain(got), ".") && !strings.HasPrefix(Domain(got), "[") && Domain(got) == "" {
			t.Fatalf("no domain in %q", got)
		}
	})
}

func TestStripBcc(t *testing.T) {
	in := "From: a@x.test\r\nBcc: secret@x.test,\r\n other@x.test\r\nTo: b@x.test\r\nbcc : c@x.test\r\n\r\nBcc: in the body\r\n"
	want := "From: a@x.test\r\nTo: b@x.test\r\n\r\nBcc: in the body\r\n"
	if got := string(StripBcc([]byte(in))); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	lf := "Bcc: x@y.test\nSubject: s\n\nbody\n"
	if got := string(StripBcc([]byte(lf))); got != "Subject: s\n\nbody\n" {
		t.Errorf("LF message: %q", got)
	}
	none := []byte("From: a@x.test\r\nX-Bcc: kept\r\n\r\nBcc: in the body\r\n")
	if got := StripBcc(none); &got[0] != &none[0] || len(got) != len(none) {
		t.Errorf("a message without Bcc was copied: %q", got)
	}
}

// FuzzStripBcc checks that no Bcc field survives in the header and that
// the body is kept as it is.
func FuzzStripBcc(f *testing.F) {
	f.Add([]byte("Bcc: a\r\nTo: b\r\n\r\nbody"))
	f.Add([]byte("\r\n\r\nBcc: x"))
	f.Add([]byte("Bcc:"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		out := StripBcc(raw)
		_, body := headerEnd(raw)
		if !bytes.HasSuffix(out, raw[body:]) {
			t.Fatalf("body changed")
		}
		end, _ := headerEnd(out)
		for _, line := range bytes.Split(out[:end], []byte("\n")) {
			if name, _, ok := bytes.Cut(line, []byte(":")); ok && len(line) > 0 && line[0] != ' ' && line[0] != '\t' &&
				strings.EqualFold(strings.TrimSpace(string(name)), "bcc") {
				t.Fatalf("a Bcc field is left in %q", out)
			}
		}
	})
}

func TestDKIM_SignedMessageVerifies(t *testing.T) {
	for _, algo := range []string{"ed25519", "rsa"} {
		t.Run(algo, func(t *testing.T) {
			dir := t.TempDir()
			name, txt, err := GenerateKey(dir, "Example.TEST", "jmapd", algo)
			if err != nil {
				t.Fatal(err)
			}
			if name != "jmapd._domainkey.example.test" || !strings.HasPrefix(txt, "v=DKIM1; k="+algo+"; p=") {
				t.Fatalf("record %s %q", name, txt)
			}
			a := New(Options{DKIMDir: dir, HostName: "mx.example.test"})
			msg := []byte("From: Alice <alice@example.test>\r\nTo: bob@other.test\r\nSubject: hi\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n\r\nHello.\r\n")
			signed := a.Sign(msg)
			if !bytes.HasPrefix(signed, []byte("DKIM-Signature:")) {
				t.Fatalf("not signed: %q", signed)
			}
			vs, err := dkim.VerifyWithOptions(bytes.NewReader(signed), &dkim.VerifyOptions{
				LookupTXT: func(domain string) ([]string, error) {
					if domain != name {
						t.Errorf("looked up %s", domain)
					}
					return []string{txt}, nil
				}})
			if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "example.test" {
				t.Fatalf("verify: %v %+v", err, vs)
			}
			// A changed body fails.
			bad := bytes.Replace(signed, []byte("Hello."), []byte("Hullo."), 1)
			vs, _ = dkim.VerifyWithOptions(bytes.NewReader(bad), &dkim.VerifyOptions{
				LookupTXT: func(string) ([]string, error) { return []string{txt}, nil }})
			if len(vs) != 1 || vs[0].Err == nil {
				t.Errorf("a changed message verified")
			}
			// Another domain is not signed.
			other := []byte("From: x@other.test\r\n\r\nx\r\n")
			if got := a.Sign(other); !bytes.Equal(got, other) {
				t.Errorf("signed for a domain without a key")
			}
		})
	}
}

func TestGenerateKey_Refuses(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range [][3]string{{"not a domain", "s", "rsa"}, {"example.test", "s", "dsa"}, {"example.test", "bad selector", "rsa"}} {
		if _, _, err := GenerateKey(dir, tc[0], tc[1], tc[2]); err == nil {
			t.Errorf("GenerateKey%v: no error", tc)
		}
	}
}

func TestDSN_Fields(t *testing.T) {
	a := New(Options{HostName: "mx.example.test"})
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d := string(a.DSN("alice@example.test", "S1", []byte("Subject: hi\r\nBcc: x\r\n\r\nsecret body\r\n"),
		[]Failure{{Rcpt: "bob@other.test", Reply: Reply{Code: 550, Text: "5.1.1 no such user"}}}, now))
	for _, want := range []string{"Content-Type: multipart/report; report-type=delivery-status", "To: <alice@example.test>",
		"Reporting-MTA: dns; mx.example.test", "Final-Recipient: rfc822; bob@other.test", "Action: failed",
		"Status: 5.1.1", "Diagnostic-Code: smtp; 550 5.1.1 no such user", "Content-Type: text/rfc822-headers", "Subject: hi"} {
		if !strings.Contains(d, want) {
			t.Errorf("DSN lacks %q:\n%s", want, d)
		}
	}
	if strings.Contains(d, "secret body") {
		t.Errorf("the DSN returns the body")
	}
}

func TestStamp_TraceFields(t *testing.T) {
	a := New(Options{HostName: "mx.example.test"})
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	got := string(a.Stamp([]byte("Subject: x\r\n\r\nbody\r\n"), "a@x.test", "b@x.test", "", now))
	want := "Return-Path: <a@x.test>\r\nDelivered-To: b@x.test\r\nReceived: by mx.example.test with JMAP\r\n" +
		"\tfor <b@x.test>; Fri, 02 Jan 2026 03:04:05 +0000\r\nSubject: x\r\n\r\nbody\r\n"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if got := string(a.Stamp([]byte("\r\n"), "", "b@x.test", "Q1", now)); !strings.Contains(got, "with JMAP id Q1\r\n") {
		t.Errorf("with id: %q", got)
	}
}
