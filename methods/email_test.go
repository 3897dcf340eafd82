package methods_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jmapd/jmapd/internal/config"
	"github.com/jmapd/jmapd/jmaptest"
)

// crlf turns a message written with LF line ends into one with CRLF, as
// RFC 5322 §2.1 wants it on the wire.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// uploadBlob posts data to the upload endpoint (RFC 8620 §6.1) and returns
// its blob id.
func uploadBlob(t *testing.T, c *jmaptest.Client, data []byte, typ string) string {
	t.Helper()
	resp, b := c.Do(t, http.MethodPost, "/jmap/upload/"+c.Account+"/", bytes.NewReader(data),
		http.Header{"Content-Type": {typ}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %s: %s", resp.Status, b)
	}
	var u struct {
		BlobID string `json:"blobId"`
	}
	if err := json.Unmarshal(b, &u); err != nil || u.BlobID == "" {
		t.Fatalf("upload answer %s: %v", b, err)
	}
	return u.BlobID
}

// downloadBlob fetches a blob through the download endpoint (RFC 8620 §6.2).
func downloadBlob(t *testing.T, c *jmaptest.Client, blobID string) []byte {
	t.Helper()
	resp, b := c.Do(t, http.MethodGet, "/jmap/download/"+c.Account+"/"+blobID+"/file", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("download %s: %s: %s", blobID, resp.Status, b)
	}
	return b
}

// boolSet turns keys into a JSON "Id[Boolean]" / "String[Boolean]" set.
func boolSet(keys ...string) map[string]any {
	m := make(map[string]any, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// importEmails runs Email/import with the given EmailImport objects and
// returns the whole response.
func importEmails(t *testing.T, c *jmaptest.Client, emails map[string]any) map[string]any {
	t.Helper()
	return c.One(t, "Email/import", map[string]any{"accountId": c.Account, "emails": emails})
}

// importRaw uploads raw and imports it with the given EmailImport
// properties (blobId is filled in), failing the test unless it is created;
// it returns the "created" entry (id, blobId, threadId, size).
func importRaw(t *testing.T, c *jmaptest.Client, raw string, item map[string]any) map[string]any {
	t.Helper()
	item["blobId"] = uploadBlob(t, c, []byte(raw), "message/rfc822")
	res := importEmails(t, c, map[string]any{"m": item})
	created, _ := res["created"].(map[string]any)
	e, _ := created["m"].(map[string]any)
	if str(e["id"]) == "" {
		t.Fatalf("import: notCreated = %v", res["notCreated"])
	}
	return e
}

// importIn imports raw into one mailbox with keywords and returns its id.
func importIn(t *testing.T, c *jmaptest.Client, raw, mbox string, keywords ...string) string {
	t.Helper()
	return str(importRaw(t, c, raw, map[string]any{"mailboxIds": boolSet(mbox), "keywords": boolSet(keywords...)})["id"])
}

// getEmails runs Email/get for ids with extra arguments and returns the
// objects by id, failing the test if any id is not found. No ids fetch
// nothing (not ids null, which is every email).
func getEmails(t *testing.T, c *jmaptest.Client, ids []string, args map[string]any) map[string]map[string]any {
	t.Helper()
	if ids == nil {
		ids = []string{}
	}
	a := map[string]any{"accountId": c.Account, "ids": ids}
	for k, v := range args {
		a[k] = v
	}
	res := c.One(t, "Email/get", a)
	if nf := strs(res["notFound"]); len(nf) > 0 {
		t.Fatalf("Email/get: notFound %v", nf)
	}
	out := map[string]map[string]any{}
	for _, x := range res["list"].([]any) {
		m := x.(map[string]any)
		out[str(m["id"])] = m
	}
	return out
}

// getEmail returns one email.
func getEmail(t *testing.T, c *jmaptest.Client, id string, args map[string]any) map[string]any {
	t.Helper()
	e := getEmails(t, c, []string{id}, args)[id]
	if e == nil {
		t.Fatalf("Email/get %s: not in the list", id)
	}
	return e
}

// setEmails runs Email/set in the client's account.
func setEmails(t *testing.T, c *jmaptest.Client, args map[string]any) map[string]any {
	t.Helper()
	args["accountId"] = c.Account
	return c.One(t, "Email/set", args)
}

// updateEmail applies one patch and fails the test unless it succeeded.
func updateEmail(t *testing.T, c *jmaptest.Client, id string, patch map[string]any) {
	t.Helper()
	res := setEmails(t, c, map[string]any{"update": map[string]any{id: patch}})
	if !hasKey(res["updated"], id) {
		t.Fatalf("update %s with %v: notUpdated = %v", id, patch, res["notUpdated"])
	}
}

// member returns v[key] as an object when v is an object holding one, else
// nil.
func member(v any, key string) map[string]any {
	m, _ := v.(map[string]any)
	out, _ := m[key].(map[string]any)
	return out
}

// hasKey reports whether v is an object with the member key (which may be
// null).
func hasKey(v any, key string) bool {
	m, _ := v.(map[string]any)
	_, ok := m[key]
	return ok
}

// accountStates is the state of each mail data type at one time.
type accountStates struct{ email, mailbox, thread string }

func statesOf(t *testing.T, c *jmaptest.Client) accountStates {
	t.Helper()
	return accountStates{c.State(t, c.Account, "Email"), c.State(t, c.Account, "Mailbox"), c.State(t, c.Account, "Thread")}
}

// wantUnchanged fails the test unless no Email, Mailbox or Thread changed
// since before (bad input must change nothing).
func wantUnchanged(t *testing.T, c *jmaptest.Client, before accountStates) {
	t.Helper()
	if after := statesOf(t, c); after != before {
		t.Errorf("states moved from %+v to %+v", before, after)
	}
}

// changesSince runs TYPE/changes and returns the response.
func changesSince(t *testing.T, c *jmaptest.Client, typ, since string) map[string]any {
	t.Helper()
	return c.One(t, typ+"/changes", map[string]any{"accountId": c.Account, "sinceState": since})
}

// threadEmails returns the emailIds of a thread (Thread/get).
func threadEmails(t *testing.T, c *jmaptest.Client, id string) []string {
	t.Helper()
	res := c.One(t, "Thread/get", map[string]any{"accountId": c.Account, "ids": []string{id}})
	list, _ := res["list"].([]any)
	if len(list) != 1 {
		t.Fatalf("Thread/get %s: list %v notFound %v", id, list, res["notFound"])
	}
	return strs(list[0].(map[string]any)["emailIds"])
}

// mailboxCounts returns totalEmails, unreadEmails, totalThreads and
// unreadThreads of a mailbox.
func mailboxCounts(t *testing.T, c *jmaptest.Client, mbox string) [4]int {
	t.Helper()
	m := mailbox(t, c, mbox)
	var out [4]int
	for i, p := range []string{"totalEmails", "unreadEmails", "totalThreads", "unreadThreads"} {
		n, _ := m[p].(float64)
		out[i] = int(n)
	}
	return out
}

func wantCounts(t *testing.T, c *jmaptest.Client, mbox string, want [4]int) {
	t.Helper()
	if got := mailboxCounts(t, c, mbox); got != want {
		t.Errorf("mailbox %s counts (total, unread, threads, unreadThreads) = %v, want %v", mbox, got, want)
	}
}

// simpleMessage is a one-part plain text message.
func simpleMessage(msgID, subject, extra, body string) string {
	return crlf("From: Alice <alice@example.test>\nTo: bob@example.test\nSubject: " + subject +
		"\nDate: Mon, 01 Jan 2024 12:00:00 +0000\nMessage-ID: <" + msgID + ">\n" + extra + "\n" + body + "\n")
}

// --- Email/import ---

// RFC 8621 §4.8: "created" holds id, blobId, threadId and size; the Email
// gets the given mailboxIds, keywords (returned in lowercase, §4.1.1) and
// receivedAt; the Mailbox counts follow.
func TestEmailImport_CreatedFields(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	raw := simpleMessage("one@example.test", "Hello", "", "Hi Bob.")
	blob := uploadBlob(t, alice, []byte(raw), "message/rfc822")
	before := statesOf(t, alice)
	res := importEmails(t, alice, map[string]any{"a": map[string]any{"blobId": blob,
		"mailboxIds": boolSet(inbox), "keywords": boolSet("$Flagged", "$seen"), "receivedAt": "2024-02-03T04:05:06Z"}})
	if res["oldState"] != before.email || res["newState"] == before.email || res["notCreated"] != nil {
		t.Errorf("oldState %v newState %v notCreated %v, want %s, a new state, null", res["oldState"], res["newState"], res["notCreated"], before.email)
	}
	e := member(res["created"], "a")
	if len(e) != 4 || str(e["id"]) == "" || e["blobId"] != blob || str(e["threadId"]) == "" || e["size"] != float64(len(raw)) {
		t.Fatalf("created = %v, want id, blobId %s, threadId and size %d", e, blob, len(raw))
	}
	got := getEmail(t, alice, str(e["id"]), map[string]any{"properties": []string{"blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt", "subject"}})
	want := map[string]any{"id": e["id"], "blobId": blob, "threadId": e["threadId"], "mailboxIds": boolSet(inbox),
		"keywords": boolSet("$flagged", "$seen"), "size": float64(len(raw)), "receivedAt": "2024-02-03T04:05:06Z", "subject": "Hello"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Email/get = %v\nwant %v", got, want)
	}
	if statesOf(t, alice).mailbox == before.mailbox {
		t.Errorf("Mailbox state did not move though the inbox counts did")
	}
	wantCounts(t, alice, inbox, [4]int{1, 0, 1, 0})
}

// RFC 8621 §4.8: receivedAt defaults to the "time of most recent Received
// header", which is the topmost one.
func TestEmailImport_ReceivedAtFromReceivedHeader(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	raw := simpleMessage("rcvd@example.test", "Hops",
		"Received: from b.example by c.example; Tue, 02 Jan 2024 10:00:00 +0100\n"+
			"Received: from a.example by b.example; Tue, 02 Jan 2024 08:00:00 +0100\n", "Body.")
	e := importRaw(t, alice, raw, map[string]any{"mailboxIds": boolSet(inbox)})
	got := getEmail(t, alice, str(e["id"]), map[string]any{"properties": []string{"receivedAt"}})
	if got["receivedAt"] != "2024-01-02T09:00:00Z" {
		t.Errorf("receivedAt = %v, want 2024-01-02T09:00:00Z (the topmost Received header)", got["receivedAt"])
	}
}

// RFC 8621 §4.8: a blob that is not a message may be rejected with
// invalidEmail; nothing changes.
func TestEmailImport_NotAMessageIsInvalidEmail(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01")
	blob := uploadBlob(t, alice, png, "image/png")
	before := statesOf(t, alice)
	res := importEmails(t, alice, map[string]any{"p": map[string]any{"blobId": blob, "mailboxIds": boolSet(inbox)}})
	wantSetError(t, res, "notCreated", "p", "invalidEmail")
	wantNothingDone(t, res)
	wantUnchanged(t, alice, before)
	wantCounts(t, alice, inbox, [4]int{0, 0, 0, 0})
}

// RFC 8621 §4.8: "If the blobId, mailboxIds, or keywords properties are
// invalid (e.g., missing, wrong type, id not found), the server MUST reject
// the import with an invalidProperties SetError"; receivedAt must be a
// UTCDate (RFC 8620 §1.4: "Z" time zone). Nothing changes.
func TestEmailImport_InvalidProperties(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	blob := uploadBlob(t, alice, []byte(simpleMessage("x@example.test", "X", "", "x")), "message/rfc822")
	cases := []struct {
		name string
		item map[string]any
		prop string
	}{
		{"unknown blob", map[string]any{"blobId": "Gdeadbeef", "mailboxIds": boolSet(inbox)}, "blobId"},
		{"unknown blob creation id", map[string]any{"blobId": "#nowhere", "mailboxIds": boolSet(inbox)}, "blobId"},
		{"missing mailboxIds", map[string]any{"blobId": blob}, "mailboxIds"},
		{"empty mailboxIds", map[string]any{"blobId": blob, "mailboxIds": map[string]any{}}, "mailboxIds"},
		{"unknown mailbox", map[string]any{"blobId": blob, "mailboxIds": boolSet("nosuch")}, "mailboxIds"},
		{"mailbox not true", map[string]any{"blobId": blob, "mailboxIds": map[string]any{inbox: false}}, "mailboxIds"},
		{"mailboxIds not a map", map[string]any{"blobId": blob, "mailboxIds": []string{inbox}}, "mailboxIds"},
		{"keyword with space", map[string]any{"blobId": blob, "mailboxIds": boolSet(inbox), "keywords": boolSet("a b")}, "keywords"},
		{"keyword with bracket", map[string]any{"blobId": blob, "mailboxIds": boolSet(inbox), "keywords": boolSet("a]")}, "keywords"},
		{"keyword false", map[string]any{"blobId": blob, "mailboxIds": boolSet(inbox), "keywords": map[string]any{"$seen": false}}, "keywords"},
		{"keyword too long", map[string]any{"blobId": blob, "mailboxIds": boolSet(inbox), "keywords": boolSet(strings.Repeat("k", 256))}, "keywords"},
		{"receivedAt with offset", map[string]any{"blobId": blob, "mailboxIds": boolSet(inbox), "receivedAt": "2024-01-01T00:00:00+01:00"}, "receivedAt"},
		{"receivedAt not a date", map[string]any{"blobId": blob, "mailboxIds": boolSet(inbox), "receivedAt": "yesterday"}, "receivedAt"},
		{"receivedAt a number", map[string]any{"blobId": blob, "mailboxIds": boolSet(inbox), "receivedAt": 1700000000}, "receivedAt"},
		{"blobId a number", map[string]any{"blobId": 42, "mailboxIds": boolSet(inbox)}, "blobId"},
		{"keywords a string", map[string]any{"blobId": blob, "mailboxIds": boolSet(inbox), "keywords": "$seen"}, "keywords"},
		{"unknown property", map[string]any{"blobId": blob, "mailboxIds": boolSet(inbox), "colour": "red"}, "colour"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := statesOf(t, alice)
			res := importEmails(t, alice, map[string]any{"e": tc.item})
			wantSetError(t, res, "notCreated", "e", "invalidProperties", tc.prop)
			wantNothingDone(t, res)
			wantUnchanged(t, alice, before)
		})
	}
	wantCounts(t, alice, inbox, [4]int{0, 0, 0, 0})
}

// RFC 8621 §4.8: an ifInState that does not match answers stateMismatch
// and imports nothing.
func TestEmailImport_IfInStateMismatch(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	blob := uploadBlob(t, alice, []byte(simpleMessage("s@example.test", "S", "", "s")), "message/rfc822")
	before := statesOf(t, alice)
	typ := alice.Error(t, "Email/import", map[string]any{"accountId": alice.Account, "ifInState": before.email + "9",
		"emails": map[string]any{"e": map[string]any{"blobId": blob, "mailboxIds": boolSet(inbox)}}})
	if typ != "stateMismatch" {
		t.Errorf("got %s, want stateMismatch", typ)
	}
	wantUnchanged(t, alice, before)
	// The current state is accepted.
	res := alice.One(t, "Email/import", map[string]any{"accountId": alice.Account, "ifInState": before.email,
		"emails": map[string]any{"e": map[string]any{"blobId": blob, "mailboxIds": boolSet(inbox)}}})
	if res["created"] == nil {
		t.Errorf("import with the current state: %v", res["notCreated"])
	}
}

// RFC 8620 §5.3 and RFC 9404 §4.1: a blob made by Blob/upload earlier in
// the same request is named by "#creationId", and an email imported from
// it by "#creationId" in Email/get.
func TestEmailImport_BlobFromBlobUploadInSameRequest(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	raw := simpleMessage("inline@example.test", "Inline upload", "", "Made in the request.")
	r := alice.Call(t,
		jmaptest.Call{Name: "Blob/upload", Args: map[string]any{"accountId": alice.Account, "create": map[string]any{
			"msg": map[string]any{"data": []any{map[string]any{"data:asText": raw}}, "type": "message/rfc822"}}}},
		jmaptest.Call{Name: "Email/import", Args: map[string]any{"accountId": alice.Account, "emails": map[string]any{
			"e": map[string]any{"blobId": "#msg", "mailboxIds": boolSet(inbox)}}}},
		jmaptest.Call{Name: "Email/get", Args: map[string]any{"accountId": alice.Account, "ids": []string{"#e"},
			"properties": []string{"subject", "blobId"}}},
	)
	if len(r.MethodResponses) != 3 || r.MethodResponses[1].Name != "Email/import" || r.MethodResponses[2].Name != "Email/get" {
		t.Fatalf("responses: %+v", r.MethodResponses)
	}
	up := member(r.MethodResponses[0].Args["created"], "msg")
	blob := str(up["id"])
	if blob == "" {
		t.Fatalf("Blob/upload: %v", r.MethodResponses[0].Args)
	}
	created, _ := r.MethodResponses[1].Args["created"].(map[string]any)
	e, _ := created["e"].(map[string]any)
	if e["blobId"] != blob {
		t.Fatalf("import created %v (notCreated %v), want blobId %s", e, r.MethodResponses[1].Args["notCreated"], blob)
	}
	list, _ := r.MethodResponses[2].Args["list"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["subject"] != "Inline upload" || list[0].(map[string]any)["id"] != e["id"] {
		t.Errorf("Email/get #e = %v", r.MethodResponses[2].Args)
	}
}

// --- Email/get ---

// defaultGetProps is the Email/get default property list of RFC 8621 §4.2.
var defaultGetProps = []string{"id", "blobId", "threadId", "mailboxIds", "keywords", "size",
	"receivedAt", "messageId", "inReplyTo", "references", "sender", "from",
	"to", "cc", "bcc", "replyTo", "subject", "sentAt", "hasAttachment",
	"preview", "bodyValues", "textBody", "htmlBody", "attachments"}

func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// RFC 8621 §4.2: without properties, Email/get returns exactly the default
// list; with properties, only those and the id (RFC 8620 §5.1); unknown
// ids are in notFound and unknown properties are invalidArguments.
func TestEmailGet_DefaultAndChosenProperties(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	id := importIn(t, alice, simpleMessage("p@example.test", "Props", "", "Body text here."), inbox)
	res := alice.One(t, "Email/get", map[string]any{"accountId": alice.Account, "ids": []string{id, "nosuch"}})
	list, _ := res["list"].([]any)
	if len(list) != 1 || fmt.Sprint(res["notFound"]) != "[nosuch]" {
		t.Fatalf("list %v notFound %v", list, res["notFound"])
	}
	e := list[0].(map[string]any)
	want := slices.Clone(defaultGetProps)
	slices.Sort(want)
	if got := keysOf(e); !slices.Equal(got, want) {
		t.Errorf("default properties = %v\nwant %v", got, want)
	}
	if e["preview"] != "Body text here." || e["hasAttachment"] != false || fmt.Sprint(e["messageId"]) != "[p@example.test]" {
		t.Errorf("preview %v hasAttachment %v messageId %v", e["preview"], e["hasAttachment"], e["messageId"])
	}
	if bv, ok := e["bodyValues"].(map[string]any); !ok || len(bv) != 0 {
		t.Errorf("bodyValues without fetch arguments = %v, want {}", e["bodyValues"])
	}

	got := getEmail(t, alice, id, map[string]any{"properties": []string{"subject", "keywords"}})
	if keys := keysOf(got); fmt.Sprint(keys) != "[id keywords subject]" {
		t.Errorf("properties [subject keywords] gave %v", keys)
	}
	if typ := alice.Error(t, "Email/get", map[string]any{"accountId": alice.Account, "ids": []string{id},
		"properties": []string{"subject", "colour"}}); typ != "invalidArguments" {
		t.Errorf("unknown property: %s, want invalidArguments", typ)
	}
	if typ := alice.Error(t, "Email/get", map[string]any{"accountId": alice.Account, "ids": []string{id},
		"bodyProperties": []string{"partId", "colour"}}); typ != "invalidArguments" {
		t.Errorf("unknown body property: %s, want invalidArguments", typ)
	}
}

// headerMessage has header fields for each parsed form of RFC 8621 §4.1.2.
var headerMessage = crlf(`From: "Joe Q. Public" <joe@example.com>
To: Friends: jane@example.com, =?UTF-8?Q?John_Sm=C3=AEth?= <john@example.com>;, bob@example.com
Subject: =?UTF-8?Q?Caf=C3=A9?= plans
Date: Tue, 1 Jul 2003 10:52:37 +0200
Message-ID: <m1@example.com>
References: <r1@example.com>
  <r2@example.com>
List-Post: <mailto:list@example.com>
X-Custom: first
X-Custom:  second value

Body.
`)

// RFC 8621 §4.1.2, §4.1.3: header:NAME[:asFORM][:all] returns the last
// instance (or all, in order; [] when there is none), names match case
// insensitively, and the response key keeps the request's capitalisation
// (§4.2). The convenience properties equal their header forms.
func TestEmailGet_HeaderForms(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	id := importIn(t, alice, headerMessage, inbox)
	joe, jane, john, bob := "Joe Q. Public", any(nil), "John Smîth", any(nil)
	want := map[string]any{
		"header:Subject":                     " =?UTF-8?Q?Caf=C3=A9?= plans",
		"header:subject:asText":              "Café plans",
		"header:FROM:asAddresses":            []any{map[string]any{"name": joe, "email": "joe@example.com"}},
		"header:To:asAddresses":              []any{map[string]any{"name": jane, "email": "jane@example.com"}, map[string]any{"name": john, "email": "john@example.com"}, map[string]any{"name": bob, "email": "bob@example.com"}},
		"header:To:asGroupedAddresses":       []any{map[string]any{"name": "Friends", "addresses": []any{map[string]any{"name": jane, "email": "jane@example.com"}, map[string]any{"name": john, "email": "john@example.com"}}}, map[string]any{"name": nil, "addresses": []any{map[string]any{"name": bob, "email": "bob@example.com"}}}},
		"header:Message-ID:asMessageIds":     []any{"m1@example.com"},
		"header:References:asMessageIds":     []any{"r1@example.com", "r2@example.com"},
		"header:Date:asDate":                 "2003-07-01T10:52:37+02:00",
		"header:List-Post:asURLs":            []any{"mailto:list@example.com"},
		"header:x-custom":                    "  second value",
		"header:X-Custom:all":                []any{" first", "  second value"},
		"header:X-Custom:asText:all":         []any{"first", "second value"},
		"header:X-Missing":                   nil,
		"header:X-Missing:all":               []any{},
		"header:X-Missing:asAddresses:all":   []any{},
		"header:X-Custom:asMessageIds":       nil, // not msg-ids: "If parsing fails, the value is null"
		"header:References:asMessageIds:all": []any{[]any{"r1@example.com", "r2@example.com"}},
	}
	props := append(keysOf(want), "from", "to", "subject", "sentAt", "messageId", "references")
	got := getEmail(t, alice, id, map[string]any{"properties": props})
	for k, w := range want {
		if v, ok := got[k]; !ok || !reflect.DeepEqual(v, w) {
			t.Errorf("%s = %#v (present %v)\nwant %#v", k, v, ok, w)
		}
	}
	for prop, form := range map[string]string{"from": "header:FROM:asAddresses", "subject": "header:subject:asText",
		"sentAt": "header:Date:asDate", "messageId": "header:Message-ID:asMessageIds", "references": "header:References:asMessageIds"} {
		if !reflect.DeepEqual(got[prop], got[form]) {
			t.Errorf("%s = %v, want %s = %v", prop, got[prop], form, got[form])
		}
	}
	if len(got) != len(props)+1 {
		t.Errorf("got %d properties, want %d: %v", len(got), len(props)+1, keysOf(got))
	}
}

// RFC 8621 §4.2: "Attempting to fetch a form that is forbidden (e.g.,
// header:From:asDate) MUST result in the method call being rejected with
// an invalidArguments error"; so does a form that does not exist or
// suffixes in the wrong order (§4.1.3).
func TestEmailGet_ForbiddenHeaderForms(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	id := importIn(t, alice, headerMessage, inbox)
	for _, p := range []string{"header:From:asDate", "header:Subject:asAddresses", "header:Date:asText",
		"header:To:asMessageIds", "header:Message-ID:asURLs", "header:List-Post:asDate", "header:Received:asText",
		"header:X-Custom:asBogus", "header:X-Custom:all:asText", "header:", "header:X-Custom:asText:all:all",
		// §4.1.3: the name is "one or more printable ASCII characters
		// (i.e., characters that have values between 33 and 126)".
		"header:X Custom", "header:X-Cüstom", "header:X\tCustom"} {
		if typ := alice.Error(t, "Email/get", map[string]any{"accountId": alice.Account, "ids": []string{id},
			"properties": []string{"subject", p}}); typ != "invalidArguments" {
			t.Errorf("%s: %s, want invalidArguments", p, typ)
		}
	}
	// The same rule holds for body part properties.
	if typ := alice.Error(t, "Email/get", map[string]any{"accountId": alice.Account, "ids": []string{id},
		"properties": []string{"textBody"}, "bodyProperties": []string{"partId", "header:Subject:asDate"}}); typ != "invalidArguments" {
		t.Errorf("forbidden body header form: %s, want invalidArguments", typ)
	}
}

// pdfBytes stands in for a binary attachment.
var pdfBytes = []byte("%PDF-1.4\n\x00\x01\x02\xff binary \xfe\xfd tail\n")

// structureMessage is multipart/mixed holding a multipart/alternative
// (text and HTML) and a PDF attachment.
var structureMessage = crlf(`From: Alice <alice@example.test>
To: bob@example.test
Subject: Structure
Date: Mon, 01 Jan 2024 12:00:00 +0000
Message-ID: <structure@example.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Hello =E2=82=AC world
--inner
Content-Type: text/html; charset=utf-8

<p>Hello &euro; <b>world</b></p>
--inner--

--outer
Content-Type: application/pdf; name="report.pdf"
Content-Disposition: attachment; filename="report.pdf"
Content-Transfer-Encoding: base64

`) + base64.StdEncoding.EncodeToString(pdfBytes) + crlf(`
--outer--
`)

// wantPart is the expected EmailBodyPart with the given properties.
func wantPart(partID any, typ string, charset any, size int, name, disposition any) map[string]any {
	return map[string]any{"partId": partID, "type": typ, "charset": charset, "size": float64(size),
		"name": name, "disposition": disposition, "cid": nil, "language": nil, "location": nil}
}

// wantParts compares body parts without their blobIds, which it returns.
func wantParts(t *testing.T, what string, got any, want ...map[string]any) []string {
	t.Helper()
	list, _ := got.([]any)
	if len(list) != len(want) {
		t.Errorf("%s has %d parts, want %d: %v", what, len(list), len(want), got)
		return nil
	}
	var blobs []string
	for i, x := range list {
		p := maps.Clone(x.(map[string]any))
		blobs = append(blobs, str(p["blobId"]))
		delete(p, "blobId")
		if !reflect.DeepEqual(p, want[i]) {
			t.Errorf("%s[%d] = %v\nwant %v", what, i, p, want[i])
		}
	}
	return blobs
}

// RFC 8621 §4.1.4: bodyStructure is the full tree (partId and blobId null
// exactly for multipart/*); textBody, htmlBody and attachments follow the
// suggested algorithm: the alternative's text/plain in textBody, its
// text/html in htmlBody, the PDF in attachments; size is the decoded size,
// charset null for non-text parts, and hasAttachment is true. The blobId of
// a part downloads its decoded octets.
func TestEmailGet_BodyStructureAndLists(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	id := importIn(t, alice, structureMessage, inbox)
	bodyProps := []string{"partId", "blobId", "size", "name", "type", "charset", "disposition", "cid", "language", "location"}
	e := getEmail(t, alice, id, map[string]any{"properties": []string{"bodyStructure", "textBody", "htmlBody", "attachments", "hasAttachment"},
		"bodyProperties": append(slices.Clone(bodyProps), "subParts")})
	text := wantPart("1.1", "text/plain", "utf-8", len("Hello € world"), nil, nil)
	html := wantPart("1.2", "text/html", "utf-8", len("<p>Hello &euro; <b>world</b></p>"), nil, nil)
	pdf := wantPart("2", "application/pdf", nil, len(pdfBytes), "report.pdf", "attachment")
	root, _ := e["bodyStructure"].(map[string]any)
	if root["type"] != "multipart/mixed" || root["partId"] != nil || root["blobId"] != nil {
		t.Fatalf("bodyStructure = %v", root)
	}
	subs, _ := root["subParts"].([]any)
	if len(subs) != 2 {
		t.Fatalf("bodyStructure.subParts = %v", root["subParts"])
	}
	alt := subs[0].(map[string]any)
	if alt["type"] != "multipart/alternative" || alt["partId"] != nil || alt["blobId"] != nil {
		t.Errorf("alternative = %v", alt)
	}
	for _, leaf := range []map[string]any{text, html, pdf} {
		leaf["subParts"] = nil
	}
	wantParts(t, "alternative.subParts", alt["subParts"], text, html)
	wantParts(t, "bodyStructure.subParts[1]", []any{subs[1]}, pdf)
	for _, leaf := range []map[string]any{text, html, pdf} {
		delete(leaf, "subParts")
	}

	e = getEmail(t, alice, id, map[string]any{"properties": []string{"textBody", "htmlBody", "attachments", "hasAttachment"}})
	tb := wantParts(t, "textBody", e["textBody"], text)
	wantParts(t, "htmlBody", e["htmlBody"], html)
	ab := wantParts(t, "attachments", e["attachments"], pdf)
	if e["hasAttachment"] != true {
		t.Errorf("hasAttachment = %v, want true", e["hasAttachment"])
	}
	if len(tb) == 1 {
		if got := string(downloadBlob(t, alice, tb[0])); got != "Hello € world" {
			t.Errorf("text part download = %q", got)
		}
	}
	if len(ab) == 1 {
		if got := downloadBlob(t, alice, ab[0]); !bytes.Equal(got, pdfBytes) {
			t.Errorf("attachment download = %q, want %q", got, pdfBytes)
		}
		// Blob/get reads the same octets (RFC 9404 §4.2).
		res := alice.One(t, "Blob/get", map[string]any{"accountId": alice.Account, "ids": []string{ab[0]},
			"properties": []string{"data:asBase64", "size"}})
		list, _ := res["list"].([]any)
		if len(list) != 1 || list[0].(map[string]any)["data:asBase64"] != base64.StdEncoding.EncodeToString(pdfBytes) {
			t.Errorf("Blob/get of the part = %v", res)
		}
	}
}

// RFC 8621 §4.2: fetchTextBodyValues, fetchHTMLBodyValues and
// fetchAllBodyValues choose the text/* parts of textBody, htmlBody or the
// whole structure; maxBodyValueBytes truncates "so it does not exceed this
// number of octets", never mid-codepoint, setting isTruncated, and
// "SHOULD NOT truncate inside an HTML tag".
func TestEmailGet_BodyValues(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	id := importIn(t, alice, structureMessage, inbox)
	value := func(v string, truncated bool) map[string]any {
		return map[string]any{"value": v, "isEncodingProblem": false, "isTruncated": truncated}
	}
	text, html := "Hello € world", "<p>Hello &euro; <b>world</b></p>"
	cases := []struct {
		name string
		args map[string]any
		want map[string]any
	}{
		{"none", map[string]any{}, map[string]any{}},
		{"text", map[string]any{"fetchTextBodyValues": true}, map[string]any{"1.1": value(text, false)}},
		{"html", map[string]any{"fetchHTMLBodyValues": true}, map[string]any{"1.2": value(html, false)}},
		{"text and html", map[string]any{"fetchTextBodyValues": true, "fetchHTMLBodyValues": true},
			map[string]any{"1.1": value(text, false), "1.2": value(html, false)}},
		{"all", map[string]any{"fetchAllBodyValues": true}, map[string]any{"1.1": value(text, false), "1.2": value(html, false)}},
		// "Hello " is 6 octets and "€" the next 3: 7 and 8 fall inside it.
		{"cut before the euro", map[string]any{"fetchTextBodyValues": true, "maxBodyValueBytes": 8}, map[string]any{"1.1": value("Hello ", true)}},
		{"cut after the euro", map[string]any{"fetchTextBodyValues": true, "maxBodyValueBytes": 9}, map[string]any{"1.1": value("Hello €", true)}},
		{"exact length", map[string]any{"fetchTextBodyValues": true, "maxBodyValueBytes": len(text)}, map[string]any{"1.1": value(text, false)}},
		// 18 octets end inside "<b>": the cut goes before the tag.
		{"html tag", map[string]any{"fetchHTMLBodyValues": true, "maxBodyValueBytes": 18}, map[string]any{"1.2": value("<p>Hello &euro; ", true)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := map[string]any{"properties": []string{"bodyValues"}}
			for k, v := range tc.args {
				args[k] = v
			}
			got := getEmail(t, alice, id, args)["bodyValues"]
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("bodyValues = %v\nwant %v", got, tc.want)
			}
			for _, v := range tc.want {
				if s := v.(map[string]any)["value"].(string); !utf8.ValidString(s) {
					t.Errorf("value %q is not UTF-8", s)
				}
			}
		})
	}
	if typ := alice.Error(t, "Email/get", map[string]any{"accountId": alice.Account, "ids": []string{id},
		"maxBodyValueBytes": -1}); typ != "invalidArguments" {
		t.Errorf("maxBodyValueBytes -1: %s, want invalidArguments", typ)
	}
}

// RFC 8621 §4.1.4: isEncodingProblem "is true if malformed sections were
// found while decoding the charset, the charset was unknown, or the
// content-transfer-encoding was unknown"; malformed octets become U+FFFD.
// CRLF becomes LF.
func TestEmailGet_EncodingProblem(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	cases := []struct {
		name, headers, body string
		problem             bool
		value               string
	}{
		{"clean", "Content-Type: text/plain; charset=utf-8\n", "line one\nline two", false, "line one\nline two\n"},
		{"latin-1", "Content-Type: text/plain; charset=iso-8859-1\n", "caf\xe9", false, "café\n"},
		{"unknown charset", "Content-Type: text/plain; charset=x-no-such-charset\n", "hello", true, ""},
		{"bad utf-8", "Content-Type: text/plain; charset=utf-8\n", "caf\xff!", true, "caf\uFFFD!\n"},
		{"unknown transfer encoding", "Content-Type: text/plain\nContent-Transfer-Encoding: x-weird\n", "plain", true, ""},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := crlf(fmt.Sprintf("From: a@example.test\nSubject: enc\nMessage-ID: <enc%d@example.test>\nMIME-Version: 1.0\n%s\n%s\n", i, tc.headers, tc.body))
			id := importIn(t, alice, raw, inbox)
			bv, _ := getEmail(t, alice, id, map[string]any{"properties": []string{"bodyValues"}, "fetchTextBodyValues": true})["bodyValues"].(map[string]any)
			v, _ := bv["1"].(map[string]any)
			if v["isEncodingProblem"] != tc.problem || v["isTruncated"] != false {
				t.Errorf("bodyValues = %v, want isEncodingProblem %v", bv, tc.problem)
			}
			if tc.value != "" && v["value"] != tc.value {
				t.Errorf("value = %q, want %q", v["value"], tc.value)
			}
		})
	}
}

// --- Email/set update and destroy ---

// RFC 8621 §4.6: keywords change by patch ("keywords/$seen") or by full
// replacement; keywords are returned in lowercase (§4.1.1); an invalid
// keyword or a value other than true is invalidProperties and changes
// nothing. unreadEmails follows $seen.
func TestEmailSet_Keywords(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	id := importIn(t, alice, simpleMessage("kw@example.test", "Keywords", "", "kw"), inbox)
	wantCounts(t, alice, inbox, [4]int{1, 1, 1, 1})
	kw := func() map[string]any {
		return getEmail(t, alice, id, map[string]any{"properties": []string{"keywords"}})["keywords"].(map[string]any)
	}
	updateEmail(t, alice, id, map[string]any{"keywords/$seen": true})
	if got := kw(); !reflect.DeepEqual(got, boolSet("$seen")) {
		t.Errorf("after keywords/$seen: %v", got)
	}
	wantCounts(t, alice, inbox, [4]int{1, 0, 1, 0})
	updateEmail(t, alice, id, map[string]any{"keywords/$Flagged": true})
	if got := kw(); !reflect.DeepEqual(got, boolSet("$seen", "$flagged")) {
		t.Errorf("after keywords/$Flagged: %v", got)
	}
	// Keywords are case-insensitive (§4.1.1), in a patch path too.
	updateEmail(t, alice, id, map[string]any{"keywords/$SEEN": nil})
	if got := kw(); !reflect.DeepEqual(got, boolSet("$flagged")) {
		t.Errorf("after removing $SEEN: %v", got)
	}
	wantCounts(t, alice, inbox, [4]int{1, 1, 1, 1})
	updateEmail(t, alice, id, map[string]any{"keywords": boolSet("$Answered", "$draft", "work")})
	if got := kw(); !reflect.DeepEqual(got, boolSet("$answered", "$draft", "work")) {
		t.Errorf("after replacing: %v", got)
	}
	// A draft is not unread (RFC 8621 §2 unreadEmails).
	wantCounts(t, alice, inbox, [4]int{1, 0, 1, 0})

	for name, patch := range map[string]map[string]any{
		"bad character":  {"keywords/a(b": true},
		"false value":    {"keywords/$seen": false},
		"replace false":  {"keywords": map[string]any{"$seen": false}},
		"replace string": {"keywords": "$seen"},
		"empty keyword":  {"keywords": map[string]any{"": true}},
	} {
		before := statesOf(t, alice)
		res := setEmails(t, alice, map[string]any{"update": map[string]any{id: patch}})
		wantSetError(t, res, "notUpdated", id, "invalidProperties", "keywords")
		if res["updated"] != nil || res["oldState"] != res["newState"] {
			t.Errorf("%s: updated %v, states %v → %v", name, res["updated"], res["oldState"], res["newState"])
		}
		wantUnchanged(t, alice, before)
	}
	if got := kw(); !reflect.DeepEqual(got, boolSet("$answered", "$draft", "work")) {
		t.Errorf("after the rejected updates: %v", got)
	}
}

// RFC 8621 §4.6, §4.1.1: mailboxIds change by patch or replacement; "An
// Email in the mail store MUST belong to one or more Mailboxes at all
// times", so leaving it in none, or naming a mailbox that does not exist,
// is invalidProperties and changes nothing. The counts follow each move.
func TestEmailSet_MailboxIDs(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox, archive, trash := mailboxByRole(t, alice, "inbox"), mailboxByRole(t, alice, "archive"), mailboxByRole(t, alice, "trash")
	id := importIn(t, alice, simpleMessage("mb@example.test", "Move me", "", "mb"), inbox)
	mboxes := func() map[string]any {
		return getEmail(t, alice, id, map[string]any{"properties": []string{"mailboxIds"}})["mailboxIds"].(map[string]any)
	}
	updateEmail(t, alice, id, map[string]any{"mailboxIds/" + archive: true})
	if got := mboxes(); !reflect.DeepEqual(got, boolSet(inbox, archive)) {
		t.Errorf("after adding archive: %v", got)
	}
	wantCounts(t, alice, inbox, [4]int{1, 1, 1, 1})
	wantCounts(t, alice, archive, [4]int{1, 1, 1, 1})
	updateEmail(t, alice, id, map[string]any{"mailboxIds/" + inbox: nil})
	if got := mboxes(); !reflect.DeepEqual(got, boolSet(archive)) {
		t.Errorf("after removing inbox: %v", got)
	}
	wantCounts(t, alice, inbox, [4]int{0, 0, 0, 0})
	updateEmail(t, alice, id, map[string]any{"mailboxIds": boolSet(trash)})
	if got := mboxes(); !reflect.DeepEqual(got, boolSet(trash)) {
		t.Errorf("after replacing: %v", got)
	}
	wantCounts(t, alice, archive, [4]int{0, 0, 0, 0})
	wantCounts(t, alice, trash, [4]int{1, 1, 1, 1})

	// RFC 8620 §5.3: a reference to a record "may be set (via create or
	// update) in the same request as the referenced record is created", by
	// "#" and its creation id: in a patch path and in a full value.
	r := alice.Call(t,
		jmaptest.Call{Name: "Mailbox/set", Args: map[string]any{"accountId": alice.Account, "create": map[string]any{
			"nb1": map[string]any{"name": "New one"}, "nb2": map[string]any{"name": "New two"}}}},
		jmaptest.Call{Name: "Email/set", Args: map[string]any{"accountId": alice.Account, "update": map[string]any{
			id: map[string]any{"mailboxIds/#nb1": true}}}},
		jmaptest.Call{Name: "Email/get", Args: map[string]any{"accountId": alice.Account, "ids": []string{id}, "properties": []string{"mailboxIds"}}},
		jmaptest.Call{Name: "Email/set", Args: map[string]any{"accountId": alice.Account, "update": map[string]any{
			id: map[string]any{"mailboxIds": map[string]any{"#nb2": true}}}}},
	)
	nb1, nb2 := str(member(r.MethodResponses[0].Args["created"], "nb1")["id"]), str(member(r.MethodResponses[0].Args["created"], "nb2")["id"])
	if len(r.MethodResponses) != 4 || nb1 == "" || nb2 == "" {
		t.Fatalf("responses: %+v", r.MethodResponses)
	}
	if !hasKey(r.MethodResponses[1].Args["updated"], id) || !hasKey(r.MethodResponses[3].Args["updated"], id) {
		t.Errorf("updates by creation id: %v; %v", r.MethodResponses[1].Args["notUpdated"], r.MethodResponses[3].Args["notUpdated"])
	}
	if list, _ := r.MethodResponses[2].Args["list"].([]any); len(list) != 1 || !reflect.DeepEqual(list[0].(map[string]any)["mailboxIds"], boolSet(trash, nb1)) {
		t.Errorf("after mailboxIds/#nb1: %v", r.MethodResponses[2].Args)
	}
	if got := mboxes(); !reflect.DeepEqual(got, boolSet(nb2)) {
		t.Errorf("after mailboxIds {#nb2}: %v", got)
	}
	updateEmail(t, alice, id, map[string]any{"mailboxIds": boolSet(trash)})

	for name, patch := range map[string]map[string]any{
		"empty":          {"mailboxIds": map[string]any{}},
		"null":           {"mailboxIds": nil},
		"remove last":    {"mailboxIds/" + trash: nil},
		"unknown":        {"mailboxIds/nosuch": true},
		"replace false":  {"mailboxIds": map[string]any{trash: false}},
		"unknown in set": {"mailboxIds": boolSet(trash, "nosuch")},
	} {
		before := statesOf(t, alice)
		res := setEmails(t, alice, map[string]any{"update": map[string]any{id: patch}})
		wantSetError(t, res, "notUpdated", id, "invalidProperties", "mailboxIds")
		if res["updated"] != nil {
			t.Errorf("%s: updated %v", name, res["updated"])
		}
		wantUnchanged(t, alice, before)
	}
	if got := mboxes(); !reflect.DeepEqual(got, boolSet(trash)) {
		t.Errorf("after the rejected updates: %v", got)
	}
	wantCounts(t, alice, trash, [4]int{1, 1, 1, 1})
}

// RFC 8621 §4.1: every property but mailboxIds and keywords is immutable or
// server-set; changing one is invalidProperties (RFC 8620 §5.3) and changes
// nothing, while "changing" one to its current value is allowed.
func TestEmailSet_ImmutableProperties(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	id := importIn(t, alice, simpleMessage("imm@example.test", "Fixed", "", "imm"), inbox)
	e := getEmail(t, alice, id, map[string]any{"properties": []string{"subject", "receivedAt"}})
	for prop, v := range map[string]any{"subject": "Changed", "receivedAt": "2020-01-01T00:00:00Z", "threadId": "t1",
		"blobId": "Gabc", "size": 1, "id": "other", "from": []any{map[string]any{"email": "x@example.test"}},
		"preview": "p", "hasAttachment": true, "messageId": []any{"new@example.test"}} {
		before := statesOf(t, alice)
		res := setEmails(t, alice, map[string]any{"update": map[string]any{id: map[string]any{prop: v}}})
		wantSetError(t, res, "notUpdated", id, "invalidProperties", prop)
		wantUnchanged(t, alice, before)
	}
	updateEmail(t, alice, id, map[string]any{"subject": e["subject"], "receivedAt": e["receivedAt"], "keywords/$seen": true})
}

// RFC 8621 §4.6: destroying an Email removes it from all Mailboxes; it is
// gone from Email/get, its Thread goes with its last Email, and
// Email/changes lists it as destroyed. Destroying it again is notFound.
func TestEmailSet_Destroy(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox, archive := mailboxByRole(t, alice, "inbox"), mailboxByRole(t, alice, "archive")
	e := importRaw(t, alice, simpleMessage("d@example.test", "Doomed", "", "d"), map[string]any{"mailboxIds": boolSet(inbox, archive)})
	id, thread := str(e["id"]), str(e["threadId"])
	before := statesOf(t, alice)
	res := setEmails(t, alice, map[string]any{"destroy": []string{id}})
	if fmt.Sprint(res["destroyed"]) != "["+id+"]" || res["notDestroyed"] != nil {
		t.Fatalf("destroy: %v", res)
	}
	got := alice.One(t, "Email/get", map[string]any{"accountId": alice.Account, "ids": []string{id}})
	if fmt.Sprint(got["notFound"]) != "["+id+"]" {
		t.Errorf("Email/get after destroy: %v", got)
	}
	tg := alice.One(t, "Thread/get", map[string]any{"accountId": alice.Account, "ids": []string{thread}})
	if fmt.Sprint(tg["notFound"]) != "["+thread+"]" {
		t.Errorf("Thread/get after destroying its only email: %v", tg)
	}
	wantCounts(t, alice, inbox, [4]int{0, 0, 0, 0})
	wantCounts(t, alice, archive, [4]int{0, 0, 0, 0})
	if ch := changesSince(t, alice, "Email", before.email); fmt.Sprint(ch["destroyed"]) != "["+id+"]" {
		t.Errorf("Email/changes = %v", ch)
	}
	if ch := changesSince(t, alice, "Thread", before.thread); fmt.Sprint(ch["destroyed"]) != "["+thread+"]" {
		t.Errorf("Thread/changes = %v", ch)
	}
	after := statesOf(t, alice)
	res = setEmails(t, alice, map[string]any{"destroy": []string{id}})
	wantSetError(t, res, "notDestroyed", id, "notFound")
	wantUnchanged(t, alice, after)
}

// --- Email/set create ---

// RFC 8621 §4.6: an Email made from textBody, htmlBody (both from
// bodyValues) and an attachment by blobId becomes a multipart message whose
// Email/get gives the same text, HTML, attachment octets and headers back;
// "created" holds id, blobId, threadId and size, and the server sets
// Message-ID and Date when the client did not.
func TestEmailSet_CreateRoundTrip(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	drafts := mailboxByRole(t, alice, "drafts")
	pic := []byte("\x89PNG\r\n\x1a\nnot a real picture \x00\xff")
	up := uploadBlob(t, alice, pic, "image/png")
	// A text attachment keeps its octets, bare LFs included: with a blobId
	// "the size is actually calculated from the blob content itself".
	csv := []byte("col1,col2\n1,2\n")
	upCSV := uploadBlob(t, alice, csv, "text/csv")
	text, html := "Plain body ✓\nline two\n", "<p>HTML body ✓</p>"
	before := statesOf(t, alice)
	res := setEmails(t, alice, map[string]any{"create": map[string]any{"d": map[string]any{
		"mailboxIds": boolSet(drafts), "keywords": boolSet("$draft", "$seen"),
		"from":       []any{map[string]any{"name": "Alice Ä", "email": "alice@example.test"}},
		"to":         []any{map[string]any{"name": nil, "email": "bob@example.test"}},
		"subject":    "Création ✓",
		"bodyValues": map[string]any{"t": map[string]any{"value": text}, "h": map[string]any{"value": html}},
		"textBody":   []any{map[string]any{"partId": "t", "type": "text/plain"}},
		"htmlBody":   []any{map[string]any{"partId": "h", "type": "text/html"}},
		"attachments": []any{map[string]any{"blobId": up, "type": "image/png", "name": "pic.png"},
			map[string]any{"blobId": upCSV, "type": "text/csv", "name": "figures.csv"}},
		"header:X-Mailer:asText": "jmapd test",
		// §4.1.2.1: Raw is the octets after the colon, so it round-trips.
		"header:X-Raw": " kept  as is",
	}}})
	c := member(res["created"], "d")
	if keys := keysOf(c); fmt.Sprint(keys) != "[blobId id size threadId]" {
		t.Fatalf("created = %v (notCreated %v), want id, blobId, threadId, size", c, res["notCreated"])
	}
	if res["oldState"] != before.email || res["newState"] == before.email {
		t.Errorf("oldState %v newState %v", res["oldState"], res["newState"])
	}
	id := str(c["id"])
	e := getEmail(t, alice, id, map[string]any{"fetchAllBodyValues": true, "properties": []string{
		"blobId", "threadId", "size", "mailboxIds", "keywords", "from", "to", "subject", "messageId", "sentAt",
		"hasAttachment", "textBody", "htmlBody", "attachments", "bodyValues", "header:X-Mailer:asText", "header:X-Raw"}})
	for k, want := range map[string]any{"blobId": c["blobId"], "threadId": c["threadId"], "size": c["size"],
		"mailboxIds": boolSet(drafts), "keywords": boolSet("$draft", "$seen"), "subject": "Création ✓",
		"from":                   []any{map[string]any{"name": "Alice Ä", "email": "alice@example.test"}},
		"to":                     []any{map[string]any{"name": nil, "email": "bob@example.test"}},
		"hasAttachment":          true,
		"header:X-Mailer:asText": "jmapd test",
		"header:X-Raw":           " kept  as is"} {
		if !reflect.DeepEqual(e[k], want) {
			t.Errorf("%s = %#v, want %#v", k, e[k], want)
		}
	}
	if mid := strs(e["messageId"]); len(mid) != 1 || !strings.Contains(mid[0], "@") {
		t.Errorf("messageId = %v, want one server-made id", e["messageId"])
	}
	if str(e["sentAt"]) == "" {
		t.Errorf("sentAt = %v, want the server's Date", e["sentAt"])
	}
	bv, _ := e["bodyValues"].(map[string]any)
	value := func(list any, typ string) string {
		t.Helper()
		l, _ := list.([]any)
		if len(l) != 1 {
			t.Errorf("want one %s part, got %v", typ, list)
			return ""
		}
		p := l[0].(map[string]any)
		if p["type"] != typ {
			t.Errorf("part type %v, want %s", p["type"], typ)
		}
		v, _ := bv[str(p["partId"])].(map[string]any)
		return str(v["value"])
	}
	if got := value(e["textBody"], "text/plain"); got != text {
		t.Errorf("text body = %q, want %q", got, text)
	}
	if got := value(e["htmlBody"], "text/html"); got != html {
		t.Errorf("html body = %q, want %q", got, html)
	}
	att, _ := e["attachments"].([]any)
	if len(att) != 2 {
		t.Fatalf("attachments = %v", e["attachments"])
	}
	for i, want := range []struct {
		name, typ string
		data      []byte
	}{{"pic.png", "image/png", pic}, {"figures.csv", "text/csv", csv}} {
		a := att[i].(map[string]any)
		if a["name"] != want.name || a["type"] != want.typ || a["size"] != float64(len(want.data)) {
			t.Errorf("attachment %d = %v, want %s %s of %d octets", i, a, want.name, want.typ, len(want.data))
		}
		if got := downloadBlob(t, alice, str(a["blobId"])); !bytes.Equal(got, want.data) {
			t.Errorf("attachment %s octets = %q, want %q", want.name, got, want.data)
		}
	}
	wantCounts(t, alice, drafts, [4]int{1, 0, 1, 0})
}

// RFC 8621 §4.6: an Email may instead be given as a bodyStructure tree.
func TestEmailSet_CreateWithBodyStructure(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	drafts := mailboxByRole(t, alice, "drafts")
	data := []byte("\x00\x01\x02 raw data \xff")
	up := uploadBlob(t, alice, data, "application/octet-stream")
	res := setEmails(t, alice, map[string]any{"create": map[string]any{"d": map[string]any{
		"mailboxIds": boolSet(drafts), "subject": "Tree",
		"bodyValues": map[string]any{"a": map[string]any{"value": "hello tree"}},
		"bodyStructure": map[string]any{"type": "multipart/mixed", "subParts": []any{
			map[string]any{"partId": "a", "type": "text/plain"},
			map[string]any{"blobId": up, "type": "application/octet-stream", "disposition": "attachment", "name": "data.bin"},
		}},
	}}})
	c := member(res["created"], "d")
	if c == nil {
		t.Fatalf("notCreated = %v", res["notCreated"])
	}
	e := getEmail(t, alice, str(c["id"]), map[string]any{"fetchTextBodyValues": true,
		"properties":     []string{"bodyStructure", "textBody", "attachments", "bodyValues", "subject"},
		"bodyProperties": []string{"partId", "blobId", "type", "name", "disposition", "subParts"}})
	root, _ := e["bodyStructure"].(map[string]any)
	subs, _ := root["subParts"].([]any)
	if root["type"] != "multipart/mixed" || len(subs) != 2 {
		t.Fatalf("bodyStructure = %v", root)
	}
	tb, _ := e["textBody"].([]any)
	if len(tb) != 1 {
		t.Fatalf("textBody = %v", e["textBody"])
	}
	p := tb[0].(map[string]any)
	bv := member(e["bodyValues"], str(p["partId"]))
	if bv["value"] != "hello tree" {
		t.Errorf("text value = %v", bv)
	}
	att, _ := e["attachments"].([]any)
	if len(att) != 1 || att[0].(map[string]any)["name"] != "data.bin" || att[0].(map[string]any)["disposition"] != "attachment" {
		t.Fatalf("attachments = %v", e["attachments"])
	}
	if got := downloadBlob(t, alice, str(att[0].(map[string]any)["blobId"])); !bytes.Equal(got, data) {
		t.Errorf("attachment octets = %q", got)
	}
}

// RFC 8621 §4.6: blobNotFound "MUST" carry a notFound list of "every
// blobId referenced by an EmailBodyPart that could not be found"; nothing
// is created.
func TestEmailSet_CreateBlobNotFound(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	drafts := mailboxByRole(t, alice, "drafts")
	before := statesOf(t, alice)
	res := setEmails(t, alice, map[string]any{"create": map[string]any{"d": map[string]any{
		"mailboxIds": boolSet(drafts), "subject": "Missing",
		"attachments": []any{
			map[string]any{"blobId": "Gnosuch1", "type": "image/png"},
			map[string]any{"blobId": "Gnosuch2", "type": "image/png"},
		},
	}}})
	wantSetError(t, res, "notCreated", "d", "blobNotFound")
	e := member(res["notCreated"], "d")
	if nf := strs(e["notFound"]); !sameSet(nf, []string{"Gnosuch1", "Gnosuch2"}) {
		t.Errorf("notFound = %v, want both blob ids", e["notFound"])
	}
	wantNothingDone(t, res)
	wantUnchanged(t, alice, before)
}

// RFC 8621 §1.3.1: maxSizeAttachmentsPerEmail is "The maximum total size
// of attachments, in octets, allowed for a single Email object"; over it,
// the create is rejected (tooLarge, RFC 8620 §5.3) and nothing changes.
func TestEmailSet_CreateAttachmentsOverLimit(t *testing.T) {
	srv := jmaptest.Start(t, func(c *config.Config) { c.Limits.MaxSizeUpload = 100 })
	alice := srv.NewUser(t, "alice@example.test")
	drafts := mailboxByRole(t, alice, "drafts")
	limit, _ := mailCapability(t, alice)["maxSizeAttachmentsPerEmail"].(float64)
	if limit != 100 {
		t.Fatalf("maxSizeAttachmentsPerEmail = %v, want 100", limit)
	}
	a, b := uploadBlob(t, alice, bytes.Repeat([]byte("a"), 60), "text/plain"), uploadBlob(t, alice, bytes.Repeat([]byte("b"), 60), "text/plain")
	att := func(ids ...string) []any {
		var out []any
		for _, id := range ids {
			out = append(out, map[string]any{"blobId": id, "type": "application/octet-stream"})
		}
		return out
	}
	before := statesOf(t, alice)
	res := setEmails(t, alice, map[string]any{"create": map[string]any{"d": map[string]any{"mailboxIds": boolSet(drafts), "attachments": att(a, b)}}})
	wantSetError(t, res, "notCreated", "d", "tooLarge")
	wantNothingDone(t, res)
	wantUnchanged(t, alice, before)
	res = setEmails(t, alice, map[string]any{"create": map[string]any{"d": map[string]any{"mailboxIds": boolSet(drafts), "attachments": att(a)}}})
	if res["created"] == nil {
		t.Errorf("one attachment under the limit: %v", res["notCreated"])
	}
}

// RFC 8621 §4.6: the constraints on a new Email (no "headers", no header
// given twice, no forbidden forms, no Content-* on the Email, bodyStructure
// excludes the flat lists, textBody/htmlBody hold one part of their type,
// partId must be in bodyValues and excludes charset, isTruncated false)
// answer invalidProperties; nothing is created.
func TestEmailSet_CreateInvalidProperties(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	drafts := mailboxByRole(t, alice, "drafts")
	text := func(extra map[string]any) []any {
		p := map[string]any{"partId": "t", "type": "text/plain"}
		for k, v := range extra {
			p[k] = v
		}
		return []any{p}
	}
	bv := map[string]any{"t": map[string]any{"value": "x"}}
	cases := map[string]map[string]any{
		"from twice":            {"from": []any{map[string]any{"email": "a@example.test"}}, "header:From:asAddresses": []any{map[string]any{"email": "b@example.test"}}},
		"raw and parsed":        {"subject": "a", "header:Subject": " b"},
		"headers":               {"headers": []any{map[string]any{"name": "X-A", "value": "b"}}},
		"forbidden form":        {"header:From:asDate": "2024-01-01T00:00:00Z"},
		"content on email":      {"header:Content-Type": " text/plain"},
		"bodyStructure + lists": {"bodyValues": bv, "textBody": text(nil), "bodyStructure": map[string]any{"partId": "t", "type": "text/plain"}},
		"two text parts":        {"bodyValues": bv, "textBody": append(text(nil), text(nil)...)},
		"textBody of html":      {"bodyValues": bv, "textBody": text(map[string]any{"type": "text/html"})},
		"unknown partId":        {"bodyValues": bv, "textBody": []any{map[string]any{"partId": "nope", "type": "text/plain"}}},
		"partId and charset":    {"bodyValues": bv, "textBody": text(map[string]any{"charset": "utf-8"})},
		"partId and blobId":     {"bodyValues": bv, "textBody": text(map[string]any{"blobId": "Gabc"})},
		"truncated value":       {"bodyValues": map[string]any{"t": map[string]any{"value": "x", "isTruncated": true}}, "textBody": text(nil)},
		"server-set id":         {"id": "mine"},
		"transfer encoding":     {"bodyValues": bv, "textBody": text(map[string]any{"header:Content-Transfer-Encoding": " base64"})},
	}
	for name, obj := range cases {
		t.Run(name, func(t *testing.T) {
			obj["mailboxIds"] = boolSet(drafts)
			before := statesOf(t, alice)
			res := setEmails(t, alice, map[string]any{"create": map[string]any{"d": obj}})
			wantSetError(t, res, "notCreated", "d", "invalidProperties")
			wantNothingDone(t, res)
			wantUnchanged(t, alice, before)
		})
	}
}

// --- Threads ---

// RFC 8621 §3: a reply (In-Reply-To the first message, same base subject
// after "Re:") joins its Thread; emailIds are "sorted by the receivedAt
// date of the Email, oldest first".
func TestThread_ReplyJoins(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	a := importRaw(t, alice, simpleMessage("a@example.test", "Lunch", "", "a"),
		map[string]any{"mailboxIds": boolSet(inbox), "receivedAt": "2024-01-02T00:00:00Z"})
	// The reply arrives with an older receivedAt: it sorts first.
	b := importRaw(t, alice, simpleMessage("b@example.test", "Re: [team] Lunch", "In-Reply-To: <a@example.test>\n", "b"),
		map[string]any{"mailboxIds": boolSet(inbox), "receivedAt": "2024-01-01T00:00:00Z"})
	if a["threadId"] != b["threadId"] {
		t.Fatalf("reply thread %v, want %v", b["threadId"], a["threadId"])
	}
	if got := threadEmails(t, alice, str(a["threadId"])); fmt.Sprint(got) != fmt.Sprint([]any{b["id"], a["id"]}) {
		t.Errorf("emailIds = %v, want [%v %v]", got, b["id"], a["id"])
	}
	wantCounts(t, alice, inbox, [4]int{2, 2, 1, 1})
}

// RFC 8621 §3 (suggested rule 2): the same message id but a different base
// subject starts a new Thread, "where a person replies to an old message ...
// but changes the subject"; a later reply with the original subject still
// joins the original Thread.
func TestThread_DifferentSubjectDoesNotJoin(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	a := importIn(t, alice, simpleMessage("a@example.test", "Lunch", "", "a"), inbox)
	b := importIn(t, alice, simpleMessage("b@example.test", "Something else", "In-Reply-To: <a@example.test>\nReferences: <a@example.test>\n", "b"), inbox)
	c := importIn(t, alice, simpleMessage("c@example.test", "Re: Lunch", "In-Reply-To: <a@example.test>\n", "c"), inbox)
	d := importIn(t, alice, simpleMessage("d@example.test", "RE: Something else", "In-Reply-To: <b@example.test>\n", "d"), inbox)
	th := map[string]string{}
	for id, e := range getEmails(t, alice, []string{a, b, c, d}, map[string]any{"properties": []string{"threadId"}}) {
		th[id] = str(e["threadId"])
	}
	if th[a] == th[b] {
		t.Errorf("a reply with another subject joined the thread")
	}
	if th[c] != th[a] {
		t.Errorf("a reply with the original subject did not join the original thread")
	}
	if th[d] != th[b] {
		t.Errorf("a reply to the new subject did not join its thread")
	}
	wantCounts(t, alice, inbox, [4]int{4, 4, 2, 2})
}

// RFC 8621 §3: when a third Email joins two Threads, "it MUST handle this by
// deleting and reinserting (with a new Email id) the Emails that change
// threadId": the moved Email gets a new id, Email/changes reports the old id
// destroyed and the new one created, Thread/changes the destroyed Thread, and
// the counts see one Thread.
func TestThread_MergeGivesNewIDs(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	a := importRaw(t, alice, simpleMessage("a@example.test", "Plan", "", "a"),
		map[string]any{"mailboxIds": boolSet(inbox), "receivedAt": "2024-01-01T00:00:00Z"})
	// b replies to a message the account does not have yet.
	b := importRaw(t, alice, simpleMessage("b@example.test", "Re: Plan", "References: <x@example.test>\n", "b"),
		map[string]any{"mailboxIds": boolSet(inbox), "receivedAt": "2024-01-02T00:00:00Z", "keywords": boolSet("$flagged")})
	if a["threadId"] == b["threadId"] {
		t.Fatalf("unrelated messages share a thread")
	}
	wantCounts(t, alice, inbox, [4]int{2, 2, 2, 2})
	before := statesOf(t, alice)
	c := importRaw(t, alice, simpleMessage("c@example.test", "Re: Plan", "References: <a@example.test> <b@example.test>\n", "c"),
		map[string]any{"mailboxIds": boolSet(inbox), "receivedAt": "2024-01-03T00:00:00Z"})
	ec := changesSince(t, alice, "Email", before.email)
	created, destroyed := strs(ec["created"]), strs(ec["destroyed"])
	if len(created) != 2 || !slices.Contains(created, str(c["id"])) || len(destroyed) != 1 || len(strs(ec["updated"])) != 0 {
		t.Fatalf("Email/changes = %v, want two created (c and one moved email) and one destroyed", ec)
	}
	kept, moved := a, b
	if destroyed[0] == str(a["id"]) {
		kept, moved = b, a
	}
	if destroyed[0] != str(moved["id"]) {
		t.Fatalf("destroyed %v, want a or b", destroyed)
	}
	newID := created[0]
	if newID == str(c["id"]) {
		newID = created[1]
	}
	if c["threadId"] != kept["threadId"] {
		t.Errorf("c thread %v, want the kept thread %v", c["threadId"], kept["threadId"])
	}
	got := alice.One(t, "Email/get", map[string]any{"accountId": alice.Account, "ids": []string{str(moved["id"]), newID},
		"properties": []string{"threadId", "messageId", "keywords", "receivedAt", "mailboxIds", "blobId"}})
	if fmt.Sprint(got["notFound"]) != "["+str(moved["id"])+"]" {
		t.Errorf("the old id is still found: %v", got)
	}
	if list, _ := got["list"].([]any); len(list) == 1 {
		m := list[0].(map[string]any)
		if m["threadId"] != kept["threadId"] || m["blobId"] != moved["blobId"] {
			t.Errorf("moved email = %v, want thread %v and blob %v", m, kept["threadId"], moved["blobId"])
		}
		if moved["id"] == b["id"] && (!reflect.DeepEqual(m["keywords"], boolSet("$flagged")) || m["receivedAt"] != "2024-01-02T00:00:00Z") {
			t.Errorf("moved email lost its keywords or receivedAt: %v", m)
		}
	}
	ids := []string{str(kept["id"]), newID}
	if moved["id"] == a["id"] {
		ids = []string{newID, str(kept["id"])}
	}
	ids = append(ids, str(c["id"]))
	if got := threadEmails(t, alice, str(kept["threadId"])); !slices.Equal(got, ids) {
		t.Errorf("emailIds = %v, want %v (by receivedAt)", got, ids)
	}
	tc := changesSince(t, alice, "Thread", before.thread)
	if fmt.Sprint(tc["destroyed"]) != "["+str(moved["threadId"])+"]" || !slices.Contains(strs(tc["updated"]), str(kept["threadId"])) {
		t.Errorf("Thread/changes = %v, want %v destroyed and %v updated", tc, moved["threadId"], kept["threadId"])
	}
	tg := alice.One(t, "Thread/get", map[string]any{"accountId": alice.Account, "ids": []string{str(moved["threadId"])}})
	if fmt.Sprint(tg["notFound"]) != "["+str(moved["threadId"])+"]" {
		t.Errorf("merged-away thread still found: %v", tg)
	}
	wantCounts(t, alice, inbox, [4]int{3, 3, 1, 1})
}

// --- Email/query ---

// queryCorpus imports four emails, E1 to E4, chosen so that each filter and
// sort of RFC 8621 §4.4 tells them apart. E1 and E2 are one thread.
type queryCorpus struct {
	c                     *jmaptest.Client
	inbox, archive, trash string
	id                    map[string]string // by label
	label                 map[string]string // by id
	size                  map[string]float64
}

func newQueryCorpus(t *testing.T) *queryCorpus {
	t.Helper()
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	q := &queryCorpus{c: alice, inbox: mailboxByRole(t, alice, "inbox"), archive: mailboxByRole(t, alice, "archive"),
		trash: mailboxByRole(t, alice, "trash"), id: map[string]string{}, label: map[string]string{}, size: map[string]float64{}}
	msgs := []struct {
		label, raw, at string
		mboxes, kw     []string
	}{
		{"E1", crlf(`From: Alice Adams <alice@example.com>
To: bob@example.com
Cc: carol@example.com
Subject: Quarterly report
Date: Fri, 05 Jan 2024 10:00:00 +0000
Message-ID: <e1@example.com>
X-Priority: 1
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain

The numbers look good.
--b1
Content-Type: application/pdf
Content-Disposition: attachment; filename="q.pdf"

%PDF-1.4 not really
--b1--
`), "2024-01-05T10:00:00Z", []string{q.inbox}, []string{"$seen"}},
		{"E2", crlf(`From: Zed <zed@example.org>
To: alice@example.com
Bcc: dave@example.com
Subject: Re: Quarterly report
Date: Sat, 06 Jan 2024 10:00:00 +0000
Message-ID: <e2@example.com>
In-Reply-To: <e1@example.com>
References: <e1@example.com>

Agreed, ship it.
`), "2024-01-06T10:00:00Z", []string{q.inbox, q.archive}, []string{"$seen", "$flagged"}},
		{"E3", crlf(`From: bob@example.net
To: Yolanda <yolanda@example.com>
Subject: Holiday photos
Date: Thu, 01 Feb 2024 09:00:00 +0900
Message-ID: <e3@example.com>

Beach pictures, as promised.
`), "2024-02-01T00:30:00Z", []string{q.trash}, nil},
		{"E4", crlf(`From: Mallory <mallory@example.com>
To: carol@example.com
Subject: Invoice
Date: Wed, 31 Jan 2024 20:00:00 -0500
Message-ID: <e4@example.com>
List-Id: Billing <billing.example.com>

Payment due by Friday.
`) + strings.Repeat("Lorem ipsum dolor sit amet.\r\n", 40), "2024-03-01T12:00:00Z", []string{q.archive}, []string{"$flagged"}},
	}
	for _, m := range msgs {
		e := importRaw(t, alice, m.raw, map[string]any{"mailboxIds": boolSet(m.mboxes...), "keywords": boolSet(m.kw...), "receivedAt": m.at})
		id := str(e["id"])
		q.id[m.label], q.label[id], q.size[m.label] = id, m.label, e["size"].(float64)
	}
	sizes := map[float64]bool{}
	for _, s := range q.size {
		sizes[s] = true
	}
	if len(sizes) != 4 {
		t.Fatalf("the corpus needs four sizes: %v", q.size)
	}
	return q
}

// ids turns labels into email ids.
func (q *queryCorpus) ids(labels ...string) []string {
	out := make([]string, len(labels))
	for i, l := range labels {
		out[i] = q.id[l]
	}
	return out
}

// labels turns email ids into labels.
func (q *queryCorpus) labels(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = q.label[id]
	}
	return out
}

// query runs Email/query and returns the response.
func (q *queryCorpus) query(t *testing.T, args map[string]any) map[string]any {
	t.Helper()
	args["accountId"] = q.c.Account
	return q.c.One(t, "Email/query", args)
}

// bySize returns the labels whose size passes keep, in label order.
func (q *queryCorpus) bySize(keep func(float64) bool) []string {
	var out []string
	for _, l := range []string{"E1", "E2", "E3", "E4"} {
		if keep(q.size[l]) {
			out = append(out, l)
		}
	}
	return out
}

// RFC 8621 §4.4.1: each FilterCondition property matches as defined there.
func TestEmailQuery_Filters(t *testing.T) {
	q := newQueryCorpus(t)
	cut := q.size["E2"]
	cases := []struct {
		name   string
		filter any
		want   []string
	}{
		{"inMailbox inbox", map[string]any{"inMailbox": q.inbox}, []string{"E1", "E2"}},
		{"inMailbox archive", map[string]any{"inMailbox": q.archive}, []string{"E2", "E4"}},
		{"inMailbox trash", map[string]any{"inMailbox": q.trash}, []string{"E3"}},
		{"inMailboxOtherThan trash", map[string]any{"inMailboxOtherThan": []string{q.trash}}, []string{"E1", "E2", "E4"}},
		{"inMailboxOtherThan inbox", map[string]any{"inMailboxOtherThan": []string{q.inbox}}, []string{"E2", "E3", "E4"}},
		{"inMailboxOtherThan inbox archive", map[string]any{"inMailboxOtherThan": []string{q.inbox, q.archive}}, []string{"E3"}},
		{"before is strict", map[string]any{"before": "2024-02-01T00:30:00Z"}, []string{"E1", "E2"}},
		{"after is inclusive", map[string]any{"after": "2024-02-01T00:30:00Z"}, []string{"E3", "E4"}},
		{"after and before", map[string]any{"after": "2024-01-06T00:00:00Z", "before": "2024-03-01T00:00:00Z"}, []string{"E2", "E3"}},
		{"minSize is inclusive", map[string]any{"minSize": cut}, q.bySize(func(s float64) bool { return s >= cut })},
		{"maxSize is strict", map[string]any{"maxSize": cut}, q.bySize(func(s float64) bool { return s < cut })},
		{"allInThreadHaveKeyword", map[string]any{"allInThreadHaveKeyword": "$seen"}, []string{"E1", "E2"}},
		{"someInThreadHaveKeyword", map[string]any{"someInThreadHaveKeyword": "$flagged"}, []string{"E1", "E2", "E4"}},
		{"noneInThreadHaveKeyword flagged", map[string]any{"noneInThreadHaveKeyword": "$flagged"}, []string{"E3"}},
		{"noneInThreadHaveKeyword seen", map[string]any{"noneInThreadHaveKeyword": "$seen"}, []string{"E3", "E4"}},
		{"hasKeyword", map[string]any{"hasKeyword": "$flagged"}, []string{"E2", "E4"}},
		{"hasKeyword any case", map[string]any{"hasKeyword": "$FLAGGED"}, []string{"E2", "E4"}},
		{"notKeyword", map[string]any{"notKeyword": "$seen"}, []string{"E3", "E4"}},
		{"hasAttachment true", map[string]any{"hasAttachment": true}, []string{"E1"}},
		{"hasAttachment false", map[string]any{"hasAttachment": false}, []string{"E2", "E3", "E4"}},
		{"text in from and to", map[string]any{"text": "alice"}, []string{"E1", "E2"}},
		{"text in body", map[string]any{"text": "beach"}, []string{"E3"}},
		{"text in subject", map[string]any{"text": "INVOICE"}, []string{"E4"}},
		{"text in cc", map[string]any{"text": "carol"}, []string{"E1", "E4"}},
		{"from", map[string]any{"from": "example.org"}, []string{"E2"}},
		{"from by name", map[string]any{"from": "adams"}, []string{"E1"}},
		{"to", map[string]any{"to": "yolanda"}, []string{"E3"}},
		{"to is not cc", map[string]any{"to": "carol"}, []string{"E4"}},
		{"cc", map[string]any{"cc": "carol"}, []string{"E1"}},
		{"bcc", map[string]any{"bcc": "dave"}, []string{"E2"}},
		{"subject", map[string]any{"subject": "quarterly"}, []string{"E1", "E2"}},
		{"body", map[string]any{"body": "ship it"}, []string{"E2"}},
		{"body is not headers", map[string]any{"body": "alice"}, nil},
		{"header present", map[string]any{"header": []string{"X-Priority"}}, []string{"E1"}},
		{"header name any case", map[string]any{"header": []string{"list-id"}}, []string{"E4"}},
		{"header with value", map[string]any{"header": []string{"List-Id", "billing"}}, []string{"E4"}},
		{"header with other value", map[string]any{"header": []string{"X-Priority", "2"}}, nil},
		{"empty condition", map[string]any{}, []string{"E1", "E2", "E3", "E4"}},
		{"two properties are AND", map[string]any{"inMailbox": q.inbox, "hasKeyword": "$flagged"}, []string{"E2"}},
		{"NOT", map[string]any{"operator": "NOT", "conditions": []any{map[string]any{"inMailbox": q.trash}}}, []string{"E1", "E2", "E4"}},
		{"OR", map[string]any{"operator": "OR", "conditions": []any{map[string]any{"inMailbox": q.trash}, map[string]any{"hasAttachment": true}}}, []string{"E1", "E3"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := q.query(t, map[string]any{"filter": tc.filter, "sort": []any{map[string]any{"property": "receivedAt"}}, "calculateTotal": true})
			got := q.labels(strs(res["ids"]))
			if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Errorf("filter %v = %v, want %v", tc.filter, got, tc.want)
			}
			if res["total"] != float64(len(tc.want)) {
				t.Errorf("total = %v, want %d", res["total"], len(tc.want))
			}
		})
	}
}

// RFC 8621 §4.4.1: in String conditions, "white space SHOULD be treated as
// dividing separate tokens that may be searched for separately but MUST all
// be present", and text in matched quotes "SHOULD be treated as a phrase
// search" in which \ escapes a quote; matching is case-insensitive.
func TestEmailQuery_TextTokensAndPhrases(t *testing.T) {
	q := newQueryCorpus(t)
	cases := []struct {
		name   string
		filter map[string]any
		want   []string
	}{
		{"tokens apart in the body", map[string]any{"body": "numbers good"}, []string{"E1"}},
		{"tokens in either order", map[string]any{"subject": "report QUARTERLY"}, []string{"E1", "E2"}},
		{"tokens in different fields", map[string]any{"text": "zed ship"}, []string{"E2"}},
		{"one token missing", map[string]any{"text": "zed holiday"}, nil},
		{"phrase apart", map[string]any{"body": `"numbers good"`}, nil},
		{"phrase together", map[string]any{"body": `"look good"`}, []string{"E1"}},
		{"single quotes", map[string]any{"body": `'pictures, as'`}, []string{"E3"}},
		{"phrase and token", map[string]any{"text": `"ship it" zed`}, []string{"E2"}},
		{"unmatched quote is a character", map[string]any{"body": `'pictures`}, nil},
		{"name with space", map[string]any{"from": "alice adams"}, []string{"E1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := q.query(t, map[string]any{"filter": tc.filter, "sort": []any{map[string]any{"property": "receivedAt"}}})
			if got := q.labels(strs(res["ids"])); !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Errorf("filter %v = %v, want %v", tc.filter, got, tc.want)
			}
		})
	}
}

// RFC 8621 §4.4.2: each sort property, ascending and descending. Ties
// (E1 and E2 have one base subject and one thread) go to receivedAt.
func TestEmailQuery_Sorts(t *testing.T) {
	q := newQueryCorpus(t)
	bySize := []string{"E1", "E2", "E3", "E4"}
	slices.SortFunc(bySize, func(a, b string) int { return int(q.size[a] - q.size[b]) })
	cases := []struct {
		property, keyword string
		asc               []string
	}{
		{"receivedAt", "", []string{"E1", "E2", "E3", "E4"}},
		{"size", "", bySize},
		// The name, or the email when there is no name: alice adams, bob@..., mallory, zed.
		{"from", "", []string{"E1", "E3", "E4", "E2"}},
		// alice@..., bob@..., carol@..., yolanda.
		{"to", "", []string{"E2", "E1", "E4", "E3"}},
		// Base subjects (RFC 5256 §2.1): holiday photos, invoice, quarterly report (twice).
		{"subject", "", []string{"E3", "E4", "E1", "E2"}},
		// sentAt is a date: 2024-02-01T09:00:00+09:00 is before 2024-01-31T20:00:00-05:00.
		{"sentAt", "", []string{"E1", "E2", "E3", "E4"}},
		{"hasKeyword", "$flagged", []string{"E1", "E3", "E2", "E4"}},
		{"allInThreadHaveKeyword", "$seen", []string{"E3", "E4", "E1", "E2"}},
		{"someInThreadHaveKeyword", "$flagged", []string{"E3", "E1", "E2", "E4"}},
	}
	for _, tc := range cases {
		for _, asc := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s asc %v", tc.property, asc), func(t *testing.T) {
				first := map[string]any{"property": tc.property, "isAscending": asc}
				if tc.keyword != "" {
					first["keyword"] = tc.keyword
				}
				res := q.query(t, map[string]any{"sort": []any{first, map[string]any{"property": "receivedAt"}}})
				want := tc.asc
				if !asc {
					want = descending(tc.asc, func(l string) string { return sortKey(q, tc.property, l) })
				}
				if got := q.labels(strs(res["ids"])); !slices.Equal(got, want) {
					t.Errorf("sort %s asc %v = %v, want %v", tc.property, asc, got, want)
				}
			})
		}
	}
}

// sortKey groups the labels that tie on a sort property in the corpus, so
// that descending keeps receivedAt order within a group.
func sortKey(q *queryCorpus, property, label string) string {
	switch property {
	case "subject":
		if label == "E1" || label == "E2" {
			return "quarterly"
		}
	case "hasKeyword":
		return fmt.Sprint(label == "E2" || label == "E4")
	case "allInThreadHaveKeyword":
		return fmt.Sprint(label == "E1" || label == "E2")
	case "someInThreadHaveKeyword":
		return fmt.Sprint(label != "E3")
	}
	return label
}

// descending reverses asc by group, keeping each group's order.
func descending(asc []string, key func(string) string) []string {
	var groups [][]string
	for _, l := range asc {
		if n := len(groups); n > 0 && key(groups[n-1][0]) == key(l) {
			groups[n-1] = append(groups[n-1], l)
			continue
		}
		groups = append(groups, []string{l})
	}
	var out []string
	for i := len(groups) - 1; i >= 0; i-- {
		out = append(out, groups[i]...)
	}
	return out
}

// RFC 8621 §4.4.3: with collapseThreads only the first Email of each
// Thread (in sort order) stays, and total counts Threads.
func TestEmailQuery_CollapseThreads(t *testing.T) {
	q := newQueryCorpus(t)
	for _, tc := range []struct {
		asc  bool
		want []string
	}{{false, []string{"E4", "E3", "E2"}}, {true, []string{"E1", "E3", "E4"}}} {
		res := q.query(t, map[string]any{"collapseThreads": true, "calculateTotal": true,
			"sort": []any{map[string]any{"property": "receivedAt", "isAscending": tc.asc}}})
		if got := q.labels(strs(res["ids"])); !slices.Equal(got, tc.want) || res["total"] != float64(3) {
			t.Errorf("collapsed, asc %v = %v total %v, want %v total 3", tc.asc, got, res["total"], tc.want)
		}
	}
	res := q.query(t, map[string]any{"collapseThreads": true, "filter": map[string]any{"inMailbox": q.inbox},
		"sort": []any{map[string]any{"property": "receivedAt", "isAscending": false}}, "calculateTotal": true})
	if got := q.labels(strs(res["ids"])); fmt.Sprint(got) != "[E2]" || res["total"] != float64(1) {
		t.Errorf("collapsed inbox = %v total %v, want [E2] 1", got, res["total"])
	}
}

// RFC 8620 §5.5: a filter or sort the server does not support answers
// unsupportedFilter or unsupportedSort; RFC 8621 §4.4.2: the keyword sorts
// "MUST also have a keyword property".
func TestEmailQuery_UnsupportedFilterAndSort(t *testing.T) {
	q := newQueryCorpus(t)
	args := func(k string, v any) map[string]any { return map[string]any{"accountId": q.c.Account, k: v} }
	for _, f := range []any{
		map[string]any{"colour": "red"},
		map[string]any{"operator": "XOR", "conditions": []any{map[string]any{}}},
		map[string]any{"operator": "AND", "conditions": []any{map[string]any{"inMailbox": q.inbox}, map[string]any{"size": 3}}},
	} {
		if typ := q.c.Error(t, "Email/query", args("filter", f)); typ != "unsupportedFilter" {
			t.Errorf("filter %v: %s, want unsupportedFilter", f, typ)
		}
	}
	for _, s := range []map[string]any{
		{"property": "colour"},
		{"property": "hasKeyword"},
		{"property": "someInThreadHaveKeyword"},
		{"property": "subject", "collation": "i;no-such-collation"},
		{"property": "id"},
	} {
		if typ := q.c.Error(t, "Email/query", args("sort", []any{s})); typ != "unsupportedSort" {
			t.Errorf("sort %v: %s, want unsupportedSort", s, typ)
		}
	}
}

// RFC 8621 §4.5, RFC 8620 §5.6: after keyword changes, Email/queryChanges
// turns the old results into the new ones; a query whose result depends on
// other Emails of the Thread either gives correct changes or answers
// cannotCalculateChanges.
func TestEmailQueryChanges_AfterUpdate(t *testing.T) {
	q := newQueryCorpus(t)
	flagged := map[string]any{"hasKeyword": "$flagged"}
	sort := []any{map[string]any{"property": "receivedAt"}}
	old := q.query(t, map[string]any{"filter": flagged, "sort": sort})
	if got := q.labels(strs(old["ids"])); fmt.Sprint(got) != "[E2 E4]" {
		t.Fatalf("flagged = %v", got)
	}
	updateEmail(t, q.c, q.id["E3"], map[string]any{"keywords/$flagged": true})
	updateEmail(t, q.c, q.id["E2"], map[string]any{"keywords/$flagged": nil})
	now := q.query(t, map[string]any{"filter": flagged, "sort": sort})
	qc := q.c.One(t, "Email/queryChanges", map[string]any{"accountId": q.c.Account, "filter": flagged, "sort": sort,
		"sinceQueryState": old["queryState"], "calculateTotal": true})
	if qc["oldQueryState"] != old["queryState"] || qc["newQueryState"] != now["queryState"] {
		t.Errorf("states %v → %v, want %v → %v", qc["oldQueryState"], qc["newQueryState"], old["queryState"], now["queryState"])
	}
	if got := applyQueryChanges(strs(old["ids"]), qc); !slices.Equal(got, strs(now["ids"])) {
		t.Errorf("old results with changes = %v, want %v", q.labels(got), q.labels(strs(now["ids"])))
	}
	if qc["total"] != float64(2) {
		t.Errorf("total = %v, want 2", qc["total"])
	}

	// E1's match depends on E2's keywords.
	all := map[string]any{"allInThreadHaveKeyword": "$seen"}
	old = q.query(t, map[string]any{"filter": all, "sort": sort})
	if got := q.labels(strs(old["ids"])); fmt.Sprint(got) != "[E1 E2]" {
		t.Fatalf("allInThreadHaveKeyword $seen = %v", got)
	}
	updateEmail(t, q.c, q.id["E2"], map[string]any{"keywords/$seen": nil})
	now = q.query(t, map[string]any{"filter": all, "sort": sort})
	r := q.c.Call(t, jmaptest.Call{Name: "Email/queryChanges", Args: map[string]any{"accountId": q.c.Account,
		"filter": all, "sort": sort, "sinceQueryState": old["queryState"]}})
	inv := r.MethodResponses[0]
	switch {
	case inv.Name == "error" && inv.Args["type"] == "cannotCalculateChanges":
	case inv.Name == "Email/queryChanges":
		if got := applyQueryChanges(strs(old["ids"]), inv.Args); !slices.Equal(got, strs(now["ids"])) {
			t.Errorf("thread filter: old results with changes = %v, want %v", q.labels(got), q.labels(strs(now["ids"])))
		}
	default:
		t.Errorf("thread filter queryChanges: %s %v", inv.Name, inv.Args)
	}
}

// RFC 8620 §5.2, RFC 8621 §4.3: Email/changes lists created, updated and
// destroyed ids; an Email created and destroyed since the state is in
// neither list, and one created and updated is only created.
func TestEmailChanges_CreatedUpdatedDestroyed(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	s0 := alice.State(t, alice.Account, "Email")
	a := importIn(t, alice, simpleMessage("ca@example.test", "A", "", "a"), inbox)
	b := importIn(t, alice, simpleMessage("cb@example.test", "B", "", "b"), inbox)
	ch := changesSince(t, alice, "Email", s0)
	if !sameSet(strs(ch["created"]), []string{a, b}) || len(strs(ch["updated"])) != 0 || len(strs(ch["destroyed"])) != 0 {
		t.Errorf("changes after imports = %v", ch)
	}
	s1 := str(ch["newState"])
	if s1 != alice.State(t, alice.Account, "Email") || ch["oldState"] != s0 || ch["hasMoreChanges"] != false {
		t.Errorf("changes states: %v", ch)
	}
	updateEmail(t, alice, a, map[string]any{"keywords/$seen": true})
	setEmails(t, alice, map[string]any{"destroy": []string{b}})
	ch = changesSince(t, alice, "Email", s1)
	if fmt.Sprint(strs(ch["updated"])) != "["+a+"]" || fmt.Sprint(strs(ch["destroyed"])) != "["+b+"]" || len(strs(ch["created"])) != 0 {
		t.Errorf("changes after update and destroy = %v", ch)
	}
	ch = changesSince(t, alice, "Email", s0)
	if fmt.Sprint(strs(ch["created"])) != "["+a+"]" || len(strs(ch["updated"])) != 0 || len(strs(ch["destroyed"])) != 0 {
		t.Errorf("changes over both = %v, want only %s created", ch, a)
	}
	if typ := alice.Error(t, "Email/changes", map[string]any{"accountId": alice.Account, "sinceState": "bogus"}); typ != "cannotCalculateChanges" {
		t.Errorf("unknown state: %s", typ)
	}
}

// --- SearchSnippet/get ---

// RFC 8621 §5: subject and preview wrap matches in <mark></mark>, replace
// &, < and > with entities, are null when nothing matched, and the preview
// "MUST NOT be bigger than 255 octets"; unknown ids are in notFound.
func TestSearchSnippet_MarksAndEscapes(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	fish := importIn(t, alice, simpleMessage("f@example.test", "Fish & <Chips> recipe", "", "We love FISH and chips & more <b>."), inbox)
	other := importIn(t, alice, simpleMessage("o@example.test", "Salad", "", "Greens only."), inbox)
	many := importIn(t, alice, simpleMessage("m@example.test", "Many", "", strings.Repeat("fish & ", 120)), inbox)
	res := alice.One(t, "SearchSnippet/get", map[string]any{"accountId": alice.Account, "filter": map[string]any{"text": "fish"},
		"emailIds": []string{fish, other, many, "nosuch"}})
	if fmt.Sprint(res["notFound"]) != "[nosuch]" {
		t.Errorf("notFound = %v", res["notFound"])
	}
	got := map[string]map[string]any{}
	for _, x := range res["list"].([]any) {
		m := x.(map[string]any)
		got[str(m["emailId"])] = m
	}
	if s := got[fish]["subject"]; s != "<mark>Fish</mark> &amp; &lt;Chips&gt; recipe" {
		t.Errorf("subject = %v", s)
	}
	p := str(got[fish]["preview"])
	if !strings.Contains(p, "<mark>FISH</mark>") || !strings.Contains(p, "&amp;") || strings.Contains(p, "<b>") || !strings.Contains(p, "&lt;b&gt;") {
		t.Errorf("preview = %q", p)
	}
	if got[other]["subject"] != nil || got[other]["preview"] != nil {
		t.Errorf("no match: %v", got[other])
	}
	if p := str(got[many]["preview"]); !strings.HasPrefix(p, "<mark>fish</mark> &amp; ") || len(p) > 255 || !utf8.ValidString(p) {
		t.Errorf("preview of %d octets: %q", len(p), p)
	}
	if _, ok := got[many]["subject"]; !ok || got[many]["subject"] != nil {
		t.Errorf("subject without a match = %v", got[many])
	}
	// Tokens of a search match and are marked separately (§4.4.1), a
	// quoted phrase as a whole.
	res = alice.One(t, "SearchSnippet/get", map[string]any{"accountId": alice.Account, "filter": map[string]any{"subject": `recipe "fish &"`},
		"emailIds": []string{fish}})
	if list, _ := res["list"].([]any); len(list) != 1 || list[0].(map[string]any)["subject"] != "<mark>Fish &amp;</mark> &lt;Chips&gt; <mark>recipe</mark>" {
		t.Errorf("subject with two tokens = %v", res["list"])
	}
	if typ := alice.Error(t, "SearchSnippet/get", map[string]any{"accountId": alice.Account, "filter": map[string]any{"colour": "red"},
		"emailIds": []string{fish}}); typ != "unsupportedFilter" {
		t.Errorf("bad filter: %s, want unsupportedFilter", typ)
	}
}

// --- Email/parse ---

// RFC 8621 §4.9: Email/parse reads an uploaded message without importing
// it: the default properties, exactly; id, mailboxIds, keywords and
// receivedAt null when asked for; a blob that is not a message is in
// notParsable and an unknown one in notFound. An attached message is
// parsed through its part blobId (§4.1.4: "Attached messages may be fetched
// using the Email/parse method and the blobId").
func TestEmailParse(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox := mailboxByRole(t, alice, "inbox")
	before := statesOf(t, alice)
	msg := uploadBlob(t, alice, []byte(structureMessage), "message/rfc822")
	junk := uploadBlob(t, alice, []byte("\x89PNG\r\n\x1a\n\x00"), "image/png")
	res := alice.One(t, "Email/parse", map[string]any{"accountId": alice.Account, "blobIds": []string{msg, junk, "Gnosuch"},
		"fetchTextBodyValues": true})
	if fmt.Sprint(res["notParsable"]) != "["+junk+"]" || fmt.Sprint(res["notFound"]) != "[Gnosuch]" {
		t.Errorf("notParsable %v notFound %v", res["notParsable"], res["notFound"])
	}
	p := member(res["parsed"], msg)
	want := []string{"messageId", "inReplyTo", "references", "sender", "from", "to", "cc", "bcc", "replyTo",
		"subject", "sentAt", "hasAttachment", "preview", "bodyValues", "textBody", "htmlBody", "attachments"}
	slices.Sort(want)
	if got := keysOf(p); !slices.Equal(got, want) {
		t.Errorf("parsed properties = %v\nwant %v", got, want)
	}
	if p["subject"] != "Structure" || p["hasAttachment"] != true {
		t.Errorf("parsed = %v", p)
	}
	bv := member(p["bodyValues"], "1.1")
	if bv["value"] != "Hello € world" {
		t.Errorf("bodyValues = %v", p["bodyValues"])
	}
	res = alice.One(t, "Email/parse", map[string]any{"accountId": alice.Account, "blobIds": []string{msg},
		"properties": []string{"id", "mailboxIds", "keywords", "receivedAt", "blobId", "size", "header:SUBJECT:asText"}})
	p = member(res["parsed"], msg)
	for _, k := range []string{"id", "mailboxIds", "keywords", "receivedAt"} {
		if v, ok := p[k]; !ok || v != nil {
			t.Errorf("%s = %v (present %v), want null", k, v, ok)
		}
	}
	if p["blobId"] != msg || p["size"] != float64(len(structureMessage)) || p["header:SUBJECT:asText"] != "Structure" {
		t.Errorf("parsed = %v", p)
	}
	// A blob made by Blob/upload in the same request is parsed through
	// "#creationId", and parsed is "A map of blob id to parsed Email": the
	// key is the blob id, not the reference.
	r := alice.Call(t,
		jmaptest.Call{Name: "Blob/upload", Args: map[string]any{"accountId": alice.Account, "create": map[string]any{
			"raw": map[string]any{"data": []any{map[string]any{"data:asText": simpleMessage("up@example.test", "Uploaded", "", "u")}}}}}},
		jmaptest.Call{Name: "Email/parse", Args: map[string]any{"accountId": alice.Account, "blobIds": []string{"#raw"},
			"properties": []string{"subject"}}},
	)
	up := str(member(r.MethodResponses[0].Args["created"], "raw")["id"])
	if len(r.MethodResponses) != 2 || up == "" || member(r.MethodResponses[1].Args["parsed"], up)["subject"] != "Uploaded" {
		t.Errorf("Email/parse #raw = %+v, want parsed keyed by %q", r.MethodResponses, up)
	}
	if typ := alice.Error(t, "Email/parse", map[string]any{"accountId": alice.Account, "blobIds": []string{msg},
		"properties": []string{"header:From:asDate"}}); typ != "invalidArguments" {
		t.Errorf("forbidden form: %s, want invalidArguments", typ)
	}
	wantUnchanged(t, alice, before)

	inner := simpleMessage("inner@example.test", "Inner message", "", "Forwarded body.")
	outer := crlf(`From: a@example.test
Subject: Fwd: Inner message
Message-ID: <outer@example.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="fw"

--fw
Content-Type: text/plain

See attached.
--fw
Content-Type: message/rfc822

`) + inner + crlf("--fw--\n")
	id := importIn(t, alice, outer, inbox)
	att, _ := getEmail(t, alice, id, map[string]any{"properties": []string{"attachments"}})["attachments"].([]any)
	if len(att) != 1 || att[0].(map[string]any)["type"] != "message/rfc822" {
		t.Fatalf("attachments = %v", att)
	}
	part := str(att[0].(map[string]any)["blobId"])
	res = alice.One(t, "Email/parse", map[string]any{"accountId": alice.Account, "blobIds": []string{part},
		"properties": []string{"subject", "messageId", "textBody"}})
	p = member(res["parsed"], part)
	if p["subject"] != "Inner message" || fmt.Sprint(p["messageId"]) != "[inner@example.test]" {
		t.Fatalf("parse of the attached message = %v", res)
	}
	// The attached message's own parts download like any part.
	tb, _ := p["textBody"].([]any)
	if len(tb) != 1 {
		t.Fatalf("attached message textBody = %v", p["textBody"])
	}
	if got := string(downloadBlob(t, alice, str(tb[0].(map[string]any)["blobId"]))); got != "Forwarded body." {
		t.Errorf("attached message text = %q", got)
	}
}

// --- Blob/lookup ---

// RFC 9404 §4.3: Blob/lookup maps a blob to the Emails whose message it is
// and to their Threads; a blob no Email uses maps to empty lists.
func TestBlobLookup_EmailAndThread(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	inbox, archive := mailboxByRole(t, alice, "inbox"), mailboxByRole(t, alice, "archive")
	raw := simpleMessage("lk@example.test", "Lookup", "", "lk")
	e1 := importRaw(t, alice, raw, map[string]any{"mailboxIds": boolSet(inbox)})
	e2 := importRaw(t, alice, raw, map[string]any{"mailboxIds": boolSet(archive)})
	if e1["id"] == e2["id"] {
		t.Fatalf("two imports of one blob share the id %v (RFC 8621 §4.8: \"MUST have a separate id\")", e1["id"])
	}
	unused := uploadBlob(t, alice, []byte("nobody uses me"), "text/plain")
	res := alice.One(t, "Blob/lookup", map[string]any{"accountId": alice.Account, "typeNames": []string{"Email", "Thread"},
		"ids": []string{str(e1["blobId"]), unused}})
	items := map[string]map[string]any{}
	for _, x := range res["list"].([]any) {
		m := x.(map[string]any)
		items[str(m["id"])], _ = m["matchedIds"].(map[string]any)
	}
	got := items[str(e1["blobId"])]
	if !sameSet(strs(got["Email"]), []string{str(e1["id"]), str(e2["id"])}) {
		t.Errorf("Email matches = %v, want %v and %v", got["Email"], e1["id"], e2["id"])
	}
	threads := []string{str(e1["threadId"])}
	if e2["threadId"] != e1["threadId"] {
		threads = append(threads, str(e2["threadId"]))
	}
	if !sameSet(strs(got["Thread"]), threads) {
		t.Errorf("Thread matches = %v, want %v", got["Thread"], threads)
	}
	if m := items[unused]; m == nil || len(strs(m["Email"])) != 0 || len(strs(m["Thread"])) != 0 {
		t.Errorf("unused blob = %v, want empty lists", items[unused])
	} else if _, ok := m["Email"].([]any); !ok {
		t.Errorf("unused blob Email = %v, want []", m["Email"])
	}
}

// STYLE (Errors): what the caller may not read answers exactly like what
// does not exist. Bob's Email, Thread and blobs are notFound for Alice in
// her account, as RFC 8621 §4.2, §4.8, §4.9, §4.6 (blobNotFound) and
// RFC 9404 §4.3 answer unknown ids, and his part blobs do not download.
func TestEmail_OtherAccountsLookLikeNothing(t *testing.T) {
	srv := jmaptest.Start(t)
	alice, bob := srv.NewUser(t, "alice@example.test"), srv.NewUser(t, "bob@example.test")
	aliceInbox, bobInbox := mailboxByRole(t, alice, "inbox"), mailboxByRole(t, bob, "inbox")
	e := importRaw(t, bob, structureMessage, map[string]any{"mailboxIds": boolSet(bobInbox)})
	id, thread, blob := str(e["id"]), str(e["threadId"]), str(e["blobId"])
	att, _ := getEmail(t, bob, id, map[string]any{"properties": []string{"attachments"}})["attachments"].([]any)
	if len(att) != 1 {
		t.Fatalf("bob's attachments = %v", att)
	}
	part := str(att[0].(map[string]any)["blobId"])
	before := statesOf(t, alice)

	for _, ids := range [][]string{{id}, {"nosuch"}} {
		res := alice.One(t, "Email/get", map[string]any{"accountId": alice.Account, "ids": ids})
		if fmt.Sprint(res["notFound"]) != fmt.Sprint(ids) || len(res["list"].([]any)) != 0 {
			t.Errorf("Email/get %v = %v", ids, res)
		}
		res = alice.One(t, "SearchSnippet/get", map[string]any{"accountId": alice.Account, "emailIds": ids, "filter": map[string]any{"text": "hello"}})
		if fmt.Sprint(res["notFound"]) != fmt.Sprint(ids) {
			t.Errorf("SearchSnippet/get %v = %v", ids, res)
		}
	}
	for _, ids := range [][]string{{thread}, {"nosuch"}} {
		res := alice.One(t, "Thread/get", map[string]any{"accountId": alice.Account, "ids": ids})
		if fmt.Sprint(res["notFound"]) != fmt.Sprint(ids) {
			t.Errorf("Thread/get %v = %v", ids, res)
		}
	}
	for _, b := range []string{blob, part, "Gnosuch"} {
		res := importEmails(t, alice, map[string]any{"e": map[string]any{"blobId": b, "mailboxIds": boolSet(aliceInbox)}})
		wantSetError(t, res, "notCreated", "e", "invalidProperties", "blobId")
		res = alice.One(t, "Email/parse", map[string]any{"accountId": alice.Account, "blobIds": []string{b}})
		if fmt.Sprint(res["notFound"]) != "["+b+"]" || res["parsed"] != nil || res["notParsable"] != nil {
			t.Errorf("Email/parse %s = %v", b, res)
		}
		res = setEmails(t, alice, map[string]any{"create": map[string]any{"d": map[string]any{"mailboxIds": boolSet(aliceInbox),
			"attachments": []any{map[string]any{"blobId": b, "type": "application/pdf"}}}}})
		wantSetError(t, res, "notCreated", "d", "blobNotFound")
		if nf := strs(member(res["notCreated"], "d")["notFound"]); fmt.Sprint(nf) != "["+b+"]" {
			t.Errorf("blobNotFound.notFound = %v, want [%s]", nf, b)
		}
		resp, _ := alice.Do(t, http.MethodGet, "/jmap/download/"+alice.Account+"/"+b+"/x", nil, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("download %s: %s, want 404", b, resp.Status)
		}
	}
	wantUnchanged(t, alice, before)
}
