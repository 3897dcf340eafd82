package mime

import (
	"html"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// previewLen is the longest preview, in characters (RFC 8621 §4.1.4).
	previewLen = 256
	// previewSource is how many encoded octets of a part the preview reads.
	previewSource = 64 << 10
	// previewQuick is how many encoded octets of a plain text part the
	// preview reads first: enough for most.
	previewQuick = 4 << 10
)

// BodyLists returns textBody, htmlBody and attachments as computed by the
// algorithm RFC 8621 §4.1.4 suggests. The lists are never nil.
func (m *Message) BodyLists() (textBody, htmlBody, attachments []*Part) {
	textBody, htmlBody, attachments = []*Part{}, []*Part{}, []*Part{}
	if m.Root == nil {
		return
	}
	parseStructure([]*Part{m.Root}, "mixed", false, &htmlBody, &textBody, &attachments)
	return
}

// isInlineMediaType reports whether t is image/*, audio/* or video/*.
func isInlineMediaType(t string) bool {
	return strings.HasPrefix(t, "image/") || strings.HasPrefix(t, "audio/") || strings.HasPrefix(t, "video/")
}

// parseStructure is parseStructure of RFC 8621 §4.1.4, line by line. A nil
// htmlBody or textBody is the algorithm's null list.
func parseStructure(parts []*Part, multipartType string, inAlternative bool, htmlBody, textBody, attachments *[]*Part) {
	// For multipartType == alternative
	textLength, htmlLength := -1, -1
	if textBody != nil {
		textLength = len(*textBody)
	}
	if htmlBody != nil {
		htmlLength = len(*htmlBody)
	}
	for i, part := range parts {
		isMultipart := part.IsMultipart()
		// Is this a body part rather than an attachment
		isInline := (part.Disposition == nil || *part.Disposition != "attachment") &&
			// Must be one of the allowed body types
			(part.Type == "text/plain" || part.Type == "text/html" || isInlineMediaType(part.Type)) &&
			// If multipart/related, only the first part can be inline
			// If a text part with a filename, and not the first item
			// in the multipart, assume it is an attachment
			(i == 0 || (multipartType != "related" && (isInlineMediaType(part.Type) || part.Name == nil || *part.Name == "")))
		switch {
		case isMultipart:
			subMultiType := strings.TrimPrefix(part.Type, "multipart/")
			parseStructure(part.SubParts, subMultiType, inAlternative || subMultiType == "alternative",
				htmlBody, textBody, attachments)
		case isInline:
			if multipartType == "alternative" {
				switch {
				case part.Type == "text/plain" && textBody != nil:
					*textBody = append(*textBody, part)
				case part.Type == "text/html" && htmlBody != nil:
					*htmlBody = append(*htmlBody, part)
				case part.Type != "text/plain" && part.Type != "text/html":
					*attachments = append(*attachments, part)
				}
				continue
			} else if inAlternative {
				if part.Type == "text/plain" {
					htmlBody = nil
				}
				if part.Type == "text/html" {
					textBody = nil
				}
			}
			if textBody != nil {
				*textBody = append(*textBody, part)
			}
			if htmlBody != nil {
				*htmlBody = append(*htmlBody, part)
			}
			if (textBody == nil || htmlBody == nil) && isInlineMediaType(part.Type) {
				*attachments = append(*attachments, part)
			}
		default:
			*attachments = append(*attachments, part)
		}
	}
	if multipartType == "alternative" && textBody != nil && htmlBody != nil {
		// Found HTML part only
		if textLength == len(*textBody) && htmlLength != len(*htmlBody) {
			*textBody = append(*textBody, (*htmlBody)[htmlLength:]...)
		}
		// Found plaintext part only
		if htmlLength == len(*htmlBody) && textLength != len(*textBody) {
			*htmlBody = append(*htmlBody, (*textBody)[textLength:]...)
		}
	}
}

// HasAttachment reports whether m has an attachment to offer for download
// (RFC 8621 §4.1.4 hasAttachment): a part of the attachments list without
// "Content-Disposition: inline" that is not an image referenced by "cid:"
// from one of the text/html parts of htmlBody.
func (m *Message) HasAttachment() bool {
	_, htmlBody, attachments := m.BodyLists()
	var htmlText []string
	loaded := false
	for _, p := range attachments {
		if p.Disposition != nil && *p.Disposition == "inline" {
			continue
		}
		if p.Cid != nil && isInlineMediaType(p.Type) {
			if !loaded {
				for _, h := range htmlBody {
					if h.Type == "text/html" {
						t, _ := m.Text(h)
						htmlText = append(htmlText, t)
					}
				}
				loaded = true
			}
			referenced := false
			for _, t := range htmlText {
				if strings.Contains(t, "cid:"+*p.Cid) {
					referenced = true
					break
				}
			}
			if referenced {
				continue
			}
		}
		return true
	}
	return false
}

// Preview returns up to 256 characters of plain text from the text/plain and
// text/html parts of textBody (HTML converted to text), white space
// collapsed, skipping quoted lines ("> ...") when there is other text and
// stopping at a signature separator ("-- ") (RFC 8621 §4.1.4 preview).
func (m *Message) Preview() string {
	textBody, _, _ := m.BodyLists()
	// The whole lines of the first previewQuick octets of a plain text
	// part decode as the part's first lines do; when they make a preview
	// of full length, reading further cannot change it.
	if len(textBody) > 0 && textBody[0].Type == "text/plain" {
		s, _ := m.text(textBody[0], previewQuick)
		if i := strings.LastIndexByte(s, '\n'); i >= 0 {
			if pv := collapse(s[:i+1], true); utf8.RuneCountInString(pv) == previewLen {
				return pv
			}
		}
	}
	return m.previewFrom(textBody)
}

// previewFrom makes the preview from up to previewSource octets of each
// part of textBody.
func (m *Message) previewFrom(textBody []*Part) string {
	var b strings.Builder
	for _, p := range textBody {
		var s string
		switch p.Type {
		case "text/plain":
			s, _ = m.text(p, previewSource)
		case "text/html":
			t, _ := m.text(p, previewSource)
			s = HTMLToText(t)
		default:
			continue
		}
		b.WriteString(s)
		b.WriteByte('\n')
		if b.Len() >= previewSource {
			break
		}
	}
	return makePreview(b.String())
}

// makePreview collapses the white space of text and cuts it to previewLen
// characters, leaving out quoted lines unless nothing else is there and
// anything after a signature separator.
func makePreview(text string) string {
	if s := collapse(text, true); s != "" {
		return s
	}
	return collapse(text, false)
}

// collapse implements makePreview, with or without quoted lines.
func collapse(text string, skipQuoted bool) string {
	var b strings.Builder
	n := 0
	space := false
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\r\n")
		if line == "-- " {
			break
		}
		if skipQuoted && strings.HasPrefix(strings.TrimLeft(line, " \t"), ">") {
			continue
		}
		space = space || b.Len() > 0
		for _, r := range line {
			if unicode.IsSpace(r) || unicode.IsControl(r) {
				space = b.Len() > 0
				continue
			}
			if space {
				if n+1 >= previewLen {
					return b.String()
				}
				b.WriteByte(' ')
				n++
				space = false
			}
			b.WriteRune(r)
			if n++; n >= previewLen {
				return b.String()
			}
		}
	}
	return b.String()
}

// blockTags are the HTML elements that break the text flow.
var blockTags = map[string]bool{
	"address": true, "article": true, "aside": true, "blockquote": true, "br": true,
	"dd": true, "div": true, "dl": true, "dt": true, "fieldset": true, "figure": true,
	"footer": true, "form": true, "h1": true, "h2": true, "h3": true, "h4": true,
	"h5": true, "h6": true, "header": true, "hr": true, "li": true, "main": true,
	"nav": true, "ol": true, "p": true, "pre": true, "section": true, "table": true,
	"td": true, "th": true, "tr": true, "ul": true, "body": true, "html": true,
}

// HTMLToText returns the text of an HTML document or fragment: tags and
// comments removed, the contents of head, script and style left out, block
// elements turned into line breaks and character references decoded. It is
// meant for previews and search, not for display.
func HTMLToText(s string) string {
	var b strings.Builder
	b.Grow(len(s) / 2)
	noGT := false                // no '>' after this point
	noClose := map[string]bool{} // elements with no end tag after this point
	for i := 0; i < len(s); {
		c := s[i]
		if c != '<' {
			j := strings.IndexByte(s[i:], '<')
			if j < 0 {
				j = len(s) - i
			}
			b.WriteString(s[i : i+j])
			i += j
			continue
		}
		if strings.HasPrefix(s[i:], "<!--") {
			j := strings.Index(s[i+4:], "-->")
			if j < 0 {
				break
			}
			i += 4 + j + 3
			continue
		}
		k := i + 1
		if k < len(s) && s[k] == '/' {
			k++
		}
		nameStart := k
		for k < len(s) && (isAlnum(s[k])) {
			k++
		}
		name := strings.ToLower(s[nameStart:k])
		declaration := k < len(s) && (s[k] == '!' || s[k] == '?') && k == i+1
		if (name == "" && !declaration) || noGT {
			b.WriteByte('<') // not a tag: "a < b"
			i++
			continue
		}
		gt := strings.IndexByte(s[k:], '>')
		if gt < 0 {
			noGT = true
			b.WriteByte('<')
			i++
			continue
		}
		end := k + gt + 1
		closing := s[i+1] == '/'
		switch {
		case !closing && (name == "script" || name == "style" || name == "head" || name == "title"):
			if noClose[name] {
				break
			}
			j := indexFold(s[end:], "</"+name)
			if j < 0 {
				noClose[name] = true
				if name == "script" || name == "style" {
					return html.UnescapeString(b.String())
				}
				break
			}
			after := strings.IndexByte(s[end+j:], '>')
			if after < 0 {
				return html.UnescapeString(b.String())
			}
			end = end + j + after + 1
			b.WriteByte(' ')
		case blockTags[name]:
			b.WriteByte('\n')
		}
		i = end
	}
	return html.UnescapeString(b.String())
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// indexFold is strings.Index ignoring ASCII case in s; sub must be lower case.
func indexFold(s, sub string) int {
	if len(sub) == 0 {
		return 0
	}
	for i := 0; i+len(sub) <= len(s); i++ {
		j := strings.IndexAny(s[i:], sub[:1]+strings.ToUpper(sub[:1]))
		if j < 0 {
			return -1
		}
		i += j
		if i+len(sub) <= len(s) && strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

// TruncateValue cuts value to at most maxBytes octets for an EmailBodyValue
// (RFC 8621 §4.2 maxBodyValueBytes): never inside a UTF-8 sequence and, when
// isHTML, not inside a tag. maxBytes <= 0 means no limit. truncated tells
// whether anything was cut (isTruncated).
func TruncateValue(value string, maxBytes int, isHTML bool) (string, bool) {
	if maxBytes <= 0 || len(value) <= maxBytes {
		return value, false
	}
	cut := maxBytes
	for cut > 0 && !utf8.RuneStart(value[cut]) {
		cut--
	}
	if isHTML {
		if lt := strings.LastIndexByte(value[:cut], '<'); lt >= 0 && strings.IndexByte(value[lt:cut], '>') < 0 {
			cut = lt
		}
	}
	return value[:cut], true
}
