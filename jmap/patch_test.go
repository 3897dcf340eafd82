package jmap

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// decodeObjectT decodes a JSON object and fails the test on error.
func decodeObjectT(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return m
}

// patchRecord is a Mailbox-like record for the patch tests.
const patchRecord = `{
  "id": "M1",
  "name": "Inbox",
  "keywords": {"$seen": true, "$flagged": true},
  "mailboxIds": {"M1": true},
  "sortOrder": 5,
  "nested": {"deep": {"leaf": 1, "other": 2}},
  "list": [1, 2, 3],
  "nothing": null,
  "a/b": "slash",
  "m~n": "tilde"
}`

func TestApplyPatch(t *testing.T) {
	tests := []struct {
		name    string
		patch   string
		want    string   // the whole patched record; ignored with wantErr
		touched []string // the top-level properties reported
		wantErr bool
	}{
		{
			name:    "replace a top-level property",
			patch:   `{"name":"Archive"}`,
			touched: []string{"name"},
			want:    `{"name":"Archive"}`,
		},
		{
			name:    "add a top-level property",
			patch:   `{"role":"inbox"}`,
			touched: []string{"role"},
			want:    `{"role":"inbox"}`,
		},
		{
			// RFC 8621 §4.1.1 style: set one keyword, keep the others.
			name:    "set a nested member",
			patch:   `{"keywords/$draft":true}`,
			touched: []string{"keywords"},
			want:    `{"keywords":{"$seen":true,"$flagged":true,"$draft":true}}`,
		},
		{
			name:    "null removes a nested member",
			patch:   `{"keywords/$flagged":null}`,
			touched: []string{"keywords"},
			want:    `{"keywords":{"$seen":true}}`,
		},
		{
			name:    "null removes a missing nested member without error",
			patch:   `{"keywords/$junk":null}`,
			touched: []string{"keywords"},
			want:    `{}`,
		},
		{
			name:    "set two levels down",
			patch:   `{"nested/deep/leaf":10}`,
			touched: []string{"nested"},
			want:    `{"nested":{"deep":{"leaf":10,"other":2}}}`,
		},
		{
			name:    "sibling paths under one object",
			patch:   `{"nested/deep/leaf":null,"nested/deep/new":3,"nested/top":4}`,
			touched: []string{"nested"},
			want:    `{"nested":{"deep":{"other":2,"new":3},"top":4}}`,
		},
		{
			// RFC 8620 §5.3: a top-level null means "the default"; the
			// caller restores it, so the key stays with nil.
			name:    "top-level null keeps the key with nil",
			patch:   `{"sortOrder":null}`,
			touched: []string{"sortOrder"},
			want:    `{"sortOrder":null}`,
		},
		{
			name:    "replace a whole object",
			patch:   `{"mailboxIds":{"M2":true}}`,
			touched: []string{"mailboxIds"},
			want:    `{"mailboxIds":{"M2":true}}`,
		},
		{
			name:    "replace an array",
			patch:   `{"list":[]}`,
			touched: []string{"list"},
			want:    `{"list":[]}`,
		},
		{
			name:    "~1 names a member with a slash",
			patch:   `{"a~1b":"changed"}`,
			touched: []string{"a/b"},
			want:    `{"a/b":"changed"}`,
		},
		{
			name:    "~0 names a member with a tilde",
			patch:   `{"m~0n":"changed"}`,
			touched: []string{"m~n"},
			want:    `{"m~n":"changed"}`,
		},
		{
			name:    "escaped nested member",
			patch:   `{"keywords/a~1b~0c":true}`,
			touched: []string{"keywords"},
			want:    `{"keywords":{"$seen":true,"$flagged":true,"a/b~c":true}}`,
		},
		{
			name:    "touched is sorted and has each property once",
			patch:   `{"sortOrder":1,"keywords/$seen":null,"keywords/$new":true,"name":"X"}`,
			touched: []string{"keywords", "name", "sortOrder"},
			want:    `{"sortOrder":1,"name":"X","keywords":{"$flagged":true,"$new":true}}`,
		},
		{
			name:    "empty patch",
			patch:   `{}`,
			touched: []string{},
			want:    `{}`,
		},
		{
			name:    "a key that merely starts like another does not overlap",
			patch:   `{"keywords":{},"keywordsX":1}`,
			touched: []string{"keywords", "keywordsX"},
			want:    `{"keywords":{},"keywordsX":1}`,
		},

		// RFC 8620 §5.3: invalid patches.
		{name: "overlapping a and a/b", patch: `{"keywords":{},"keywords/$seen":true}`, wantErr: true},
		{name: "overlapping across levels", patch: `{"nested/deep":{},"nested/deep/leaf":1}`, wantErr: true},
		// "keywords.x" sorts between "keywords" and "keywords/$seen", so
		// comparing sorted neighbours alone misses the overlap.
		{name: "overlapping with a key sorting between", patch: `{"keywords":{},"keywords.x":1,"keywords/$seen":true}`, wantErr: true},
		{name: "overlapping with keys sorting between", patch: `{"nested":{"deep":{}},"nested!":1,"nested-":2,"nested/deep/leaf":3}`, wantErr: true},
		{name: "overlapping with null", patch: `{"keywords":null,"keywords/$seen":true}`, wantErr: true},
		{name: "missing intermediate", patch: `{"nope/x":1}`, wantErr: true},
		{name: "missing deeper intermediate", patch: `{"nested/nope/x":1}`, wantErr: true},
		{name: "null intermediate", patch: `{"nothing/x":1}`, wantErr: true},
		{name: "path into a string", patch: `{"name/x":1}`, wantErr: true},
		{name: "path into a number", patch: `{"sortOrder/x":1}`, wantErr: true},
		{name: "path into an array", patch: `{"list/0":9}`, wantErr: true},
		{name: "path into a leaf", patch: `{"nested/deep/leaf/x":1}`, wantErr: true},
		{name: "key starting with a slash", patch: `{"/name":"x"}`, wantErr: true},
		{name: "empty key", patch: `{"":"x"}`, wantErr: true},
		{name: "one bad key spoils the patch", patch: `{"name":"ok","nope/x":1}`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obj := decodeObjectT(t, patchRecord)
			patch := decodeObjectT(t, tc.patch)
			got, touched, serr := ApplyPatch(obj, patch)
			if !reflect.DeepEqual(obj, decodeObjectT(t, patchRecord)) {
				t.Errorf("ApplyPatch modified its input: %v", obj)
			}
			if !reflect.DeepEqual(patch, decodeObjectT(t, tc.patch)) {
				t.Errorf("ApplyPatch modified the patch: %v", patch)
			}
			if tc.wantErr {
				if serr == nil {
					t.Fatalf("ApplyPatch = %v, want invalidPatch", got)
				}
				if serr.Type != SetInvalidPatch {
					t.Fatalf("error = %v, want invalidPatch", serr)
				}
				if got != nil || touched != nil {
					t.Errorf("an invalid patch returned %v %v", got, touched)
				}
				return
			}
			if serr != nil {
				t.Fatalf("ApplyPatch: %v", serr)
			}
			// want lists the members that differ from the record.
			want := decodeObjectT(t, patchRecord)
			for k, v := range decodeObjectT(t, tc.want) {
				want[k] = v
			}
			if !reflect.DeepEqual(got, want) {
				gb, _ := json.Marshal(got)
				wb, _ := json.Marshal(want)
				t.Errorf("patched =\n%s\nwant\n%s", gb, wb)
			}
			if _, present := got["sortOrder"]; !present {
				t.Errorf("sortOrder vanished")
			}
			if !slices.Equal(touched, tc.touched) {
				t.Errorf("touched = %q, want %q", touched, tc.touched)
			}
		})
	}
}

// The patched copy shares nothing writable with the input: changing the
// copy at any depth leaves the original as it was.
func TestApplyPatch_CopyIsIndependent(t *testing.T) {
	obj := decodeObjectT(t, patchRecord)
	got, _, serr := ApplyPatch(obj, map[string]any{"nested/deep/leaf": 7.0, "keywords/$seen": nil})
	if serr != nil {
		t.Fatalf("ApplyPatch: %v", serr)
	}
	got["nested"].(map[string]any)["deep"].(map[string]any)["other"] = "changed"
	got["keywords"].(map[string]any)["$flagged"] = false
	got["name"] = "changed"
	if !reflect.DeepEqual(obj, decodeObjectT(t, patchRecord)) {
		b, _ := json.Marshal(obj)
		t.Fatalf("the input changed with its copy: %s", b)
	}
	if leaf := got["nested"].(map[string]any)["deep"].(map[string]any)["leaf"]; leaf != 7.0 {
		t.Errorf("leaf = %v, want 7", leaf)
	}
}

// A nil record patches like an empty one.
func TestApplyPatch_NilRecord(t *testing.T) {
	got, touched, serr := ApplyPatch(nil, map[string]any{"name": "x"})
	if serr != nil {
		t.Fatalf("ApplyPatch: %v", serr)
	}
	if !reflect.DeepEqual(got, map[string]any{"name": "x"}) || !slices.Equal(touched, []string{"name"}) {
		t.Errorf("ApplyPatch(nil) = %v %v", got, touched)
	}
}

// FuzzPatch applies an arbitrary patch to an arbitrary record: it must never
// panic nor modify its inputs; a success reports every patched top-level
// property, leaves untouched properties as they were and sets each patched
// value; a failure is invalidPatch.
func FuzzPatch(f *testing.F) {
	f.Add([]byte(patchRecord), []byte(`{"keywords/$draft":true,"sortOrder":null}`))
	f.Add([]byte(patchRecord), []byte(`{"keywords":{},"keywords.x":1,"keywords/$seen":true}`))
	f.Add([]byte(`{"a":{"b":[1]}}`), []byte(`{"a/b/0":2}`))
	f.Fuzz(func(t *testing.T, objJSON, patchJSON []byte) {
		var obj, patch map[string]any
		if json.Unmarshal(objJSON, &obj) != nil || json.Unmarshal(patchJSON, &patch) != nil {
			return
		}
		var objBefore, patchBefore map[string]any
		if json.Unmarshal(objJSON, &objBefore) != nil || json.Unmarshal(patchJSON, &patchBefore) != nil {
			t.Fatal("second decode failed")
		}
		got, touched, serr := ApplyPatch(obj, patch)
		if !reflect.DeepEqual(obj, objBefore) {
			t.Fatal("ApplyPatch modified the record")
		}
		if !reflect.DeepEqual(patch, patchBefore) {
			t.Fatal("ApplyPatch modified the patch")
		}
		if serr != nil {
			if serr.Type != SetInvalidPatch {
				t.Fatalf("error type %s, want invalidPatch", serr.Type)
			}
			if got != nil || touched != nil {
				t.Fatal("an invalid patch returned a result")
			}
			return
		}
		if !slices.IsSorted(touched) || len(slices.Compact(slices.Clone(touched))) != len(touched) {
			t.Fatalf("touched %q is not sorted and unique", touched)
		}
		keys := map[string]bool{}
		for k, v := range patch {
			if k == "" || k[0] == '/' {
				t.Fatalf("accepted the key %q", k)
			}
			keys[k] = true
			parts := strings.Split(k, "/")
			for i := range parts {
				parts[i] = unescapeToken(parts[i])
			}
			if !slices.Contains(touched, parts[0]) {
				t.Fatalf("patched %q but touched is %q", k, touched)
			}
			// Walk to the patched member and check it holds the value.
			cur := got
			for _, p := range parts[:len(parts)-1] {
				next, ok := cur[p].(map[string]any)
				if !ok {
					t.Fatalf("%q: %q is not an object in the result", k, p)
				}
				cur = next
			}
			last := parts[len(parts)-1]
			have, present := cur[last]
			switch {
			case v == nil && len(parts) == 1:
				if !present || have != nil {
					t.Fatalf("%q: top-level null left %v (present %v)", k, have, present)
				}
			case v == nil:
				if present {
					t.Fatalf("%q: null left %v", k, have)
				}
			default:
				if !reflect.DeepEqual(have, v) {
					t.Fatalf("%q: result holds %v, want %v", k, have, v)
				}
			}
		}
		// RFC 8620 §5.3: no pointer is a prefix of another.
		for k := range keys {
			for i := 0; i < len(k); i++ {
				if k[i] == '/' && keys[k[:i]] {
					t.Fatalf("accepted overlapping keys %q and %q", k[:i], k)
				}
			}
		}
		for k, v := range objBefore {
			if !slices.Contains(touched, k) && !reflect.DeepEqual(got[k], v) {
				t.Fatalf("untouched %q changed from %v to %v", k, v, got[k])
			}
		}
		for k := range got {
			if _, had := objBefore[k]; !had && !slices.Contains(touched, k) {
				t.Fatalf("untouched %q appeared", k)
			}
		}
	})
}
