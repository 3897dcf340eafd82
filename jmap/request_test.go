package jmap

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

const capMailTest = "urn:ietf:params:jmap:mail"

// knownTestCaps is the capability set the request tests run against.
func knownTestCaps(u string) bool { return u == CapCore || u == capMailTest }

// testLimits are DefaultLimits with small request limits so the limit cases
// stay readable.
func testLimits() Limits {
	lim := DefaultLimits()
	lim.MaxCallsInRequest = 3
	lim.MaxSizeRequest = 1000
	return lim
}

// manyCalls returns a request body with n trivial method calls.
func manyCalls(n int) string {
	calls := make([]string, n)
	for i := range calls {
		calls[i] = `["Core/echo",{},"c` + string(rune('a'+i%26)) + `"]`
	}
	return `{"using":["urn:ietf:params:jmap:core"],"methodCalls":[` + strings.Join(calls, ",") + `]}`
}

// wantProblem checks that err is a *Problem of type typ (and limit, when
// typ is ProblemLimit).
func wantProblem(t *testing.T, err error, typ ErrorType, limit string) *Problem {
	t.Helper()
	var p *Problem
	if !errors.As(err, &p) {
		t.Fatalf("error = %v (%T), want a *Problem of type %s", err, err, typ)
	}
	if p.Type != typ {
		t.Fatalf("problem type = %s, want %s (detail %q)", p.Type, typ, p.Detail)
	}
	if p.Limit != limit {
		t.Errorf("problem limit = %q, want %q", p.Limit, limit)
	}
	if p.Status < 400 || p.Status > 499 {
		t.Errorf("problem status = %d, want a 4xx status", p.Status)
	}
	return p
}

func TestDecodeRequest(t *testing.T) {
	rfcExample := `{
  "using": [ "urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail" ],
  "methodCalls": [
    [ "method1", {
      "arg1": "arg1data",
      "arg2": "arg2data"
    }, "c1" ],
    [ "method2", {
      "arg1": "arg1data"
    }, "c2" ],
    [ "method3", {}, "c3" ]
  ]
}`
	tests := []struct {
		name  string
		body  string
		want  *Request // checked when typ is empty
		typ   ErrorType
		limit string
	}{
		{
			name: "RFC 8620 §3.3.1 example",
			body: rfcExample,
			want: &Request{
				Using: []string{CapCore, capMailTest},
				MethodCalls: []Invocation{
					{Name: "method1", Args: json.RawMessage(`{
      "arg1": "arg1data",
      "arg2": "arg2data"
    }`), CallID: "c1"},
					{Name: "method2", Args: json.RawMessage(`{
      "arg1": "arg1data"
    }`), CallID: "c2"},
					{Name: "method3", Args: json.RawMessage(`{}`), CallID: "c3"},
				},
			},
		},
		{
			name: "empty using and methodCalls",
			body: `{"using":[],"methodCalls":[]}`,
			want: &Request{Using: []string{}, MethodCalls: []Invocation{}},
		},
		{
			name: "createdIds",
			body: `{"using":["urn:ietf:params:jmap:core"],"methodCalls":[],"createdIds":{"k1":"M123","k2":"M456"}}`,
			want: &Request{Using: []string{CapCore}, MethodCalls: []Invocation{},
				CreatedIDs: map[string]string{"k1": "M123", "k2": "M456"}},
		},
		{
			name: "createdIds null is absent",
			body: `{"using":["urn:ietf:params:jmap:core"],"methodCalls":[],"createdIds":null}`,
			want: &Request{Using: []string{CapCore}, MethodCalls: []Invocation{}},
		},
		{
			name: "empty createdIds is kept",
			body: `{"using":["urn:ietf:params:jmap:core"],"methodCalls":[],"createdIds":{}}`,
			want: &Request{Using: []string{CapCore}, MethodCalls: []Invocation{}, CreatedIDs: map[string]string{}},
		},
		{
			name: "unknown top-level members are ignored",
			body: `{"using":["urn:ietf:params:jmap:core"],"methodCalls":[],"extra":1}`,
			want: &Request{Using: []string{CapCore}, MethodCalls: []Invocation{}},
		},
		{
			name: "calls at the limit",
			body: manyCalls(3),
			want: &Request{Using: []string{CapCore}, MethodCalls: []Invocation{
				{Name: "Core/echo", Args: json.RawMessage(`{}`), CallID: "ca"},
				{Name: "Core/echo", Args: json.RawMessage(`{}`), CallID: "cb"},
				{Name: "Core/echo", Args: json.RawMessage(`{}`), CallID: "cc"},
			}},
		},
		{name: "empty body is notJSON", body: ``, typ: ProblemNotJSON},
		{name: "garbage is notJSON", body: `using: core`, typ: ProblemNotJSON},
		{name: "truncated object is notJSON", body: `{"using":[`, typ: ProblemNotJSON},
		{name: "trailing data is notJSON", body: `{"using":[],"methodCalls":[]} {}`, typ: ProblemNotJSON},
		{name: "array is notRequest", body: `[]`, typ: ProblemNotRequest},
		{name: "string is notRequest", body: `"request"`, typ: ProblemNotRequest},
		{name: "number is notRequest", body: `42`, typ: ProblemNotRequest},
		{name: "null is notRequest", body: `null`, typ: ProblemNotRequest},
		{name: "missing using", body: `{"methodCalls":[]}`, typ: ProblemNotRequest},
		{name: "using null", body: `{"using":null,"methodCalls":[]}`, typ: ProblemNotRequest},
		{name: "using a string", body: `{"using":"urn:ietf:params:jmap:core","methodCalls":[]}`, typ: ProblemNotRequest},
		{name: "using holds a number", body: `{"using":[1],"methodCalls":[]}`, typ: ProblemNotRequest},
		{name: "using holds null", body: `{"using":[null],"methodCalls":[]}`, typ: ProblemNotRequest},
		{name: "missing methodCalls", body: `{"using":[]}`, typ: ProblemNotRequest},
		{name: "methodCalls null", body: `{"using":[],"methodCalls":null}`, typ: ProblemNotRequest},
		{name: "methodCalls an object", body: `{"using":[],"methodCalls":{}}`, typ: ProblemNotRequest},
		{name: "invocation with 2 elements", body: `{"using":[],"methodCalls":[["Core/echo",{}]]}`, typ: ProblemNotRequest},
		{name: "invocation with 4 elements", body: `{"using":[],"methodCalls":[["Core/echo",{},"c1",1]]}`, typ: ProblemNotRequest},
		{name: "invocation not an array", body: `{"using":[],"methodCalls":[{"name":"Core/echo"}]}`, typ: ProblemNotRequest},
		{name: "invocation null", body: `{"using":[],"methodCalls":[null]}`, typ: ProblemNotRequest},
		{name: "args an array", body: `{"using":[],"methodCalls":[["Core/echo",[],"c1"]]}`, typ: ProblemNotRequest},
		{name: "args null", body: `{"using":[],"methodCalls":[["Core/echo",null,"c1"]]}`, typ: ProblemNotRequest},
		{name: "args a string", body: `{"using":[],"methodCalls":[["Core/echo","{}","c1"]]}`, typ: ProblemNotRequest},
		{name: "name not a string", body: `{"using":[],"methodCalls":[[1,{},"c1"]]}`, typ: ProblemNotRequest},
		{name: "name null", body: `{"using":[],"methodCalls":[[null,{},"c1"]]}`, typ: ProblemNotRequest},
		{name: "call id not a string", body: `{"using":[],"methodCalls":[["Core/echo",{},1]]}`, typ: ProblemNotRequest},
		{name: "call id null", body: `{"using":[],"methodCalls":[["Core/echo",{},null]]}`, typ: ProblemNotRequest},
		{name: "createdIds an array", body: `{"using":[],"methodCalls":[],"createdIds":[]}`, typ: ProblemNotRequest},
		{name: "createdIds value a number", body: `{"using":[],"methodCalls":[],"createdIds":{"k1":1}}`, typ: ProblemNotRequest},
		{name: "createdIds value null", body: `{"using":[],"methodCalls":[],"createdIds":{"k1":null}}`, typ: ProblemNotRequest},
		{
			name: "unknown capability",
			body: `{"using":["urn:ietf:params:jmap:core","urn:example:nope"],"methodCalls":[]}`,
			typ:  ProblemUnknownCapability,
		},
		{name: "too many calls", body: manyCalls(4), typ: ProblemLimit, limit: "maxCallsInRequest"},
		{
			name:  "oversize",
			body:  `{"using":[],"methodCalls":[],"pad":"` + strings.Repeat("x", 1000) + `"}`,
			typ:   ProblemLimit,
			limit: "maxSizeRequest",
		},
		{
			// The size limit is checked before anything is parsed.
			name:  "oversize garbage",
			body:  strings.Repeat("{", 1001),
			typ:   ProblemLimit,
			limit: "maxSizeRequest",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := DecodeRequest([]byte(tc.body), testLimits(), knownTestCaps)
			if tc.typ != "" {
				if req != nil {
					t.Errorf("request = %+v, want nil", req)
				}
				wantProblem(t, err, tc.typ, tc.limit)
				return
			}
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			if !reflect.DeepEqual(req, tc.want) {
				t.Errorf("request =\n%#v\nwant\n%#v", req, tc.want)
			}
		})
	}
}

// RFC 8620 §3.6.1: a request over maxSizeRequest is refused with the limit
// problem naming maxSizeRequest, status 400 as in the §3.6.1.1 example; a
// body of exactly maxSizeRequest bytes is accepted.
func TestDecodeRequest_OversizeStatus(t *testing.T) {
	lim := testLimits()
	body := []byte(`{"using":[],"methodCalls":[]}`)
	lim.MaxSizeRequest = int64(len(body))
	if _, err := DecodeRequest(body, lim, knownTestCaps); err != nil {
		t.Fatalf("a body of exactly maxSizeRequest bytes: %v", err)
	}
	lim.MaxSizeRequest--
	_, err := DecodeRequest(body, lim, knownTestCaps)
	p := wantProblem(t, err, ProblemLimit, "maxSizeRequest")
	if p.Status != http.StatusBadRequest {
		t.Errorf("status = %d, want %d", p.Status, http.StatusBadRequest)
	}
}

func TestInvocationJSON(t *testing.T) {
	tests := []struct {
		name string
		in   Invocation
		want string
	}{
		{name: "args kept verbatim", in: Invocation{Name: "Mailbox/get", Args: json.RawMessage(`{"ids":null}`), CallID: "c1"},
			want: `["Mailbox/get",{"ids":null},"c1"]`},
		{name: "nil args become an empty object", in: Invocation{Name: "Core/echo", CallID: "c2"},
			want: `["Core/echo",{},"c2"]`},
		{name: "empty strings", in: Invocation{Args: json.RawMessage(`{}`)}, want: `["",{},""]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.in)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			if string(b) != tc.want {
				t.Fatalf("marshal = %s, want %s", b, tc.want)
			}
			var back Invocation
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("unmarshal %s: %v", b, err)
			}
			wantArgs := tc.in.Args
			if wantArgs == nil {
				wantArgs = json.RawMessage(`{}`)
			}
			if back.Name != tc.in.Name || back.CallID != tc.in.CallID || string(back.Args) != string(wantArgs) {
				t.Errorf("round trip = %+v, want %+v", back, tc.in)
			}
		})
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		name string
		id   string
		want bool
	}{
		{"letters digits dash underscore", "Ab9-_z", true},
		{"one character", "a", true},
		{"255 characters", strings.Repeat("a", 255), true},
		{"empty", "", false},
		{"256 characters", strings.Repeat("a", 256), false},
		{"plus", "a+b", false},
		{"slash", "a/b", false},
		{"padding", "ab==", false},
		{"space", "a b", false},
		{"hash", "#c1", false},
		{"non-ASCII", "é", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidID(tc.id); got != tc.want {
				t.Errorf("ValidID(%q) = %v, want %v", tc.id, got, tc.want)
			}
		})
	}
}

// FuzzRequestDecode feeds arbitrary bytes to DecodeRequest. It must never
// panic, must answer either a request or a *Problem, and a request it
// accepts must be well formed: every invocation a string name, an object
// for arguments and a string call id, and no more calls than the limit.
func FuzzRequestDecode(f *testing.F) {
	f.Add([]byte(`{"using":["urn:ietf:params:jmap:core"],"methodCalls":[["Core/echo",{"hello":true},"b3ff"]]}`))
	f.Add([]byte(manyCalls(4)))
	f.Add([]byte(`{"using":[],"methodCalls":[[null,{},null]]}`))
	lim := testLimits()
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeRequest(body, lim, knownTestCaps)
		if err != nil {
			if req != nil {
				t.Fatalf("both a request and an error %v", err)
			}
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("error %v (%T) is not a *Problem", err, err)
			}
			switch p.Type {
			case ProblemNotJSON, ProblemNotRequest, ProblemUnknownCapability:
			case ProblemLimit:
				if p.Limit != "maxSizeRequest" && p.Limit != "maxCallsInRequest" {
					t.Fatalf("limit problem names %q", p.Limit)
				}
			default:
				t.Fatalf("unexpected problem type %s", p.Type)
			}
			return
		}
		if req == nil {
			t.Fatal("nil request and nil error")
		}
		if int64(len(body)) > lim.MaxSizeRequest {
			t.Fatalf("accepted %d bytes over maxSizeRequest %d", len(body), lim.MaxSizeRequest)
		}
		if req.Using == nil || req.MethodCalls == nil {
			t.Fatalf("accepted request without using or methodCalls: %+v", req)
		}
		if len(req.MethodCalls) > lim.MaxCallsInRequest {
			t.Fatalf("accepted %d calls over the limit %d", len(req.MethodCalls), lim.MaxCallsInRequest)
		}
		for _, u := range req.Using {
			if !knownTestCaps(u) {
				t.Fatalf("accepted unknown capability %q", u)
			}
		}
		// Compare each accepted invocation with the raw JSON it came from.
		// A map, not a struct: struct fields would also match "METHODCALLS".
		var top map[string]json.RawMessage
		if err := json.Unmarshal(body, &top); err != nil {
			t.Fatalf("accepted body is not an object: %v", err)
		}
		var calls [][]json.RawMessage
		if err := json.Unmarshal(top["methodCalls"], &calls); err != nil {
			t.Fatalf("accepted methodCalls do not decode as arrays: %v", err)
		}
		if len(calls) != len(req.MethodCalls) {
			t.Fatalf("decoded %d calls from %d", len(req.MethodCalls), len(calls))
		}
		for i, inv := range req.MethodCalls {
			parts := calls[i]
			if len(parts) != 3 {
				t.Fatalf("call %d has %d elements", i, len(parts))
			}
			var name, id *string
			if err := json.Unmarshal(parts[0], &name); err != nil || name == nil {
				t.Fatalf("call %d: name %s is not a string", i, parts[0])
			}
			if err := json.Unmarshal(parts[2], &id); err != nil || id == nil {
				t.Fatalf("call %d: call id %s is not a string", i, parts[2])
			}
			if inv.Name != *name || inv.CallID != *id {
				t.Fatalf("call %d = %q %q, want %q %q", i, inv.Name, inv.CallID, *name, *id)
			}
			var args map[string]any
			if err := json.Unmarshal(inv.Args, &args); err != nil || args == nil {
				t.Fatalf("call %d: args %s are not an object", i, inv.Args)
			}
		}
	})
}

// FuzzSplitRequest holds the fast reading of a request to the general one:
// whenever splitRequest accepts a valid body, its members and method calls
// are what encoding/json reads.
func FuzzSplitRequest(f *testing.F) {
	f.Add([]byte(`{"using":["urn:ietf:params:jmap:core"],"methodCalls":[["Core/echo",{"a":[1,{"b":null}]},"c0"]]}`))
	f.Add([]byte(" { \"methodCalls\" : [ [ \"A/b\" , { } , \"x\\u0031\" ] ] , \"using\" : [ ] , \"createdIds\" : { \"k\" : \"v\" } } "))
	f.Add([]byte(`{"using":[],"methodCalls":[["A",{},"1","extra"]]}`))
	f.Add([]byte(`{"using":[],"methodCalls":[[null,{},"1"]]}`))
	f.Add([]byte(`{"us\u0069ng":[],"methodCalls":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if !utf8.Valid(body) || !json.Valid(body) {
			return // DecodeRequest refuses these first
		}
		raw, calls, ok := splitRequest(body)
		if !ok {
			return
		}
		var want map[string]json.RawMessage
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatalf("%q: split, but json reads no object: %v", body, err)
		}
		if len(raw) != len(want) {
			t.Fatalf("%q: members %d, json %d", body, len(raw), len(want))
		}
		for k, v := range want {
			if !bytes.Equal(raw[k], v) {
				t.Fatalf("%q: member %q = %q, json %q", body, k, raw[k], v)
			}
		}
		var wantCalls []Invocation
		if err := json.Unmarshal(want["methodCalls"], &wantCalls); err != nil {
			t.Fatalf("%q: split calls %v, json: %v", body, calls, err)
		}
		if len(calls) != len(wantCalls) {
			t.Fatalf("%q: %d calls, json %d", body, len(calls), len(wantCalls))
		}
		for i := range calls {
			if calls[i].Name != wantCalls[i].Name || calls[i].CallID != wantCalls[i].CallID || !bytes.Equal(calls[i].Args, wantCalls[i].Args) {
				t.Fatalf("%q: call %d = %+v, json %+v", body, i, calls[i], wantCalls[i])
			}
		}
	})
}
