package jmap

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// testCondition compiles a FilterCondition whose members must all equal the
// record's properties; "fail" is refused with unsupportedFilter.
func testCondition(cond map[string]any) (func(map[string]any) bool, error) {
	if _, ok := cond["fail"]; ok {
		return nil, NewMethodError(ErrUnsupportedFilter, "no fail condition")
	}
	return func(obj map[string]any) bool {
		for k, v := range cond {
			if obj[k] != v {
				return false
			}
		}
		return true
	}, nil
}

// nestedFilter returns depth FilterOperators wrapped around a condition.
func nestedFilter(depth int) string {
	return strings.Repeat(`{"operator":"AND","conditions":[`, depth) + `{"a":1}` + strings.Repeat(`]}`, depth)
}

func TestCompileFilter(t *testing.T) {
	objs := []map[string]any{
		{"id": "1", "a": 1.0, "b": 1.0},
		{"id": "2", "a": 1.0, "b": 2.0},
		{"id": "3", "a": 2.0, "b": 1.0},
		{"id": "4", "a": 2.0, "b": 2.0},
	}
	tests := []struct {
		name    string
		filter  string
		want    []string // ids of the matching records
		errType ErrorType
	}{
		{name: "null matches everything", filter: `null`, want: []string{"1", "2", "3", "4"}},
		{name: "absent matches everything", filter: ``, want: []string{"1", "2", "3", "4"}},
		{name: "condition", filter: `{"a":1}`, want: []string{"1", "2"}},
		{name: "empty condition matches everything", filter: `{}`, want: []string{"1", "2", "3", "4"}},
		{name: "AND", filter: `{"operator":"AND","conditions":[{"a":1},{"b":2}]}`, want: []string{"2"}},
		{name: "OR", filter: `{"operator":"OR","conditions":[{"a":1},{"b":2}]}`, want: []string{"1", "2", "4"}},
		{name: "NOT is none of", filter: `{"operator":"NOT","conditions":[{"a":1},{"b":2}]}`, want: []string{"3"}},
		{name: "AND of nothing matches everything", filter: `{"operator":"AND","conditions":[]}`, want: []string{"1", "2", "3", "4"}},
		{name: "OR of nothing matches nothing", filter: `{"operator":"OR","conditions":[]}`, want: []string{}},
		{name: "NOT of nothing matches everything", filter: `{"operator":"NOT","conditions":[]}`, want: []string{"1", "2", "3", "4"}},
		{name: "nested operators",
			filter: `{"operator":"OR","conditions":[{"operator":"AND","conditions":[{"a":2},{"b":2}]},{"operator":"NOT","conditions":[{"a":2}]}]}`,
			want:   []string{"1", "2", "4"}},
		{name: "nesting at the depth limit", filter: nestedFilter(64), want: []string{"1", "2"}},

		{name: "not an object", filter: `[]`, errType: ErrInvalidArguments},
		{name: "a string", filter: `"a"`, errType: ErrInvalidArguments},
		{name: "unknown operator", filter: `{"operator":"XOR","conditions":[{"a":1}]}`, errType: ErrUnsupportedFilter},
		{name: "lower-case operator", filter: `{"operator":"and","conditions":[]}`, errType: ErrUnsupportedFilter},
		{name: "operator not a string", filter: `{"operator":1,"conditions":[]}`, errType: ErrUnsupportedFilter},
		{name: "operator null", filter: `{"operator":null,"conditions":[]}`, errType: ErrUnsupportedFilter},
		{name: "conditions missing", filter: `{"operator":"AND"}`, errType: ErrUnsupportedFilter},
		{name: "conditions not an array", filter: `{"operator":"AND","conditions":{"a":1}}`, errType: ErrUnsupportedFilter},
		{name: "conditions null", filter: `{"operator":"AND","conditions":null}`, errType: ErrUnsupportedFilter},
		{name: "a condition not an object", filter: `{"operator":"AND","conditions":[1]}`, errType: ErrUnsupportedFilter},
		{name: "a condition null", filter: `{"operator":"OR","conditions":[null]}`, errType: ErrUnsupportedFilter},
		{name: "an operator with extra members", filter: `{"operator":"AND","conditions":[],"a":1}`, errType: ErrUnsupportedFilter},
		{name: "a refused condition", filter: `{"fail":true}`, errType: ErrUnsupportedFilter},
		{name: "a refused nested condition", filter: `{"operator":"NOT","conditions":[{"a":1},{"fail":true}]}`, errType: ErrUnsupportedFilter},
		{name: "nested too deeply", filter: nestedFilter(65), errType: ErrUnsupportedFilter},
		{name: "nested far too deeply", filter: nestedFilter(1000), errType: ErrUnsupportedFilter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := CompileFilter(json.RawMessage(tc.filter), testCondition)
			if tc.errType != "" {
				if typ, ok := methodErrorType(err); !ok || typ != tc.errType {
					t.Fatalf("CompileFilter error = %v, want %s", err, tc.errType)
				}
				if f != nil {
					t.Errorf("a failed compile returned a filter")
				}
				return
			}
			if err != nil {
				t.Fatalf("CompileFilter: %v", err)
			}
			got := []string{}
			for _, o := range objs {
				if f(o) {
					got = append(got, o["id"].(string))
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("matched %q, want %q", got, tc.want)
			}
		})
	}
}

// A type without filter conditions answers unsupportedFilter for any
// condition, even inside an operator, but accepts null.
func TestCompileFilter_NoConditions(t *testing.T) {
	for _, filter := range []string{`{"a":1}`, `{"operator":"AND","conditions":[{"a":1}]}`} {
		if _, err := CompileFilter(json.RawMessage(filter), nil); err == nil {
			t.Errorf("CompileFilter(%s) without conditions succeeded", filter)
		} else if typ, _ := methodErrorType(err); typ != ErrUnsupportedFilter {
			t.Errorf("CompileFilter(%s) = %v, want unsupportedFilter", filter, err)
		}
	}
	f, err := CompileFilter(json.RawMessage(`null`), nil)
	if err != nil || !f(map[string]any{}) {
		t.Errorf("null filter without conditions: %v", err)
	}
}

func TestWindow(t *testing.T) {
	ids := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}
	intp := func(n int) *int { return &n }
	strp := func(s string) *string { return &s }
	tests := []struct {
		name    string
		args    QueryArgs
		want    string // the page, ids joined
		pos     int
		errType ErrorType
	}{
		{name: "everything", args: QueryArgs{}, want: "abcdefghij", pos: 0},
		{name: "position", args: QueryArgs{Position: 3}, want: "defghij", pos: 3},
		{name: "position and limit", args: QueryArgs{Position: 3, Limit: intp(2)}, want: "de", pos: 3},
		{name: "limit past the end", args: QueryArgs{Position: 8, Limit: intp(5)}, want: "ij", pos: 8},
		{name: "limit 0", args: QueryArgs{Position: 2, Limit: intp(0)}, want: "", pos: 2},
		{name: "position at the end", args: QueryArgs{Position: 10}, want: "", pos: 10},
		{name: "position past the end is clamped", args: QueryArgs{Position: 50, Limit: intp(3)}, want: "", pos: 10},
		// RFC 8620 §5.5: a negative position counts from the end.
		{name: "negative position", args: QueryArgs{Position: -3}, want: "hij", pos: 7},
		{name: "negative position and limit", args: QueryArgs{Position: -3, Limit: intp(2)}, want: "hi", pos: 7},
		{name: "negative position before the start is 0", args: QueryArgs{Position: -50, Limit: intp(2)}, want: "ab", pos: 0},
		{name: "anchor", args: QueryArgs{Anchor: strp("d")}, want: "defghij", pos: 3},
		{name: "anchor with limit", args: QueryArgs{Anchor: strp("d"), Limit: intp(2)}, want: "de", pos: 3},
		{name: "anchor ignores position", args: QueryArgs{Anchor: strp("d"), Position: 8, Limit: intp(1)}, want: "d", pos: 3},
		{name: "anchor with a negative offset", args: QueryArgs{Anchor: strp("d"), AnchorOffset: -2, Limit: intp(3)}, want: "bcd", pos: 1},
		{name: "anchor offset before the start is 0", args: QueryArgs{Anchor: strp("b"), AnchorOffset: -5, Limit: intp(3)}, want: "abc", pos: 0},
		{name: "anchor with a positive offset", args: QueryArgs{Anchor: strp("d"), AnchorOffset: 2, Limit: intp(3)}, want: "fgh", pos: 5},
		{name: "anchor offset past the end", args: QueryArgs{Anchor: strp("h"), AnchorOffset: 5, Limit: intp(3)}, want: "", pos: 10},
		{name: "anchor last with limit 0", args: QueryArgs{Anchor: strp("j"), Limit: intp(0)}, want: "", pos: 9},
		{name: "anchor not found", args: QueryArgs{Anchor: strp("zz")}, errType: ErrAnchorNotFound},
		{name: "empty anchor not found", args: QueryArgs{Anchor: strp("")}, errType: ErrAnchorNotFound},
		// Client numbers near the int range must not wrap around.
		{name: "huge limit", args: QueryArgs{Position: 1, Limit: intp(math.MaxInt)}, want: "bcdefghij", pos: 1},
		{name: "huge position", args: QueryArgs{Position: math.MaxInt, Limit: intp(math.MaxInt)}, want: "", pos: 10},
		{name: "most negative position", args: QueryArgs{Position: math.MinInt, Limit: intp(1)}, want: "a", pos: 0},
		{name: "huge anchor offset", args: QueryArgs{Anchor: strp("c"), AnchorOffset: math.MaxInt, Limit: intp(1)}, want: "", pos: 10},
		{name: "most negative anchor offset", args: QueryArgs{Anchor: strp("c"), AnchorOffset: math.MinInt, Limit: intp(1)}, want: "a", pos: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			page, pos, err := Window(ids, &tc.args)
			if tc.errType != "" {
				if typ, ok := methodErrorType(err); !ok || typ != tc.errType {
					t.Fatalf("Window error = %v, want %s", err, tc.errType)
				}
				return
			}
			if err != nil {
				t.Fatalf("Window: %v", err)
			}
			if got := strings.Join(page, ""); got != tc.want || pos != tc.pos {
				t.Errorf("Window = %q at %d, want %q at %d", got, pos, tc.want, tc.pos)
			}
		})
	}
}

func TestWindow_EmptyResults(t *testing.T) {
	for _, pos := range []int{0, -1, 5} {
		page, p, err := Window(nil, &QueryArgs{Position: pos})
		if err != nil || len(page) != 0 || p != 0 {
			t.Errorf("Window(nil, position %d) = %q, %d, %v; want empty at 0", pos, page, p, err)
		}
	}
	anchor := "a"
	if _, _, err := Window(nil, &QueryArgs{Anchor: &anchor}); err == nil {
		t.Errorf("anchor in no results was found")
	}
}

func TestCheckQueryArgs(t *testing.T) {
	intp := func(n int) *int { return &n }
	tests := []struct {
		name  string
		limit *int
		ok    bool
	}{
		{"no limit", nil, true},
		{"limit 0", intp(0), true},
		{"limit 5", intp(5), true},
		{"negative limit", intp(-1), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkQueryArgs(&QueryArgs{Limit: tc.limit})
			if (err == nil) != tc.ok {
				t.Fatalf("checkQueryArgs = %v, want ok %v", err, tc.ok)
			}
			if err != nil {
				if typ, _ := methodErrorType(err); typ != ErrInvalidArguments {
					t.Errorf("error = %v, want invalidArguments", err)
				}
			}
		})
	}
}

func TestQueryChangesFromLog(t *testing.T) {
	tests := []struct {
		name    string
		set     ChangeSet
		ids     []string
		max     *int
		tooMany bool
		removed []string
		added   string // "id@index" joined by spaces
	}{
		{
			name:    "nothing changed",
			set:     ChangeSet{Created: []string{}, Updated: []string{}, Destroyed: []string{}},
			ids:     []string{"a", "b"},
			removed: []string{}, added: "",
		},
		{
			name:    "created is added at its index",
			set:     ChangeSet{Created: []string{"c"}, Updated: []string{}, Destroyed: []string{}},
			ids:     []string{"a", "c", "b"},
			removed: []string{}, added: "c@1",
		},
		{
			name:    "updated is removed and added back when it still matches",
			set:     ChangeSet{Created: []string{}, Updated: []string{"b", "x"}, Destroyed: []string{}},
			ids:     []string{"a", "b"},
			removed: []string{"b", "x"}, added: "b@1",
		},
		{
			name:    "destroyed is removed",
			set:     ChangeSet{Created: []string{}, Updated: []string{}, Destroyed: []string{"d"}},
			ids:     []string{"a"},
			removed: []string{"d"}, added: "",
		},
		{
			name:    "added in index order",
			set:     ChangeSet{Created: []string{"z", "y"}, Updated: []string{"a"}, Destroyed: []string{}},
			ids:     []string{"y", "a", "b", "z"},
			removed: []string{"a"}, added: "y@0 a@1 z@3",
		},
		{
			name:    "every change is reported, to the end of the results",
			set:     ChangeSet{Created: []string{"b", "d"}, Updated: []string{}, Destroyed: []string{}},
			ids:     []string{"a", "b", "c", "d"},
			removed: []string{}, added: "b@1 d@3",
		},
		{
			// RFC 8620 §5.6: each removed or added item is one change.
			name:    "maxChanges counts removed and added items",
			set:     ChangeSet{Created: []string{}, Updated: []string{"c"}, Destroyed: []string{}},
			ids:     []string{"a", "b", "c", "d"},
			max:     intp(1),
			tooMany: true,
		},
		{
			name:    "maxChanges equal to the items is enough",
			set:     ChangeSet{Created: []string{}, Updated: []string{"c"}, Destroyed: []string{}},
			ids:     []string{"a", "b", "c", "d"},
			max:     intp(2),
			removed: []string{"c"}, added: "c@2",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			removed, added, err := QueryChangesFromLog(&tc.set, tc.ids, tc.max)
			if tc.tooMany {
				var me *MethodError
				if !errors.As(err, &me) || me.Type != ErrTooManyChanges {
					t.Fatalf("err = %v, want tooManyChanges", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			parts := []string{}
			for _, a := range added {
				parts = append(parts, fmt.Sprintf("%s@%d", a.ID, a.Index))
			}
			if !slices.Equal(removed, tc.removed) || strings.Join(parts, " ") != tc.added {
				t.Errorf("QueryChangesFromLog = %q, %q; want %q, %q", removed, parts, tc.removed, tc.added)
			}
			if removed == nil || added == nil {
				t.Errorf("nil lists: removed %v added %v", removed, added)
			}
		})
	}
}

func intp(n int) *int { return &n }
