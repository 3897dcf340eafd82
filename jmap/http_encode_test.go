package jmap

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"
)

// encodeResponse must give exactly the bytes of marshal: it is only a
// faster way to write the same answer.
func TestEncodeResponse_MatchesMarshal(t *testing.T) {
	// The hand-written encoder knows Response's fields; a new field must
	// be added to it too.
	if n := reflect.TypeFor[Response]().NumField(); n != 3 {
		t.Fatalf("Response has %d fields; teach encodeResponse the new ones", n)
	}
	echo := func(_ context.Context, c *Call) (any, error) { return json.RawMessage(c.Args), nil }
	reg := NewRegistry(nil, nil, DefaultLimits())
	reg.Handle("Test/echo", CapCore, echo)
	executed := reg.Execute(context.Background(), &Caller{Principal: "p1", Username: "u"}, &Request{
		Using: []string{CapCore},
		MethodCalls: []Invocation{
			{Name: "Test/echo", Args: json.RawMessage(" {\"a\": \"<&>\u2028\", \"b\" : [1, 2]}\n"), CallID: "c<1>"},
			{Name: "Test/nope", Args: json.RawMessage(`{}`), CallID: "c&2"},
		},
		CreatedIDs: map[string]string{"k<": "v&", "a": "b"},
	}, "s&1")
	for _, tc := range []struct {
		name string
		resp *Response
	}{
		{"executed", executed},
		{"empty", &Response{MethodResponses: []Invocation{}, SessionState: "0"}},
		{"nil responses and ids", &Response{}},
		{"nil and empty args", &Response{MethodResponses: []Invocation{{Name: "x"}, {Name: "y", Args: json.RawMessage(`{}`)}}}},
		{"escapes", &Response{
			MethodResponses: []Invocation{{Name: "a\"\\\x01\u2029<b>", Args: json.RawMessage(`{"x":"\u003c"}`), CallID: "\xff&"}},
			CreatedIDs:      &map[string]string{"<&>\u2028": "\x7f\"", "": ""},
			SessionState:    "<\u2028&\xfe>",
		}},
		{"empty created ids", &Response{MethodResponses: []Invocation{}, CreatedIDs: &map[string]string{}, SessionState: "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := marshal(tc.resp)
			if err != nil {
				t.Fatal(err)
			}
			got, err := encodeResponse(tc.resp)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("encodeResponse:\n got %q\nwant %q", got, want)
			}
		})
	}
	// Arguments that are not JSON fail, as they do in marshal.
	bad := &Response{MethodResponses: []Invocation{{Name: "x", Args: json.RawMessage{}}}}
	if _, err := marshal(bad); err == nil {
		t.Fatal("marshal accepted empty arguments")
	}
	if _, err := encodeResponse(bad); err == nil {
		t.Error("encodeResponse accepted empty arguments")
	}
}

// Arguments without a "#" member are passed on untouched, as
// resolveReferences returns them.
func TestMayHaveReferences(t *testing.T) {
	for _, tc := range []struct {
		args string
		want bool
	}{
		{`{"accountId":"a","ids":["x"]}`, false},
		{`{"#ids":{"resultOf":"c0","name":"Foo/query","path":"/ids"}}`, true},
		{`{"\u0023ids":{"resultOf":"c0","name":"Foo/query","path":"/ids"}}`, true},
		{`{"ids":["#new"]}`, true}, // a creation id: decoded, and left alone
	} {
		if got := mayHaveReferences(json.RawMessage(tc.args)); got != tc.want {
			t.Errorf("mayHaveReferences(%s) = %v, want %v", tc.args, got, tc.want)
		}
		if !tc.want {
			out, merr := resolveReferences(json.RawMessage(tc.args), nil)
			if merr != nil || string(out) != tc.args {
				t.Errorf("resolveReferences(%s) = %s, %v; want it unchanged", tc.args, out, merr)
			}
		}
	}
}
