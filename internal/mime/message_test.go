package mime

import (
	"bytes"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// crlf turns the LF line ends of a test message into CRLF.
func crlf(s string) []byte {
	return []byte(strings.ReplaceAll(s, "\n", "\r\n"))
}

func mustParse(t testing.TB, raw []byte) *Message {
	t.Helper()
	m, err := Parse(raw)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return m
}

// rfcStructure is the MIME structure of the example in RFC 8621 §4.1.4, each
// leaf's content being its letter.
const rfcStructure = `From: list@example.com
Subject: structure
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain
Content-Disposition: inline

A
--outer
Content-Type: multipart/mixed; boundary="m2"

--m2
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: multipart/mixed; boundary="m3"

--m3
Content-Type: text/plain
Content-Disposition: inline

B
--m3
Content-Type: image/jpeg
Content-Disposition: inline

C
--m3
Content-Type: text/plain
Content-Disposition: inline

D
--m3--
--alt
Content-Type: multipart/related; boundary="rel"

--rel
Content-Type: text/html

E
--rel
Content-Type: image/jpeg

F
--rel--
--alt--
--m2
Content-Type: image/jpeg
Content-Disposition: attachment

G
--m2
Content-Type: application/x-excel

H
--m2
Content-Type: message/rfc822

J
--m2--
--outer
Content-Type: text/plain
Content-Disposition: inline

K
--outer--
`

func letters(m *Message, ps []*Part) string {
	var b strings.Builder
	for _, p := range ps {
		b.Write(m.Content(p))
	}
	return b.String()
}

func TestBodyLists_RFC8621Example(t *testing.T) {
	// RFC 8621 §4.1.4: textBody [A B C D K], htmlBody [A E K],
	// attachments [C F G H J].
	m := mustParse(t, crlf(rfcStructure))
	text, html, att := m.BodyLists()
	if got := letters(m, text); got != "ABCDK" {
		t.Errorf("textBody = %s, want ABCDK", got)
	}
	if got := letters(m, html); got != "AEK" {
		t.Errorf("htmlBody = %s, want AEK", got)
	}
	if got := letters(m, att); got != "CFGHJ" {
		t.Errorf("attachments = %s, want CFGHJ", got)
	}
}

func TestBodyLists(t *testing.T) {
	tests := []struct {
		name            string
		msg             string
		text, html, att string // contents of the parts in each list
	}{
		{"single text part", "Subject: x\n\nhello", "hello", "hello", ""},
		{"single html part", "Content-Type: text/html\n\n<p>hi</p>", "<p>hi</p>", "<p>hi</p>", ""},
		{"alternative", `Content-Type: multipart/alternative; boundary=b

--b
Content-Type: text/plain

plain
--b
Content-Type: text/html

html
--b--
`, "plain", "html", ""},
		{"alternative with html only gives html to textBody", `Content-Type: multipart/alternative; boundary=b

--b
Content-Type: text/html

html
--b--
`, "html", "html", ""},
		{"mixed: alternative, inline image referenced, attachment", `Content-Type: multipart/mixed; boundary=m

--m
Content-Type: multipart/related; boundary=r

--r
Content-Type: multipart/alternative; boundary=a

--a
Content-Type: text/plain

plain
--a
Content-Type: text/html

html<img src="cid:img1">
--a--
--r
Content-Type: image/png
Content-ID: <img1>
Content-Disposition: inline

png
--r--
--m
Content-Type: application/pdf
Content-Disposition: attachment; filename="report.pdf"

pdf
--m--
`, "plain", `html<img src="cid:img1">`, "pngpdf"},
		{"text with filename after first part is an attachment", `Content-Type: multipart/mixed; boundary=m

--m

body
--m
Content-Type: text/plain; name="notes.txt"

notes
--m--
`, "body", "body", "notes"},
		{"image in mixed is body and attachment", `Content-Type: multipart/mixed; boundary=m

--m

body
--m
Content-Type: image/gif

gif
--m--
`, "bodygif", "bodygif", ""},
		{"disposition attachment wins", `Content-Type: multipart/mixed; boundary=m

--m
Content-Type: text/plain
Content-Disposition: attachment

att
--m--
`, "", "", "att"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, crlf(tt.msg))
			text, html, att := m.BodyLists()
			if got := letters(m, text); got != tt.text {
				t.Errorf("textBody = %q, want %q", got, tt.text)
			}
			if got := letters(m, html); got != tt.html {
				t.Errorf("htmlBody = %q, want %q", got, tt.html)
			}
			if got := letters(m, att); got != tt.att {
				t.Errorf("attachments = %q, want %q", got, tt.att)
			}
		})
	}
}

func TestHasAttachment(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want bool
	}{
		{"plain text", "Subject: x\n\nhi", false},
		{"pdf attachment", `Content-Type: multipart/mixed; boundary=m

--m

body
--m
Content-Type: application/pdf
Content-Disposition: attachment; filename=a.pdf

x
--m--
`, true},
		{"inline disposition ignored", `Content-Type: multipart/mixed; boundary=m

--m

body
--m
Content-Type: message/rfc822
Content-Disposition: inline

Subject: fwd

x
--m--
`, false},
		{"embedded image referenced from html ignored", `Content-Type: multipart/related; boundary=r

--r
Content-Type: text/html

<img src="cid:logo@x">
--r
Content-Type: image/png
Content-ID: <logo@x>

png
--r--
`, false},
		{"image not referenced counts", `Content-Type: multipart/related; boundary=r

--r
Content-Type: text/html

<p>no image</p>
--r
Content-Type: image/png
Content-ID: <logo@x>

png
--r--
`, true},
		{"RFC 8621 §4.1.4 example", rfcStructure, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, crlf(tt.msg))
			if got := m.HasAttachment(); got != tt.want {
				t.Errorf("HasAttachment = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParse_NotMessage(t *testing.T) {
	tests := []struct {
		name string
		raw  []byte
	}{
		{"empty", nil},
		{"only line breaks", []byte("\r\n\r\n")},
		{"binary garbage", []byte{0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d}},
		{"no colon", []byte("hello world\r\nthis is text\r\n")},
		{"body without header section", []byte("\r\nSubject: in the body\r\n")},
		{"space in field name", []byte("Not A: header\r\n\r\nbody")},
		{"continuation first", []byte(" folded: x\r\n\r\n")},
		{"mbox line only", []byte("From someone Mon Jan  1 00:00:00 2024\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(tt.raw)
			if !errors.Is(err, ErrNotMessage) || m != nil {
				t.Errorf("Parse = %v, %v; want nil, ErrNotMessage", m, err)
			}
		})
	}
}

func TestParse_Headers(t *testing.T) {
	raw := []byte("From someone Mon Jan  1 00:00:00 2024\n" +
		"Subject: hello\r\n  world\r\n" +
		"X-Empty:\r\n" +
		"Odd : spaced\r\n" +
		"To: a@b.c\r\n" +
		"\r\n" +
		"Body: not a header\r\n")
	m := mustParse(t, raw)
	want := []Header{
		{"Subject", " hello\r\n  world"},
		{"X-Empty", ""},
		{"Odd", " spaced"},
		{"To", " a@b.c"},
	}
	if !reflect.DeepEqual(m.Headers, want) {
		t.Errorf("Headers = %q, want %q", m.Headers, want)
	}
	if !reflect.DeepEqual(m.Root.Headers, want) {
		t.Errorf("Root.Headers = %q", m.Root.Headers)
	}
	if got := string(m.Content(m.Root)); got != "Body: not a header\r\n" {
		t.Errorf("body = %q", got)
	}
	if m.Root.PartID != "1" || m.Root.Type != "text/plain" || *m.Root.Charset != "us-ascii" {
		t.Errorf("root = %+v", m.Root)
	}
}

func TestParse_HeaderEndsAtInvalidLine(t *testing.T) {
	m := mustParse(t, []byte("Subject: x\nthis line is body\nmore\n"))
	if len(m.Headers) != 1 {
		t.Errorf("Headers = %q", m.Headers)
	}
	if got := string(m.Content(m.Root)); got != "this line is body\nmore\n" {
		t.Errorf("body = %q", got)
	}
}

func TestParse_NoBody(t *testing.T) {
	m := mustParse(t, []byte("Subject: only headers"))
	if m.Size(m.Root) != 0 || len(m.Content(m.Root)) != 0 {
		t.Errorf("size %d, content %q", m.Size(m.Root), m.Content(m.Root))
	}
	if got := m.Headers[0].Value; got != " only headers" {
		t.Errorf("value = %q", got)
	}
}

func TestPartProperties(t *testing.T) {
	raw := crlf(`Subject: props
Content-Type: multipart/mixed; boundary="==b=="

preamble
--==b==
Content-Type: TEXT/Plain; charset="ISO-8859-1"; format=flowed
Content-Language: en, de (German)
Content-Location: http://example.com/
 a/b.txt
Content-ID: <part1@example.com>

x
--==b==
Content-Type: application/octet-stream; name="=?utf-8?Q?r=C3=A9sum=C3=A9.bin?="
Content-Disposition: ATTACHMENT; filename*=UTF-8''na%C3%AFve%20file.txt
Content-Transfer-Encoding: base64

aGVsbG8=
--==b==
Content-Type: image/png; name="fallback.png"
Content-Disposition: inline

png
--==b==
Content-Type: video/mp4; name*0*=utf-8''%E6%97; name*1*=%A5; name*2=".mp4"

v
--==b==
Content-Type: bogus
Content-Disposition: attachment; filename="=?iso-8859-1?q?caf=E9?=.txt"

y
--==b==--
epilogue
`)
	m := mustParse(t, raw)
	root := m.Root
	if root.PartID != "" || root.Type != "multipart/mixed" || m.Size(root) != 0 || root.Charset != nil {
		t.Fatalf("root = %+v", root)
	}
	if len(root.SubParts) != 5 {
		t.Fatalf("%d subparts", len(root.SubParts))
	}
	p1, p2, p3, p4, p5 := root.SubParts[0], root.SubParts[1], root.SubParts[2], root.SubParts[3], root.SubParts[4]
	check := func(name string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", name, got, want)
		}
	}
	check("p1.PartID", p1.PartID, "1")
	check("p1.Type", p1.Type, "text/plain")
	check("p1.Charset", p1.Charset, strp("ISO-8859-1"))
	check("p1.Language", p1.Language, []string{"en", "de"})
	check("p1.Location", p1.Location, strp("http://example.com/a/b.txt"))
	check("p1.Cid", p1.Cid, strp("part1@example.com"))
	check("p1.Disposition", p1.Disposition, (*string)(nil))
	check("p1.Name", p1.Name, (*string)(nil))
	check("p1.content", string(m.Content(p1)), "x")

	check("p2.PartID", p2.PartID, "2")
	check("p2.Charset", p2.Charset, (*string)(nil))
	check("p2.Disposition", p2.Disposition, strp("attachment"))
	// RFC 8621 §4.1.4: the filename of Content-Disposition wins.
	check("p2.Name", p2.Name, strp("naïve file.txt"))
	check("m.Size(p2)", m.Size(p2), int64(5))
	check("p2.content", string(m.Content(p2)), "hello")
	check("p2.Cid", p2.Cid, (*string)(nil))
	check("p2.Language", p2.Language, []string(nil))

	check("p3.Name", p3.Name, strp("fallback.png"))
	check("p3.Disposition", p3.Disposition, strp("inline"))

	// RFC 2231 §4.1: continuations joined before charset decoding.
	check("p4.Name", p4.Name, strp("日.mp4"))

	// RFC 2045 §5.2: an invalid Content-Type means text/plain; us-ascii.
	check("p5.Type", p5.Type, "text/plain")
	check("p5.Charset", p5.Charset, strp("us-ascii"))
	check("p5.Name", p5.Name, strp("café.txt"))

	if m.Find("2") != p2 || m.Find("5") != p5 || m.Find("") != nil || m.Find("6") != nil || m.Find("1.1") != nil {
		t.Error("Find does not match part ids")
	}
}

func TestRFC2231Names(t *testing.T) {
	tests := []struct{ name, disposition, want string }{
		{"extended", `attachment; filename*=utf-8''%e2%82%ac%20rates.txt`, "€ rates.txt"},
		{"extended with language", `attachment; filename*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A`, "This is ***fun***"},
		{"continuations (RFC 2231 §3)", "attachment;\n filename*0=\"This is even more \";\n filename*1=\"***fun*** \";\n filename*2=\"isn't it!\"", "This is even more ***fun*** isn't it!"},
		{"mixed continuations (RFC 2231 §4.1)", "attachment;\n filename*0*=us-ascii'en'This%20is%20even%20more%20;\n filename*1*=%2A%2A%2Afun%2A%2A%2A%20;\n filename*2=\"isn't it!\"", "This is even more ***fun*** isn't it!"},
		{"continuations out of order", `attachment; filename*1="b.txt"; filename*0="a"`, "ab.txt"},
		{"gap stops continuations", `attachment; filename*0="a"; filename*2="c"`, "a"},
		{"extended wins over plain", `attachment; filename="plain.txt"; filename*=utf-8''ext.txt`, "ext.txt"},
		{"latin1 extended", `attachment; filename*=iso-8859-1''caf%E9.txt`, "café.txt"},
		{"RFC 2047 in quoted filename", `attachment; filename="=?UTF-8?B?0YTQsNC50Lsu0YLQtdC60YHRgg==?="`, "файл.текст"},
		{"unquoted with spaces", `attachment; filename=my file.txt`, "my file.txt"},
		{"comment after value", `attachment; filename=a.txt (the file)`, "a.txt"},
		{"raw UTF-8", "attachment; filename=\"résumé.pdf\"", "résumé.pdf"},
		{"semicolon in quotes", `attachment; filename="a;b.txt"`, "a;b.txt"},
		{"quoted-pair", `attachment; filename="a\"b.txt"`, `a"b.txt`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := crlf("Content-Type: application/octet-stream\nContent-Disposition: " + tt.disposition + "\n\nx")
			m := mustParse(t, raw)
			if m.Root.Name == nil || *m.Root.Name != tt.want {
				got := "<nil>"
				if m.Root.Name != nil {
					got = *m.Root.Name
				}
				t.Errorf("Name = %q, want %q", got, tt.want)
			}
		})
	}
}

func encode(t *testing.T, enc encoding.Encoding, s string) string {
	t.Helper()
	b, err := enc.NewEncoder().String(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestText_Charsets(t *testing.T) {
	tests := []struct {
		name        string
		charset     string
		body        string
		want        string
		wantProblem bool
	}{
		{"utf-8", "utf-8", "naïve 日本", "naïve 日本", false},
		{"invalid utf-8", "utf-8", "caf\xe9!", "caf\uFFFD!", true},
		{"us-ascii", "us-ascii", "plain", "plain", false},
		{"us-ascii holding utf-8", "us-ascii", "naïve", "naïve", false},
		{"iso-8859-1", "ISO-8859-1", encode(t, charmap.ISO8859_1, "café"), "café", false},
		{"latin1 alias", "latin1", encode(t, charmap.ISO8859_1, "café"), "café", false},
		{"windows-1252", "windows-1252", encode(t, charmap.Windows1252, "€ “quoted”"), "€ “quoted”", false},
		{"shift_jis", "Shift_JIS", encode(t, japanese.ShiftJIS, "日本語のテキスト"), "日本語のテキスト", false},
		{"iso-2022-jp", "iso-2022-jp", encode(t, japanese.ISO2022JP, "日本語"), "日本語", false},
		{"gb2312", "gb2312", encode(t, simplifiedchinese.GBK, "中文邮件"), "中文邮件", false},
		{"gbk", "GBK", encode(t, simplifiedchinese.GBK, "中文邮件"), "中文邮件", false},
		{"koi8-r", "koi8-r", encode(t, charmap.KOI8R, "привет"), "привет", false},
		{"quoted charset", `"utf-8"`, "ok", "ok", false},
		{"unknown charset, valid utf-8", "x-made-up", "naïve", "naïve", true},
		{"unknown charset, 8-bit", "x-made-up", "caf\xe9", "café", true},
		{"invalid shift_jis", "shift_jis", "\x81", "\uFFFD", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := append(crlf("Content-Type: text/plain; charset="+tt.charset+"\nContent-Transfer-Encoding: 8bit\n\n"), tt.body...)
			m := mustParse(t, raw)
			got, problem := m.Text(m.Root)
			if got != tt.want || problem != tt.wantProblem {
				t.Errorf("Text = %q, %v; want %q, %v", got, problem, tt.want, tt.wantProblem)
			}
		})
	}
}

func TestText_TransferEncodings(t *testing.T) {
	tests := []struct {
		name, cte, body string
		want            string
		wantProblem     bool
	}{
		{"base64", "base64", "aGVsbG8g\r\nd29ybGQ=\r\n", "hello world", false},
		{"base64 garbage ignored", "BASE64", "aGV*sbG8\r\n!!", "hello", false},
		{"base64 concatenated", "base64", "aGk=aGk=", "hihi", false},
		{"base64 missing pad", "base64", "aGk", "hi", false},
		{"quoted-printable", "quoted-printable", "caf=C3=A9 =\r\nsoft\r\nline  \r\nend=3d=\r\n", "café soft\nline\nend=", false},
		{"quoted-printable broken escapes", "quoted-printable", "a=zz=4", "a=zz=4", false},
		{"quoted-printable soft break with trailing space", "quoted-printable", "a= \r\nb", "ab", false},
		{"unknown encoding is identity and a problem", "x-uuencode", "raw text", "raw text", true},
		{"7bit", "7bit", "line\r\nline2", "line\nline2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := append(crlf("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: "+tt.cte+"\n\n"), tt.body...)
			m := mustParse(t, raw)
			got, problem := m.Text(m.Root)
			if got != tt.want || problem != tt.wantProblem {
				t.Errorf("Text = %q, %v; want %q, %v", got, problem, tt.want, tt.wantProblem)
			}
			if int64(len(m.Content(m.Root))) != m.Size(m.Root) {
				t.Errorf("Size %d != len(Content) %d", m.Size(m.Root), len(m.Content(m.Root)))
			}
		})
	}
}

func TestContent_SharesRaw(t *testing.T) {
	raw := crlf("Subject: x\n\nbody text")
	m := mustParse(t, raw)
	c := m.Content(m.Root)
	if &c[0] != &raw[len(raw)-len("body text")] {
		t.Error("Content copied an identity-encoded body")
	}
	if cap(c) != len(c) {
		t.Error("Content leaves room to append over Raw")
	}
}

func TestParse_Multipart(t *testing.T) {
	tests := []struct {
		name     string
		msg      string
		contents []string // content of each leaf, depth first
		ids      []string // partId of each leaf
	}{
		{"boundary parts without CRLF noise", `Content-Type: multipart/mixed; boundary=b

--b

one
--b

two
--b--
`, []string{"one", "two"}, []string{"1", "2"}},
		{"missing final boundary", `Content-Type: multipart/mixed; boundary=b

--b

one
--b

two
`, []string{"one", "two\r\n"}, []string{"1", "2"}},
		{"trailing open delimiter adds no empty part", `Content-Type: multipart/mixed; boundary=b

--b

one
--b
`, []string{"one"}, []string{"1"}},
		{"boundary prefix inside content is not a delimiter", `Content-Type: multipart/mixed; boundary=b

--b

--bx not a delimiter
 --b neither
--b  
Content-Type: text/plain

two
--b-- trailing words
epilogue`, []string{"--bx not a delimiter\r\n --b neither", "two"}, []string{"1", "2"}},
		{"no delimiter at all keeps the body as text", `Content-Type: multipart/mixed; boundary=b

just text
`, []string{"just text\r\n"}, []string{"1"}},
		{"no boundary parameter", `Content-Type: multipart/mixed

just text`, []string{"just text"}, []string{"1"}},
		{"part without header section", `Content-Type: multipart/mixed; boundary=b

--b
hello: not really
--b--
`, []string{""}, []string{"1"}},
		{"empty parts", `Content-Type: multipart/mixed; boundary=b

--b
--b
--b--`, []string{"", ""}, []string{"1", "2"}},
		{"nested ids", `Content-Type: multipart/mixed; boundary=o

--o
Content-Type: multipart/alternative; boundary=i

--i

a
--i

b
--i--
--o

c
--o--`, []string{"a", "b", "c"}, []string{"1.1", "1.2", "2"}},
		{"digest defaults to message/rfc822", `Content-Type: multipart/digest; boundary=d

--d

Subject: one

1
--d--`, []string{"Subject: one\r\n\r\n1"}, []string{"1"}},
		{"LF only", "Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b--\n", []string{"one"}, []string{"1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := crlf(tt.msg)
			if strings.HasPrefix(tt.name, "LF") {
				raw = []byte(tt.msg)
			}
			m := mustParse(t, raw)
			var contents, ids []string
			for p := range m.Parts() {
				if !p.IsMultipart() {
					contents = append(contents, string(m.Content(p)))
					ids = append(ids, p.PartID)
				}
			}
			if !reflect.DeepEqual(contents, tt.contents) {
				t.Errorf("contents = %q, want %q", contents, tt.contents)
			}
			if !reflect.DeepEqual(ids, tt.ids) {
				t.Errorf("ids = %q, want %q", ids, tt.ids)
			}
		})
	}
}

func TestParse_Digest(t *testing.T) {
	m := mustParse(t, crlf("Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: x\n\ny\n--d--"))
	p := m.Root.SubParts[0]
	if p.Type != "message/rfc822" || p.Charset != nil {
		t.Errorf("digest child = %q charset %v", p.Type, p.Charset)
	}
}

// nested builds a message of depth multipart levels.
func nested(depth int) []byte {
	var b bytes.Buffer
	b.WriteString("Subject: deep\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n")
	for i := 1; i < depth; i++ {
		b.WriteString("--b")
		b.WriteString(itoa(i - 1))
		b.WriteString("\r\nContent-Type: multipart/mixed; boundary=\"b")
		b.WriteString(itoa(i))
		b.WriteString("\"\r\n\r\n")
	}
	b.WriteString("--b" + itoa(depth-1) + "\r\n\r\ninnermost\r\n")
	return b.Bytes()
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestParse_Limits(t *testing.T) {
	t.Run("deep nesting is cut at maxDepth", func(t *testing.T) {
		start := time.Now()
		m := mustParse(t, nested(10000))
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %v", d)
		}
		depth, p := 0, m.Root
		for p.IsMultipart() && len(p.SubParts) > 0 {
			p = p.SubParts[0]
			depth++
		}
		if depth != maxDepth || p.Type != "application/octet-stream" || p.PartID == "" {
			t.Errorf("leaf at depth %d: %+v", depth, p)
		}
		if int64(len(m.Content(p))) != m.Size(p) {
			t.Error("opaque part size does not match content")
		}
	})
	t.Run("part count is bounded", func(t *testing.T) {
		var b bytes.Buffer
		b.WriteString("Content-Type: multipart/mixed; boundary=b\r\n\r\n")
		for range 5000 {
			b.WriteString("--b\r\n\r\nx\r\n")
		}
		m := mustParse(t, b.Bytes())
		n := 0
		for range m.Parts() {
			n++
		}
		if n > maxParts {
			t.Errorf("%d parts", n)
		}
	})
	t.Run("huge header line", func(t *testing.T) {
		raw := append([]byte("Subject: "), bytes.Repeat([]byte("a"), 1<<20)...)
		raw = append(raw, "\r\nX-Folded: "...)
		raw = append(raw, bytes.Repeat([]byte("=?utf-8?q?a?=\r\n "), 50000)...)
		raw = append(raw, "\r\n\r\nbody"...)
		start := time.Now()
		m := mustParse(t, raw)
		if got := AsText(m.Headers[0].Value); len(got) != 1<<20 {
			t.Errorf("subject length %d", len(got))
		}
		if got := AsText(m.Headers[1].Value); got != strings.Repeat("a", 50000) {
			t.Errorf("folded words decode to %d bytes", len(got))
		}
		AsAddresses(m.Headers[0].Value)
		AsMessageIDs(m.Headers[1].Value)
		AsDate(m.Headers[0].Value)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %v", d)
		}
	})
}

func TestPreview(t *testing.T) {
	long := strings.Repeat("word ", 100)
	tests := []struct {
		name, msg, want string
	}{
		{"collapses white space", "Subject: x\n\n  Hello,\n\n\tworld!  \n", "Hello, world!"},
		{"cut at 256 characters", "Subject: x\n\n" + long, strings.TrimSpace(long[:256])},
		{"counts characters, not bytes", "Content-Type: text/plain; charset=utf-8\n\n" + strings.Repeat("é", 300), strings.Repeat("é", 256)},
		{"skips quoted lines", "Subject: x\n\nThanks!\n> old text\n> more\n", "Thanks!"},
		{"only quoted lines kept", "Subject: x\n\n> old text\n", "> old text"},
		{"stops at signature", "Subject: x\n\nHi there\n-- \nJoe\n", "Hi there"},
		{"html only", "Content-Type: text/html\n\n<html><head><title>T</title><style>p{}</style></head><body><p>Hello&nbsp;<b>bold</b></p><p>next &amp; last</p><script>x()</script></body></html>", "Hello bold next & last"},
		{"prefers text/plain", "Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\nplain version\n--b\nContent-Type: text/html\n\n<p>html version</p>\n--b--\n", "plain version"},
		{"decodes charset and transfer encoding", "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\ncaf=E9 cr=E8me", "café crème"},
		{"attachment only", "Content-Type: application/pdf\n\n%PDF", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, crlf(tt.msg))
			got := m.Preview()
			if got != tt.want {
				t.Errorf("Preview = %q, want %q", got, tt.want)
			}
			if n := len([]rune(got)); n > 256 {
				t.Errorf("preview has %d characters", n)
			}
		})
	}
}

func TestHTMLToText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"inline tags join", "a<b>b</b>c", "abc"},
		{"block tags break", "<p>a</p><p>b</p>", "\na\n\nb\n"},
		{"entities", "&lt;tag&gt; &amp; &#233;", "<tag> & é"},
		{"comment", "a<!-- <p>x</p> -->b", "ab"},
		{"less-than in text", "1 < 2 and 3 > 2", "1 < 2 and 3 > 2"},
		{"unclosed tag", "a <b", "a <b"},
		{"script dropped", "a<SCRIPT>alert(1)</script>b", "a b"},
		{"unclosed style drops the rest", "a<style>p{}", "a"},
		{"unclosed head keeps the rest", "<head>a", "a"},
		{"doctype", "<!DOCTYPE html>x", "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HTMLToText(tt.in); got != tt.want {
				t.Errorf("HTMLToText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestTruncateValue(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		max       int
		html      bool
		want      string
		truncated bool
	}{
		{"no limit", "hello", 0, false, "hello", false},
		{"fits", "hello", 5, false, "hello", false},
		{"cut", "hello", 3, false, "hel", true},
		{"not mid-codepoint", "aé", 2, false, "a", true},
		{"not mid-codepoint 3 bytes", "a日本", 5, false, "a日", true},
		{"html not inside a tag", `<p>Hi <a href="https://example.com">x</a>`, 15, true, "<p>Hi ", true},
		{"html after a closed tag", "<p>Hello world", 8, true, "<p>Hello", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, tr := TruncateValue(tt.in, tt.max, tt.html)
			if got != tt.want || tr != tt.truncated {
				t.Errorf("TruncateValue = %q, %v; want %q, %v", got, tr, tt.want, tt.truncated)
			}
		})
	}
}

func TestParamHeaderValue(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", " text/plain; charset=utf-8", "text/plain"},
		{"case and comments", " Text/HTML (web page) ; x=y", "text/html"},
		{"space around slash", " text / plain", "text/plain"},
		{"missing semicolon", " text/plain charset=utf-8", "text/plain"},
		{"disposition with junk", " attachment filename=a.txt", "attachment"},
		{"quoted", ` "inline"`, "inline"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := parseParamHeader(tt.in); got != tt.want {
				t.Errorf("parseParamHeader(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestPathologicalInputs feeds large inputs built to trigger quadratic work
// in the parsers; each must finish quickly.
func TestPathologicalInputs(t *testing.T) {
	// Big enough that quadratic work would take minutes, small enough for
	// the race detector.
	const n = 256 << 10
	headerValues := []struct{ name, v string }{
		{"open comments", strings.Repeat("(", n)},
		{"open quotes and angles", strings.Repeat(`"<`, n/2)},
		{"encoded-word starts", strings.Repeat("=?", n/2)},
		{"encoded-word prefixes", strings.Repeat("=?utf-8?q?", n/10)},
		{"loose word starts", " a=" + strings.Repeat("?=?x", n/4)},
		{"commas", strings.Repeat(",", n)},
		{"colons", strings.Repeat("a:", n/2)},
		{"at signs", strings.Repeat("@", n)},
		{"spaces", strings.Repeat(" ", n)},
		{"angle addrs", strings.Repeat("<a@b>", n/5)},
		{"date-ish", strings.Repeat("1 Jan 2000 ", n/11)},
		{"params", "text/plain" + strings.Repeat(";a*0*=%", n/8)},
		{"param spaces", "text/plain" + strings.Repeat(" ", n) + "x"},
		{"continuations", "a" + strings.Repeat("; name*99*=x", n/12)},
	}
	for _, h := range headerValues {
		t.Run(h.name, func(t *testing.T) {
			start := time.Now()
			AsRaw(h.v)
			AsText(h.v)
			AsAddresses(h.v)
			AsGroupedAddresses(h.v)
			AsMessageIDs(h.v)
			AsDate(h.v)
			AsURLs(h.v)
			parseParamHeader(h.v)
			decodeWordsLoose(h.v)
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
	bodies := []struct{ name, msg string }{
		{"html tags", "Content-Type: text/html\r\n\r\n" + strings.Repeat("<a", n/2)},
		{"html heads", "Content-Type: text/html\r\n\r\n" + strings.Repeat("<head>", n/6)},
		{"html titles and scripts", "Content-Type: text/html\r\n\r\n" + strings.Repeat("<title><script>", n/15)},
		{"html comments", "Content-Type: text/html\r\n\r\n" + strings.Repeat("<!--", n/4)},
		{"qp equals", "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + strings.Repeat("= ", n/2)},
		{"boundary-like lines", "Content-Type: multipart/mixed; boundary=a\r\n\r\n" + strings.Repeat("--a x\n", n/6)},
		{"boundary repeats", "Content-Type: multipart/mixed; boundary=a\r\n\r\n" + strings.Repeat("-", n)},
		{"many delimiters", "Content-Type: multipart/mixed; boundary=a\r\n\r\n" + strings.Repeat("--a\n", n/4)},
		{"many header lines", strings.Repeat("X: y\r\n", n/6) + "\r\n"},
		{"many folded lines", "X: y\r\n" + strings.Repeat(" \r\n", n/3) + "\r\n"},
		{"quoted lines", "Subject: x\r\n\r\n" + strings.Repeat(">\n", n/2)},
	}
	for _, b := range bodies {
		t.Run(b.name, func(t *testing.T) {
			start := time.Now()
			m := mustParse(t, []byte(b.msg))
			for p := range m.Parts() {
				m.Text(p)
			}
			m.BodyLists()
			m.Preview()
			m.HasAttachment()
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

// TestPartPropertiesAreUTF8 is the regression test for the fuzz crasher
// testdata/fuzz/FuzzParse/d0b1eae96e9f21c6: a charset parameter that is not
// UTF-8 must not reach the JSON of an EmailBodyPart as is.
func TestPartPropertiesAreUTF8(t *testing.T) {
	m := mustParse(t, []byte("Content-TYpe:teXt/0;ChArset=\xff\r\nContent-Disposition: \xfe\r\n\r\n"))
	if got := *m.Root.Charset; got != "\uFFFD" {
		t.Errorf("Charset = %q", got)
	}
	if got := *m.Root.Disposition; got != "\uFFFD" {
		t.Errorf("Disposition = %q", got)
	}
	if _, problem := m.Text(m.Root); !problem {
		t.Error("unknown charset is not an encoding problem")
	}
}

func TestLFString(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "a": "a", "a\r\nb": "a\nb", "\r\n\r\n": "\n\n", "a\rb\r": "a\rb\r", "a\r\r\nb\r\n": "a\r\nb\n",
	} {
		if got := lfString([]byte(in)); got != want {
			t.Errorf("lfString(%q) = %q, want %q", in, got, want)
		}
	}
}
