package jmap

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// mustDecode decodes JSON text into a generic value and fails the test on
// error.
func mustDecode(t testing.TB, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v
}

// rfc6901Doc is the example document of RFC 6901 §5.
const rfc6901Doc = `{
  "foo": ["bar", "baz"],
  "": 0,
  "a/b": 1,
  "c%d": 2,
  "e^f": 3,
  "g|h": 4,
  "i\\j": 5,
  "k\"l": 6,
  " ": 7,
  "m~n": 8
}`

// rfc8620Threads is the Email/get response of the RFC 8620 §3.7 example,
// with the Thread/get response beside it.
const rfc8620Threads = `{
  "emailGet": {
    "accountId": "A1",
    "state": "123456",
    "list": [
      {"id": "msg1023", "threadId": "trd194"},
      {"id": "msg223", "threadId": "trd114"}
    ],
    "notFound": []
  },
  "threadGet": {
    "accountId": "A1",
    "state": "123456",
    "list": [
      {"id": "trd194", "emailIds": ["msg1020", "msg1021", "msg1023"]},
      {"id": "trd114", "emailIds": ["msg201", "msg223"]}
    ],
    "notFound": []
  }
}`

func TestResolvePointer(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		path    string
		want    string // JSON; ignored when wantErr
		wantErr bool
	}{
		// RFC 6901 §5, every example.
		{name: "RFC 6901 whole document", doc: `{"a":[1]}`, path: "", want: `{"a":[1]}`},
		{name: "RFC 6901 /foo", doc: rfc6901Doc, path: "/foo", want: `["bar","baz"]`},
		{name: "RFC 6901 /foo/0", doc: rfc6901Doc, path: "/foo/0", want: `"bar"`},
		{name: "RFC 6901 / is the empty member", doc: rfc6901Doc, path: "/", want: `0`},
		{name: "RFC 6901 ~1 is a slash", doc: rfc6901Doc, path: "/a~1b", want: `1`},
		{name: "RFC 6901 /c%d", doc: rfc6901Doc, path: "/c%d", want: `2`},
		{name: "RFC 6901 /e^f", doc: rfc6901Doc, path: "/e^f", want: `3`},
		{name: "RFC 6901 /g|h", doc: rfc6901Doc, path: "/g|h", want: `4`},
		{name: "RFC 6901 backslash", doc: rfc6901Doc, path: `/i\j`, want: `5`},
		{name: "RFC 6901 quote", doc: rfc6901Doc, path: `/k"l`, want: `6`},
		{name: "RFC 6901 space", doc: rfc6901Doc, path: "/ ", want: `7`},
		{name: "RFC 6901 ~0 is a tilde", doc: rfc6901Doc, path: "/m~0n", want: `8`},
		{name: "~01 is ~1, not a slash", doc: `{"~1":"tilde-one","/":"slash"}`, path: "/~01", want: `"tilde-one"`},
		{name: "~10 is /0", doc: `{"/0":"x"}`, path: "/~10", want: `"x"`},
		{name: "nested member", doc: `{"a":{"b":{"c":true}}}`, path: "/a/b/c", want: `true`},
		{name: "null value", doc: `{"a":null}`, path: "/a", want: `null`},
		{name: "array index", doc: `{"ids":["x","y","z"]}`, path: "/ids/2", want: `"z"`},
		{name: "index into nested arrays", doc: `[[1,2],[3,4]]`, path: "/1/0", want: `3`},

		// RFC 8620 §3.7 "*".
		{name: "RFC 8620 /list/*/threadId", doc: rfc8620Threads, path: "/emailGet/list/*/threadId",
			want: `["trd194","trd114"]`},
		{name: "RFC 8620 /list/*/emailIds flattens", doc: rfc8620Threads, path: "/threadGet/list/*/emailIds",
			want: `["msg1020","msg1021","msg1023","msg201","msg223"]`},
		{name: "* as the last token copies the array", doc: `{"a":[1,2]}`, path: "/a/*", want: `[1,2]`},
		{name: "* as the last token flattens arrays of arrays", doc: `[[1,2],[3],[]]`, path: "/*", want: `[1,2,3]`},
		{name: "* flattens one level only", doc: `{"l":[{"x":[[1],[2]]},{"x":[3]}]}`, path: "/l/*/x",
			want: `[[1],[2],3]`},
		{name: "* over an empty array", doc: `{"l":[]}`, path: "/l/*/id", want: `[]`},
		{name: "nested *", doc: `{"l":[{"m":[{"id":"a"},{"id":"b"}]},{"m":[{"id":"c"}]}]}`, path: "/l/*/m/*/id",
			want: `["a","b","c"]`},
		{name: "* is a member name in an object", doc: `{"*":{"x":1}}`, path: "/*/x", want: `1`},
		{name: "* then an index", doc: `{"l":[[1,2],[3,4]]}`, path: "/l/*/1", want: `[2,4]`},

		// Failures.
		{name: "no leading slash", doc: `{"a":1}`, path: "a", wantErr: true},
		{name: "missing member", doc: `{"a":1}`, path: "/b", wantErr: true},
		{name: "missing nested member", doc: `{"a":{"b":1}}`, path: "/a/c", wantErr: true},
		{name: "member of a scalar", doc: `{"a":1}`, path: "/a/b", wantErr: true},
		{name: "member of null", doc: `{"a":null}`, path: "/a/b", wantErr: true},
		{name: "* over a scalar", doc: `{"a":"s"}`, path: "/a/*", wantErr: true},
		{name: "* over an object without a * member", doc: `{"a":{"b":1}}`, path: "/a/*", wantErr: true},
		{name: "* with a missing member in one item", doc: `{"l":[{"id":"a"},{}]}`, path: "/l/*/id", wantErr: true},
		{name: "index out of range", doc: `["a","b"]`, path: "/2", wantErr: true},
		{name: "index of an empty array", doc: `[]`, path: "/0", wantErr: true},
		{name: "negative index", doc: `["a","b"]`, path: "/-1", wantErr: true},
		{name: "RFC 6901 - past the end", doc: `["a","b"]`, path: "/-", wantErr: true},
		{name: "leading zero index", doc: `["a","b"]`, path: "/01", wantErr: true},
		{name: "plus sign index", doc: `["a","b"]`, path: "/+1", wantErr: true},
		{name: "minus zero index", doc: `["a","b"]`, path: "/-0", wantErr: true},
		{name: "empty index", doc: `["a","b"]`, path: "/", wantErr: true},
		{name: "non-numeric index", doc: `["a","b"]`, path: "/x", wantErr: true},
		{name: "huge index", doc: `["a","b"]`, path: "/99999999999999999999999", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := mustDecode(t, tc.doc)
			got, err := ResolvePointer(doc, tc.path)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ResolvePointer(%s, %q) = %v, want an error", tc.doc, tc.path, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ResolvePointer(%q): %v", tc.path, err)
			}
			if want := mustDecode(t, tc.want); !reflect.DeepEqual(got, want) {
				t.Errorf("ResolvePointer(%q) = %#v, want %#v", tc.path, got, want)
			}
			if !reflect.DeepEqual(doc, mustDecode(t, tc.doc)) {
				t.Errorf("ResolvePointer modified the document")
			}
		})
	}
}

func TestResolveReferences(t *testing.T) {
	changes := &previousResponse{name: "Foo/changes", callID: "t0",
		args: json.RawMessage(`{"accountId":"A1","oldState":"abcdef","newState":"123456","hasMoreChanges":false,"created":["f1","f4"],"updated":[],"destroyed":[]}`)}
	query := &previousResponse{name: "Email/query", callID: "t1",
		args: json.RawMessage(`{"accountId":"A1","ids":["msg1023","msg223"]}`)}
	// A /copy answers its own response and then the implicit /set with the
	// same method call id (RFC 8620 §5.4).
	copied := &previousResponse{name: "Foo/copy", callID: "t2",
		args: json.RawMessage(`{"created":{"k1":{"id":"c1"}}}`)}
	implicitSet := &previousResponse{name: "Foo/set", callID: "t2",
		args: json.RawMessage(`{"destroyed":["o1"]}`)}
	broken := &previousResponse{name: "Foo/get", callID: "t3", args: json.RawMessage(`{"list":`)}
	prev := []*previousResponse{changes, query, copied, implicitSet, broken}

	tests := []struct {
		name string
		args string
		want string    // JSON of the resolved arguments; ignored when typ is set
		typ  ErrorType // the method error expected
	}{
		{name: "RFC 8620 §3.7 example",
			args: `{"accountId":"A1","#ids":{"resultOf":"t0","name":"Foo/changes","path":"/created"}}`,
			want: `{"accountId":"A1","ids":["f1","f4"]}`},
		{name: "no references leaves the arguments alone",
			args: `{"accountId":"A1","ids":null}`, want: `{"accountId":"A1","ids":null}`},
		{name: "two references",
			args: `{"#ids":{"resultOf":"t1","name":"Email/query","path":"/ids"},"#accountId":{"resultOf":"t0","name":"Foo/changes","path":"/accountId"}}`,
			want: `{"accountId":"A1","ids":["msg1023","msg223"]}`},
		{name: "scalar result",
			args: `{"#sinceState":{"resultOf":"t0","name":"Foo/changes","path":"/newState"}}`,
			want: `{"sinceState":"123456"}`},
		{name: "empty path is the whole response",
			args: `{"#x":{"resultOf":"t1","name":"Email/query","path":""}}`,
			want: `{"x":{"accountId":"A1","ids":["msg1023","msg223"]}}`},
		{name: "first response of a call id is used",
			args: `{"#ids":{"resultOf":"t2","name":"Foo/copy","path":"/created/k1/id"}}`,
			want: `{"ids":"c1"}`},
		{name: "a later response of the same call id does not match",
			args: `{"#ids":{"resultOf":"t2","name":"Foo/set","path":"/destroyed"}}`,
			typ:  ErrInvalidResultReference},
		{name: "both x and #x",
			args: `{"ids":["a"],"#ids":{"resultOf":"t0","name":"Foo/changes","path":"/created"}}`,
			typ:  ErrInvalidArguments},
		{name: "both x and #x with a bad reference",
			args: `{"ids":["a"],"#ids":{"resultOf":"nope","name":"Foo/changes","path":"/created"}}`,
			typ:  ErrInvalidArguments},
		{name: "unknown resultOf",
			args: `{"#ids":{"resultOf":"t9","name":"Foo/changes","path":"/created"}}`,
			typ:  ErrInvalidResultReference},
		{name: "name mismatch",
			args: `{"#ids":{"resultOf":"t0","name":"Foo/get","path":"/created"}}`,
			typ:  ErrInvalidResultReference},
		{name: "path does not resolve",
			args: `{"#ids":{"resultOf":"t0","name":"Foo/changes","path":"/nope"}}`,
			typ:  ErrInvalidResultReference},
		{name: "bad path syntax",
			args: `{"#ids":{"resultOf":"t0","name":"Foo/changes","path":"created"}}`,
			typ:  ErrInvalidResultReference},
		{name: "reference not an object",
			args: `{"#ids":"t0"}`,
			typ:  ErrInvalidResultReference},
		{name: "reference null",
			args: `{"#ids":null}`,
			typ:  ErrInvalidResultReference},
		{name: "reference without resultOf",
			args: `{"#ids":{"name":"Foo/changes","path":"/created"}}`,
			typ:  ErrInvalidResultReference},
		{name: "reference without name",
			args: `{"#ids":{"resultOf":"t0","path":"/created"}}`,
			typ:  ErrInvalidResultReference},
		{name: "reference with an unknown member",
			args: `{"#ids":{"resultOf":"t0","name":"Foo/changes","path":"/created","extra":1}}`,
			typ:  ErrInvalidResultReference},
		{name: "reference with a wrongly typed member",
			args: `{"#ids":{"resultOf":"t0","name":"Foo/changes","path":1}}`,
			typ:  ErrInvalidResultReference},
		{name: "unreadable referenced response",
			args: `{"#ids":{"resultOf":"t3","name":"Foo/get","path":"/list"}}`,
			typ:  ErrInvalidResultReference},
		{name: "arguments not an object",
			args: `["#ids"]`,
			typ:  ErrInvalidArguments},
		{
			// "##x" resolves to the argument "#x", which is then a
			// plain value: it is not resolved a second time.
			name: "double hash is resolved once",
			args: `{"##x":{"resultOf":"t0","name":"Foo/changes","path":"/accountId"}}`,
			want: `{"#x":"A1"}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, merr := resolveReferences(json.RawMessage(tc.args), prev)
			if tc.typ != "" {
				if merr == nil {
					t.Fatalf("resolved to %s, want %s", got, tc.typ)
				}
				if merr.Type != tc.typ {
					t.Fatalf("error = %v, want %s", merr, tc.typ)
				}
				return
			}
			if merr != nil {
				t.Fatalf("resolveReferences: %v", merr)
			}
			if !reflect.DeepEqual(mustDecode(t, string(got)), mustDecode(t, tc.want)) {
				t.Errorf("resolved = %s, want %s", got, tc.want)
			}
		})
	}
}

// A reference to a response whose arguments hold a "#..." member that looks
// like a reference must answer the same every time: Go's map order must not
// decide whether the new member is resolved again.
func TestResolveReferences_Deterministic(t *testing.T) {
	inner := &previousResponse{name: "Foo/get", callID: "t0",
		args: json.RawMessage(`{"ref":{"resultOf":"t0","name":"Foo/get","path":"/v"},"v":"deep"}`)}
	args := json.RawMessage(`{"##x":{"resultOf":"t0","name":"Foo/get","path":"/ref"},"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8}`)
	want := `{"#x":{"name":"Foo/get","path":"/v","resultOf":"t0"},"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8}`
	var first json.RawMessage
	for i := range 200 {
		got, merr := resolveReferences(args, []*previousResponse{inner})
		if merr != nil {
			t.Fatalf("run %d: %v", i, merr)
		}
		if i == 0 {
			// The value referred to keeps its members as the response
			// wrote them; the same JSON as want.
			if !reflect.DeepEqual(mustDecode(t, string(got)), mustDecode(t, want)) {
				t.Fatalf("resolved = %s, want %s", got, want)
			}
			first = got
		}
		if string(got) != string(first) {
			t.Fatalf("run %d: resolved = %s, run 0 = %s", i, got, first)
		}
	}
}

// FuzzResultReference resolves an arbitrary path against an arbitrary JSON
// document: it must never panic, the empty path must return the document
// itself, and the document must not change.
func FuzzResultReference(f *testing.F) {
	f.Add([]byte(rfc6901Doc), "/m~0n")
	f.Add([]byte(`[[1,2],[3],[]]`), "/*")
	f.Add([]byte(`{"a":[1]}`), "/a/01")
	f.Fuzz(func(t *testing.T, doc []byte, path string) {
		var v any
		if err := json.Unmarshal(doc, &v); err != nil {
			return
		}
		var before any
		if err := json.Unmarshal(doc, &before); err != nil {
			t.Fatalf("second decode: %v", err)
		}
		got, err := ResolvePointer(v, path)
		if path == "" {
			if err != nil || !reflect.DeepEqual(got, before) {
				t.Fatalf("empty path = %v, %v; want the document", got, err)
			}
		}
		if path != "" {
			want, ok := oraclePointer(before, path)
			if ok != (err == nil) {
				t.Fatalf("ResolvePointer(%q) = %v, %v; the oracle says ok %v", path, got, err, ok)
			}
			if ok && !reflect.DeepEqual(got, want) {
				t.Fatalf("ResolvePointer(%q) = %v, the oracle says %v", path, got, want)
			}
		}
		if err == nil {
			if _, merr := json.Marshal(got); merr != nil {
				t.Fatalf("result cannot be encoded: %v", merr)
			}
		}
		if !reflect.DeepEqual(v, before) {
			t.Fatalf("ResolvePointer modified the document")
		}
		// The same reference through resolveReferences must agree.
		ref, err2 := json.Marshal(map[string]any{"#x": ResultReference{ResultOf: "c0", Name: "Foo/get", Path: path}})
		if err2 != nil {
			t.Fatalf("encode reference: %v", err2)
		}
		out, merr := resolveReferences(ref, []*previousResponse{{name: "Foo/get", callID: "c0", args: doc}})
		if (merr == nil) != (err == nil) {
			t.Fatalf("resolveReferences error %v, ResolvePointer error %v", merr, err)
		}
		if merr != nil {
			if merr.Type != ErrInvalidResultReference {
				t.Fatalf("resolveReferences error type %s", merr.Type)
			}
			return
		}
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("resolved arguments %s: %v", out, err)
		}
		wantJSON, _ := json.Marshal(got)
		var want any
		if err := json.Unmarshal(wantJSON, &want); err != nil {
			t.Fatalf("decode result: %v", err)
		}
		if _, ok := m["#x"]; ok || !reflect.DeepEqual(m["x"], want) {
			t.Fatalf("resolved arguments %s, want x = %s", out, wantJSON)
		}
	})
}

// rfc6901Index is the array-index rule of RFC 6901 §4.
var rfc6901Index = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)

// oraclePointer is a second, plain reading of RFC 8620 §3.7 for the fuzz
// target to compare against: RFC 6901 evaluation plus "*" over arrays.
func oraclePointer(v any, path string) (any, bool) {
	if !strings.HasPrefix(path, "/") {
		return nil, false
	}
	return oracleTokens(v, strings.Split(path[1:], "/"))
}

func oracleTokens(v any, tokens []string) (any, bool) {
	if len(tokens) == 0 {
		return v, true
	}
	tok, rest := tokens[0], tokens[1:]
	switch cur := v.(type) {
	case map[string]any:
		next, ok := cur[strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")]
		if !ok {
			return nil, false
		}
		return oracleTokens(next, rest)
	case []any:
		if tok == "*" {
			out := []any{}
			for _, item := range cur {
				r, ok := oracleTokens(item, rest)
				if !ok {
					return nil, false
				}
				if arr, isArr := r.([]any); isArr {
					out = append(out, arr...)
				} else {
					out = append(out, r)
				}
			}
			return out, true
		}
		if !rfc6901Index.MatchString(tok) {
			return nil, false
		}
		n, err := strconv.Atoi(tok)
		if err != nil || n >= len(cur) {
			return nil, false
		}
		return oracleTokens(cur[n], rest)
	}
	return nil, false
}

// Member finds a top-level member of compact JSON the server wrote, and
// nothing inside strings or nested values.
func TestMember(t *testing.T) {
	obj := []byte(`{"accountId":"a","ids":["x","y"],"nested":{"ids":1},"s":"\"ids\":2","n":-1.5e3,"t":true}`)
	for name, want := range map[string]string{"ids": `["x","y"]`, "accountId": `"a"`, "n": `-1.5e3`, "t": `true`, "nested": `{"ids":1}`} {
		if got, ok := Member(obj, name); !ok || string(got) != want {
			t.Errorf("Member(%q) = %s, %v; want %s", name, got, ok, want)
		}
	}
	for _, name := range []string{"missing", "x"} {
		if got, ok := Member(obj, name); ok {
			t.Errorf("Member(%q) = %s, want none", name, got)
		}
	}
	for _, bad := range []string{``, `{}`, `[]`, `{"a":}`, `{"a":1`, `{"a" : 1}`, `{"a":tru}`} {
		if got, ok := Member([]byte(bad), "a"); ok {
			t.Errorf("Member(%q) = %s, want none", bad, got)
		}
	}
}

// FuzzMember: what Member returns of any input is valid JSON.
func FuzzMember(f *testing.F) {
	f.Add([]byte(`{"ids":["a","b"],"total":2}`), "ids")
	f.Add([]byte(`{"a":{"b":[1,{"c":"\u00e9\n"}]},"ids":null}`), "a")
	f.Fuzz(func(t *testing.T, obj []byte, name string) {
		if v, ok := Member(obj, name); ok && !json.Valid(v) {
			t.Fatalf("Member(%q, %q) = %q, not JSON", obj, name, v)
		}
	})
}
