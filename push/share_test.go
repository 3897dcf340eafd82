package push_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/jmapd/jmapd/jmaptest"
)

// RFC 9670 §1.4: no StateChange for an account in which the user is
// subscribed to nothing; once they subscribe, its changes reach them; when
// access is revoked they stop.
func TestEventSource_SharedAccountFollowsSubscription(t *testing.T) {
	srv := jmaptest.Start(t)
	alice, bob := srv.NewUser(t, "alice@example.test"), srv.NewUser(t, "bob@example.test")
	srv.Admin(t, "share", "alice@example.test", "--with", "bob@example.test", "--rights", "read", "--mailbox", "Inbox")
	q := alice.One(t, "Mailbox/query", map[string]any{"accountId": alice.Account, "filter": map[string]any{"role": "inbox"}})
	inbox := q["ids"].([]any)[0].(string)
	rename := func(name string) {
		t.Helper()
		alice.One(t, "Mailbox/set", map[string]any{"accountId": alice.Account,
			"update": map[string]any{inbox: map[string]any{"sortOrder": len(name)}}})
	}
	// changedFor waits for a state event and reports whether it names
	// Alice's account.
	changedFor := func(s *stream) (bool, bool) {
		t.Helper()
		ev, ok := s.next(t, 2*time.Second)
		if !ok {
			return false, false
		}
		var sc struct {
			Changed map[string]map[string]string `json:"changed"`
		}
		if err := json.Unmarshal([]byte(ev.data), &sc); err != nil {
			t.Fatal(err)
		}
		_, named := sc.Changed[alice.Account]
		return named, true
	}
	bs := open(t, srv, bob, "types=Mailbox&closeafter=no&ping=0")
	rename("a")
	if named, got := changedFor(bs); got && named {
		t.Error("Bob got a StateChange for an account he subscribed to nothing in")
	}
	r := bob.Call(t, jmaptest.Call{Name: "Mailbox/set", Args: map[string]any{"accountId": alice.Account,
		"update": map[string]any{inbox: map[string]any{"isSubscribed": true}}}})
	if r.MethodResponses[0].Args["updated"] == nil {
		t.Fatalf("subscribe: %+v", r.MethodResponses)
	}
	bs2 := open(t, srv, bob, "types=Mailbox&closeafter=no&ping=0")
	rename("bb")
	if named, got := changedFor(bs2); !got || !named {
		t.Errorf("after subscribing Bob got no StateChange for Alice's account (event %v)", got)
	}
	srv.Admin(t, "share", "alice@example.test", "--with", "bob@example.test", "--rights", "none")
	bs3 := open(t, srv, bob, "types=Mailbox&closeafter=no&ping=0")
	rename("ccc")
	if named, got := changedFor(bs3); got && named {
		t.Error("after revocation Bob still gets StateChange for Alice's account")
	}
}

// A grant changes the grantee's Principal data (the owner's accounts), so
// it is pushed as a Principal StateChange (RFC 9670 §2).
func TestEventSource_GrantPushesPrincipal(t *testing.T) {
	srv := jmaptest.Start(t)
	srv.NewUser(t, "alice@example.test")
	bob := srv.NewUser(t, "bob@example.test")
	bs := open(t, srv, bob, "types=Principal&closeafter=no&ping=0")
	srv.Admin(t, "share", "alice@example.test", "--with", "bob@example.test", "--rights", "read")
	ev, ok := bs.next(t, 10*time.Second)
	if !ok || ev.name != "state" {
		t.Fatalf("got %+v, %v; want a Principal state event after the grant", ev, ok)
	}
	var sc struct {
		Changed map[string]map[string]string `json:"changed"`
	}
	if err := json.Unmarshal([]byte(ev.data), &sc); err != nil {
		t.Fatal(err)
	}
	if _, ok := sc.Changed[bob.Account]["Principal"]; !ok {
		t.Errorf("StateChange %s names no Principal state in Bob's account", ev.data)
	}
}
