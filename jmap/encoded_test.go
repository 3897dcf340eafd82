package jmap

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"
)

// AppendString is a faster json.Marshal of a string: the bytes must be
// the same for every string, valid UTF-8 or not.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", `"quoted" \ back`, "<a href='x'>&amp;</a>", "tab\tnl\ncr\r\b\f\x00\x1f\x7f",
		"héllo wörld", "\u2028\u2029", "bad \xff\xfe utf8", "\xe2\x80", "emoji 😀", "\ufffd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("AppendString(%q) = %s, json.Marshal = %s", s, got, want)
		}
		plain, err := marshal(s) // SetEscapeHTML(false)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendString(nil, s, false); !bytes.Equal(got, bytes.TrimSuffix(plain, []byte("\n"))) {
			t.Fatalf("appendString(%q, false) = %s, marshal = %s", s, got, plain)
		}
	})
}

// EncodeGetResponse must give the bytes json.Marshal gives for the same
// response.
func TestEncodeGetResponse_MatchesMarshal(t *testing.T) {
	if n := reflect.TypeFor[GetResponse]().NumField(); n != 4 {
		t.Fatalf("GetResponse has %d fields; teach EncodeGetResponse the new ones", n)
	}
	for _, tc := range []struct {
		name string
		r    GetResponse
	}{
		{"empty", GetResponse{AccountID: "a1", State: "7", List: []json.RawMessage{}, NotFound: []string{}}},
		{"nil lists", GetResponse{AccountID: "a1", State: "7"}},
		{"items", GetResponse{AccountID: "a<1>", State: "s&1",
			List:     []json.RawMessage{json.RawMessage(`{"id":"x","n":1}`), json.RawMessage(`{"id":"y","s":"\u003c"}`)},
			NotFound: []string{"q", "#c\"1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(&tc.r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := EncodeGetResponse(&tc.r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("EncodeGetResponse = %s\njson.Marshal      = %s", got, want)
			}
			n := len(tc.r.List)
			if tc.r.List == nil {
				n = -1
			}
			items := EncodeGetResponseItems(&tc.r, n, 0, func(b []byte, i int) []byte { return append(b, tc.r.List[i]...) })
			if !bytes.Equal(items, want) {
				t.Fatalf("EncodeGetResponseItems = %s\njson.Marshal           = %s", items, want)
			}
		})
	}
}

// A handler's Encoded answer goes on the wire as it is, as the arguments
// of its response.
func TestExecute_EncodedAnswer(t *testing.T) {
	reg := NewRegistry(nil, nil, DefaultLimits())
	reg.Handle("Test/enc", CapCore, func(context.Context, *Call) (any, error) {
		return Encoded(`{"list":[{"id":"a"}],"s":"\u003c"}`), nil
	})
	req := &Request{Using: []string{CapCore}, MethodCalls: []Invocation{{Name: "Test/enc", Args: json.RawMessage(`{}`), CallID: "c0"}}}
	resp := reg.Execute(context.Background(), &Caller{Principal: "p"}, req, "s0")
	if len(resp.MethodResponses) != 1 {
		t.Fatalf("responses: %+v", resp.MethodResponses)
	}
	if got := string(resp.MethodResponses[0].Args); got != `{"list":[{"id":"a"}],"s":"\u003c"}` {
		t.Fatalf("args = %s", got)
	}
	b, err := encodeResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	want, err := marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("encodeResponse = %s, marshal = %s", b, want)
	}
}
