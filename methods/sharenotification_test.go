package methods_test

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/jmapd/jmapd/jmaptest"
	"github.com/jmapd/jmapd/store"
)

// shareNotifications returns ShareNotification/get of every notification of
// the client, by id, and the state.
func shareNotifications(t *testing.T, c *jmaptest.Client) (map[string]map[string]any, string) {
	t.Helper()
	res := sharing(t, c, "ShareNotification/get", map[string]any{"accountId": c.Account, "ids": nil})
	out := map[string]map[string]any{}
	list, _ := res["list"].([]any)
	for _, x := range list {
		n, _ := x.(map[string]any)
		out[str(n["id"])] = n
	}
	return out, str(res["state"])
}

// onlyNotification returns the one notification of ns, failing otherwise.
func onlyNotification(t *testing.T, ns map[string]map[string]any) map[string]any {
	t.Helper()
	if len(ns) != 1 {
		t.Fatalf("%d notifications, want 1: %v", len(ns), ns)
	}
	for _, n := range ns {
		return n
	}
	return nil
}

// RFC 9670 §3: a grant creates a ShareNotification for the grantee, in
// their own account, with every property set.
func TestShareNotification_CreatedByShare(t *testing.T) {
	w := newSharingWorld(t)
	start := time.Now().UTC().Truncate(time.Second)
	inbox := mailboxByRole(t, w.bob, "inbox")
	level := rightsOf("mayReadItems", "maySetSeen", "maySetKeywords")
	shareMailbox(t, w.bob, inbox, map[string]any{w.alice.Account: level})

	ns, _ := shareNotifications(t, w.alice)
	n := onlyNotification(t, ns)
	created, err := time.Parse(time.RFC3339, str(n["created"]))
	if err != nil || created.Before(start) || created.After(time.Now().Add(time.Second)) {
		t.Errorf("created %v, want a UTCDate of now", n["created"])
	}
	want := map[string]any{"id": n["id"], "created": n["created"],
		"changedBy":  map[string]any{"name": "bob", "email": "bob@a.test", "principalId": w.bob.Account},
		"objectType": "Mailbox", "objectAccountId": w.bob.Account, "objectId": inbox,
		"oldRights": nil, "newRights": level, "name": "Inbox"}
	if !reflect.DeepEqual(n, want) {
		t.Errorf("notification\n got %v\nwant %v", n, want)
	}
	if str(n["id"]) == "" {
		t.Errorf("empty id")
	}
	// The sharer gets none; the notification is alice's alone.
	if own, _ := shareNotifications(t, w.bob); len(own) != 0 {
		t.Errorf("bob has notifications %v", own)
	}

	// Changing the rights: oldRights is what alice had.
	more := rightsOf("mayReadItems", "maySetSeen", "maySetKeywords", "mayAddItems")
	shareMailbox(t, w.bob, inbox, map[string]any{w.alice.Account: more})
	// Revoking: newRights is null.
	shareMailbox(t, w.bob, inbox, nil)
	ns, _ = shareNotifications(t, w.alice)
	if len(ns) != 3 {
		t.Fatalf("%d notifications, want 3", len(ns))
	}
	var sawChange, sawRevoke bool
	for _, x := range ns {
		switch {
		case reflect.DeepEqual(x["oldRights"], level) && reflect.DeepEqual(x["newRights"], more):
			sawChange = true
		case reflect.DeepEqual(x["oldRights"], more) && x["newRights"] == nil:
			sawRevoke = true
			if x["name"] != "Inbox" {
				t.Errorf("revoke notification name %v, want Inbox", x["name"])
			}
		}
	}
	if !sawChange || !sawRevoke {
		t.Errorf("want a change and a revoke notification: %v", ns)
	}
}

// seedNotifications writes notifications with the given creation times
// into the account, as the server does when rights change, and returns
// their ids in order.
func seedNotifications(t *testing.T, srv *jmaptest.Server, acct, objectAccount string, objectTypes []string, created ...string) []string {
	t.Helper()
	var ids []string
	_, err := srv.Store().Update(context.Background(), func(tx store.Tx) error {
		ids = ids[:0]
		for i, c := range created {
			id, err := tx.NewID()
			if err != nil {
				return err
			}
			b, err := json.Marshal(map[string]any{"id": id, "created": c,
				"changedBy":  map[string]any{"name": "admin", "email": nil, "principalId": nil},
				"objectType": objectTypes[i%len(objectTypes)], "objectAccountId": objectAccount, "objectId": "m" + id,
				"oldRights": nil, "newRights": rightsOf("mayReadItems"), "name": "Box " + id})
			if err != nil {
				return err
			}
			if err := tx.Create(store.AccountID(acct), "ShareNotification", id, b); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func snQuery(t *testing.T, c *jmaptest.Client, args map[string]any) []string {
	t.Helper()
	args["accountId"] = c.Account
	return strs(sharing(t, c, "ShareNotification/query", args)["ids"])
}

// RFC 9670 §3.4: the filters after (on or after), before (strictly
// before), objectType and objectAccountId, their AND, and sorting by
// created.
func TestShareNotificationQuery_FiltersAndSort(t *testing.T) {
	w := newSharingWorld(t)
	// Out of id order on purpose: sorting by created must reorder them.
	ids := seedNotifications(t, w.srv, w.alice.Account, w.bob.Account, []string{"Mailbox", "Calendar"},
		"2024-03-01T10:00:00Z", "2024-01-01T10:00:00Z", "2024-02-01T10:00:00Z")
	march, jan, feb := ids[0], ids[1], ids[2]
	// Someone of Alice's domain, whose account the seeded ones do not name.
	dave := w.srv.NewUser(t, "dave@a.test")
	inbox := mailboxByRole(t, dave, "inbox")
	shareMailbox(t, dave, inbox, map[string]any{w.alice.Account: rightsOf("mayReadItems")})
	all, _ := shareNotifications(t, w.alice)
	var real string
	for id := range all {
		if !slices.Contains(ids, id) {
			real = id
		}
	}
	if real == "" {
		t.Fatalf("no notification from carol's share: %v", all)
	}

	byCreated := snQuery(t, w.alice, map[string]any{"sort": []any{map[string]any{"property": "created"}}})
	if want := []string{jan, feb, march, real}; !slices.Equal(byCreated, want) {
		t.Errorf("sorted by created %v, want %v", byCreated, want)
	}
	desc := snQuery(t, w.alice, map[string]any{"sort": []any{map[string]any{"property": "created", "isAscending": false}}})
	if want := []string{real, march, feb, jan}; !slices.Equal(desc, want) {
		t.Errorf("sorted by created descending %v, want %v", desc, want)
	}
	cases := []struct {
		name   string
		filter map[string]any
		want   []string
	}{
		{"after is inclusive", map[string]any{"after": "2024-02-01T10:00:00Z"}, []string{feb, march, real}},
		{"before is exclusive", map[string]any{"before": "2024-02-01T10:00:00Z"}, []string{jan}},
		{"after and before", map[string]any{"after": "2024-01-01T10:00:01Z", "before": "2024-03-01T10:00:01Z"}, []string{feb, march}},
		{"null dates match all", map[string]any{"after": nil, "before": nil}, []string{jan, feb, march, real}},
		{"objectType", map[string]any{"objectType": "Calendar"}, []string{jan}},
		{"objectType is exact", map[string]any{"objectType": "mailbox"}, []string{}},
		{"objectAccountId", map[string]any{"objectAccountId": dave.Account}, []string{real}},
		{"AND", map[string]any{"objectType": "Mailbox", "objectAccountId": w.bob.Account, "after": "2024-02-01T00:00:00Z"}, []string{march, feb}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := snQuery(t, w.alice, map[string]any{"filter": tc.filter}); !sameSet(got, tc.want) {
				t.Errorf("ids %v, want %v", got, tc.want)
			}
		})
	}
	for _, f := range []map[string]any{{"after": "yesterday"}, {"before": "2024-01-01T10:00:00+01:00"}, {"name": "x"}, {"objectType": 1}} {
		if e := sharingError(t, w.alice, "ShareNotification/query", map[string]any{"accountId": w.alice.Account, "filter": f}); e != "unsupportedFilter" {
			t.Errorf("filter %v: %s, want unsupportedFilter", f, e)
		}
	}
	if e := sharingError(t, w.alice, "ShareNotification/query", map[string]any{"accountId": w.alice.Account,
		"sort": []any{map[string]any{"property": "name"}}}); e != "unsupportedSort" {
		t.Errorf("sort by name: %s, want unsupportedSort", e)
	}
}

// RFC 9670 §3.3: create and update are forbidden, destroy dismisses; the
// change log and query changes follow.
func TestShareNotificationSet_OnlyDestroy(t *testing.T) {
	w := newSharingWorld(t)
	_, s0 := shareNotifications(t, w.alice)
	q0 := sharing(t, w.alice, "ShareNotification/query", map[string]any{"accountId": w.alice.Account,
		"sort": []any{map[string]any{"property": "created"}}})
	inbox := mailboxByRole(t, w.bob, "inbox")
	shareMailbox(t, w.bob, inbox, map[string]any{w.alice.Account: rightsOf("mayReadItems")})
	ns, s1 := shareNotifications(t, w.alice)
	n := onlyNotification(t, ns)
	id := str(n["id"])

	ch := sharing(t, w.alice, "ShareNotification/changes", map[string]any{"accountId": w.alice.Account, "sinceState": s0})
	if !slices.Equal(strs(ch["created"]), []string{id}) || ch["newState"] != s1 {
		t.Errorf("changes: created %v newState %v, want [%s] %s", ch["created"], ch["newState"], id, s1)
	}
	qc := sharing(t, w.alice, "ShareNotification/queryChanges", map[string]any{"accountId": w.alice.Account,
		"sinceQueryState": q0["queryState"], "sort": []any{map[string]any{"property": "created"}}})
	if got := applyQueryChanges(strs(q0["ids"]), qc); !slices.Equal(got, []string{id}) {
		t.Errorf("queryChanges gives %v, want [%s]", got, id)
	}

	bad := []struct {
		name, field, key string
		args             map[string]any
	}{
		{"create", "notCreated", "k", map[string]any{"create": map[string]any{"k": map[string]any{"objectType": "Mailbox"}}}},
		{"empty create", "notCreated", "k", map[string]any{"create": map[string]any{"k": map[string]any{}}}},
		{"update", "notUpdated", id, map[string]any{"update": map[string]any{id: map[string]any{"name": "Other"}}}},
		{"empty update", "notUpdated", id, map[string]any{"update": map[string]any{id: map[string]any{}}}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			tc.args["accountId"] = w.alice.Account
			res := sharing(t, w.alice, "ShareNotification/set", tc.args)
			wantSetError(t, res, tc.field, tc.key, "forbidden")
			wantNothingDone(t, res)
		})
	}
	after, s2 := shareNotifications(t, w.alice)
	if s2 != s1 || !reflect.DeepEqual(after[id], n) {
		t.Errorf("refused changes changed the notification or state: %v %s", after[id], s2)
	}

	res := sharing(t, w.alice, "ShareNotification/set", map[string]any{"accountId": w.alice.Account,
		"destroy": []string{id, "nosuch"}})
	if !slices.Equal(strs(res["destroyed"]), []string{id}) {
		t.Errorf("destroyed %v, want [%s]", res["destroyed"], id)
	}
	wantSetError(t, res, "notDestroyed", "nosuch", "notFound")
	if res["oldState"] != s1 || res["newState"] == s1 {
		t.Errorf("states %v → %v", res["oldState"], res["newState"])
	}
	left, s3 := shareNotifications(t, w.alice)
	if len(left) != 0 || s3 != res["newState"] {
		t.Errorf("after destroy: %v state %s", left, s3)
	}
	ch = sharing(t, w.alice, "ShareNotification/changes", map[string]any{"accountId": w.alice.Account, "sinceState": s1})
	if !slices.Equal(strs(ch["destroyed"]), []string{id}) {
		t.Errorf("changes after destroy: %v", ch)
	}
	// Another user's notification does not exist for bob.
	shareMailbox(t, w.alice, mailboxByRole(t, w.alice, "inbox"), map[string]any{w.bob.Account: rightsOf("mayReadItems")})
	mine, _ := shareNotifications(t, w.bob)
	bobs := str(onlyNotification(t, mine)["id"])
	res = sharing(t, w.alice, "ShareNotification/set", map[string]any{"accountId": w.alice.Account, "destroy": []string{bobs}})
	wantSetError(t, res, "notDestroyed", bobs, "notFound")
	if got, _ := shareNotifications(t, w.bob); len(got) != 1 {
		t.Errorf("bob's notification is gone")
	}
}
