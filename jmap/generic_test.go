package jmap

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/jmapd/jmapd/store"
	"github.com/jmapd/jmapd/store/badger"
)

const (
	testAcct = store.AccountID("A1")
	testType = "Foo"
)

// openTestStore opens a Badger store in a fresh temp dir and closes it when
// the test ends.
func openTestStore(t testing.TB) *badger.DB {
	t.Helper()
	db, err := badger.Open(badger.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return db
}

// logOp is one record write of a test commit.
type logOp struct {
	kind  byte // 'c' create, 'u' put, 'p' put with props, 'd' delete
	id    string
	props []string
}

func opCreate(id string) logOp                 { return logOp{kind: 'c', id: id} }
func opPut(id string) logOp                    { return logOp{kind: 'u', id: id} }
func opPutProps(id string, ps ...string) logOp { return logOp{kind: 'p', id: id, props: ps} }
func opDestroy(id string) logOp                { return logOp{kind: 'd', id: id} }

func (o logOp) String() string { return fmt.Sprintf("%c%s", o.kind, o.id) }

// idsOf returns its arguments as a non-nil slice.
func idsOf(ids ...string) []string { return append([]string{}, ids...) }

// noIDs is the empty, non-nil id list ReadChanges answers.
func noIDs() []string { return []string{} }

// stateAfter is the state string after n commits.
func stateAfter(n int) string { return FormatState(uint64(n)) }

// methodErrorType returns the type of a *MethodError in err's chain.
func methodErrorType(err error) (ErrorType, bool) {
	var me *MethodError
	if !errors.As(err, &me) {
		return "", false
	}
	return me.Type, true
}

// apply writes the logOp in tx.
func (o logOp) apply(tx store.Tx) error {
	data := []byte(`{"id":"` + o.id + `"}`)
	switch o.kind {
	case 'c':
		return tx.Create(testAcct, testType, o.id, data)
	case 'u':
		return tx.Put(testAcct, testType, o.id, data)
	case 'p':
		return tx.PutProps(testAcct, testType, o.id, data, o.props)
	case 'd':
		return tx.Delete(testAcct, testType, o.id)
	}
	return fmt.Errorf("unknown op %c", o.kind)
}

// commitOps runs ops in one transaction.
func commitOps(t testing.TB, db store.Store, ops []logOp) {
	t.Helper()
	if _, err := db.Update(context.Background(), func(tx store.Tx) error {
		for _, o := range ops {
			if err := o.apply(tx); err != nil {
				return fmt.Errorf("%v: %w", o, err)
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("commit %v: %v", ops, err)
	}
}

// readChanges runs ReadChanges in a View.
func readChanges(t testing.TB, db store.Store, since string, max int) (*ChangeSet, error) {
	t.Helper()
	var cs *ChangeSet
	err := db.View(context.Background(), func(tx store.Tx) error {
		var err error
		cs, err = ReadChanges(tx, testAcct, testType, since, max)
		return err
	})
	return cs, err
}

func TestParseChangeState(t *testing.T) {
	tests := []struct {
		in   string
		want changeState
		ok   bool
	}{
		{"0", changeState{}, true},
		{"7", changeState{State: 7}, true},
		{"18446744073709551615", changeState{State: 1<<64 - 1}, true},
		{"7.3", changeState{State: 7, Skip: 3}, true},
		{"0.1", changeState{State: 0, Skip: 1}, true},
		{"", changeState{}, false},
		{"abc", changeState{}, false},
		{"-1", changeState{}, false},
		{"+1", changeState{}, false},
		{"07", changeState{}, false},
		{"00", changeState{}, false},
		{" 7", changeState{}, false},
		{"7 ", changeState{}, false},
		{"0x10", changeState{}, false},
		{"1_000", changeState{}, false},
		{"18446744073709551616", changeState{}, false},
		{"7.", changeState{}, false},
		{".3", changeState{}, false},
		{"7.0", changeState{}, false},
		{"7.-1", changeState{}, false},
		{"7.x", changeState{}, false},
		{"7.3.1", changeState{}, false},
		{"7.99999999999999999999", changeState{}, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.in), func(t *testing.T) {
			got, ok := parseChangeState(tc.in)
			if ok != tc.ok || got != tc.want {
				t.Fatalf("parseChangeState(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
			}
			if ok && got.String() != tc.in {
				t.Errorf("String() = %q, want %q back", got.String(), tc.in)
			}
		})
	}
}

func TestReadChanges(t *testing.T) {
	tests := []struct {
		name      string
		commits   [][]logOp
		since     string
		max       int
		created   []string
		updated   []string
		destroyed []string
		props     []string // nil: any property
		newState  string
		more      bool
		errType   ErrorType
	}{
		{
			name:    "RFC 8620 §5.2 created then updated is created",
			commits: [][]logOp{{opCreate("a")}, {opPut("a")}},
			since:   "0", created: idsOf("a"), updated: noIDs(), destroyed: noIDs(), newState: "2",
		},
		{
			name:    "RFC 8620 §5.2 created then destroyed is omitted",
			commits: [][]logOp{{opCreate("a"), opCreate("b")}, {opDestroy("a")}},
			since:   "0", created: idsOf("b"), updated: noIDs(), destroyed: noIDs(), newState: "2",
		},
		{
			name:    "RFC 8620 §5.2 updated then destroyed is destroyed",
			commits: [][]logOp{{opCreate("a")}, {opPut("a")}, {opDestroy("a")}},
			since:   "1", created: noIDs(), updated: noIDs(), destroyed: idsOf("a"), newState: "3",
		},
		{
			name:    "created, updated and destroyed in one commit is omitted",
			commits: [][]logOp{{opCreate("a"), opPut("a"), opDestroy("a")}},
			since:   "0", created: noIDs(), updated: noIDs(), destroyed: noIDs(), newState: "1",
		},
		{
			name:    "updated in one commit and destroyed in the next",
			commits: [][]logOp{{opCreate("a"), opCreate("b")}, {opPut("a"), opPut("b")}, {opDestroy("b")}},
			since:   "1", created: noIDs(), updated: idsOf("a"), destroyed: idsOf("b"), newState: "3",
		},
		{
			name:    "updated twice is updated once",
			commits: [][]logOp{{opCreate("a")}, {opPut("a")}, {opPut("a"), opPut("a")}},
			since:   "1", created: noIDs(), updated: idsOf("a"), destroyed: noIDs(), newState: "3",
		},
		{
			name:    "first-seen order across commits",
			commits: [][]logOp{{opCreate("b"), opCreate("a")}, {opCreate("c")}, {opCreate("d"), opPut("b")}},
			since:   "0", created: idsOf("b", "a", "c", "d"), updated: noIDs(), destroyed: noIDs(), newState: "3",
		},
		{
			name:    "no changes since the current state",
			commits: [][]logOp{{opCreate("a")}},
			since:   "1", created: noIDs(), updated: noIDs(), destroyed: noIDs(), newState: "1",
		},
		{
			name:  "nothing ever written",
			since: "0", created: noIDs(), updated: noIDs(), destroyed: noIDs(), newState: "0",
		},
		{
			name:    "updated properties are merged",
			commits: [][]logOp{{opCreate("a"), opCreate("b")}, {opPutProps("a", "name")}, {opPutProps("b", "role", "name")}},
			since:   "1", created: noIDs(), updated: idsOf("a", "b"), destroyed: noIDs(), newState: "3",
			props: []string{"name", "role"},
		},
		{
			name:    "an update of any property makes properties unknown",
			commits: [][]logOp{{opCreate("a"), opCreate("b")}, {opPutProps("a", "name")}, {opPut("b")}},
			since:   "1", created: noIDs(), updated: idsOf("a", "b"), destroyed: noIDs(), newState: "3",
		},
		{
			name:    "creates alone report no properties",
			commits: [][]logOp{{opCreate("a")}},
			since:   "0", created: idsOf("a"), updated: noIDs(), destroyed: noIDs(), newState: "1",
		},
		{
			name:    "maxChanges at a commit boundary",
			commits: [][]logOp{{opCreate("a")}, {opCreate("b")}, {opCreate("c")}},
			since:   "0", max: 2, created: idsOf("a", "b"), updated: noIDs(), destroyed: noIDs(), newState: "2", more: true,
		},
		{
			name:    "maxChanges equal to everything",
			commits: [][]logOp{{opCreate("a")}, {opCreate("b")}},
			since:   "0", max: 2, created: idsOf("a", "b"), updated: noIDs(), destroyed: noIDs(), newState: "2",
		},
		{
			name:    "maxChanges cuts inside a commit",
			commits: [][]logOp{{opCreate("a"), opCreate("b"), opCreate("c")}, {opCreate("d")}},
			since:   "0", max: 2, created: idsOf("a", "b"), updated: noIDs(), destroyed: noIDs(), newState: "0.2", more: true,
		},
		{
			name:    "a cut state continues inside the commit",
			commits: [][]logOp{{opCreate("a"), opCreate("b"), opCreate("c")}, {opCreate("d")}},
			since:   "0.2", max: 1, created: idsOf("c"), updated: noIDs(), destroyed: noIDs(), newState: "1", more: true,
		},
		{
			name:    "a cut state continues into the next commits",
			commits: [][]logOp{{opCreate("a"), opCreate("b"), opCreate("c")}, {opCreate("d")}, {opPut("a")}},
			since:   "0.2", created: idsOf("c", "d"), updated: idsOf("a"), destroyed: noIDs(), newState: "3",
		},
		{
			name:    "a cut state cut again in the same commit",
			commits: [][]logOp{{opCreate("a"), opCreate("b"), opCreate("c"), opCreate("d"), opCreate("e")}},
			since:   "0.1", max: 2, created: idsOf("b", "c"), updated: noIDs(), destroyed: noIDs(), newState: "0.3", more: true,
		},
		{
			name:    "a cut after a whole commit",
			commits: [][]logOp{{opCreate("a")}, {opCreate("b"), opCreate("c"), opCreate("d")}},
			since:   "0", max: 2, created: idsOf("a", "b"), updated: noIDs(), destroyed: noIDs(), newState: "1.1", more: true,
		},
		{
			name:    "a cut reports properties as unknown",
			commits: [][]logOp{{opCreate("a"), opCreate("b")}, {opPutProps("a", "name"), opPutProps("b", "name")}},
			since:   "1", max: 1, created: noIDs(), updated: idsOf("a"), destroyed: noIDs(), newState: "1.1", more: true,
		},
		{
			// The cut lands on the second id of a commit that created and
			// destroyed it: the first page says created, the next destroyed.
			name:    "a cut between the create and the destroy of one id",
			commits: [][]logOp{{opCreate("a"), opDestroy("a")}},
			since:   "0", max: 1, created: idsOf("a"), updated: noIDs(), destroyed: noIDs(), newState: "0.1", more: true,
		},
		{
			name:    "the rest of a commit after a cut",
			commits: [][]logOp{{opCreate("a"), opDestroy("a")}},
			since:   "0.1", max: 1, created: noIDs(), updated: noIDs(), destroyed: idsOf("a"), newState: "1",
		},

		// RFC 8620 §5.2: cannotCalculateChanges.
		{name: "future state", commits: [][]logOp{{opCreate("a")}}, since: "2", errType: ErrCannotCalculateChanges},
		{name: "far future state", since: "18446744073709551615", errType: ErrCannotCalculateChanges},
		{name: "cut of the current state", commits: [][]logOp{{opCreate("a"), opCreate("b")}}, since: "1.1", errType: ErrCannotCalculateChanges},
		{name: "cut past the end of its commit", commits: [][]logOp{{opCreate("a"), opCreate("b")}, {opCreate("c")}}, since: "0.2", errType: ErrCannotCalculateChanges},
		{name: "cut far past the end of its commit", commits: [][]logOp{{opCreate("a"), opCreate("b")}, {opCreate("c")}}, since: "0.99", errType: ErrCannotCalculateChanges},
		{name: "garbage state", commits: [][]logOp{{opCreate("a")}}, since: "abc", errType: ErrCannotCalculateChanges},
		{name: "empty state", commits: [][]logOp{{opCreate("a")}}, since: "", errType: ErrCannotCalculateChanges},
		{name: "negative state", commits: [][]logOp{{opCreate("a")}}, since: "-1", errType: ErrCannotCalculateChanges},
		{name: "leading zero state", commits: [][]logOp{{opCreate("a")}}, since: "01", errType: ErrCannotCalculateChanges},
		{name: "zero cut", commits: [][]logOp{{opCreate("a"), opCreate("b")}}, since: "0.0", errType: ErrCannotCalculateChanges},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := openTestStore(t)
			for _, c := range tc.commits {
				commitOps(t, db, c)
			}
			got, err := readChanges(t, db, tc.since, tc.max)
			if tc.errType != "" {
				if typ, ok := methodErrorType(err); !ok || typ != tc.errType {
					t.Fatalf("ReadChanges(%q) = %+v, %v; want %s", tc.since, got, err, tc.errType)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadChanges(%q): %v", tc.since, err)
			}
			want := &ChangeSet{Created: tc.created, Updated: tc.updated, Destroyed: tc.destroyed,
				Props: tc.props, NewState: tc.newState, More: tc.more}
			if !changeSetsEqual(got, want) {
				t.Fatalf("ReadChanges(%q, %d) =\n%+v\nwant\n%+v", tc.since, tc.max, *got, *want)
			}
		})
	}
}

func changeSetsEqual(a, b *ChangeSet) bool {
	return slices.Equal(a.Created, b.Created) && slices.Equal(a.Updated, b.Updated) &&
		slices.Equal(a.Destroyed, b.Destroyed) && slices.Equal(a.Props, b.Props) &&
		(a.Props == nil) == (b.Props == nil) && a.NewState == b.NewState && a.More == b.More &&
		a.Created != nil && a.Updated != nil && a.Destroyed != nil
}

// A rejected state changes nothing: reading it again, or reading a good
// state, answers as before.
func TestReadChanges_BadStateChangesNothing(t *testing.T) {
	db := openTestStore(t)
	commitOps(t, db, []logOp{opCreate("a"), opCreate("b")})
	before, err := readChanges(t, db, "0", 0)
	if err != nil {
		t.Fatalf("ReadChanges: %v", err)
	}
	for _, bad := range []string{"5", "0.2", "x"} {
		if _, err := readChanges(t, db, bad, 0); err == nil {
			t.Fatalf("ReadChanges(%q) succeeded", bad)
		}
	}
	after, err := readChanges(t, db, "0", 0)
	if err != nil {
		t.Fatalf("ReadChanges: %v", err)
	}
	if !changeSetsEqual(before, after) {
		t.Fatalf("after bad states = %+v, want %+v", after, before)
	}
}

// TestReadChanges_PagingMatchesFullRead writes random commits, then pages
// through the change log from several states with maxChanges 1 to 5. A
// client applying the pages in order must end with exactly the records the
// store holds, no page may exceed maxChanges or name an id twice, each page
// must agree with what the client already knows, and every id of one
// unlimited read must show up in some page (RFC 8620 §5.2).
func TestReadChanges_PagingMatchesFullRead(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			db := openTestStore(t)
			rng := rand.New(rand.NewPCG(seed, 0x6a6d6170))
			live := map[string]bool{}
			// snapshots[s] is the set of ids that exist at state s.
			snapshots := []map[string]bool{maps.Clone(live)}
			next := 0
			const commits = 30
			for range commits {
				ops := randomCommit(rng, live, &next)
				commitOps(t, db, ops)
				snapshots = append(snapshots, maps.Clone(live))
			}
			for _, since := range []int{0, 1, commits / 2, commits - 1, commits} {
				full, err := readChanges(t, db, stateAfter(since), 0)
				if err != nil {
					t.Fatalf("full read since %d: %v", since, err)
				}
				checkFullRead(t, full, snapshots[since], snapshots[commits], stateAfter(commits))
				for max := 1; max <= 5; max++ {
					pageThrough(t, db, since, max, full, snapshots[since], snapshots[commits], stateAfter(commits))
				}
			}
		})
	}
}

// randomCommit plans 1 to 6 writes against live, updating it, and returns
// them. Within one commit an id may be created and then updated or
// destroyed, or updated and then destroyed.
func randomCommit(rng *rand.Rand, live map[string]bool, next *int) []logOp {
	var ops []logOp
	for range 1 + rng.IntN(6) {
		ids := slices.Sorted(maps.Keys(live))
		switch r := rng.IntN(10); {
		case r < 4 || len(ids) == 0:
			id := fmt.Sprintf("i%03d", *next)
			*next++
			live[id] = true
			ops = append(ops, opCreate(id))
		case r < 7:
			id := ids[rng.IntN(len(ids))]
			if rng.IntN(2) == 0 {
				ops = append(ops, opPut(id))
			} else {
				ops = append(ops, opPutProps(id, "p"+fmt.Sprint(rng.IntN(3))))
			}
		default:
			id := ids[rng.IntN(len(ids))]
			delete(live, id)
			ops = append(ops, opDestroy(id))
		}
	}
	return ops
}

// checkFullRead checks an unlimited read from the records before and after.
func checkFullRead(t *testing.T, full *ChangeSet, before, after map[string]bool, newState string) {
	t.Helper()
	if full.More || full.NewState != newState {
		t.Fatalf("full read: more %v newState %q, want false %q", full.More, full.NewState, newState)
	}
	for _, id := range full.Created {
		if before[id] || !after[id] {
			t.Errorf("full read: created %s, which existed before or does not exist now", id)
		}
	}
	for _, id := range full.Destroyed {
		if !before[id] || after[id] {
			t.Errorf("full read: destroyed %s, which did not exist before or still exists", id)
		}
	}
	for _, id := range full.Updated {
		if !before[id] || !after[id] {
			t.Errorf("full read: updated %s, which is not in both", id)
		}
	}
	for id := range after {
		if !before[id] && !slices.Contains(full.Created, id) {
			t.Errorf("full read: %s is new but not created", id)
		}
	}
	for id := range before {
		if !after[id] && !slices.Contains(full.Destroyed, id) {
			t.Errorf("full read: %s is gone but not destroyed", id)
		}
	}
}

// pageThrough reads the changes since state since max ids at a time and
// checks them against the client's view and the full read.
func pageThrough(t *testing.T, db store.Store, since, max int, full *ChangeSet, before, after map[string]bool, newState string) {
	t.Helper()
	client := maps.Clone(before)
	seen := map[string]bool{}
	state := stateAfter(since)
	for page := 0; ; page++ {
		if page > 1000 {
			t.Fatalf("since %d max %d: no end after %d pages", since, max, page)
		}
		cs, err := readChanges(t, db, state, max)
		if err != nil {
			t.Fatalf("since %d max %d page %d from %q: %v", since, max, page, state, err)
		}
		n := len(cs.Created) + len(cs.Updated) + len(cs.Destroyed)
		if n > max {
			t.Fatalf("since %d max %d page %d: %d ids", since, max, page, n)
		}
		inPage := map[string]bool{}
		for _, l := range [][]string{cs.Created, cs.Updated, cs.Destroyed} {
			for _, id := range l {
				if inPage[id] {
					t.Fatalf("since %d max %d page %d: %s twice in %+v", since, max, page, id, *cs)
				}
				inPage[id] = true
				seen[id] = true
			}
		}
		for _, id := range cs.Created {
			if client[id] {
				t.Fatalf("since %d max %d page %d from %q: created %s, which the client has", since, max, page, state, id)
			}
			client[id] = true
		}
		for _, id := range cs.Updated {
			if !client[id] {
				t.Fatalf("since %d max %d page %d from %q: updated %s, which the client lacks", since, max, page, state, id)
			}
		}
		for _, id := range cs.Destroyed {
			if !client[id] {
				t.Fatalf("since %d max %d page %d from %q: destroyed %s, which the client lacks", since, max, page, state, id)
			}
			delete(client, id)
		}
		if !cs.More {
			if cs.NewState != newState {
				t.Fatalf("since %d max %d: ended at %q, want %q", since, max, cs.NewState, newState)
			}
			break
		}
		// A page may be empty when its ids cancel out (created and
		// destroyed), but the state must move on.
		if cs.NewState == state {
			t.Fatalf("since %d max %d page %d: more changes but the state stays %q", since, max, page, state)
		}
		state = cs.NewState
	}
	if !maps.Equal(client, after) {
		t.Fatalf("since %d max %d: client ends with %v, store holds %v", since, max,
			slices.Sorted(maps.Keys(client)), slices.Sorted(maps.Keys(after)))
	}
	for _, l := range [][]string{full.Created, full.Updated, full.Destroyed} {
		for _, id := range l {
			if !seen[id] {
				t.Fatalf("since %d max %d: %s of the full read is in no page", since, max, id)
			}
		}
	}
}
