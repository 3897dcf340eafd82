package mime

import (
	"strconv"
	"strings"
)

// maxParams bounds the parameters read from one header value.
const maxParams = 100

// parseParamHeader parses a Content-Type or Content-Disposition value
// (RFC 2045 §5.1, RFC 2183 §2) best-effort into its lower-cased value, CFWS
// removed, and its parameters keyed by lower-cased name. RFC 2231 extended
// and continued parameters are joined and decoded; an extended parameter
// wins over a plain one of the same name (RFC 2231 §4).
func parseParamHeader(v string) (string, map[string]string) {
	s := unfold(v)
	i := 0
	// The value is one token (or type "/" subtype, CFWS allowed around the
	// slash); anything after it up to the first ";" is dropped, so that
	// "text/plain charset=x" still reads as text/plain.
	var val strings.Builder
	done := false
	for i < len(s) && s[i] != ';' {
		switch c := s[i]; {
		case c == '(':
			i = skipComment(s, i)
			continue
		case c == '"':
			q, n := quotedString(s, i)
			if !done {
				val.WriteString(q)
			}
			i = n
			continue
		case isWSP(c):
			j := i
			for j < len(s) && (isWSP(s[j]) || s[j] == '(') {
				if s[j] == '(' {
					j = skipComment(s, j)
					continue
				}
				j++
			}
			if val.Len() > 0 && !strings.HasSuffix(val.String(), "/") && (j >= len(s) || s[j] != '/') {
				done = true
			}
			i = j
			continue
		case !done:
			val.WriteByte(c)
		}
		i++
	}
	value := strings.ToLower(val.String())

	type segment struct {
		value   string
		encoded bool
		ok      bool
	}
	var (
		params   map[string]string
		extended map[string][]segment
	)
	for n := 0; i < len(s) && n < maxParams; n++ {
		i++ // the ';'
		var name strings.Builder
		for i < len(s) && s[i] != '=' && s[i] != ';' {
			if s[i] == '(' {
				i = skipComment(s, i)
				continue
			}
			if !isWSP(s[i]) {
				name.WriteByte(s[i])
			}
			i++
		}
		if i >= len(s) || s[i] == ';' {
			continue // no value
		}
		i++ // the '='
		var pv strings.Builder
		quoted := false
		for i < len(s) && s[i] != ';' {
			switch c := s[i]; {
			case c == '(':
				i = skipComment(s, i)
				continue
			case c == '"' && !quoted && strings.TrimSpace(pv.String()) == "":
				q, n := quotedString(s, i)
				pv.Reset()
				pv.WriteString(q)
				i, quoted = n, true
				continue
			case !quoted:
				pv.WriteByte(c)
			}
			i++
		}
		pval := pv.String()
		if !quoted {
			pval = strings.Trim(pval, " \t")
		}
		key := strings.ToLower(name.String())
		if key == "" {
			continue
		}
		if star := strings.IndexByte(key, '*'); star >= 0 {
			// RFC 2231 §3, §4: name*, name*0, name*0*, name*1, ...
			base, suffix := key[:star], key[star+1:]
			encoded := strings.HasSuffix(suffix, "*") || suffix == ""
			suffix = strings.TrimSuffix(suffix, "*")
			idx := 0
			if suffix != "" {
				n, err := strconv.Atoi(suffix)
				if err != nil || n < 0 || n >= maxParams {
					continue
				}
				idx = n
			}
			if base == "" {
				continue
			}
			if extended == nil {
				extended = map[string][]segment{}
			}
			segs := extended[base]
			for len(segs) <= idx {
				segs = append(segs, segment{})
			}
			segs[idx] = segment{value: pval, encoded: encoded, ok: true}
			extended[base] = segs
			continue
		}
		if params == nil {
			params = map[string]string{}
		}
		if _, dup := params[key]; !dup {
			params[key] = pval
		}
	}
	for base, segs := range extended {
		var raw []byte
		cs := ""
		for k, seg := range segs {
			if !seg.ok {
				break // RFC 2231 §3: continuations are numbered without gaps
			}
			v := seg.value
			if seg.encoded {
				if k == 0 {
					// charset'language'octets (RFC 2231 §4)
					if a := strings.IndexByte(v, '\''); a >= 0 {
						if b := strings.IndexByte(v[a+1:], '\''); b >= 0 {
							cs, v = v[:a], v[a+1+b+1:]
						}
					}
				}
				raw = append(raw, percentDecode(v)...)
			} else {
				raw = append(raw, v...)
			}
		}
		if len(segs) == 0 || !segs[0].ok {
			continue
		}
		if params == nil {
			params = map[string]string{}
		}
		decoded, _, _ := decodeCharset(raw, cs)
		params[base] = decoded
	}
	return value, params
}

// percentDecode decodes the %XX escapes of RFC 2231 §4; a malformed escape is
// kept literally.
func percentDecode(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		out = append(out, s[i])
	}
	return out
}

// skipComment returns the index after the RFC 5322 comment that starts at
// s[i] == '(', honouring nesting and quoted-pairs; len(s) when unterminated.
func skipComment(s string, i int) int {
	_, n := comment(s, i)
	return n
}

// comment returns the text of the comment starting at s[i] == '(' (nested
// comments included with their parentheses, quoted-pairs decoded) and the
// index after it.
func comment(s string, i int) (string, int) {
	var b strings.Builder
	depth := 0
	for ; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
			continue
		case '(':
			depth++
			if depth == 1 {
				continue
			}
		case ')':
			depth--
			if depth == 0 {
				return b.String(), i + 1
			}
		}
		b.WriteByte(c)
	}
	return b.String(), len(s)
}

// quotedString returns the content of the quoted-string starting at
// s[i] == '"' with quoted-pairs decoded, and the index after it; an
// unterminated string runs to the end of s.
func quotedString(s string, i int) (string, int) {
	var b strings.Builder
	for i++; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), i + 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), len(s)
}
