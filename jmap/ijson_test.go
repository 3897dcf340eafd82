package jmap

import "testing"

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
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkIJSON([]byte(tc.in)); (err == nil) != tc.ok {
				t.Errorf("checkIJSON(%s) = %v, want ok=%v", tc.in, err, tc.ok)
			}
		})
	}
}
