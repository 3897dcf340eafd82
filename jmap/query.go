package jmap

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/jmapd/jmapd/store"
)

// Comparator is one sort criterion of /query (RFC 8620 §5.5).
type Comparator struct {
	Property    string `json:"property"`
	IsAscending *bool  `json:"isAscending"`
	Collation   string `json:"collation"`
	// Keyword is RFC 8621's extra argument for keyword sorts.
	Keyword string `json:"keyword,omitempty"`
}

// Ascending reports the comparator's direction (default true).
func (c Comparator) Ascending() bool { return c.IsAscending == nil || *c.IsAscending }

// QueryArgs are the arguments of /query.
type QueryArgs struct {
	AccountID      string          `json:"accountId"`
	Filter         json.RawMessage `json:"filter"`
	Sort           []Comparator    `json:"sort"`
	Position       int             `json:"position"`
	Anchor         *string         `json:"anchor"`
	AnchorOffset   int             `json:"anchorOffset"`
	Limit          *int            `json:"limit"`
	CalculateTotal bool            `json:"calculateTotal"`
}

// QueryResponse is the response of /query.
type QueryResponse struct {
	AccountID           string   `json:"accountId"`
	QueryState          string   `json:"queryState"`
	CanCalculateChanges bool     `json:"canCalculateChanges"`
	Position            int      `json:"position"`
	IDs                 []string `json:"ids"`
	Total               *int     `json:"total,omitempty"`
	Limit               *int     `json:"limit,omitempty"`
}

// Filter is a compiled FilterOperator or FilterCondition.
type Filter func(obj map[string]any) bool

// CompileFilter compiles a filter (RFC 8620 §5.5): a FilterOperator with
// "operator" AND, OR or NOT and "conditions", or a FilterCondition that cond
// compiles. Null matches everything.
func CompileFilter(raw json.RawMessage, cond func(map[string]any) (func(map[string]any) bool, error)) (Filter, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return func(map[string]any) bool { return true }, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, InvalidArguments("filter must be an object")
	}
	return compileFilter(m, cond, 0)
}

func compileFilter(m map[string]any, cond func(map[string]any) (func(map[string]any) bool, error), depth int) (Filter, error) {
	if depth > 64 {
		return nil, NewMethodError(ErrUnsupportedFilter, "the filter is nested too deeply")
	}
	op, isOp := m["operator"]
	if !isOp {
		if cond == nil {
			return nil, NewMethodError(ErrUnsupportedFilter, "this type has no filter conditions")
		}
		f, err := cond(m)
		if err != nil {
			return nil, err
		}
		return f, nil
	}
	for k := range m {
		if k != "operator" && k != "conditions" {
			return nil, NewMethodError(ErrUnsupportedFilter, fmt.Sprintf("a FilterOperator has no %q", k))
		}
	}
	list, ok := m["conditions"].([]any)
	if !ok {
		return nil, NewMethodError(ErrUnsupportedFilter, "a FilterOperator needs a conditions array")
	}
	subs := make([]Filter, 0, len(list))
	for _, x := range list {
		sm, ok := x.(map[string]any)
		if !ok {
			return nil, NewMethodError(ErrUnsupportedFilter, "each condition must be an object")
		}
		f, err := compileFilter(sm, cond, depth+1)
		if err != nil {
			return nil, err
		}
		subs = append(subs, f)
	}
	switch op {
	case "AND":
		return AllOf(subs), nil
	case "OR":
		return func(o map[string]any) bool {
			for _, f := range subs {
				if f(o) {
					return true
				}
			}
			return false
		}, nil
	case "NOT":
		return func(o map[string]any) bool {
			for _, f := range subs {
				if f(o) {
					return false
				}
			}
			return true
		}, nil
	}
	return nil, NewMethodError(ErrUnsupportedFilter, fmt.Sprintf("unknown operator %v", op))
}

// AllOf returns a test that holds when every one of tests holds (a
// FilterCondition's members, an AND operator).
func AllOf[T any, F ~func(T) bool](tests []F) F {
	return func(x T) bool {
		for _, t := range tests {
			if !t(x) {
				return false
			}
		}
		return true
	}
}

// Window applies position, anchor, anchorOffset and limit to the full sorted
// result ids (RFC 8620 §5.5) and returns the page and its start position.
func Window(ids []string, args *QueryArgs) ([]string, int, error) {
	total := len(ids)
	pos := args.Position
	if args.Anchor != nil {
		idx := slices.Index(ids, *args.Anchor)
		if idx < 0 {
			return nil, 0, NewMethodError(ErrAnchorNotFound, "")
		}
		// Compared, not added, so client numbers near the int range
		// cannot wrap around.
		switch off := args.AnchorOffset; {
		case off < -idx:
			pos = 0
		case off > total-idx:
			pos = total
		default:
			pos = idx + off
		}
	} else if pos < 0 {
		pos = max(total+pos, 0)
	}
	if pos > total {
		pos = total
	}
	end := total
	if args.Limit != nil && *args.Limit < end-pos {
		end = pos + *args.Limit
	}
	return ids[pos:end], pos, nil
}

// checkQueryArgs answers invalidArguments for a negative limit.
func checkQueryArgs(args *QueryArgs) error {
	if args.Limit != nil && *args.Limit < 0 {
		return InvalidArguments("limit must not be negative")
	}
	return nil
}

// Sorter compiles sort comparators into one comparison of records; an
// unknown property or collation answers unsupportedSort.
func (t *Type) Sorter(sorts []Comparator) (func(a, b map[string]any) int, error) {
	return t.compileSort(sorts)
}

// compileSort builds the comparison of the type's sort functions, ending
// with the id so the order is total.
func (t *Type) compileSort(sorts []Comparator) (func(a, b map[string]any) int, error) {
	type step struct {
		f    func(a, b map[string]any, collation string) int
		coll string
		asc  bool
	}
	steps := make([]step, 0, len(sorts))
	for _, s := range sorts {
		f, ok := t.Sort[s.Property]
		if !ok {
			return nil, NewMethodError(ErrUnsupportedSort, fmt.Sprintf("cannot sort by %q", s.Property))
		}
		if _, ok := CompareStrings(s.Collation, "", ""); !ok {
			return nil, NewMethodError(ErrUnsupportedSort, fmt.Sprintf("unknown collation %q", s.Collation))
		}
		steps = append(steps, step{f, s.Collation, s.Ascending()})
	}
	return func(a, b map[string]any) int {
		for _, s := range steps {
			if r := s.f(a, b, s.coll); r != 0 {
				if !s.asc {
					return -r
				}
				return r
			}
		}
		ai, _ := a["id"].(string)
		bi, _ := b["id"].(string)
		return CompareIDs(ai, bi)
	}, nil
}

// CompareIDs orders ids as the store makes them, that is by creation: by
// length, then octet by octet.
func CompareIDs(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// runQuery returns the ids of every record matching filter, sorted.
func (t *Type) runQuery(ctx context.Context, tx store.Tx, acct store.AccountID, f Filter, cmp func(a, b map[string]any) int) ([]string, error) {
	all, err := t.LoadAll(ctx, tx, acct)
	if err != nil {
		return nil, err
	}
	return SortedIDs(all, f, cmp), nil
}

// SortedIDs returns the ids of the objects of all that f keeps, in cmp's
// order (stable); it reorders all.
func SortedIDs(all []map[string]any, f Filter, cmp func(a, b map[string]any) int) []string {
	objs := all[:0]
	for _, obj := range all {
		if f(obj) {
			objs = append(objs, obj)
		}
	}
	sort.SliceStable(objs, func(i, j int) bool { return cmp(objs[i], objs[j]) < 0 })
	ids := make([]string, len(objs))
	for i, o := range objs {
		ids[i], _ = o["id"].(string)
	}
	return ids
}

func (t *Type) query(ctx context.Context, c *Call) (any, error) {
	var args QueryArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	return RunQuery(ctx, c, &args, t.Capability, t.Name, nil, func(tx store.Tx, acct store.AccountID) ([]string, error) {
		return t.results(ctx, tx, acct, args.Filter, args.Sort)
	})
}

// results compiles a filter and sort and runs them over every record.
func (t *Type) results(ctx context.Context, tx store.Tx, acct store.AccountID, filter json.RawMessage, sorts []Comparator) ([]string, error) {
	f, err := CompileFilter(filter, t.Filter)
	if err != nil {
		return nil, err
	}
	cmp, err := t.compileSort(sorts)
	if err != nil {
		return nil, err
	}
	return t.runQuery(ctx, tx, acct, f, cmp)
}

// QueryResults returns every result of a query in acct, sorted.
type QueryResults func(tx store.Tx, acct store.AccountID) ([]string, error)

// QueryPage answers a query's page directly (from an index) when it can;
// ok false means "use QueryResults".
type QueryPage func(tx store.Tx, acct store.AccountID) (ids []string, pos int, total *int, ok bool, err error)

// RunQuery answers /query (RFC 8620 §5.5) for any type: it checks the
// arguments and the account, reads the query state, and windows what
// results returns, unless page answers first.
func RunQuery(ctx context.Context, c *Call, args *QueryArgs, capability, typ string, page QueryPage, results QueryResults) (*QueryResponse, error) {
	if err := checkQueryArgs(args); err != nil {
		return nil, err
	}
	acct, err := c.Account(ctx, args.AccountID, capability)
	if err != nil {
		return nil, err
	}
	var resp *QueryResponse
	err = c.Store().View(ctx, func(tx store.Tx) error {
		st, err := tx.State(acct.ID, typ)
		if err != nil {
			return err
		}
		resp = &QueryResponse{AccountID: args.AccountID, QueryState: FormatState(uint64(st)), CanCalculateChanges: true}
		if page != nil {
			ids, pos, total, ok, err := page(tx, acct.ID)
			if err != nil {
				return err
			}
			if ok {
				resp.IDs, resp.Position, resp.Total = ids, pos, total
				return nil
			}
		}
		ids, err := results(tx, acct.ID)
		if err != nil {
			return err
		}
		if resp.IDs, resp.Position, err = Window(ids, args); err != nil {
			return err
		}
		if args.CalculateTotal {
			n := len(ids)
			resp.Total = &n
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// ChangedResults returns the current sorted results of a query after the
// changes in set; it may answer cannotCalculateChanges, or add ids to
// set.Updated that the changes moved without touching them.
type ChangedResults func(tx store.Tx, acct store.AccountID, set *ChangeSet) ([]string, error)

// RunQueryChanges answers /queryChanges (RFC 8620 §5.6) for a type whose
// query results depend on each record's own properties, from the change
// log and the current results.
func RunQueryChanges(ctx context.Context, c *Call, args *QueryChangesArgs, capability, typ string, results ChangedResults) (*QueryChangesResponse, error) {
	if err := CheckQueryChangesArgs(args); err != nil {
		return nil, err
	}
	acct, err := c.Account(ctx, args.AccountID, capability)
	if err != nil {
		return nil, err
	}
	var resp *QueryChangesResponse
	err = c.Store().View(ctx, func(tx store.Tx) error {
		set, err := ReadChanges(tx, acct.ID, typ, args.SinceQueryState, 0)
		if err != nil {
			return err
		}
		ids, err := results(tx, acct.ID, set)
		if err != nil {
			return err
		}
		removed, added, err := QueryChangesFromLog(set, ids, args.MaxChanges)
		if err != nil {
			return err
		}
		resp = &QueryChangesResponse{AccountID: args.AccountID, OldQueryState: args.SinceQueryState,
			NewQueryState: set.NewState, Removed: removed, Added: added}
		if args.CalculateTotal {
			n := len(ids)
			resp.Total = &n
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// QueryChangesArgs are the arguments of /queryChanges (RFC 8620 §5.6).
type QueryChangesArgs struct {
	AccountID       string          `json:"accountId"`
	Filter          json.RawMessage `json:"filter"`
	Sort            []Comparator    `json:"sort"`
	SinceQueryState string          `json:"sinceQueryState"`
	MaxChanges      *int            `json:"maxChanges"`
	UpToID          *string         `json:"upToId"`
	CalculateTotal  bool            `json:"calculateTotal"`
}

// AddedItem is an id added to query results at an index.
type AddedItem struct {
	ID    string `json:"id"`
	Index int    `json:"index"`
}

// QueryChangesResponse is the response of /queryChanges.
type QueryChangesResponse struct {
	AccountID     string      `json:"accountId"`
	OldQueryState string      `json:"oldQueryState"`
	NewQueryState string      `json:"newQueryState"`
	Total         *int        `json:"total,omitempty"`
	Removed       []string    `json:"removed"`
	Added         []AddedItem `json:"added"`
}

// QueryChangesFromLog computes /queryChanges for a query whose result
// depends only on each record's own properties: every record changed since
// the old state is reported removed, and added back at its current index
// when it matches now (RFC 8620 §5.6 allows removed ids that were not in the
// old results). ids are the current sorted results. Each removed or added
// item counts as one change against maxChanges (tooManyChanges). upToId is
// not used: it only lets a server omit changes, and only for immutable
// sorts and filters.
func QueryChangesFromLog(set *ChangeSet, ids []string, maxChanges *int) ([]string, []AddedItem, error) {
	changed := map[string]bool{}
	removed := []string{}
	for _, l := range [][]string{set.Created, set.Updated, set.Destroyed} {
		for _, id := range l {
			changed[id] = true
		}
	}
	seen := map[string]bool{}
	for _, l := range [][]string{set.Updated, set.Destroyed} {
		for _, id := range l {
			if !seen[id] {
				seen[id] = true
				removed = append(removed, id)
			}
		}
	}
	added := []AddedItem{}
	for i, id := range ids {
		if changed[id] {
			added = append(added, AddedItem{ID: id, Index: i})
		}
	}
	if maxChanges != nil && len(removed)+len(added) > *maxChanges {
		return nil, nil, NewMethodError(ErrTooManyChanges, "")
	}
	return removed, added, nil
}

// CheckQueryChangesArgs answers invalidArguments for a missing
// sinceQueryState or a maxChanges that is not positive.
func CheckQueryChangesArgs(args *QueryChangesArgs) error {
	if args.SinceQueryState == "" {
		return InvalidArguments("sinceQueryState is required")
	}
	if args.MaxChanges != nil && *args.MaxChanges <= 0 {
		return InvalidArguments("maxChanges must be a positive integer")
	}
	return nil
}

func (t *Type) queryChanges(ctx context.Context, c *Call) (any, error) {
	var args QueryChangesArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	return RunQueryChanges(ctx, c, &args, t.Capability, t.Name, func(tx store.Tx, acct store.AccountID, _ *ChangeSet) ([]string, error) {
		return t.results(ctx, tx, acct, args.Filter, args.Sort)
	})
}
