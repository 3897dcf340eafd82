package push_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/jmapd/jmapd/internal/admin"
	"github.com/jmapd/jmapd/jmaptest"
	"github.com/jmapd/jmapd/store"
)

// remoteAdmin runs an admin command through the running server's socket,
// as `jmapd` does while the server runs, and returns its output.
func remoteAdmin(t *testing.T, srv *jmaptest.Server, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := admin.Remote(context.Background(), admin.SocketPath(srv.Dir), args, nil, &out); err != nil {
		t.Fatalf("jmapd %s: %v", strings.Join(args, " "), err)
	}
	return out.String()
}

// bearerCall runs one method call authenticated by a bearer token.
func bearerCall(t *testing.T, srv *jmaptest.Server, secret, name string, args map[string]any) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"using": []string{"urn:ietf:params:jmap:core"}, "methodCalls": []any{[]any{name, args, "0"}}})
	req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/jmap/api", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r jmaptest.Response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || len(r.MethodResponses) != 1 || r.MethodResponses[0].Name != name {
		t.Fatalf("%s with a token: %s %v %+v", name, resp.Status, err, r)
	}
	return r.MethodResponses[0].Args
}

// esEnds opens an EventSource with only the query's credentials and
// returns a channel closed when the server ends the stream.
func esEnds(t *testing.T, srv *jmaptest.Server, q url.Values) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	q.Set("types", "*")
	q.Set("closeafter", "no")
	q.Set("ping", "0")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/jmap/eventsource?"+q.Encode(), nil)
	resp, err := srv.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("eventsource: %s", resp.Status)
	}
	opened := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		first := true
		for sc.Scan() {
			if first {
				first = false
				close(opened)
			}
		}
	}()
	select {
	case <-opened:
	case <-time.After(10 * time.Second):
		t.Fatal("stream did not open")
	}
	return ended
}

func waitEnded(t *testing.T, what string, ended <-chan struct{}) {
	t.Helper()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Errorf("%s: still open after the credential was revoked", what)
	}
}

func stillOpen(t *testing.T, what string, ended <-chan struct{}) {
	t.Helper()
	select {
	case <-ended:
		t.Errorf("%s: ended, but its credential still holds", what)
	default:
	}
}

// wsAlive checks that a WebSocket still answers a request.
func wsAlive(t *testing.T, what string, conn *websocket.Conn) {
	t.Helper()
	send(t, conn, echoRequest(what))
	if m := readJSON(t, conn, 10*time.Second); m["requestId"] != what {
		t.Errorf("%s: answer %v", what, m)
	}
}

// storedSubs lists the ids of who's PushSubscriptions in the store.
func storedSubs(t *testing.T, srv *jmaptest.Server, who string) []string {
	t.Helper()
	var ids []string
	err := srv.Store().View(context.Background(), func(tx store.Tx) error {
		for m, err := range tx.ScanMeta("pushsub/") {
			if err != nil {
				return err
			}
			var s struct {
				ID        string `json:"id"`
				Principal string `json:"principal"`
			}
			if err := json.Unmarshal(m.Value, &s); err != nil {
				return err
			}
			if s.Principal == who {
				ids = append(ids, s.ID)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

func subIDs(res map[string]any) []string {
	var ids []string
	for _, s := range res["list"].([]any) {
		ids = append(ids, s.(map[string]any)["id"].(string))
	}
	slices.Sort(ids)
	return ids
}

// RFC 8620 §7.2: a PushSubscription is tied to the credentials that
// created it: only those see it, and it is destroyed when they are
// revoked. Push connections made with a credential end with it too, so a
// stolen password or token stops working at once everywhere.
func TestPush_RevokedCredentials(t *testing.T) {
	t.Parallel()
	srv := jmaptest.Start(t, allowHTTP)
	carol := srv.NewUser(t, "carol@example.test")
	dave := srv.NewUser(t, "dave@example.test")
	var tok struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal([]byte(remoteAdmin(t, srv, "token", "create", carol.Email, "--json")), &tok); err != nil || tok.Secret == "" {
		t.Fatalf("token create: %v", err)
	}

	ep := newPushEndpoint(t)
	byPassword := createSub(t, carol, map[string]any{"deviceClientId": "pw", "url": ep.URL + "/pw", "types": nil})["id"].(string)
	res := bearerCall(t, srv, tok.Secret, "PushSubscription/set", map[string]any{"create": map[string]any{
		"k": map[string]any{"deviceClientId": "tok", "url": ep.URL + "/tok", "types": nil}}})
	byToken, _ := res["created"].(map[string]any)["k"].(map[string]any)["id"].(string)
	if byToken == "" {
		t.Fatalf("create with a token: %v", res)
	}
	// Each credential sees its own subscriptions only.
	if got := subIDs(carol.One(t, "PushSubscription/get", map[string]any{})); !slices.Equal(got, []string{byPassword}) {
		t.Errorf("get with the password: %v, want [%s]", got, byPassword)
	}
	if got := subIDs(bearerCall(t, srv, tok.Secret, "PushSubscription/get", map[string]any{})); !slices.Equal(got, []string{byToken}) {
		t.Errorf("get with the token: %v, want [%s]", got, byToken)
	}
	res = bearerCall(t, srv, tok.Secret, "PushSubscription/set", map[string]any{"destroy": []string{byPassword}})
	if res["notDestroyed"] == nil {
		t.Errorf("the token destroyed the password's subscription: %v", res)
	}
	// Who carol is in the store.
	var carolID string
	err := srv.Store().View(context.Background(), func(tx store.Tx) error {
		p, err := tx.Principals().ByEmail(carol.Email)
		if err == nil {
			carolID = string(p.ID)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	wsPassword := dial(t, carol)
	wsToken, status := dialQuery(t, carol, url.Values{"access_token": {tok.Secret}}, nil)
	if wsToken == nil {
		t.Fatalf("WebSocket with the token: %d", status)
	}
	esToken := esEnds(t, srv, url.Values{"access_token": {tok.Secret}})
	esTicket := esEnds(t, srv, url.Values{"ticket": {fetchTicket(t, carol)}})
	wsDave := dial(t, dave)
	esDave := esEnds(t, srv, url.Values{"ticket": {fetchTicket(t, dave)}})

	// Revoking the token ends what it opened, and only that.
	remoteAdmin(t, srv, "token", "revoke", tok.ID)
	if code := closeCode(t, wsToken); code != websocket.ClosePolicyViolation {
		t.Errorf("WebSocket of the revoked token closed with %d, want 1008", code)
	}
	waitEnded(t, "EventSource of the revoked token", esToken)
	if got := storedSubs(t, srv, carolID); !slices.Equal(got, []string{byPassword}) {
		t.Errorf("subscriptions after the token's revocation: %v, want [%s]", got, byPassword)
	}
	wsAlive(t, "password", wsPassword)
	stillOpen(t, "EventSource by ticket", esTicket)

	// A new password ends what the old one opened, a ticket fetched with
	// it included.
	remoteAdmin(t, srv, "user", "passwd", carol.Email, "--password", "a new password")
	if code := closeCode(t, wsPassword); code != websocket.ClosePolicyViolation {
		t.Errorf("WebSocket of the old password closed with %d, want 1008", code)
	}
	waitEnded(t, "EventSource by a ticket of the old password", esTicket)
	if got := storedSubs(t, srv, carolID); len(got) != 0 {
		t.Errorf("subscriptions after the password change: %v, want none", got)
	}
	// Others are untouched.
	wsAlive(t, "dave", wsDave)
	stillOpen(t, "dave's EventSource", esDave)

	// A removed user's connections end.
	remoteAdmin(t, srv, "user", "remove", dave.Email)
	if code := closeCode(t, wsDave); code != websocket.ClosePolicyViolation {
		t.Errorf("WebSocket of a removed user closed with %d, want 1008", code)
	}
	waitEnded(t, "EventSource of a removed user", esDave)
}
