package mime

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse parses arbitrary input and calls every accessor on every part and
// every header form on every header field. Nothing may panic or hang, and the
// invariants the Email methods rely on must hold. Seeds are in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add(crlf(rfcStructure))
	f.Add(crlf("Subject: =?utf-8?q?hi?=\nFrom: A <a@b.c>\n\nbody"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := Parse(raw)
		if err != nil {
			if !errors.Is(err, ErrNotMessage) || m != nil {
				t.Fatalf("Parse = %v, %v", m, err)
			}
			return
		}
		checkHeaders(t, m.Headers)
		n := 0
		for p := range m.Parts() {
			n++
			checkPart(t, m, p)
		}
		if n > 2*maxParts {
			t.Fatalf("%d parts", n)
		}
		text, html, att := m.BodyLists()
		for _, l := range [][]*Part{text, html, att} {
			for _, p := range l {
				if p.IsMultipart() {
					t.Fatalf("multipart %q in a body list", p.Type)
				}
			}
		}
		pv := m.Preview()
		if utf8.RuneCountInString(pv) > previewLen || !utf8.ValidString(pv) {
			t.Fatalf("bad preview %q", pv)
		}
		if full := m.previewFrom(text); pv != full {
			t.Fatalf("preview %q, from whole parts %q", pv, full)
		}
		m.HasAttachment()
	})
}

func checkPart(t *testing.T, m *Message, p *Part) {
	t.Helper()
	checkHeaders(t, p.Headers)
	if p.IsMultipart() != (p.PartID == "") {
		t.Fatalf("type %q with partId %q", p.Type, p.PartID)
	}
	if !p.IsMultipart() && len(p.SubParts) > 0 {
		t.Fatalf("leaf %q has subparts", p.PartID)
	}
	if (p.Charset != nil) != strings.HasPrefix(p.Type, "text/") {
		t.Fatalf("type %q with charset %v", p.Type, p.Charset)
	}
	c := m.Content(p)
	if int64(len(c)) != m.Size(p) {
		t.Fatalf("part %q: Size %d, len(Content) %d", p.PartID, m.Size(p), len(c))
	}
	txt, _ := m.Text(p)
	if !utf8.ValidString(txt) {
		t.Fatalf("part %q: Text is not UTF-8", p.PartID)
	}
	if p.PartID != "" && m.Find(p.PartID) != p {
		t.Fatalf("Find(%q) is another part", p.PartID)
	}
	for _, s := range []*string{p.Name, p.Disposition, p.Cid, p.Location, p.Charset} {
		if s != nil && !utf8.ValidString(*s) {
			t.Fatalf("part %q: property %q is not UTF-8", p.PartID, *s)
		}
	}
	HTMLToText(txt)
	TruncateValue(txt, 7, true)
}

func checkHeaders(t *testing.T, hs []Header) {
	t.Helper()
	for _, h := range hs {
		if len(Values(hs, h.Name)) == 0 {
			t.Fatalf("Values misses %q", h.Name)
		}
		for _, s := range []string{AsRaw(h.Value), AsText(h.Value)} {
			if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
				t.Fatalf("form of %q is not clean UTF-8: %q", h.Value, s)
			}
		}
		for _, a := range AsAddresses(h.Value) {
			if !utf8.ValidString(a.Email) {
				t.Fatalf("address %q is not UTF-8", a.Email)
			}
		}
		AsGroupedAddresses(h.Value)
		AsMessageIDs(h.Value)
		AsDate(h.Value)
		AsURLs(h.Value)
	}
}

// benchMessage builds a realistic multipart message of about 20 KB: text and
// HTML alternatives, an inline image and a PDF attachment.
func benchMessage() []byte {
	var b bytes.Buffer
	b.WriteString("Return-Path: <alice@example.com>\r\n")
	for i := range 6 {
		b.WriteString("Received: from mx" + itoa(i) + ".example.net (mx.example.net [192.0.2.1])\r\n\tby mail.example.com with ESMTPS id abc" + itoa(i) + "\r\n\tfor <bob@example.com>; Tue, 1 Jul 2025 10:52:37 +0200\r\n")
	}
	b.WriteString("From: =?utf-8?q?Alice_Li=C3=B0ell?= <alice@example.com>\r\n" +
		"To: \"Bob\" <bob@example.com>, carol@example.com\r\n" +
		"Subject: =?utf-8?B?UXVhcnRlcmx5IHJlcG9ydCDigJMgZHJhZnQ=?=\r\n" +
		"Date: Tue, 1 Jul 2025 10:52:37 +0200\r\n" +
		"Message-ID: <20250701105237.1234@example.com>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"outer-boundary\"\r\n\r\n" +
		"This is a multi-part message in MIME format.\r\n" +
		"--outer-boundary\r\nContent-Type: multipart/related; boundary=\"rel\"\r\n\r\n" +
		"--rel\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n" +
		"--alt\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	para := "Dear Bob, please find the quarterly report attached. The numbers look good =E2=80=93 see the table below.=\r\n"
	for range 20 {
		b.WriteString(para)
	}
	b.WriteString("\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<html><body>")
	for range 20 {
		b.WriteString("<p>" + para + "</p>\r\n")
	}
	b.WriteString("<img src=3D\"cid:logo@example.com\"></body></html>\r\n--alt--\r\n" +
		"--rel\r\nContent-Type: image/png\r\nContent-ID: <logo@example.com>\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	line := strings.Repeat("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk", 2)[:76] + "\r\n"
	for range 40 {
		b.WriteString(line)
	}
	b.WriteString("--rel--\r\n--outer-boundary\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\n" +
		"Content-Disposition: attachment; filename*=utf-8''Quarterly%20report.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for range 135 {
		b.WriteString(line)
	}
	b.WriteString("--outer-boundary--\r\n")
	return b.Bytes()
}

// BenchmarkParse parses a 20 KB multipart message.
func BenchmarkParse(b *testing.B) {
	raw := benchMessage()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseAndRead parses the same message and computes what Email/get
// returns by default: header forms, body lists, preview, hasAttachment and
// the text body values.
func BenchmarkParseAndRead(b *testing.B) {
	raw := benchMessage()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		from, _ := Last(m.Headers, "From")
		AsAddresses(from)
		subj, _ := Last(m.Headers, "Subject")
		AsText(subj)
		date, _ := Last(m.Headers, "Date")
		AsDate(date)
		text, _, _ := m.BodyLists()
		for _, p := range text {
			m.Text(p)
		}
		m.Preview()
		m.HasAttachment()
	}
}

func TestBenchMessageSize(t *testing.T) {
	raw := benchMessage()
	if len(raw) < 18<<10 || len(raw) > 22<<10 {
		t.Errorf("bench message is %d bytes, want about 20 KB", len(raw))
	}
	m := mustParse(t, raw)
	text, html, att := m.BodyLists()
	if len(text) != 1 || len(html) != 1 || len(att) != 2 || !m.HasAttachment() {
		t.Errorf("structure: %d text, %d html, %d attachments", len(text), len(html), len(att))
	}
}
