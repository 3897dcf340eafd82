package jmap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// RFC 7493 §2.3 via RFC 8620 §3.6.1: duplicate member names are not I-JSON.
func TestCheckIJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"plain", `{"a":1,"b":[{"a":2},{"a":3}],"c":{"a":{"b":null}}}`, true},
		{"same name at different depths", `{"a":{"a":{"a":1}}}`, true},
		{"top-level duplicate", `{"using":[],"using":[]}`, false},
		{"nested duplicate", `{"a":[1,{"x":1,"y":2,"x":3}]}`, false},
		{"duplicate after nested object", `{"a":{"b":1},"a":2}`, false},
		{"names after arrays", `{"a":[1,2],"b":[3],"c":4}`, true},
		{"scalar", `"str"`, true},
		{"escaped duplicate", `{"a":1,"\u0061":2}`, false},
		{"escaped quote in a name", `{"a\"b":1,"a\"c":2}`, true},
		{"string values are not names", `{"a":"a","b":["a","a"]}`, true},
		{"colon and comma inside strings", `{"x":"a,\"b\":1","b":2}`, true},
		{"many members", `{` + manyMembers(40, false) + `}`, true},
		{"many members with a duplicate", `{` + manyMembers(40, true) + `}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkIJSON([]byte(tc.in)); (err == nil) != tc.ok {
				t.Errorf("checkIJSON(%s) = %v, want ok=%v", tc.in, err, tc.ok)
			}
		})
	}
}

// manyMembers writes n members "m0".."mN-1", repeating the first at the
// end when dup.
func manyMembers(n int, dup bool) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"m%d":%d`, i, i)
	}
	if dup {
		b.WriteString(`,"m0":0`)
	}
	return b.String()
}

// referenceIJSON is the first, slower implementation of checkIJSON: a walk
// over json.Decoder tokens. FuzzCheckIJSON holds the fast scanner to it.
func referenceIJSON(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // as the first implementation: numbers are not converted
	var stack []map[string]bool
	expectKey := false
	for {
		tok, err := dec.Token()
		if err != nil {
			return err == io.EOF
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{':
				stack = append(stack, map[string]bool{})
				expectKey = true
			case '[':
				stack = append(stack, nil)
				expectKey = false
			case '}', ']':
				stack = stack[:len(stack)-1]
				expectKey = len(stack) > 0 && stack[len(stack)-1] != nil
			}
			continue
		}
		if expectKey {
			name, _ := tok.(string)
			if stack[len(stack)-1][name] {
				return false
			}
			stack[len(stack)-1][name] = true
			expectKey = false
			continue
		}
		expectKey = len(stack) > 0 && stack[len(stack)-1] != nil
	}
}

func FuzzCheckIJSON(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"a":{"a":1},"b":[{"a":1,"b":2}]}`, `{"\u0061":1,"a":2}`,
		`[{"x":"y,\"x\":1"}]`, `{"using":[],"methodCalls":[["Core/echo",{"a":1},"c"]]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// DecodeRequest calls checkIJSON only on valid UTF-8 JSON.
		if !utf8.Valid(b) || !json.Valid(b) {
			return
		}
		if got, want := checkIJSON(b) == nil, referenceIJSON(b); got != want {
			t.Fatalf("checkIJSON(%q) ok=%v, reference ok=%v", b, got, want)
		}
	})
}
