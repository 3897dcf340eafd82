package jmap

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
)

func TestOrderedObjects(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		keys    []string
		values  map[string]string // member -> raw JSON
		isNil   bool              // Values stays nil (null input)
		wantErr bool
	}{
		{
			name:   "keeps member order",
			in:     `{"k3":{"name":"c"},"k1":{"name":"a"},"k2":{"name":"b"}}`,
			keys:   []string{"k3", "k1", "k2"},
			values: map[string]string{"k3": `{"name":"c"}`, "k1": `{"name":"a"}`, "k2": `{"name":"b"}`},
		},
		{
			// RFC 8620 §5.3: a later creation may refer to an earlier one.
			name:   "order of a parent and its child",
			in:     `{"child":{"parentId":"#parent"},"parent":{"parentId":null}}`,
			keys:   []string{"child", "parent"},
			values: map[string]string{"child": `{"parentId":"#parent"}`, "parent": `{"parentId":null}`},
		},
		{
			name:   "values of any kind are kept raw",
			in:     `{ "a" : [1, 2] , "b":null,"c":"s","d":1.5e3 }`,
			keys:   []string{"a", "b", "c", "d"},
			values: map[string]string{"a": `[1, 2]`, "b": `null`, "c": `"s"`, "d": `1.5e3`},
		},
		{
			name:   "a duplicate keeps its first place and its last value",
			in:     `{"a":1,"b":2,"a":3}`,
			keys:   []string{"a", "b"},
			values: map[string]string{"a": `3`, "b": `2`},
		},
		{
			name:   "escaped member names",
			in:     `{"\u0041":1,"a\"b":2}`,
			keys:   []string{"A", `a"b`},
			values: map[string]string{"A": `1`, `a"b`: `2`},
		},
		{name: "empty object", in: `{}`, keys: nil, values: map[string]string{}},
		{name: "null", in: `null`, isNil: true},
		{name: "an array", in: `[{"a":1}]`, wantErr: true},
		{name: "a string", in: `"create"`, wantErr: true},
		{name: "a number", in: `1`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var o OrderedObjects
			err := json.Unmarshal([]byte(tc.in), &o)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Unmarshal(%s) = %+v, want an error", tc.in, o)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", tc.in, err)
			}
			if tc.isNil {
				if o.Values != nil || o.Keys != nil {
					t.Fatalf("null gave %+v, want the zero value", o)
				}
				return
			}
			if !slices.Equal(o.Keys, tc.keys) {
				t.Errorf("keys = %q, want %q", o.Keys, tc.keys)
			}
			if o.Values == nil || len(o.Values) != len(tc.values) {
				t.Fatalf("values = %v, want %v", o.Values, tc.values)
			}
			for k, want := range tc.values {
				if got := string(o.Values[k]); got != want {
					t.Errorf("value of %q = %s, want %s", k, got, want)
				}
			}
		})
	}
}

// Inside SetArgs, "create" keeps the client's order and an absent or null
// create is empty.
func TestSetArgs_CreateOrder(t *testing.T) {
	tests := []struct {
		name string
		in   string
		keys []string
	}{
		{"ordered", `{"accountId":"A1","create":{"z":{},"a":{},"m":{}}}`, []string{"z", "a", "m"}},
		{"null", `{"accountId":"A1","create":null}`, nil},
		{"absent", `{"accountId":"A1"}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var args SetArgs
			if err := json.Unmarshal([]byte(tc.in), &args); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if !slices.Equal(args.Create.Keys, tc.keys) {
				t.Errorf("create keys = %q, want %q", args.Create.Keys, tc.keys)
			}
		})
	}
}

// FuzzOrderedObjects holds the scanner's reading of a create map to
// encoding/json's: the same keys in the same order, the same values.
func FuzzOrderedObjects(f *testing.F) {
	f.Add([]byte(`{"a":{"x":1},"b":[true,null],"a":"again"}`))
	f.Add([]byte(" { \"k\\u00e9\" : { \"n\" : -1.5e3 } , \"\xff\" : \"v\" } "))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		var got, want OrderedObjects
		gerr := got.UnmarshalJSON(b)
		werr := want.decode(b)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("%q: error %v, encoding/json %v", b, gerr, werr)
		}
		if gerr != nil {
			return
		}
		if !slices.Equal(got.Keys, want.Keys) || len(got.Values) != len(want.Values) {
			t.Fatalf("%q: keys %q, encoding/json %q", b, got.Keys, want.Keys)
		}
		for k, v := range want.Values {
			if !bytes.Equal(got.Values[k], v) {
				t.Fatalf("%q: %q = %q, encoding/json %q", b, k, got.Values[k], v)
			}
		}
	})
}
