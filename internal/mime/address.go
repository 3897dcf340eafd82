package mime

import (
	"strings"

	"golang.org/x/text/unicode/norm"
)

// Address is an EmailAddress (RFC 8621 §4.1.2.3).
type Address struct {
	Name  *string `json:"name"`
	Email string  `json:"email"`
}

// AddressGroup is an EmailAddressGroup (RFC 8621 §4.1.2.4).
type AddressGroup struct {
	Name      *string   `json:"name"`
	Addresses []Address `json:"addresses"`
}

// AsAddresses returns the Addresses form of a header value (RFC 8621
// §4.1.2.3): every mailbox of the address-list, groups flattened. Parsing is
// best-effort and never fails; an empty list gives an empty, non-nil slice.
func AsAddresses(v string) []Address {
	out := []Address{}
	for _, g := range parseAddressList(v) {
		out = append(out, g.Addresses...)
	}
	return out
}

// AsGroupedAddresses returns the GroupedAddresses form of a header value
// (RFC 8621 §4.1.2.4): consecutive mailboxes outside a group are collected in
// a group with a null name. An empty list gives an empty, non-nil slice.
func AsGroupedAddresses(v string) []AddressGroup {
	return parseAddressList(v)
}

// tokKind is the kind of an address-list token.
type tokKind uint8

const (
	tokAtom    tokKind = iota // atom, dot-atom, domain-literal or stray character
	tokQuoted                 // quoted-string, text without the quotes
	tokComment                // comment, text without the parentheses
	tokAngle                  // angle-addr, text between < and >
	tokSpecial                // one of , : ; @
)

// addrToken is one lexical token of an address-list. space tells that white
// space or a comment came before it.
type addrToken struct {
	text  string
	kind  tokKind
	space bool
}

// lexAddressList splits an unfolded address-list into tokens.
func lexAddressList(s string) []addrToken {
	var toks []addrToken
	space := false
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case isWSP(c):
			space = true
			i++
			continue
		case c == '(':
			var txt string
			txt, i = comment(s, i)
			toks = append(toks, addrToken{kind: tokComment, text: txt, space: space})
			space = true
			continue
		case c == '"':
			var txt string
			txt, i = quotedString(s, i)
			toks = append(toks, addrToken{kind: tokQuoted, text: txt, space: space})
		case c == '<':
			j := i + 1
			for j < len(s) && s[j] != '>' {
				if s[j] == '"' {
					_, j = quotedString(s, j)
					continue
				}
				j++
			}
			toks = append(toks, addrToken{kind: tokAngle, text: s[i+1 : min(j, len(s))], space: space})
			i = min(j+1, len(s))
		case c == ',' || c == ':' || c == ';' || c == '@':
			toks = append(toks, addrToken{kind: tokSpecial, text: s[i : i+1], space: space})
			i++
		default:
			j := i + 1
			if c == '[' {
				for j < len(s) && s[j] != ']' {
					j++
				}
				j = min(j+1, len(s))
			} else {
				for j < len(s) && !isWSP(s[j]) && !strings.ContainsRune("()\"<,:;@[", rune(s[j])) {
					j++
				}
			}
			toks = append(toks, addrToken{kind: tokAtom, text: s[i:j], space: space})
			i = j
		}
		space = false
	}
	return toks
}

// parseAddressList parses an address-list (RFC 5322 §3.4) best-effort.
func parseAddressList(v string) []AddressGroup {
	toks := lexAddressList(cleanUTF8(unfold(v)))
	groups := []AddressGroup{}
	var (
		loose   []Address
		group   AddressGroup
		inGroup bool
		start   int // the current item is toks[start:i]
	)
	finishItem := func(end int) {
		if a, ok := mailbox(toks[start:end]); ok {
			if inGroup {
				group.Addresses = append(group.Addresses, a)
			} else {
				loose = append(loose, a)
			}
		}
		start = end + 1
	}
	flushLoose := func() {
		if len(loose) > 0 {
			groups = append(groups, AddressGroup{Addresses: loose})
			loose = nil
		}
	}
	for i, t := range toks {
		if t.kind != tokSpecial {
			continue
		}
		switch {
		case t.text == ",":
			finishItem(i)
		case t.text == ":" && !inGroup && !hasAddr(toks[start:i]):
			flushLoose()
			group = AddressGroup{Name: phrase(toks[start:i]), Addresses: []Address{}}
			inGroup = true
			start = i + 1
		case t.text == ";":
			finishItem(i)
			if inGroup {
				groups = append(groups, group)
				inGroup = false
			}
		}
	}
	finishItem(len(toks))
	if inGroup {
		groups = append(groups, group)
	}
	flushLoose()
	return groups
}

// hasAddr reports whether toks already hold an address (an angle-addr or an
// "@"), so that a colon cannot start a group.
func hasAddr(toks []addrToken) bool {
	for _, t := range toks {
		if t.kind == tokAngle || t.kind == tokSpecial && t.text == "@" {
			return true
		}
	}
	return false
}

// mailbox builds an Address from the tokens of one list item. ok is false for
// an empty item.
func mailbox(toks []addrToken) (Address, bool) {
	for i, t := range toks {
		if t.kind == tokAngle {
			name := phrase(toks[:i])
			if name == nil {
				name = firstComment(toks[i+1:])
			}
			return Address{Name: name, Email: angleAddr(t.text)}, true
		}
	}
	// A bare addr-spec: the run of tokens without white space around the
	// first "@". Words before it are taken as a display name, a comment after
	// it as the name when there is none (RFC 8621 §4.1.2.3).
	start, end := 0, len(toks)
	at := -1
	for i, t := range toks {
		if t.kind == tokSpecial && t.text == "@" {
			at = i
			break
		}
	}
	if at >= 0 {
		// The words next to the "@" belong to it even across white space
		// (RFC 5322 §4.4 allows CFWS there); further words only when
		// written without.
		start, end = at, at+1
		if start > 0 && toks[start-1].kind == tokAtom || start > 0 && toks[start-1].kind == tokQuoted {
			start--
		}
		for start > 0 && !toks[start].space && toks[start-1].kind != tokComment {
			start--
		}
		if end < len(toks) && toks[end].kind == tokAtom {
			end++
		}
		for end < len(toks) && !toks[end].space && toks[end].kind != tokComment {
			end++
		}
	}
	var email strings.Builder
	for _, t := range toks[start:end] {
		switch t.kind {
		case tokComment:
		case tokQuoted:
			email.WriteString(`"` + quotePair.Replace(t.text) + `"`)
		default:
			if email.Len() > 0 && t.space && at < 0 {
				email.WriteByte(' ')
			}
			email.WriteString(t.text)
		}
	}
	if email.Len() == 0 {
		return Address{}, false
	}
	name := phrase(toks[:start])
	if name == nil {
		name = firstComment(toks[start:])
	}
	return Address{Name: name, Email: email.String()}, true
}

// quotePair escapes the text of a quoted-string (RFC 5322 §3.2.4).
var quotePair = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

// angleAddr returns the addr-spec inside an angle-addr, without an obsolete
// route (RFC 5322 §4.4) and without white space or comments.
func angleAddr(s string) string {
	if strings.HasPrefix(strings.TrimLeft(s, " \t"), "@") {
		if k := strings.IndexByte(s, ':'); k >= 0 {
			s = s[k+1:]
		}
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '(':
			i = skipComment(s, i) - 1
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, len(s))
			b.WriteString(s[i:j])
			i = j - 1
		case isWSP(c):
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// phrase returns the display-name made of toks (RFC 8621 §4.1.2.3): quoted
// strings unquoted, comments dropped, words joined as they were spaced,
// encoded-words decoded, trimmed, NFC; nil when empty.
func phrase(toks []addrToken) *string {
	var b strings.Builder
	for _, t := range toks {
		if t.kind == tokComment {
			continue
		}
		if b.Len() > 0 && t.space {
			b.WriteByte(' ')
		}
		b.WriteString(t.text)
	}
	return nameValue(b.String())
}

// firstComment returns the first comment in toks as a name, or nil.
func firstComment(toks []addrToken) *string {
	for _, t := range toks {
		if t.kind == tokComment {
			return nameValue(t.text)
		}
	}
	return nil
}

// nameValue decodes and trims a display name; nil when nothing is left.
func nameValue(s string) *string {
	s = strings.Trim(decodeWords(strings.Trim(s, " \t")), " \t")
	if s == "" {
		return nil
	}
	s = norm.NFC.String(s)
	return &s
}
