package methods_test

import (
	"fmt"
	"testing"

	"github.com/jmapd/jmapd/internal/config"
	"github.com/jmapd/jmapd/jmaptest"
)

func notes(t *testing.T, c *jmaptest.Client, create map[string]any) map[string]any {
	t.Helper()
	return c.One(t, "Note/set", map[string]any{"accountId": c.Account, "create": create})
}

// RFC 8620 §5.3: a /set whose every object is rejected changes nothing, and
// the state stays the same.
func TestSet_RejectedObjectsChangeNothing(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	notes(t, alice, map[string]any{"a": map[string]any{"title": "first"}})
	before := alice.State(t, alice.Account, "Note")
	res := alice.One(t, "Note/set", map[string]any{
		"accountId": alice.Account,
		"create": map[string]any{
			"unknown":   map[string]any{"title": "x", "colour": "red"},
			"serverSet": map[string]any{"title": "x", "created": "2020-01-01T00:00:00Z"},
			"invalid":   map[string]any{"title": ""},
			"badRef":    map[string]any{"title": "x", "parentId": "#nope"},
		},
		"update":  map[string]any{"zzz": map[string]any{"title": "y"}},
		"destroy": []string{"zzz"},
	})
	nc, _ := res["notCreated"].(map[string]any)
	for cid, want := range map[string]string{"unknown": "colour", "serverSet": "created", "invalid": "title", "badRef": "parentId"} {
		e, _ := nc[cid].(map[string]any)
		props, _ := e["properties"].([]any)
		if e["type"] != "invalidProperties" || len(props) != 1 || props[0] != want {
			t.Errorf("notCreated[%s] = %v, want invalidProperties [%s]", cid, e, want)
		}
	}
	if e := res["notUpdated"].(map[string]any)["zzz"].(map[string]any); e["type"] != "notFound" {
		t.Errorf("notUpdated = %v", e)
	}
	if e := res["notDestroyed"].(map[string]any)["zzz"].(map[string]any); e["type"] != "notFound" {
		t.Errorf("notDestroyed = %v", e)
	}
	if res["created"] != nil || res["newState"] != before {
		t.Errorf("created=%v newState=%v, want null and %s", res["created"], res["newState"], before)
	}
	if after := alice.State(t, alice.Account, "Note"); after != before {
		t.Errorf("state moved from %s to %s", before, after)
	}
}

// RFC 8620 §5.3: ifInState that does not match answers stateMismatch and
// changes nothing.
func TestSet_IfInStateMismatch(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	before := alice.State(t, alice.Account, "Note")
	typ := alice.Error(t, "Note/set", map[string]any{"accountId": alice.Account, "ifInState": "999",
		"create": map[string]any{"a": map[string]any{"title": "x"}}})
	if typ != "stateMismatch" {
		t.Fatalf("got %s", typ)
	}
	if after := alice.State(t, alice.Account, "Note"); after != before {
		t.Errorf("state moved from %s to %s", before, after)
	}
}

// RFC 8620 §5.3: immutable properties cannot change; PatchObject null
// resets a property to its default; patches reach into objects only where
// the path exists.
func TestSet_UpdateRules(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	res := notes(t, alice, map[string]any{"a": map[string]any{"title": "x", "body": "text", "isPinned": true}})
	id := res["created"].(map[string]any)["a"].(map[string]any)["id"].(string)
	res = alice.One(t, "Note/set", map[string]any{"accountId": alice.Account, "update": map[string]any{
		id: map[string]any{"kind": "checklist"},
	}})
	if e := res["notUpdated"].(map[string]any)[id].(map[string]any); e["type"] != "invalidProperties" {
		t.Errorf("immutable change: %v", e)
	}
	res = alice.One(t, "Note/set", map[string]any{"accountId": alice.Account, "update": map[string]any{
		id: map[string]any{"body": nil, "isPinned": nil, "title": "renamed"},
	}})
	if _, ok := res["updated"].(map[string]any)[id]; !ok {
		t.Fatalf("update failed: %v", res)
	}
	got := alice.One(t, "Note/get", map[string]any{"accountId": alice.Account, "ids": []string{id}})
	n := got["list"].([]any)[0].(map[string]any)
	if n["body"] != "" || n["isPinned"] != false || n["title"] != "renamed" {
		t.Errorf("after reset: %v", n)
	}
	res = alice.One(t, "Note/set", map[string]any{"accountId": alice.Account, "update": map[string]any{
		id: map[string]any{"title/deeper": "x"},
	}})
	if e := res["notUpdated"].(map[string]any)[id].(map[string]any); e["type"] != "invalidPatch" {
		t.Errorf("patch into a string: %v", e)
	}
}

// RFC 8620 §5.1, §5.3: more ids or objects than the limits answer
// requestTooLarge.
func TestLimits_ObjectsInGetAndSet(t *testing.T) {
	srv := jmaptest.Start(t, func(c *config.Config) { c.Limits.MaxObjectsInGet = 3; c.Limits.MaxObjectsInSet = 2 })
	alice := srv.NewUser(t, "alice@example.test")
	if typ := alice.Error(t, "Note/get", map[string]any{"accountId": alice.Account, "ids": []string{"a", "b", "c", "d"}}); typ != "requestTooLarge" {
		t.Errorf("get: %s", typ)
	}
	create := map[string]any{}
	for i := range 3 {
		create[fmt.Sprint(i)] = map[string]any{"title": "x"}
	}
	if typ := alice.Error(t, "Note/set", map[string]any{"accountId": alice.Account, "create": create}); typ != "requestTooLarge" {
		t.Errorf("set: %s", typ)
	}
}

// Another user's account answers accountNotFound, exactly like an account
// that does not exist.
func TestAccount_OthersAreNotFound(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	bob := srv.NewUser(t, "bob@example.test")
	for _, acct := range []string{alice.Account, "nosuchaccount"} {
		for _, m := range []string{"Note/get", "Note/query", "Blob/get"} {
			args := map[string]any{"accountId": acct}
			if m != "Note/query" {
				args["ids"] = []string{}
			}
			if typ := bob.Error(t, m, args); typ != "accountNotFound" {
				t.Errorf("%s on %s: %s", m, acct, typ)
			}
		}
	}
}

// RFC 8620 §5.4: /copy needs two different accounts; the source account is
// checked with fromAccountNotFound.
func TestCopy_AccountChecks(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	bob := srv.NewUser(t, "bob@example.test")
	if typ := alice.Error(t, "Note/copy", map[string]any{"fromAccountId": alice.Account, "accountId": alice.Account,
		"create": map[string]any{}}); typ != "invalidArguments" {
		t.Errorf("same account: %s", typ)
	}
	if typ := alice.Error(t, "Note/copy", map[string]any{"fromAccountId": bob.Account, "accountId": alice.Account,
		"create": map[string]any{}}); typ != "fromAccountNotFound" {
		t.Errorf("foreign source: %s", typ)
	}
}

// RFC 8620 §5.5, §5.6: query results follow the sort; queryChanges reports
// the records that changed, with their new index.
func TestQuery_SortAndQueryChanges(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	res := notes(t, alice, map[string]any{
		"b": map[string]any{"title": "Banana"}, "a": map[string]any{"title": "apple"}, "c": map[string]any{"title": "cherry", "isPinned": true},
	})
	ids := map[string]string{}
	for k, v := range res["created"].(map[string]any) {
		ids[k] = v.(map[string]any)["id"].(string)
	}
	sort := []any{map[string]any{"property": "title", "collation": "i;unicode-casemap"}}
	q := alice.One(t, "Note/query", map[string]any{"accountId": alice.Account, "sort": sort, "calculateTotal": true})
	got := fmt.Sprint(q["ids"])
	if want := fmt.Sprint([]any{ids["a"], ids["b"], ids["c"]}); got != want || q["total"] != float64(3) {
		t.Fatalf("query = %s total %v, want %s", got, q["total"], want)
	}
	state := q["queryState"].(string)
	alice.One(t, "Note/set", map[string]any{"accountId": alice.Account, "update": map[string]any{ids["c"]: map[string]any{"title": "Aardvark"}}})
	qc := alice.One(t, "Note/queryChanges", map[string]any{"accountId": alice.Account, "sort": sort, "sinceQueryState": state})
	if fmt.Sprint(qc["removed"]) != fmt.Sprint([]any{ids["c"]}) {
		t.Errorf("removed = %v", qc["removed"])
	}
	added, _ := qc["added"].([]any)
	if len(added) != 1 || added[0].(map[string]any)["id"] != ids["c"] || added[0].(map[string]any)["index"] != float64(0) {
		t.Errorf("added = %v", qc["added"])
	}
	if typ := alice.Error(t, "Note/queryChanges", map[string]any{"accountId": alice.Account, "sort": sort,
		"sinceQueryState": state, "maxChanges": 0}); typ != "invalidArguments" {
		t.Errorf("maxChanges 0: %s", typ)
	}
}
