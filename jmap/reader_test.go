package jmap

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// readAny reads any JSON value with a Reader into what json.Unmarshal
// makes of it.
func readAny(r *Reader) (any, error) {
	switch r.Next() {
	case '{':
		m := map[string]any{}
		err := r.Object(func(name string) error {
			v, err := readAny(r)
			m[name] = v
			return err
		})
		return m, err
	case '[':
		l := []any{}
		err := r.Array(func(int) error {
			v, err := readAny(r)
			l = append(l, v)
			return err
		})
		return l, err
	case '"':
		return r.String()
	}
	raw, err := r.Raw()
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, ErrSyntax
	}
	return v, nil
}

func readerAgrees(t *testing.T, in string) {
	t.Helper()
	if strings.Count(in, "[")+strings.Count(in, "{") > 60 {
		return // beyond the Reader's depth, whatever the nesting
	}
	var want any
	wantErr := json.Unmarshal([]byte(in), &want)
	r := NewReader([]byte(in))
	got, err := readAny(r)
	if err == nil && !r.End() {
		err = ErrSyntax
	}
	switch {
	case wantErr == nil && err != nil:
		t.Fatalf("Reader fails on %q: %v", in, err)
	case wantErr != nil && err == nil:
		t.Fatalf("Reader reads %q, which encoding/json rejects (%v), as %#v", in, wantErr, got)
	case wantErr == nil && !reflect.DeepEqual(got, want):
		t.Fatalf("Reader reads %q as %#v, encoding/json as %#v", in, got, want)
	}
}

var readerCases = []string{
	`{"accountId":"a1","create":{"k1":{"data":[{"data:asText":"Subject: x\r\n\r\nhi \u00e9\ud83d\ude00"}],"type":"message/rfc822"}}}`,
	` { "a" : [ 1 , -2.5e3 , true , false , null , "x" ] , "b" : { } , "c" : [ ] } `,
	`"\ud800"`, `"\udc00\ud800x"`, `"\ud800\u0041"`, `"\ud83d\ude00"`, `"a\/b\\c\"d\b\f\n\r\t"`,
	"\"\xff\xfe ok \xc3\xa9 \xed\xa0\x80\"", `"\u00"`, `"\x"`, "\"a\x01\"", `"abc`,
	`{"a":1,"a":2}`, `{"a" 1}`, `{"a":1,}`, `[1,]`, `[01]`, `{1:2}`, `nul`, `-`, `1.`, `{"a":[}`, ``, `  `,
}

func TestReaderAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range readerCases {
		readerAgrees(t, c)
	}
}

// A reader function's own error ends the reading and comes back as is; a
// member it leaves unread is skipped.
func TestReaderCallbacks(t *testing.T) {
	stop := errors.New("stop")
	r := NewReader([]byte(`{"skip":{"deep":[1,{"x":"y"}]},"stop":1,"never":2}`))
	var seen []string
	err := r.Object(func(name string) error {
		seen = append(seen, name)
		if name == "stop" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || !reflect.DeepEqual(seen, []string{"skip", "stop"}) {
		t.Fatalf("err %v, seen %q", err, seen)
	}
	if _, err := NewReader([]byte(`"x"`)).Int(); err == nil {
		t.Fatal("Int read a string")
	}
	if n, err := NewReader([]byte(` 42 `)).Int(); err != nil || n != 42 {
		t.Fatalf("Int: %d, %v", n, err)
	}
	if _, err := NewReader([]byte(`1.5`)).Int(); err == nil {
		t.Fatal("Int read 1.5")
	}
	deep := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	if _, err := readAny(NewReader([]byte(deep))); err == nil {
		t.Fatal("read nesting past the bound")
	}
}

func FuzzReader(f *testing.F) {
	for _, c := range readerCases {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, in string) { readerAgrees(t, in) })
}

func validAgrees(t *testing.T, b []byte) {
	t.Helper()
	if got, want := validJSON(b), json.Valid(b); got != want {
		t.Fatalf("validJSON(%q) = %v, json.Valid %v", b, got, want)
	}
}

// validJSON, the first read of every request, accepts what json.Valid
// accepts, to the same nesting.
func TestValidJSONAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range readerCases {
		validAgrees(t, []byte(c))
	}
	for _, n := range []int{maxValidDepth, maxValidDepth + 1} {
		validAgrees(t, []byte(strings.Repeat("[", n)+"1"+strings.Repeat("]", n)))
		validAgrees(t, []byte(strings.Repeat(`{"a":`, n)+"1"+strings.Repeat("}", n)))
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, c := range readerCases {
		f.Add([]byte(c))
	}
	f.Fuzz(validAgrees)
}

// stringStop, eight octets at a time, stops where a plain loop stops.
func stringStopAgrees(t *testing.T, b []byte) {
	t.Helper()
	for j := 0; j <= len(b); j++ {
		want := j
		for want < len(b) && !stopOctet[b[want]] {
			want++
		}
		if got := stringStop(b, j); got != want {
			t.Fatalf("stringStop(%q, %d) = %d, want %d", b, j, got, want)
		}
	}
}

func TestStringStop(t *testing.T) {
	for _, c := range []string{"", "abcdefgh", "abcdefghijklmnop\"", "\x1f\x20\x21", "\xff\xfe\x80\x7f\"\\",
		"0123456\\x", "01234567\x00", "ab\x00\x20\x20\x20\x20\x20\x20\x20\x20", "\x21\x21\x21\x21\x21\x21\x21\x21\x1f",
		strings.Repeat("é", 9) + "\"", "\x20\x20\x20\x20\x20\x20\x20\x20\x20\x1f"} {
		stringStopAgrees(t, []byte(c))
	}
}

func FuzzStringStop(f *testing.F) {
	f.Add([]byte("abcdefghijklmnop\""))
	f.Add([]byte("\xff\x80\x1f\x20\x22\x5c\x5b"))
	f.Fuzz(stringStopAgrees)
}
