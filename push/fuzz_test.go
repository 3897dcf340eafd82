package push_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/jmapd/jmapd/jmaptest"
)

// FuzzWebSocketMessage sends arbitrary text messages on a live JMAP
// WebSocket. Whatever arrives, the server answers only with Response,
// RequestError or StateChange objects and the connection survives: an
// echo request sent after each message is answered.
func FuzzWebSocketMessage(f *testing.F) {
	for _, s := range []string{
		`{"@type":"Request","id":"a","using":["urn:ietf:params:jmap:core"],"methodCalls":[["Core/echo",{},"0"]]}`,
		`{"@type":"WebSocketPushEnable","dataTypes":null,"pushState":"e30"}`,
		`{"@type":"WebSocketPushDisable"}`,
		`{"@type":"Request","id":"b","using":["urn:jmapd:params:jmap:test"],"methodCalls":[["Note/set",{"accountId":"x"},"0"]]}`,
		`{"@type":"Request","using":[],"methodCalls":[["x",{},"0"]],"createdIds":{"a":null}}`,
		"\xff\xfe", `{"@type":null}`, `{"@type":"Request","id":{}}`, `"Request"`, ``,
	} {
		f.Add(s)
	}
	srv := jmaptest.Start(f)
	alice := srv.NewUser(f, "alice@example.test")
	// One connection for every input: none may end it.
	conn := dial(f, alice)
	f.Fuzz(func(t *testing.T, msg string) {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		send(t, conn, echoRequest("after"))
		for {
			m := readJSON(t, conn, 10*time.Second)
			switch m["@type"] {
			case "Response", "RequestError", "StateChange":
			default:
				b, _ := json.Marshal(m)
				t.Fatalf("message %s answered with %s", msg, b)
			}
			if m["requestId"] == "after" && m["@type"] == "Response" {
				return
			}
		}
	})
}
