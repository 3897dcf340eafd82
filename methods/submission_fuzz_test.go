package methods_test

import (
	"testing"

	"github.com/jmapd/jmapd/jmaptest"
)

// FuzzSubmissionEnvelope feeds arbitrary envelopes to EmailSubmission/set
// on a live server: every one is either sent or refused with a SetError,
// never a method error, and a refused one delivers nothing.
func FuzzSubmissionEnvelope(f *testing.F) {
	for _, seed := range [][3]string{
		{"a@example.test", "b@example.test", ""},
		{"a@example.test", "b@example.test", "HOLDFOR"},
		{"", "", ""},
		{"a@example.test", "\"b\"@example.test", "SIZE"},
		{"A@EXAMPLE.TEST", "b@[127.0.0.1]", "BODY"},
		{"a@example.test\r\nRCPT TO:<x@y>", "b@example.test>", "HOLDUNTIL"},
	} {
		f.Add(seed[0], seed[1], seed[2], "12")
	}
	srv := jmaptest.Start(f)
	a := srv.NewUser(f, "a@example.test")
	b := srv.NewUser(f, "b@example.test")
	ident, eid := "", ""
	f.Fuzz(func(t *testing.T, mailFrom, rcpt, param, value string) {
		if eid == "" {
			ident, eid = ownIdentity(t, a), draft(t, a, map[string]any{"to": to(b.Email)})
		}
		env := map[string]any{"mailFrom": map[string]any{"email": mailFrom, "parameters": map[string]any{param: value}},
			"rcptTo": to(rcpt)}
		if param == "" {
			env["mailFrom"] = map[string]any{"email": mailFrom}
		}
		before := b.State(t, b.Account, "Email")
		r := submit(t, a, map[string]any{"identityId": ident, "emailId": eid, "envelope": env}, nil)
		if len(r) != 1 || r[0].Name != "EmailSubmission/set" {
			t.Fatalf("envelope %v: %+v", env, r)
		}
		if e := member(r[0].Args["notCreated"], "s"); e != nil {
			if str(e["type"]) == "" || e["type"] == "serverFail" {
				t.Fatalf("envelope %v: %v", env, e)
			}
			if got := b.State(t, b.Account, "Email"); got != before {
				t.Fatalf("refused envelope %v delivered: %s → %s", env, before, got)
			}
			return
		}
		s := member(r[0].Args["created"], "s")
		if s == nil {
			t.Fatalf("envelope %v: neither created nor refused: %v", env, r[0].Args)
		}
		if s["undoStatus"] == "pending" {
			// A held one is canceled, or waited for if it went out
			// already, so that it cannot deliver during a later input.
			id := str(s["id"])
			res := oneSend(t, a, "EmailSubmission/set", map[string]any{"update": map[string]any{id: map[string]any{"undoStatus": "canceled"}}})
			if !hasKey(res["updated"], id) {
				waitFor(t, "the release", func() bool { return getSubmission(t, a, id)["undoStatus"] == "final" })
			}
		}
	})
}
