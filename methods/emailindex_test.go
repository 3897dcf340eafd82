package methods_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/jmapd/jmapd/jmaptest"
)

// importMessage uploads and imports a small message and returns its id.
func importMessage(t *testing.T, c *jmaptest.Client, mailboxes []string, receivedAt, subject, msgID, inReplyTo string) string {
	t.Helper()
	raw := fmt.Sprintf("From: a@example.test\r\nTo: b@example.test\r\nSubject: %s\r\nMessage-ID: <%s>\r\n", subject, msgID)
	if inReplyTo != "" {
		raw += fmt.Sprintf("In-Reply-To: <%s>\r\n", inReplyTo)
	}
	raw += "\r\nbody\r\n"
	resp, b := c.Do(t, http.MethodPost, "/jmap/upload/"+c.Account+"/", strings.NewReader(raw), http.Header{"Content-Type": {"message/rfc822"}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %s %s", resp.Status, b)
	}
	blob := jmaptest.BlobID([]byte(raw))
	mb := map[string]any{}
	for _, m := range mailboxes {
		mb[m] = true
	}
	res := c.One(t, "Email/import", map[string]any{"accountId": c.Account, "emails": map[string]any{
		"e": map[string]any{"blobId": blob, "mailboxIds": mb, "receivedAt": receivedAt}}})
	created, _ := res["created"].(map[string]any)
	e, _ := created["e"].(map[string]any)
	id, _ := e["id"].(string)
	if id == "" {
		t.Fatalf("import: %v", res)
	}
	return id
}

// The receivedAt index answers exactly what a scan of the records answers,
// for every window, anchor, direction, collapseThreads and calculateTotal
// (DESIGN.md: the common query comes from an index).
func TestEmailQuery_IndexMatchesScan(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox, archive := mailboxByRole(t, alice, "inbox"), mailboxByRole(t, alice, "archive")
	rng := rand.New(rand.NewPCG(7, 7))
	var ids []string
	for i := range 40 {
		boxes := []string{inbox}
		switch rng.IntN(3) {
		case 0:
			boxes = []string{archive}
		case 1:
			boxes = []string{inbox, archive}
		}
		// Few distinct dates, so ties on receivedAt are common.
		at := fmt.Sprintf("2026-11-%02dT10:00:00Z", 1+rng.IntN(6))
		reply := ""
		if i > 0 && rng.IntN(2) == 0 {
			reply = fmt.Sprintf("m%d@example.test", rng.IntN(i))
		}
		ids = append(ids, importMessage(t, alice, boxes, at, "topic", fmt.Sprintf("m%d@example.test", i), reply))
	}
	// Move and destroy some, so the index follows updates too.
	alice.One(t, "Email/set", map[string]any{"accountId": alice.Account,
		"update":  map[string]any{ids[3]: map[string]any{"mailboxIds": map[string]any{archive: true}}, ids[4]: map[string]any{"mailboxIds/" + inbox: true}},
		"destroy": []string{ids[5], ids[6]}})
	query := func(filter any, args map[string]any) map[string]any {
		a := map[string]any{"accountId": alice.Account, "filter": filter}
		for k, v := range args {
			a[k] = v
		}
		res := alice.One(t, "Email/query", a)
		delete(res, "queryState")
		return res
	}
	for _, box := range []any{nil, inbox, archive} {
		var indexed, scanned any
		if box == nil {
			indexed = nil
			scanned = map[string]any{"operator": "NOT", "conditions": []any{map[string]any{"hasKeyword": "$nothing"}}}
		} else {
			indexed = map[string]any{"inMailbox": box}
			scanned = map[string]any{"operator": "AND", "conditions": []any{map[string]any{"inMailbox": box}}}
		}
		for _, sort := range []any{nil, []any{map[string]any{"property": "receivedAt", "isAscending": false}},
			[]any{map[string]any{"property": "receivedAt", "isAscending": true}}} {
			for _, collapse := range []bool{false, true} {
				for _, win := range []map[string]any{{}, {"limit": 5}, {"position": 3, "limit": 4}, {"position": 100},
					{"limit": 0, "position": 2}, {"calculateTotal": true, "limit": 3}} {
					args := map[string]any{"collapseThreads": collapse}
					if sort != nil {
						args["sort"] = sort
					}
					for k, v := range win {
						args[k] = v
					}
					got, want := query(indexed, args), query(scanned, args)
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("box %v sort %v collapse %v %v:\nindex %v\nscan  %v", box, sort, collapse, win, got, want)
					}
					// An anchor inside the results, with offsets.
					if all, _ := want["ids"].([]any); len(all) > 2 && win["position"] == nil {
						for _, off := range []int{-2, 0, 1} {
							args["anchor"], args["anchorOffset"] = all[1], off
							got, want := query(indexed, args), query(scanned, args)
							if !reflect.DeepEqual(got, want) {
								t.Fatalf("anchor %v offset %d: index %v, scan %v", all[1], off, got, want)
							}
						}
						delete(args, "anchor")
						delete(args, "anchorOffset")
					}
				}
			}
		}
	}
}
