package loadgen

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"math"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"strings"
	"time"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
)

// Source yields raw RFC 5322 messages one at a time; Next returns io.EOF
// after the last one.
type Source interface {
	Next() ([]byte, error)
}

// Size bounds of generated messages in octets.
const (
	MinMessageSize = 2 * 1024
	MaxMessageSize = 200 * 1024
)

// Generator makes a deterministic stream of realistic messages from a seed:
// threads of replies and forwards linked by Message-ID, In-Reply-To and
// References; plain and HTML bodies; attachments; UTF-8, ISO-8859-1 and
// Shift_JIS text; sizes between MinMessageSize and MaxMessageSize with a
// log-normal distribution (most messages a few KB, a long tail of large
// ones with attachments).
type Generator struct {
	seed   uint64
	count  int
	n      int
	rng    *rand.Rand
	date   time.Time
	recent []msgMeta
}

// msgMeta is what later messages in a thread need of an earlier one.
type msgMeta struct {
	id      string
	refs    []string
	subject string // without Re:/Fwd:
	from    person
	to      person
	date    time.Time
	text    string // first lines of the body, for quoting
}

type person struct{ name, addr string }

func (p person) header() string {
	return mime.QEncoding.Encode("utf-8", p.name) + " <" + p.addr + ">"
}

// NewGenerator returns a generator of count messages (count < 0: endless).
func NewGenerator(seed uint64, count int) *Generator {
	return &Generator{seed: seed, count: count, rng: rand.New(rand.NewPCG(seed, 0x6a6d61706c6f6164)),
		date: time.Date(2024, 1, 2, 8, 0, 0, 0, time.UTC)}
}

// Next returns the next message.
func (g *Generator) Next() ([]byte, error) {
	if g.count >= 0 && g.n >= g.count {
		return nil, io.EOF
	}
	g.n++
	return g.message(), nil
}

var firstNames = []string{"Alice", "Bob", "Carol", "David", "Eve", "Frank", "Grace", "Heidi", "Ivan", "Judy",
	"Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter", "Yuki",
	"José", "Zoë", "Søren", "François", "Jürgen", "Hiroshi", "Ayumi", "Chloé", "Łukasz", "Ines"}

var lastNames = []string{"Smith", "Jones", "Müller", "Dubois", "García", "Tanaka", "Suzuki", "Rossi",
	"Nowak", "Johansson", "O'Brien", "Novák", "Kowalski", "Schmidt", "Martin", "Lefèvre", "Yamamoto", "Brown"}

var domains = []string{"example.com", "example.org", "example.net", "mail.example.com", "corp.example"}

// englishWords is the common vocabulary; SearchWords draws from it.
var englishWords = strings.Fields(`the project meeting report budget schedule review design release customer
invoice contract deadline proposal update question answer team office travel conference agenda minutes
quarter revenue forecast server database backup network migration upgrade security policy password
holiday vacation lunch dinner coffee weekend monday tuesday wednesday thursday friday morning evening
please thanks regards attached document version draft final comments feedback approval request order
shipment delivery warehouse supplier price discount offer account payment receipt refund support ticket
issue problem solution test result analysis plan strategy marketing campaign launch product feature
roadmap sprint planning retrospective hiring interview candidate training workshop presentation slides
spreadsheet numbers chart figure summary detail context background next steps action items follow up
and of to in for on with at by from as is are was be will can should would could have has had not this
that these those we you they our your their it its about into over after before during between`)

var latinWords = strings.Fields(`Grüße Straße Mädchen über Bücher Käse schön Größe Übersicht Änderung
café naïve façade élève déjà très bientôt réunion réponse prévu année été hôtel crème brûlée
señor mañana año niño corazón también así España información`)

var japaneseWords = strings.Fields(`会議 資料 確認 お願いします よろしく 予定 明日 報告書 東京 大阪 プロジェクト 担当
先週 来週 打ち合わせ 見積もり 請求書 送付 返信 ご連絡 ありがとうございます 本日 修正 対応 検討`)

// SearchWords returns words that occur often in generated mail, for the
// search operation.
func SearchWords() []string {
	return []string{"project", "meeting", "report", "budget", "schedule", "invoice", "contract",
		"deadline", "release", "customer", "server", "migration", "quarter", "feedback", "shipment"}
}

var subjects = []string{"Project status", "Meeting next week", "Quarterly report", "Budget review",
	"Release planning", "Invoice %d", "Contract renewal", "Travel arrangements", "Lunch on Friday?",
	"Server migration", "Security update", "Customer feedback", "Roadmap draft", "Hiring: candidate %d",
	"Workshop slides", "Order %d shipped", "Support ticket #%d", "Holiday schedule", "Design review",
	"Backup failed on %d", "Weekly minutes", "Proposal for the new office", "Question about the numbers"}

var latinSubjects = []string{"Grüße aus München", "Réunion de l'équipe", "Übersicht der Änderungen",
	"Café am Freitag?", "Información del año"}

var japaneseSubjects = []string{"会議の予定", "資料の確認", "見積もりの送付", "報告書について", "打ち合わせのご連絡"}

// charsetSpec is a body charset and its encoder.
type charsetSpec struct {
	name  string
	enc   encoding.Encoding // nil for UTF-8
	words []string
	subj  []string
	b64   bool // base64 rather than quoted-printable
}

var charsets = []charsetSpec{
	{name: "utf-8", words: latinWords},
	{name: "iso-8859-1", enc: charmap.ISO8859_1, words: latinWords, subj: latinSubjects},
	{name: "shift_jis", enc: japanese.ShiftJIS, words: japaneseWords, subj: japaneseSubjects, b64: true},
}

func (g *Generator) pick(list []string) string { return list[g.rng.IntN(len(list))] }

func (g *Generator) person() person {
	first, last := g.pick(firstNames), g.pick(lastNames)
	local := strings.ToLower(asciiOnly(first) + "." + asciiOnly(last))
	return person{name: first + " " + last, addr: local + "@" + g.pick(domains)}
}

// asciiOnly keeps the ASCII letters of s, for address local parts.
func asciiOnly(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "x"
	}
	return b.String()
}

// targetSize draws a message size: log-normal with a median near 6 KB,
// clamped to the bounds.
func (g *Generator) targetSize() int {
	v := math.Exp(math.Log(6000) + 1.1*g.rng.NormFloat64())
	return int(min(max(v, MinMessageSize+600), MaxMessageSize-8*1024))
}

// text makes about n characters of paragraphs, mixing the charset's words
// into English.
func (g *Generator) text(n int, cs charsetSpec) string {
	var b strings.Builder
	line := 0
	for b.Len() < n {
		sentence := 4 + g.rng.IntN(12)
		for i := range sentence {
			var w string
			if g.rng.IntN(6) == 0 {
				w = g.pick(cs.words)
			} else {
				w = g.pick(englishWords)
			}
			if i == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			}
			if line+len(w) > 72 {
				b.WriteString("\n")
				line = 0
			} else if i > 0 || line > 0 {
				b.WriteString(" ")
				line++
			}
			b.WriteString(w)
			line += len(w)
		}
		b.WriteString(".")
		line++
		if g.rng.IntN(5) == 0 {
			b.WriteString("\n\n")
			line = 0
		}
	}
	return b.String() + "\n"
}

func (g *Generator) boundary() string {
	return fmt.Sprintf("=_jl_%016x_%d", g.rng.Uint64(), g.n)
}

// encodeText encodes s in the charset and a transfer encoding, and returns
// the part's headers and body.
func encodeText(s, subtype string, cs charsetSpec) (hdr, body string) {
	raw := []byte(s)
	if cs.enc != nil {
		var err error
		raw, err = encoding.ReplaceUnsupported(cs.enc.NewEncoder()).Bytes(raw)
		if err != nil {
			raw = []byte(s)
		}
	}
	ctype := mime.FormatMediaType("text/"+subtype, map[string]string{"charset": cs.name})
	var b bytes.Buffer
	if cs.b64 {
		writeBase64(&b, raw)
		return "Content-Type: " + ctype + "\r\nContent-Transfer-Encoding: base64\r\n", b.String()
	}
	w := quotedprintable.NewWriter(&b)
	_, _ = w.Write(raw) // writes to a bytes.Buffer do not fail
	_ = w.Close()
	return "Content-Type: " + ctype + "\r\nContent-Transfer-Encoding: quoted-printable\r\n", b.String()
}

// writeBase64 writes data as base64 in lines of 76 characters.
func writeBase64(b *bytes.Buffer, data []byte) {
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteString("\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	b.WriteString("\r\n")
}

// base64Len is the encoded size of n octets written by writeBase64.
func base64Len(n int) int {
	e := base64.StdEncoding.EncodedLen(n)
	return e + (e+75)/76*2
}

func toHTML(s string) string {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><head><meta http-equiv=\"Content-Type\" content=\"text/html\"></head>\n<body>\n")
	for i, p := range strings.Split(strings.TrimSpace(s), "\n\n") {
		b.WriteString("<p>")
		if i%3 == 1 {
			b.WriteString("<b>Note:</b> ")
		}
		b.WriteString(strings.ReplaceAll(html.EscapeString(p), "\n", "<br>\n"))
		b.WriteString("</p>\n")
	}
	b.WriteString("<p><a href=\"https://www.example.com/\">example.com</a></p>\n</body></html>\n")
	return b.String()
}

var attachmentKinds = []struct{ ctype, ext, magic string }{
	{"application/pdf", "pdf", "%PDF-1.4\n"},
	{"image/png", "png", "\x89PNG\r\n\x1a\n"},
	{"image/jpeg", "jpg", "\xff\xd8\xff\xe0"},
	{"application/zip", "zip", "PK\x03\x04"},
	{"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx", "PK\x03\x04"},
}

var attachmentNames = []string{"report", "invoice", "photo", "slides", "contract", "Übersicht", "会議資料", "budget"}

// attachment returns a base64 attachment part of n octets.
func (g *Generator) attachment(n int) string {
	k := attachmentKinds[g.rng.IntN(len(attachmentKinds))]
	name := fmt.Sprintf("%s-%d.%s", g.pick(attachmentNames), g.rng.IntN(1000), k.ext)
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(g.rng.Uint32())
	}
	copy(data, k.magic)
	var b bytes.Buffer
	b.WriteString("Content-Type: " + mime.FormatMediaType(k.ctype, map[string]string{"name": name}) + "\r\n")
	b.WriteString("Content-Disposition: " + mime.FormatMediaType("attachment", map[string]string{"filename": name}) + "\r\n")
	b.WriteString("Content-Transfer-Encoding: base64\r\n\r\n")
	writeBase64(&b, data)
	return b.String()
}

func multipart(subtype, boundary string, parts []string) (hdr, body string) {
	var b strings.Builder
	b.WriteString("This is a multi-part message in MIME format.\r\n")
	for _, p := range parts {
		b.WriteString("\r\n--" + boundary + "\r\n")
		b.WriteString(p)
	}
	b.WriteString("\r\n--" + boundary + "--\r\n")
	return "Content-Type: " + mime.FormatMediaType("multipart/"+subtype, map[string]string{"boundary": boundary}) + "\r\n", b.String()
}

func part(hdr, body string) string { return hdr + "\r\n" + body }

// message builds the next message.
func (g *Generator) message() []byte {
	g.date = g.date.Add(time.Duration(30+g.rng.IntN(600)) * time.Second)
	target := g.targetSize()
	cs := charsets[0]
	switch r := g.rng.IntN(100); {
	case r < 20:
		cs = charsets[1]
	case r < 30:
		cs = charsets[2]
	}
	m := msgMeta{id: fmt.Sprintf("<%d.%d.%x@jmapload.example>", g.seed, g.n, g.rng.Uint32()), date: g.date}
	// Thread shape: 35% replies, 5% forwards, the rest start a thread.
	var parent *msgMeta
	kind := "new"
	if len(g.recent) > 0 {
		switch r := g.rng.IntN(100); {
		case r < 35:
			kind = "reply"
		case r < 40:
			kind = "forward"
		}
		if kind != "new" {
			// Recent messages are answered more often than old ones.
			back := min(int(g.rng.ExpFloat64()*20), len(g.recent)-1)
			parent = &g.recent[len(g.recent)-1-back]
		}
	}
	subjectPrefix := ""
	switch kind {
	case "new":
		m.from, m.to = g.person(), g.person()
		if cs.subj != nil && g.rng.IntN(2) == 0 {
			m.subject = g.pick(cs.subj)
		} else {
			m.subject = g.pick(subjects)
			if strings.Contains(m.subject, "%d") {
				m.subject = fmt.Sprintf(m.subject, 1000+g.rng.IntN(9000))
			}
		}
	case "reply":
		m.from, m.to = parent.to, parent.from
		m.subject = parent.subject
		m.refs = append(append([]string{}, parent.refs...), parent.id)
		if len(m.refs) > 10 {
			m.refs = append(m.refs[:1], m.refs[len(m.refs)-9:]...)
		}
		subjectPrefix = "Re: "
	case "forward":
		m.from, m.to = parent.to, g.person()
		m.subject = parent.subject
		subjectPrefix = "Fwd: "
	}

	var h strings.Builder
	h.WriteString("Return-Path: <" + m.from.addr + ">\r\n")
	fmt.Fprintf(&h, "Received: from mx%d.example.net (mx%d.example.net [192.0.2.%d])\r\n\tby mail.example.com with ESMTPS id %08x;\r\n\t%s\r\n",
		g.rng.IntN(9), g.rng.IntN(9), 1+g.rng.IntN(250), g.rng.Uint32(), m.date.Format(time.RFC1123Z))
	h.WriteString("Message-ID: " + m.id + "\r\n")
	zones := []int{0, 3600, 7200, -5 * 3600, -8 * 3600, 9 * 3600}
	loc := time.FixedZone("", zones[g.rng.IntN(len(zones))])
	h.WriteString("Date: " + m.date.In(loc).Format(time.RFC1123Z) + "\r\n")
	h.WriteString("From: " + m.from.header() + "\r\n")
	h.WriteString("To: " + m.to.header() + "\r\n")
	if g.rng.IntN(4) == 0 {
		h.WriteString("Cc: " + g.person().header() + ", " + g.person().header() + "\r\n")
	}
	subj := subjectPrefix + m.subject
	if cs.name == "shift_jis" && !isASCII(subj) {
		sj, err := japanese.ShiftJIS.NewEncoder().String(subj)
		if err == nil {
			subj = mime.BEncoding.Encode("shift_jis", sj)
		} else {
			subj = mime.QEncoding.Encode("utf-8", subj)
		}
	} else {
		subj = mime.QEncoding.Encode("utf-8", subj)
	}
	h.WriteString("Subject: " + subj + "\r\n")
	if kind == "reply" {
		h.WriteString("In-Reply-To: " + parent.id + "\r\n")
		h.WriteString("References: " + strings.Join(m.refs, "\r\n ") + "\r\n")
	}
	if g.rng.IntN(3) == 0 {
		h.WriteString("X-Mailer: jmapload corpus 1\r\n")
	}
	h.WriteString("MIME-Version: 1.0\r\n")

	withAttachment := target > 24*1024 || g.rng.IntN(12) == 0
	withHTML := g.rng.IntN(100) < 40
	textLen := target - 900
	if withAttachment {
		textLen = 600 + g.rng.IntN(2500)
	}
	if withHTML {
		textLen = int(float64(textLen) / 2.4)
	}
	textLen = max(textLen, 1400)
	body := g.text(textLen, cs)
	m.text = body
	if len(m.text) > 600 {
		m.text = m.text[:strings.LastIndex(m.text[:600], "\n")+1]
	}
	switch kind {
	case "reply":
		quote := "\n\nOn " + parent.date.Format("Mon, 2 Jan 2006 15:04") + ", " + parent.from.name + " wrote:\n> " +
			strings.ReplaceAll(strings.TrimRight(parent.text, "\n"), "\n", "\n> ") + "\n"
		body += quote
	case "forward":
		if g.rng.IntN(2) == 0 {
			body += "\n\n---------- Forwarded message ---------\nFrom: " + parent.from.name + " <" + parent.from.addr +
				">\nDate: " + parent.date.Format(time.RFC1123Z) + "\nSubject: " + parent.subject + "\n\n" + parent.text
			parent = nil // forwarded inline
		}
	}

	var ctHdr, content string
	if withHTML {
		th, tb := encodeText(body, "plain", cs)
		hh, hb := encodeText(toHTML(body), "html", cs)
		ctHdr, content = multipart("alternative", g.boundary(), []string{part(th, tb), part(hh, hb)})
	} else {
		ctHdr, content = encodeText(body, "plain", cs)
	}
	var parts []string
	if kind == "forward" && parent != nil {
		// Forwarded as an attachment: the original as message/rfc822.
		th, tb := encodeText(parent.text, "plain", charsets[0])
		inner := "Message-ID: " + parent.id + "\r\nDate: " + parent.date.Format(time.RFC1123Z) + "\r\nFrom: " +
			parent.from.header() + "\r\nTo: " + parent.to.header() + "\r\nSubject: " +
			mime.QEncoding.Encode("utf-8", parent.subject) + "\r\nMIME-Version: 1.0\r\n" + th + "\r\n" + tb
		parts = append(parts, part(ctHdr, content),
			"Content-Type: message/rfc822\r\nContent-Disposition: attachment; filename=\"forwarded.eml\"\r\n\r\n"+inner)
	}
	if withAttachment {
		if parts == nil {
			parts = append(parts, part(ctHdr, content))
		}
		used := h.Len() + len(content) + 400
		for _, p := range parts[1:] {
			used += len(p)
		}
		budget := target - used
		if budget < 1024 {
			budget = 1024 + g.rng.IntN(8*1024)
		}
		nAtt := 1 + g.rng.IntN(3)
		for i := range nAtt {
			share := budget / (nAtt - i)
			if i < nAtt-1 {
				share = budget * (20 + g.rng.IntN(60)) / 100
			}
			raw := max(share*57/78-200, 512)
			parts = append(parts, g.attachment(raw))
			budget -= base64Len(raw) + 200
			if budget < 1024 {
				break
			}
		}
	}
	if parts != nil {
		ctHdr, content = multipart("mixed", g.boundary(), parts)
	}
	msg := h.String() + ctHdr + "\r\n" + content

	g.recent = append(g.recent, m)
	if len(g.recent) > 500 {
		g.recent = append(g.recent[:0], g.recent[len(g.recent)-400:]...)
	}
	return []byte(msg)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 128 {
			return false
		}
	}
	return true
}
