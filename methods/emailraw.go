package methods

import "bytes"

// A list view asks for the stored properties of fifty emails, and for the
// account's owner the stored record already holds each of them as the
// answer must write it: marshalEmail is json.Marshal, which encodes a
// record's fields as it encodes the same values in an Email/get answer.
// rawEmail keeps a record's bytes with the place of each member's value,
// and appendRawEmailProps copies the values asked for, so that the record
// is neither decoded nor encoded again. A grantee's answer depends on
// their rights (mailboxIds shows only mailboxes they may see), so theirs
// goes through emailRecord.

// rawEmail is a stored email record with where the value of each of its
// top-level members lies.
type rawEmail struct {
	b []byte
	// at holds, per index of recordFields, the value's start and end in
	// b; an end of 0 means the member is absent.
	at [numRecordFields][2]int32
}

// numRecordFields is len(recordFields).
const numRecordFields = 21

// recordFieldIndex numbers the members of a record (recordFields).
var recordFieldIndex = func() map[string]int {
	m := make(map[string]int, len(recordFields))
	for i, f := range recordFields {
		m[f] = i
	}
	return m
}()

// scanRawEmail finds the members of the record b. It reports false for
// anything but an object in the compact form json.Marshal writes, of
// known, distinct member names, with every member but the optional "left";
// the caller then decodes the record instead. r keeps b.
func scanRawEmail(b []byte, r *rawEmail) bool {
	*r = rawEmail{b: b}
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' || len(b) > 1<<30 {
		return false
	}
	next := 0
	for i := 1; ; {
		end, ok := skipString(b, i)
		if !ok || end >= len(b) || b[end] != ':' {
			return false
		}
		name := b[i+1 : end-1]
		// json.Marshal writes the members in the order of the struct's
		// fields: the next one is most likely the field after the last.
		f := next
		if f >= len(recordFields) || string(name) != recordFields[f] {
			var known bool
			if f, known = recordFieldIndex[string(name)]; !known {
				return false
			}
		}
		if r.at[f][1] != 0 {
			return false
		}
		next = f + 1
		start := end + 1
		if end, ok = skipValue(b, start); !ok || end >= len(b) {
			return false
		}
		r.at[f] = [2]int32{int32(start), int32(end)}
		switch b[end] {
		case ',':
			i = end + 1
		case '}':
			if end != len(b)-1 {
				return false
			}
			for f := range recordFields {
				if r.at[f][1] == 0 && recordFields[f] != "left" {
					return false
				}
			}
			return true
		default:
			return false
		}
	}
}

// stringStop marks the octets a scan of a string's content stops at: its
// closing quote, an escape, or a control character, which JSON forbids
// unescaped.
var stringStop = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// skipString returns the index after the JSON string that starts at b[i].
func skipString(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	for j := i + 1; j < len(b); j++ {
		c := b[j]
		if !stringStop[c] {
			continue
		}
		switch {
		case c == '"':
			return j + 1, true
		case c == '\\':
			n := escapeLen(b[j:])
			if n == 0 {
				return 0, false
			}
			j += n - 1
		default:
			return 0, false
		}
	}
	return 0, false
}

// escapeLen returns the length of the JSON escape at the start of b, or 0
// when it is none.
func escapeLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	switch b[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
		if len(b) < 6 {
			return 0
		}
		for _, c := range b[2:6] {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return 0
			}
		}
		return 6
	}
	return 0
}

// skipValue returns the index after the compact JSON value (no white
// space) that starts at b[i], checking its grammar on the way.
func skipValue(b []byte, i int) (int, bool) { return skipNested(b, i, 0) }

// maxRecordDepth bounds the nesting skipNested follows; a record nests
// three deep.
const maxRecordDepth = 8

func skipNested(b []byte, i, depth int) (int, bool) {
	if i >= len(b) || depth > maxRecordDepth {
		return 0, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		obj, closing := b[i] == '{', byte(']')
		if obj {
			closing = '}'
		}
		j := i + 1
		if j < len(b) && b[j] == closing {
			return j + 1, true
		}
		for {
			var ok bool
			if obj {
				if j, ok = skipString(b, j); !ok || j >= len(b) || b[j] != ':' {
					return 0, false
				}
				j++
			}
			if j, ok = skipNested(b, j, depth+1); !ok || j >= len(b) {
				return 0, false
			}
			switch b[j] {
			case ',':
				j++
			case closing:
				return j + 1, true
			default:
				return 0, false
			}
		}
	}
	for _, lit := range []string{"true", "false", "null"} {
		if bytes.HasPrefix(b[i:], []byte(lit)) {
			return i + len(lit), true
		}
	}
	return skipNumber(b, i)
}

// skipNumber returns the index after the JSON number at b[i].
func skipNumber(b []byte, i int) (int, bool) {
	digits := func(j int) int {
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
		return j
	}
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch k := digits(j); {
	case k == j:
		return 0, false
	case b[j] == '0' && k > j+1:
		return 0, false
	default:
		j = k
	}
	if j < len(b) && b[j] == '.' {
		k := digits(j + 1)
		if k == j+1 {
			return 0, false
		}
		j = k
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		k := digits(j)
		if k == j {
			return 0, false
		}
		j = k
	}
	return j, true
}

// appendRawEmailProps appends the properties sorted (from sortedProps),
// all of them stored ones (storedEmailProps), of the record r that
// scanRawEmail read, as appendEmailProps does for the decoded record.
func appendRawEmailProps(out []byte, r *rawEmail, sorted []string) []byte {
	out = append(out, '{')
	for i, p := range sorted {
		f := recordFieldIndex[p]
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, '"')
		out = append(out, p...)
		out = append(out, '"', ':')
		v := r.b[r.at[f][0]:r.at[f][1]]
		if (p == "mailboxIds" || p == "keywords") && string(v) == "null" {
			// The answer always has an object (emailRecord.property).
			v = []byte("{}")
		}
		out = append(out, v...)
	}
	return append(out, '}')
}
