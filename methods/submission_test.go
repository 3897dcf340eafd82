package methods_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jmapd/jmapd/internal/config"
	"github.com/jmapd/jmapd/jmaptest"
	"github.com/jmapd/jmapd/store"
)

const (
	capSubmission = "urn:ietf:params:jmap:submission"
	capVacation   = "urn:ietf:params:jmap:vacationresponse"
)

// sendUsing is what the sending tests declare.
var sendUsing = append([]string{capSubmission, capVacation}, jmaptest.Using...)

// callSend sends method calls declaring sendUsing and returns the method
// responses.
func callSend(t *testing.T, c *jmaptest.Client, calls ...jmaptest.Call) []jmaptest.Invocation {
	t.Helper()
	mc := make([]any, len(calls))
	for i, call := range calls {
		id := call.ID
		if id == "" {
			id = fmt.Sprintf("c%d", i)
		}
		mc[i] = []any{call.Name, call.Args, id}
	}
	body, err := json.Marshal(map[string]any{"using": sendUsing, "methodCalls": mc})
	if err != nil {
		t.Fatal(err)
	}
	status, b := c.Post(t, string(body))
	if status != http.StatusOK {
		t.Fatalf("API status %d: %s", status, b)
	}
	var r jmaptest.Response
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("decode: %v: %s", err, b)
	}
	return r.MethodResponses
}

// oneSend sends one call and returns its response, failing on an error.
func oneSend(t *testing.T, c *jmaptest.Client, name string, args map[string]any) map[string]any {
	t.Helper()
	if _, ok := args["accountId"]; !ok {
		args["accountId"] = c.Account
	}
	r := callSend(t, c, jmaptest.Call{Name: name, Args: args})
	if len(r) == 0 || r[0].Name != name {
		t.Fatalf("%s: got %+v", name, r)
	}
	return r[0].Args
}

func stateOf(t *testing.T, c *jmaptest.Client, typ string) string {
	t.Helper()
	return str(oneSend(t, c, typ+"/get", map[string]any{"ids": []string{}})["state"])
}

// ownIdentity returns the id of the Identity a new user starts with.
func ownIdentity(t *testing.T, c *jmaptest.Client) string {
	t.Helper()
	list, _ := oneSend(t, c, "Identity/get", map[string]any{"ids": nil})["list"].([]any)
	for _, x := range list {
		m := x.(map[string]any)
		if m["email"] == c.Email {
			return str(m["id"])
		}
	}
	t.Fatalf("no identity for %s in %v", c.Email, list)
	return ""
}

// draft creates a draft in Drafts from c to the given header fields and
// returns its id.
func draft(t *testing.T, c *jmaptest.Client, fields map[string]any) string {
	t.Helper()
	obj := map[string]any{
		"mailboxIds": boolSet(mailboxByRole(t, c, "drafts")),
		"keywords":   boolSet("$draft"),
		"from":       []any{map[string]any{"name": "Sender", "email": c.Email}},
		"subject":    "Hello",
		"bodyValues": map[string]any{"b": map[string]any{"value": "Hi there."}},
		"textBody":   []any{map[string]any{"partId": "b", "type": "text/plain"}},
	}
	for k, v := range fields {
		obj[k] = v
	}
	res := setEmails(t, c, map[string]any{"create": map[string]any{"d": obj}})
	id := str(member(res["created"], "d")["id"])
	if id == "" {
		t.Fatalf("draft not created: %v", res["notCreated"])
	}
	return id
}

func to(addrs ...string) []any {
	out := make([]any, len(addrs))
	for i, a := range addrs {
		out[i] = map[string]any{"email": a}
	}
	return out
}

// submit creates one EmailSubmission and returns the whole response list.
func submit(t *testing.T, c *jmaptest.Client, sub map[string]any, extra map[string]any) []jmaptest.Invocation {
	t.Helper()
	args := map[string]any{"accountId": c.Account, "create": map[string]any{"s": sub}}
	for k, v := range extra {
		args[k] = v
	}
	return callSend(t, c, jmaptest.Call{Name: "EmailSubmission/set", Args: args})
}

// submitted returns the created entry of a one-create EmailSubmission/set.
func submitted(t *testing.T, r []jmaptest.Invocation) map[string]any {
	t.Helper()
	if len(r) == 0 || r[0].Name != "EmailSubmission/set" {
		t.Fatalf("got %+v", r)
	}
	s := member(r[0].Args["created"], "s")
	if s == nil {
		t.Fatalf("not created: %v", r[0].Args["notCreated"])
	}
	return s
}

// notSubmitted returns the SetError of a one-create EmailSubmission/set.
func notSubmitted(t *testing.T, r []jmaptest.Invocation) map[string]any {
	t.Helper()
	if len(r) == 0 || r[0].Name != "EmailSubmission/set" {
		t.Fatalf("got %+v", r)
	}
	e := member(r[0].Args["notCreated"], "s")
	if e == nil {
		t.Fatalf("created, want an error: %v", r[0].Args["created"])
	}
	return e
}

// inbox returns the emails of c's Inbox with the given properties.
func inbox(t *testing.T, c *jmaptest.Client, props ...string) []map[string]any {
	t.Helper()
	q := c.One(t, "Email/query", map[string]any{"accountId": c.Account,
		"filter": map[string]any{"inMailbox": mailboxByRole(t, c, "inbox")}})
	ids := strs(q["ids"])
	if len(ids) == 0 {
		return nil
	}
	got := getEmails(t, c, ids, map[string]any{"properties": props})
	out := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		out = append(out, got[id])
	}
	return out
}

func submissionCap(t *testing.T, c *jmaptest.Client) map[string]any {
	t.Helper()
	a := c.Session(t).Accounts[c.Account]
	m, ok := a.Capabilities[capSubmission].(map[string]any)
	if !ok {
		t.Fatalf("no %s in %v", capSubmission, a.Capabilities)
	}
	if _, ok := a.Capabilities[capVacation]; !ok {
		t.Fatalf("no %s in %v", capVacation, a.Capabilities)
	}
	return m
}

func TestSubmission_Capabilities(t *testing.T) {
	t.Parallel()
	srv := jmaptest.Start(t)
	a := srv.NewUser(t, "a@example.test")
	m := submissionCap(t, a)
	if m["maxDelayedSend"] != float64(7*24*3600) {
		t.Errorf("maxDelayedSend = %v", m["maxDelayedSend"])
	}
	ext, _ := m["submissionExtensions"].(map[string]any)
	fr, _ := ext["FUTURERELEASE"].([]any)
	if len(fr) != 2 || fr[0] != "604800" {
		t.Errorf("FUTURERELEASE = %v", ext["FUTURERELEASE"])
	}
	for _, hidden := range []string{"STARTTLS", "PIPELINING", "CHUNKING"} {
		if _, ok := ext[hidden]; ok {
			t.Errorf("submissionExtensions shows %s (RFC 8621 §1.3.2)", hidden)
		}
	}
	s := a.Session(t)
	if _, ok := s.Capabilities[capSubmission]; !ok {
		t.Errorf("session capabilities lack %s", capSubmission)
	}
}

func TestIdentity_NewUserHasOwnAndCannotDeleteIt(t *testing.T) {
	t.Parallel()
	srv := jmaptest.Start(t)
	a := srv.NewUser(t, "a@example.test")
	list, _ := oneSend(t, a, "Identity/get", map[string]any{"ids": nil})["list"].([]any)
	if len(list) != 1 {
		t.Fatalf("identities %v", list)
	}
	id := list[0].(map[string]any)
	if id["email"] != a.Email || id["mayDelete"] != false || id["name"] != "a" || id["replyTo"] != nil ||
		id["bcc"] != nil || id["textSignature"] != "" || id["htmlSignature"] != "" {
		t.Errorf("identity %v", id)
	}
	before := stateOf(t, a, "Identity")
	res := oneSend(t, a, "Identity/set", map[string]any{"destroy": []string{str(id["id"])}})
	if e := member(res["notDestroyed"], str(id["id"])); e["type"] != "forbidden" {
		t.Errorf("destroy: %v", res)
	}
	if got := stateOf(t, a, "Identity"); got != before {
		t.Errorf("state moved %s → %s", before, got)
	}
}

func TestIdentity_ForbiddenFrom(t *testing.T) {
	t.Parallel()
	srv := jmaptest.Start(t)
	a := srv.NewUser(t, "a@example.test")
	srv.NewUser(t, "b@example.test")
	before := stateOf(t, a, "Identity")
	for _, email := range []string{"b@example.test", "*@example.test", "someone@else.test"} {
		res := oneSend(t, a, "Identity/set", map[string]any{"create": map[string]any{"i": map[string]any{"email": email}}})
		if e := member(res["notCreated"], "i"); e["type"] != "forbiddenFrom" {
			t.Errorf("create %s: %v", email, res)
		}
	}
	res := oneSend(t, a, "Identity/set", map[string]any{"create": map[string]any{"i": map[string]any{"email": "not an address"}}})
	if e := member(res["notCreated"], "i"); e["type"] != "invalidProperties" {
		t.Errorf("bad address: %v", res)
	}
	if got := stateOf(t, a, "Identity"); got != before {
		t.Errorf("state moved %s → %s", before, got)
	}
	// A second identity of one's own address, with the optional fields.
	res = oneSend(t, a, "Identity/set", map[string]any{"create": map[string]any{"i": map[string]any{
		"email": "A@example.test", "name": "A at work", "textSignature": "-- \nA", "htmlSignature": "<b>A</b>",
		"replyTo": to("team@example.test"), "bcc": []any{map[string]any{"name": nil, "email": "archive@example.test"}}}}})
	c := member(res["created"], "i")
	if c == nil || c["mayDelete"] != true {
		t.Fatalf("create own: %v", res)
	}
	id := str(c["id"])
	ch := oneSend(t, a, "Identity/changes", map[string]any{"sinceState": before})
	if got := strs(ch["created"]); len(got) != 1 || got[0] != id {
		t.Errorf("changes %v", ch)
	}
	res = oneSend(t, a, "Identity/set", map[string]any{"update": map[string]any{id: map[string]any{"email": "b@example.test"}}})
	if e := member(res["notUpdated"], id); e["type"] != "invalidProperties" {
		t.Errorf("email is immutable: %v", res)
	}
	res = oneSend(t, a, "Identity/set", map[string]any{"update": map[string]any{id: map[string]any{"replyTo": "x"}}})
	if e := member(res["notUpdated"], id); e["type"] != "invalidProperties" {
		t.Errorf("replyTo must be addresses: %v", res)
	}
	res = oneSend(t, a, "Identity/set", map[string]any{"destroy": []string{id}})
	if strs(res["destroyed"])[0] != id {
		t.Errorf("destroy: %v", res)
	}
}

func TestSubmission_LocalDeliveryMovesDraftToSent(t *testing.T) {
	t.Parallel()
	srv := jmaptest.Start(t)
	a := srv.NewUser(t, "a@example.test")
	b := srv.NewUser(t, "b@example.test")
	c := srv.NewUser(t, "c@example.test")
	drafts, sent := mailboxByRole(t, a, "drafts"), mailboxByRole(t, a, "sent")
	eid := draft(t, a, map[string]any{"to": to("B@example.test"), "bcc": to("c@example.test")})
	r := submit(t, a, map[string]any{"identityId": ownIdentity(t, a), "emailId": eid}, map[string]any{
		"onSuccessUpdateEmail": map[string]any{"#s": map[string]any{
			"mailboxIds/" + drafts: nil, "mailboxIds/" + sent: true, "keywords/$draft": nil}}})
	s := submitted(t, r)
	if len(r) != 2 || r[1].Name != "Email/set" || r[1].CallID != r[0].CallID {
		t.Fatalf("want the implicit Email/set after EmailSubmission/set: %+v", r)
	}
	if !hasKey(r[1].Args["updated"], eid) {
		t.Errorf("implicit Email/set: %v", r[1].Args)
	}
	if s["undoStatus"] != "final" {
		t.Errorf("undoStatus %v", s["undoStatus"])
	}
	env, _ := s["envelope"].(map[string]any)
	if member(env, "mailFrom")["email"] != a.Email {
		t.Errorf("derived mailFrom: %v", env)
	}
	ds, _ := s["deliveryStatus"].(map[string]any)
	// Keys are the envelope's addresses, as written.
	for _, rcpt := range []string{"B@example.test", "c@example.test"} {
		st := member(ds, rcpt)
		if st["delivered"] != "yes" || !strings.HasPrefix(str(st["smtpReply"]), "250 2.0.0 ") {
			t.Errorf("deliveryStatus[%s] = %v (all: %v)", rcpt, st, ds)
		}
	}
	// The draft moved to Sent without $draft.
	e := getEmail(t, a, eid, map[string]any{"properties": []string{"mailboxIds", "keywords"}})
	if mb := e["mailboxIds"].(map[string]any); len(mb) != 1 || mb[sent] != true {
		t.Errorf("mailboxIds %v", mb)
	}
	if kw := e["keywords"].(map[string]any); kw["$draft"] != nil {
		t.Errorf("keywords %v", kw)
	}
	// B has it with Delivered-To and Received, and without the Bcc.
	for _, rc := range []*jmaptest.Client{b, c} {
		got := inbox(t, rc, "subject", "header:Delivered-To:asText", "header:Received", "bcc", "keywords")
		if len(got) != 1 {
			t.Fatalf("%s inbox: %v", rc.Email, got)
		}
		m := got[0]
		if m["subject"] != "Hello" || m["header:Delivered-To:asText"] != rc.Email || str(m["header:Received"]) == "" {
			t.Errorf("%s got %v", rc.Email, m)
		}
		if m["bcc"] != nil {
			t.Errorf("%s sees the Bcc: %v", rc.Email, m["bcc"])
		}
	}
	// EmailSubmission/get, /query and /changes see it.
	got := oneSend(t, a, "EmailSubmission/get", map[string]any{"ids": []string{str(s["id"])}})
	list, _ := got["list"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["emailId"] != eid {
		t.Errorf("get: %v", got)
	}
	q := oneSend(t, a, "EmailSubmission/query", map[string]any{"filter": map[string]any{"emailIds": []string{eid}},
		"sort": []any{map[string]any{"property": "sentAt", "isAscending": false}}})
	if ids := strs(q["ids"]); len(ids) != 1 || ids[0] != str(s["id"]) {
		t.Errorf("query: %v", q)
	}
	q = oneSend(t, a, "EmailSubmission/query", map[string]any{"filter": map[string]any{"undoStatus": "pending"}})
	if ids := strs(q["ids"]); len(ids) != 0 {
		t.Errorf("query pending: %v", q)
	}
}

func TestSubmission_SetErrors(t *testing.T) {
	t.Parallel()
	srv := jmaptest.Start(t, func(c *config.Config) {
		c.Submission.MaxRecipients = 3
		c.Submission.MaxSize = 2000
	})
	a := srv.NewUser(t, "a@example.test")
	b := srv.NewUser(t, "b@example.test")
	ident := ownIdentity(t, a)
	ok := draft(t, a, map[string]any{"to": to("b@example.test")})
	bTo := func(fields map[string]any) string {
		if _, has := fields["to"]; !has {
			fields["to"] = to("b@example.test")
		}
		return draft(t, a, fields)
	}
	noFrom := importIn(t, a, crlf("To: b@example.test\nSubject: x\n\nbody\n"), mailboxByRole(t, a, "drafts"))
	cases := []struct {
		name string
		sub  map[string]any
		want string
		// check looks at the SetError's extra members.
		check func(e map[string]any) bool
	}{
		{"unknown email", map[string]any{"identityId": ident, "emailId": "nosuch"}, "invalidProperties", nil},
		{"unknown identity", map[string]any{"identityId": "nosuch", "emailId": ok}, "invalidProperties", nil},
		{"server-set property", map[string]any{"identityId": ident, "emailId": ok, "sendAt": "2030-01-01T00:00:00Z"}, "invalidProperties", nil},
		{"From not the identity's", map[string]any{"identityId": ident,
			"emailId": bTo(map[string]any{"from": to("b@example.test")})}, "forbiddenFrom", nil},
		{"no From", map[string]any{"identityId": ident, "emailId": noFrom}, "invalidEmail", func(e map[string]any) bool {
			return strs(e["properties"])[0] == "from"
		}},
		{"envelope from someone else", map[string]any{"identityId": ident, "emailId": ok, "envelope": map[string]any{
			"mailFrom": map[string]any{"email": "b@example.test"}, "rcptTo": to("b@example.test")}}, "forbiddenMailFrom", nil},
		{"envelope from malformed", map[string]any{"identityId": ident, "emailId": ok, "envelope": map[string]any{
			"mailFrom": map[string]any{"email": "a@@example.test"}, "rcptTo": to("b@example.test")}}, "forbiddenMailFrom", nil},
		{"envelope not an object", map[string]any{"identityId": ident, "emailId": ok, "envelope": "x"}, "invalidProperties", nil},
		{"no recipients in header", map[string]any{"identityId": ident, "emailId": bTo(map[string]any{"to": nil})}, "noRecipients", nil},
		{"no recipients in envelope", map[string]any{"identityId": ident, "emailId": ok, "envelope": map[string]any{
			"mailFrom": map[string]any{"email": a.Email}, "rcptTo": []any{}}}, "noRecipients", nil},
		{"external without relay", map[string]any{"identityId": ident,
			"emailId": bTo(map[string]any{"to": to("b@example.test", "x@elsewhere.test")})}, "invalidRecipients",
			func(e map[string]any) bool {
				l := strs(e["invalidRecipients"])
				return len(l) == 1 && l[0] == "x@elsewhere.test"
			}},
		{"malformed recipient", map[string]any{"identityId": ident, "emailId": ok, "envelope": map[string]any{
			"mailFrom": map[string]any{"email": a.Email}, "rcptTo": to("b@example.test", "bad address@", "<x>")}}, "invalidRecipients",
			func(e map[string]any) bool { return len(strs(e["invalidRecipients"])) == 2 }},
		{"too many recipients", map[string]any{"identityId": ident, "emailId": bTo(map[string]any{
			"to": to("b@example.test", "b1@example.test", "b2@example.test", "b3@example.test")})}, "tooManyRecipients",
			func(e map[string]any) bool { return e["maxRecipients"] == float64(3) }},
		{"too large", map[string]any{"identityId": ident, "emailId": bTo(map[string]any{
			"bodyValues": map[string]any{"b": map[string]any{"value": strings.Repeat("long line of text\n", 200)}}})}, "tooLarge",
			func(e map[string]any) bool { return e["maxSize"] == float64(2000) }},
		{"unsupported parameter", map[string]any{"identityId": ident, "emailId": ok, "envelope": map[string]any{
			"mailFrom": map[string]any{"email": a.Email, "parameters": map[string]any{"XFOO": nil}}, "rcptTo": to("b@example.test")}},
			"invalidProperties", nil},
		{"hold beyond maxDelayedSend", map[string]any{"identityId": ident, "emailId": ok, "envelope": map[string]any{
			"mailFrom": map[string]any{"email": a.Email, "parameters": map[string]any{"HOLDFOR": "999999999"}}, "rcptTo": to("b@example.test")}},
			"invalidProperties", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := stateOf(t, a, "EmailSubmission")
			bEmail := b.State(t, b.Account, "Email")
			e := notSubmitted(t, submit(t, a, tc.sub, nil))
			if e["type"] != tc.want || (tc.check != nil && !tc.check(e)) {
				t.Errorf("got %v, want %s", e, tc.want)
			}
			if got := stateOf(t, a, "EmailSubmission"); got != before {
				t.Errorf("EmailSubmission state moved %s → %s", before, got)
			}
			if got := b.State(t, b.Account, "Email"); got != bEmail {
				t.Errorf("the recipient got mail: Email state %s → %s", bEmail, got)
			}
		})
	}
}

func TestSubmission_ForbiddenToSendOverRate(t *testing.T) {
	t.Parallel()
	srv := jmaptest.Start(t, func(c *config.Config) { c.Submission.MaxPerHour = 1 })
	a := srv.NewUser(t, "a@example.test")
	srv.NewUser(t, "b@example.test")
	ident := ownIdentity(t, a)
	submitted(t, submit(t, a, map[string]any{"identityId": ident, "emailId": draft(t, a, map[string]any{"to": to("b@example.test")})}, nil))
	e := notSubmitted(t, submit(t, a, map[string]any{"identityId": ident, "emailId": draft(t, a, map[string]any{"to": to("b@example.test")})}, nil))
	if e["type"] != "forbiddenToSend" || str(e["description"]) == "" {
		t.Errorf("got %v", e)
	}
}

// waitFor polls cond until it holds or 10 seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func getSubmission(t *testing.T, c *jmaptest.Client, id string) map[string]any {
	t.Helper()
	list, _ := oneSend(t, c, "EmailSubmission/get", map[string]any{"ids": []string{id}})["list"].([]any)
	if len(list) != 1 {
		t.Fatalf("submission %s not found", id)
	}
	return list[0].(map[string]any)
}

func TestSubmission_DelayedSendCanBeCanceled(t *testing.T) {
	t.Parallel()
	srv := jmaptest.Start(t)
	a := srv.NewUser(t, "a@example.test")
	b := srv.NewUser(t, "b@example.test")
	ident := ownIdentity(t, a)
	hold := func(param, value string) map[string]any {
		return map[string]any{"identityId": ident, "emailId": draft(t, a, map[string]any{"to": to(b.Email)}),
			"envelope": map[string]any{"mailFrom": map[string]any{"email": a.Email, "parameters": map[string]any{param: value}},
				"rcptTo": to(b.Email)}}
	}
	s := submitted(t, submit(t, a, hold("HOLDFOR", "3600"), nil))
	id := str(s["id"])
	at, err := time.Parse(time.RFC3339, str(s["sendAt"]))
	if err != nil || time.Until(at) < 59*time.Minute || s["undoStatus"] != "pending" {
		t.Fatalf("held submission %v", s)
	}
	if st := member(s["deliveryStatus"], b.Email); st["delivered"] != "queued" {
		t.Errorf("deliveryStatus %v", s["deliveryStatus"])
	}
	if len(inbox(t, b)) != 0 {
		t.Fatal("a held message was delivered")
	}
	res := oneSend(t, a, "EmailSubmission/set", map[string]any{"update": map[string]any{id: map[string]any{"undoStatus": "canceled"}}})
	if !hasKey(res["updated"], id) {
		t.Fatalf("cancel: %v", res)
	}
	if got := getSubmission(t, a, id); got["undoStatus"] != "canceled" {
		t.Errorf("after cancel: %v", got)
	}
	// A released submission is final and cannot be unsent.
	until := time.Now().Add(time.Second).UTC().Format(time.RFC3339)
	s = submitted(t, submit(t, a, hold("HOLDUNTIL", until), nil))
	id2 := str(s["id"])
	waitFor(t, "the release", func() bool { return getSubmission(t, a, id2)["undoStatus"] == "final" })
	if st := member(getSubmission(t, a, id2)["deliveryStatus"], b.Email); st["delivered"] != "yes" {
		t.Errorf("after release: %v", st)
	}
	if n := len(inbox(t, b)); n != 1 {
		t.Errorf("B has %d messages, want only the released one", n)
	}
	res = oneSend(t, a, "EmailSubmission/set", map[string]any{"update": map[string]any{id2: map[string]any{"undoStatus": "canceled"}}})
	if e := member(res["notUpdated"], id2); e["type"] != "cannotUnsend" {
		t.Errorf("cancel a sent one: %v", res)
	}
}

func TestSubmission_GroupExpandsToMembers(t *testing.T) {
	t.Parallel()
	srv := jmaptest.Start(t)
	a := srv.NewUser(t, "a@example.test")
	b := srv.NewUser(t, "b@example.test")
	c := srv.NewUser(t, "c@example.test")
	srv.Admin(t, "group", "add", "team@example.test", "--member", b.Email, "--member", c.Email)
	s := submitted(t, submit(t, a, map[string]any{"identityId": ownIdentity(t, a),
		"emailId": draft(t, a, map[string]any{"to": to("team@example.test")})}, nil))
	if st := member(s["deliveryStatus"], "team@example.test"); st["delivered"] != "yes" {
		t.Errorf("deliveryStatus %v", s["deliveryStatus"])
	}
	for _, rc := range []*jmaptest.Client{b, c} {
		got := inbox(t, rc, "header:Delivered-To:asText")
		if len(got) != 1 || got[0]["header:Delivered-To:asText"] != rc.Email {
			t.Errorf("%s: %v", rc.Email, got)
		}
	}
	// Each member's copy is their own: B marking it read leaves C's unread.
	bid := str(inbox(t, b, "id")[0]["id"])
	updateEmail(t, b, bid, map[string]any{"keywords/$seen": true})
	if kw := inbox(t, c, "keywords")[0]["keywords"].(map[string]any); kw["$seen"] != nil {
		t.Errorf("C's copy changed: %v", kw)
	}
}

func TestSubmission_DestroyDraftOnSuccess(t *testing.T) {
	t.Parallel()
	srv := jmaptest.Start(t)
	a := srv.NewUser(t, "a@example.test")
	srv.NewUser(t, "b@example.test")
	eid := draft(t, a, map[string]any{"to": to("b@example.test")})
	r := submit(t, a, map[string]any{"identityId": ownIdentity(t, a), "emailId": eid},
		map[string]any{"onSuccessDestroyEmail": []string{"#s"}})
	s := submitted(t, r)
	if len(r) != 2 || strs(r[1].Args["destroyed"])[0] != eid {
		t.Fatalf("implicit destroy: %+v", r)
	}
	// The submission still names the destroyed email (RFC 8621 §7.5).
	if got := getSubmission(t, a, str(s["id"])); got["emailId"] != eid {
		t.Errorf("%v", got)
	}
	// A failed create runs no implicit Email/set.
	r = submit(t, a, map[string]any{"identityId": "nosuch", "emailId": eid},
		map[string]any{"onSuccessDestroyEmail": []string{"#s"}})
	if len(r) != 1 {
		t.Errorf("implicit Email/set after a failure: %+v", r)
	}
}

func TestSubmission_MDNFromRecipientMarksDisplayed(t *testing.T) {
	t.Parallel()
	srv := jmaptest.Start(t)
	a := srv.NewUser(t, "a@example.test")
	b := srv.NewUser(t, "b@example.test")
	eid := draft(t, a, map[string]any{"to": to(b.Email)})
	mid := strs(getEmail(t, a, eid, map[string]any{"properties": []string{"messageId"}})["messageId"])[0]
	id := str(submitted(t, submit(t, a, map[string]any{"identityId": ownIdentity(t, a), "emailId": eid}, nil))["id"])
	// B's client sends a read receipt (RFC 8098) back to A.
	mdn := crlf("From: b@example.test\nTo: a@example.test\nSubject: Read: Hello\nMIME-Version: 1.0\n" +
		"Content-Type: multipart/report; report-type=disposition-notification; boundary=\"x\"\n\n" +
		"--x\nContent-Type: text/plain\n\nYour message was displayed.\n" +
		"--x\nContent-Type: message/disposition-notification\n\n" +
		"Reporting-UA: client.example.test\nFinal-Recipient: rfc822; b@example.test\n" +
		"Original-Message-ID: <" + mid + ">\nDisposition: manual-action/MDN-sent-manually; displayed\n--x--\n")
	receipt := importIn(t, b, mdn, mailboxByRole(t, b, "drafts"))
	submitted(t, submit(t, b, map[string]any{"identityId": ownIdentity(t, b), "emailId": receipt}, nil))
	s := getSubmission(t, a, id)
	if st := member(s["deliveryStatus"], b.Email); st["displayed"] != "yes" {
		t.Errorf("displayed: %v", s["deliveryStatus"])
	}
	mdns := strs(s["mdnBlobIds"])
	if len(mdns) != 1 || !strings.Contains(string(downloadBlob(t, a, mdns[0])), "Original-Message-ID: <"+mid+">") {
		t.Errorf("mdnBlobIds %v", mdns)
	}
}

// An account made before sending existed gets its Identity and
// VacationResponse when the server starts.
func TestSubmission_OldAccountsUpgradedAtStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var a jmaptest.Client
	t.Run("old data", func(t *testing.T) {
		srv := jmaptest.Start(t, func(c *config.Config) { c.Data = dir })
		a = *srv.NewUser(t, "a@example.test")
		_, err := srv.Store().Update(context.Background(), func(tx store.Tx) error {
			for _, typ := range []string{"Identity", "VacationResponse"} {
				for o, err := range tx.Scan(store.AccountID(a.Account), typ) {
					if err != nil {
						return err
					}
					if err := tx.Delete(store.AccountID(a.Account), typ, o.ID); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	srv := jmaptest.Start(t, func(c *config.Config) { c.Data = dir })
	c := jmaptest.Attach(&jmaptest.Client{Email: a.Email, Password: a.Password, Account: a.Account}, srv)
	ownIdentity(t, c)
	if list, _ := oneSend(t, c, "VacationResponse/get", map[string]any{"ids": []string{"singleton"}})["list"].([]any); len(list) != 1 {
		t.Errorf("no VacationResponse after the upgrade")
	}
}

// Mail to a shared mailbox's address lands in the Inbox of its own
// account.
func TestSubmission_SharedMailboxGetsItInItsAccount(t *testing.T) {
	t.Parallel()
	srv := jmaptest.Start(t)
	a := srv.NewUser(t, "a@example.test")
	srv.Admin(t, "shared", "add", "support@example.test")
	s := send(t, a, map[string]any{"to": to("support@example.test")})
	if st := member(s["deliveryStatus"], "support@example.test"); st["delivered"] != "yes" {
		t.Fatalf("status %v", s["deliveryStatus"])
	}
	var n int
	err := srv.Store().View(context.Background(), func(tx store.Tx) error {
		p, err := tx.Principals().ByEmail("support@example.test")
		if err != nil {
			return err
		}
		var inbox string
		for o, err := range tx.Scan(p.Account, "Mailbox") {
			if err != nil {
				return err
			}
			var m struct {
				Role *string `json:"role"`
			}
			if json.Unmarshal(o.Data, &m) == nil && m.Role != nil && *m.Role == "inbox" {
				inbox = o.ID
			}
		}
		for o, err := range tx.Scan(p.Account, "Email") {
			if err != nil {
				return err
			}
			var e struct {
				MailboxIDs map[string]bool `json:"mailboxIds"`
			}
			if json.Unmarshal(o.Data, &e) == nil && e.MailboxIDs[inbox] {
				n++
			}
		}
		return nil
	})
	if err != nil || n != 1 {
		t.Errorf("the shared account's Inbox has %d emails (%v)", n, err)
	}
}

func TestSubmission_QueryChanges(t *testing.T) {
	t.Parallel()
	srv := jmaptest.Start(t)
	a := srv.NewUser(t, "a@example.test")
	srv.NewUser(t, "b@example.test")
	q := oneSend(t, a, "EmailSubmission/query", map[string]any{"filter": map[string]any{"undoStatus": "final"}})
	id := str(send(t, a, map[string]any{"to": to("b@example.test")})["id"])
	qc := oneSend(t, a, "EmailSubmission/queryChanges", map[string]any{"sinceQueryState": q["queryState"],
		"filter": map[string]any{"undoStatus": "final"}})
	added, _ := qc["added"].([]any)
	if len(added) != 1 || added[0].(map[string]any)["id"] != id {
		t.Errorf("queryChanges %v", qc)
	}
	bad := callSend(t, a, jmaptest.Call{Name: "EmailSubmission/query", Args: map[string]any{"accountId": a.Account,
		"filter": map[string]any{"before": "not a date"}}})
	if bad[0].Name != "error" || bad[0].Args["type"] != "unsupportedFilter" {
		t.Errorf("bad filter: %+v", bad)
	}
}
