package methods_test

import (
	"strings"
	"testing"

	"github.com/jmapd/jmapd/jmaptest"
)

func TestVacation_SingletonGetSet(t *testing.T) {
	t.Parallel()
	srv := jmaptest.Start(t)
	b := srv.NewUser(t, "b@example.test")
	list, _ := oneSend(t, b, "VacationResponse/get", map[string]any{"ids": nil})["list"].([]any)
	if len(list) != 1 {
		t.Fatalf("list %v", list)
	}
	v := list[0].(map[string]any)
	if v["id"] != "singleton" || v["isEnabled"] != false || v["fromDate"] != nil || v["textBody"] != nil {
		t.Errorf("default %v", v)
	}
	before := stateOf(t, b, "VacationResponse")
	res := oneSend(t, b, "VacationResponse/set", map[string]any{
		"create":  map[string]any{"x": map[string]any{"isEnabled": true}},
		"destroy": []string{"singleton"}})
	if member(res["notCreated"], "x")["type"] != "singleton" || member(res["notDestroyed"], "singleton")["type"] != "singleton" {
		t.Errorf("create/destroy: %v", res)
	}
	res = oneSend(t, b, "VacationResponse/set", map[string]any{"update": map[string]any{"singleton": map[string]any{"fromDate": "yesterday"}}})
	if member(res["notUpdated"], "singleton")["type"] != "invalidProperties" {
		t.Errorf("bad date: %v", res)
	}
	if got := stateOf(t, b, "VacationResponse"); got != before {
		t.Errorf("state moved %s → %s", before, got)
	}
	res = oneSend(t, b, "VacationResponse/set", map[string]any{"update": map[string]any{"singleton": map[string]any{
		"isEnabled": true, "toDate": "2099-01-01T00:00:00Z", "textBody": "Away"}}})
	if !hasKey(res["updated"], "singleton") {
		t.Errorf("update: %v", res)
	}
}

// enableVacation turns c's vacation response on.
func enableVacation(t *testing.T, c *jmaptest.Client, subject string) {
	t.Helper()
	res := oneSend(t, c, "VacationResponse/set", map[string]any{"update": map[string]any{"singleton": map[string]any{
		"isEnabled": true, "subject": subject, "textBody": "I am away until Monday."}}})
	if !hasKey(res["updated"], "singleton") {
		t.Fatalf("enable vacation: %v", res)
	}
}

// send submits a draft from c with the given fields and returns its
// submission.
func send(t *testing.T, c *jmaptest.Client, fields map[string]any) map[string]any {
	t.Helper()
	return submitted(t, submit(t, c, map[string]any{"identityId": ownIdentity(t, c), "emailId": draft(t, c, fields)}, nil))
}

func TestVacation_OncePerSenderNotToLists(t *testing.T) {
	t.Parallel()
	srv := jmaptest.Start(t)
	a := srv.NewUser(t, "a@example.test")
	b := srv.NewUser(t, "b@example.test")
	c := srv.NewUser(t, "c@example.test")
	d := srv.NewUser(t, "d@example.test")
	enableVacation(t, b, "Out of office")
	send(t, a, map[string]any{"to": to(b.Email), "messageId": []string{"first@example.test"}})
	send(t, a, map[string]any{"to": to(b.Email), "subject": "Again"})
	// Mail from a list or sent automatically gets no reply.
	send(t, c, map[string]any{"to": to(b.Email), "header:List-Id": " <news.example.test>"})
	send(t, c, map[string]any{"to": to(b.Email), "header:Auto-Submitted": " auto-generated"})
	// B's own message to themself gets none either.
	send(t, b, map[string]any{"to": to(b.Email)})
	// D's message, sent last, is answered: the queue is worked in order,
	// so once D has its reply every earlier reply was delivered too.
	send(t, d, map[string]any{"to": to(b.Email)})
	waitFor(t, "the reply to D", func() bool { return len(inbox(t, d)) == 1 })
	replies := inbox(t, a, "subject", "from", "inReplyTo", "header:Auto-Submitted:asText")
	if len(replies) != 1 {
		t.Fatalf("A got %d replies, want 1: %v", len(replies), replies)
	}
	r := replies[0]
	if r["subject"] != "Out of office" || r["header:Auto-Submitted:asText"] != "auto-replied" ||
		strs(r["inReplyTo"])[0] != "first@example.test" || !strings.EqualFold(str(r["from"].([]any)[0].(map[string]any)["email"]), b.Email) {
		t.Errorf("reply %v", r)
	}
	if got := inbox(t, c); len(got) != 0 {
		t.Errorf("C got %d replies to list and automatic mail", len(got))
	}
	if got := inbox(t, b, "subject"); len(got) != 6 {
		t.Errorf("B: %v", got)
	}
}
