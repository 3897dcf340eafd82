package push_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jmapd/jmapd/jmaptest"
)

// principalCall sends one call using the principals capability and returns
// its arguments.
func principalCall(t *testing.T, c *jmaptest.Client, name string, args map[string]any) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"using": []string{"urn:ietf:params:jmap:core", "urn:ietf:params:jmap:principals"},
		"methodCalls": []any{[]any{name, args, "0"}}})
	status, b := c.Post(t, string(body))
	if status != http.StatusOK {
		t.Fatalf("%s: %d %s", name, status, b)
	}
	var r jmaptest.Response
	if err := json.Unmarshal(b, &r); err != nil || len(r.MethodResponses) != 1 || r.MethodResponses[0].Name != name {
		t.Fatalf("%s: %s", name, b)
	}
	return r.MethodResponses[0].Args
}

// RFC 9670 §7.3, §1.4: a Principal change is pushed under each user's own
// account, the one holding their Principal data, with the state
// Principal/get then answers; the event id resumes it.
func TestEventSource_PrincipalChange(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	bob := srv.NewUser(t, "bob@example.test")
	bs := open(t, srv, bob, "types=Principal&closeafter=no&ping=0")
	principalCall(t, alice, "Principal/set", map[string]any{"accountId": alice.Account,
		"update": map[string]any{alice.Account: map[string]any{"name": "Alice A"}}})
	ev, ok := bs.next(t, 10*time.Second)
	if !ok || ev.name != "state" {
		t.Fatalf("got %+v, %v; want a state event", ev, ok)
	}
	var sc struct {
		Changed map[string]map[string]string `json:"changed"`
	}
	if err := json.Unmarshal([]byte(ev.data), &sc); err != nil {
		t.Fatal(err)
	}
	want := principalCall(t, bob, "Principal/get", map[string]any{"accountId": bob.Account, "ids": []string{}})["state"]
	if got := sc.Changed[bob.Account]["Principal"]; got != want || len(sc.Changed) != 1 {
		t.Errorf("StateChange %s, want Principal state %v in %s only", ev.data, want, bob.Account)
	}
	// Reconnecting with that event id reports nothing missed; one from
	// before the change reports it.
	again := openFrom(t, srv, bob, "types=Principal&closeafter=state&ping=0", ev.id)
	principalCall(t, alice, "Principal/set", map[string]any{"accountId": alice.Account,
		"update": map[string]any{alice.Account: map[string]any{"name": "Alice B"}}})
	ev2, ok := again.next(t, 10*time.Second)
	if !ok {
		t.Fatalf("no event after the second change")
	}
	want2 := principalCall(t, bob, "Principal/get", map[string]any{"accountId": bob.Account, "ids": []string{}})["state"]
	if ev2.data != fmt.Sprintf(`{"@type":"StateChange","changed":{%q:{"Principal":%q}}}`, bob.Account, want2) {
		t.Errorf("second event %s, want the Principal state %v", ev2.data, want2)
	}
}
