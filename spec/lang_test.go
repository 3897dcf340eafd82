package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The tests in this file check the scenario language itself, so that a
// scenario failing means the server differs from the expectation, not
// that the matcher is wrong.

func mustDecode(t *testing.T, s string) any {
	t.Helper()
	v, err := decode([]byte(s))
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return v
}

func testScope() *scope {
	return &scope{
		captures: map[string]any{"n": json.Number("7"), "s": "abc"},
		user: func(what, name string) (string, error) {
			if name != "" && name != "user1" {
				return "", fmt.Errorf("no user %q", name)
			}
			if what == "account" {
				return "A1", nil
			}
			return "u@example.test", nil
		},
		status: 400,
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		name      string
		want, got string
		// errs are the paths of the expected mismatches, in order.
		errs []string
	}{
		{"equal scalars", `[1, "a", true, null]`, `[1.0, "a", true, null]`, nil},
		{"different number", `{"a": 1}`, `{"a": 2}`, []string{"$.a"}},
		{"extra member is a mismatch", `{"a": 1}`, `{"a": 1, "b": 2}`, []string{"$.b"}},
		{"missing member", `{"a": 1, "b": 2}`, `{"a": 1}`, []string{"$.b"}},
		{"partial allows extra members", `{"$partial": true, "a": 1}`, `{"a": 1, "b": 2}`, nil},
		{"optional member absent", `{"?a": 1}`, `{}`, nil},
		{"optional member present must match", `{"?a": 1}`, `{"a": 2}`, []string{"$.a"}},
		{"absent", `{"$partial": true, "a": "$absent"}`, `{"a": null}`, []string{"$.a"}},
		{"array length", `[1, 2]`, `[1, 2, 3]`, []string{"$"}},
		{"array order", `[1, 2]`, `[2, 1]`, []string{"$[0]", "$[1]"}},
		{"unordered", `["$unordered", 1, 2]`, `[2, 1]`, nil},
		{"unordered wrong", `["$unordered", 1, 3]`, `[2, 1]`, []string{"$"}},
		{"types", `["$string", "$id", "$state", "$uint", "$int", "$bool", "$object", "$array", "$number", "$any"]`,
			`["", "Ab-_9", "s", 0, -3, false, {}, [], 1.5, null]`, nil},
		{"id rejects bad characters", `"$id"`, `"a b"`, []string{"$"}},
		{"uint rejects negative", `"$uint"`, `-1`, []string{"$"}},
		{"uint rejects fraction", `"$uint"`, `1.5`, []string{"$"}},
		{"state rejects empty", `"$state"`, `""`, []string{"$"}},
		{"utcdate", `["$utcdate", "$date"]`, `["2014-10-30T06:12:00Z", "2014-10-30T14:12:00+08:00"]`, nil},
		{"utcdate rejects offset and zero fraction", `["$utcdate", "$utcdate"]`, `["2014-10-30T14:12:00+08:00", "2014-10-30T06:12:00.0Z"]`, []string{"$[0]", "$[1]"}},
		{"ref", `["$ref:n", "$ref:s"]`, `[7, "abc"]`, nil},
		{"ref differs", `"$ref:n"`, `8`, []string{"$"}},
		{"notRef", `"$notRef:n"`, `8`, nil},
		{"notRef equal", `"$notRef:n"`, `7`, []string{"$"}},
		{"capture then ref in one answer", `{"a": "$id:x", "b": "$ref:x"}`, `{"a": "Q1", "b": "Q1"}`, nil},
		{"capture then ref differs", `{"a": "$capture:x", "b": "$ref:x"}`, `{"a": 1, "b": 2}`, []string{"$.b"}},
		{"ref as member name", `{"$ref:s": 1}`, `{"abc": 1}`, nil},
		{"account", `{"$account": "$account", "u": "$username"}`, `{"A1": "A1", "u": "u@example.test"}`, nil},
		{"httpStatus", `{"status": "$httpStatus"}`, `{"status": 400}`, nil},
		{"httpStatus differs", `{"status": "$httpStatus"}`, `{"status": 200}`, []string{"$.status"}},
		{"gte", `["$gte:64", "$gte:64"]`, `[64, 63]`, []string{"$[1]"}},
		{"contains and regex", `["$contains:{id}", "$regex:^a+$"]`, `["x{id}y", "aaa"]`, nil},
		{"allOf", `{"$allOf": ["$contains:a", "$contains:b"]}`, `"ba"`, nil},
		{"allOf fails", `{"$allOf": ["$contains:a", "$contains:c"]}`, `"ba"`, []string{"$"}},
		{"anyOf", `{"$anyOf": [null, {"u": "$utcdate"}]}`, `{"u": "2020-01-01T00:00:00Z"}`, nil},
		{"anyOf fails", `{"$anyOf": [null, 1]}`, `2`, []string{"$"}},
		{"escaped dollar", `"$$any"`, `"$any"`, nil},
		{"escaped dollar is literal", `"$$any"`, `"x"`, []string{"$"}},
		{"unknown placeholder", `"$bogus"`, `1`, []string{"$"}},
		{"repeat in expectation", `[{"$repeat": "$ref:n", "$plus": -5, "$item": "c${i}"}]`, `["c0", "c1"]`, nil},
		{"member path quoting", `{"urn:x": {"a-b": 1}}`, `{"urn:x": {"a-b": 2}}`, []string{`$["urn:x"]["a-b"]`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &matcher{sc: testScope()}
			m.match("$", mustDecode(t, tc.want), mustDecode(t, tc.got))
			var paths []string
			for _, e := range m.errs {
				paths = append(paths, e.Path)
			}
			if strings.Join(paths, " ") != strings.Join(tc.errs, " ") {
				t.Errorf("mismatches at %q, want %q: %v", paths, tc.errs, m.errs)
			}
		})
	}
}

func TestAnyOfKeepsOnlyWinningCaptures(t *testing.T) {
	m := &matcher{sc: testScope()}
	m.match("$", mustDecode(t, `{"$anyOf": [["$capture:x", 1], ["$capture:y", 2]]}`), mustDecode(t, `[5, 2]`))
	if len(m.errs) > 0 {
		t.Fatal(m.errs)
	}
	if _, ok := m.sc.captures["x"]; ok {
		t.Error("a failed alternative left its capture")
	}
	if !equal(m.sc.captures["y"], mustDecode(t, `5`)) {
		t.Errorf("y = %v, want 5", m.sc.captures["y"])
	}
}

func TestFill(t *testing.T) {
	tests := []struct {
		name, in, out string
	}{
		{"account and ref keep their type", `{"a": "$account", "n": "$ref:n", "u": "$username"}`, `{"a":"A1","n":7,"u":"u@example.test"}`},
		{"interpolation", `"/x/${account}/${ref:n}/${ref:s}"`, `"/x/A1/7/abc"`},
		{"member names and order", `{"z": 1, "$ref:s": 2, "a": 3}`, `{"z":1,"abc":2,"a":3}`},
		{"escape", `"$$account"`, `"$account"`},
		{"repeat", `[0, {"$repeat": 2, "$plus": 1, "$item": ["c${i}", {"k${i}": "${i}"}]}, 9]`, `[0,["c0",{"k0":"0"}],["c1",{"k1":"1"}],["c2",{"k2":"2"}],9]`},
		{"repeat from a capture", `[{"$repeat": "$ref:n", "$item": 1}]`, `[1,1,1,1,1,1,1]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := testScope().fill(mustDecode(t, tc.in))
			if err != nil {
				t.Fatal(err)
			}
			b, err := marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.out {
				t.Errorf("got %s, want %s", b, tc.out)
			}
		})
	}
	for _, bad := range []string{`"$bogus"`, `"$ref:nothing"`, `"${nope}"`, `{"$repeat": 1, "$item": 1}`, `[{"$repeat": "x", "$item": 1}]`, `"$account:user9"`} {
		if _, err := testScope().fill(mustDecode(t, bad)); err == nil {
			t.Errorf("fill(%s): no error", bad)
		}
	}
}

func TestDecodeRefusesWhatIJSONRefuses(t *testing.T) {
	for _, in := range []string{`{"a": 1, "a": 2}`, "\"\xff\"", `{"a": {"b": 1, "b": 1}}`} {
		if _, err := decode([]byte(in)); !errors.Is(err, errNotIJSON) {
			t.Errorf("decode(%q) = %v, want errNotIJSON", in, err)
		}
	}
	for _, in := range []string{`{"a": 1} x`, `{"a": `} {
		if _, err := decode([]byte(in)); err == nil {
			t.Errorf("decode(%q): no error", in)
		}
	}
}

func TestExpandTemplate(t *testing.T) {
	got := expandTemplate("https://h/d/{accountId}/{blobId}/{name}?type={type}&x={missing}",
		map[string]string{"accountId": "A1", "blobId": "b-_.~", "name": "a b/ü?#", "type": "text/plain"})
	want := "https://h/d/A1/b-_.~/a%20b%2F%C3%BC%3F%23?type=text%2Fplain&x="
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
