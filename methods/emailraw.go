package methods

import "github.com/jmapd/jmapd/jmap"

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
		end, ok := jmap.SkipString(b, i)
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
		if end, ok = jmap.SkipValue(b, start); !ok || end >= len(b) {
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
