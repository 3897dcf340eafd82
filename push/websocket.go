package push

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/jmapd/jmapd/jmap"
)

// Subprotocol is the WebSocket subprotocol of JMAP (RFC 8887 §4).
const Subprotocol = "jmap"

// WebSocket timing: a ping goes out every wsPingInterval; a connection
// that has sent nothing, not even a pong, for wsReadTimeout is dropped.
// Tests shorten them.
var (
	wsPingInterval = 30 * time.Second
	wsReadTimeout  = 75 * time.Second
)

// wsWriteTimeout bounds one write to a client.
const wsWriteTimeout = 10 * time.Second

// writePool lends write buffers to connections only while they write, so
// idle connections hold none.
var writePool sync.Pool

var upgrader = websocket.Upgrader{
	HandshakeTimeout: 10 * time.Second,
	Subprotocols:     []string{Subprotocol},
	ReadBufferSize:   1024,
	WriteBufferSize:  4096,
	WriteBufferPool:  &writePool,
	// The origin is checked before the upgrade, against the configuration.
	CheckOrigin: func(*http.Request) bool { return true },
	Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
		jmap.WriteProblem(w, &jmap.Problem{Type: "about:blank", Status: status, Detail: reason.Error()})
	},
}

// hijacker lets the upgrader take the connection through any wrapping
// ResponseWriter that unwraps to the server's.
type hijacker struct{ http.ResponseWriter }

func (h hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(h.ResponseWriter).Hijack()
}

// webSocket serves JMAP over WebSocket (RFC 8887).
func (e *Endpoints) webSocket(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		jmap.WriteProblem(w, &jmap.Problem{Type: "about:blank", Status: http.StatusUpgradeRequired,
			Detail: "this endpoint speaks WebSocket only"})
		return
	}
	// RFC 8887 §4.2: the client must offer "jmap"; without it there is no
	// JMAP connection to establish, and the handshake is refused (RFC 6455
	// §4.2.2 lets a server refuse with an HTTP error).
	if !slices.Contains(websocket.Subprotocols(r), Subprotocol) {
		jmap.WriteProblem(w, &jmap.Problem{Type: "about:blank", Status: http.StatusBadRequest,
			Detail: `the WebSocket subprotocol "jmap" is required`})
		return
	}
	release := e.admit(w, r)
	if release == nil {
		return
	}
	conn, err := upgrader.Upgrade(hijacker{w}, r, nil)
	if err != nil {
		release()
		return // the upgrader answered
	}
	// The connection lives on in a goroutine of its own, so that the HTTP
	// server's goroutine, its deep stack and its buffers go now: an idle
	// connection then costs one small goroutine, its read buffer and its
	// push state.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	c := &wsConn{e: e, conn: conn, caller: jmap.CallerFrom(r.Context()), cancel: cancel}
	if !e.track(c) {
		cancel()
		release()
		c.closeWith(websocket.CloseGoingAway, "server shutting down")
		_ = conn.Close()
		return
	}
	go func() {
		defer release()
		defer e.untrack(c)
		c.serve(ctx)
	}()
}

// wsConn is one JMAP WebSocket connection. Its only goroutine reads
// messages; requests run in goroutines of their own, pushes are written
// by a goroutine started when changes are pending and pings by a timer.
type wsConn struct {
	e      *Endpoints
	conn   *websocket.Conn
	caller *jmap.Caller
	cancel context.CancelFunc
	reqs   sync.WaitGroup // requests in flight
	ping   *time.Timer

	wmu sync.Mutex // one message written at a time, each whole

	pushState
	closed bool // guarded by pmu
}

// Close ends the connection (on server shutdown).
func (c *wsConn) Close() {
	c.closeWith(websocket.CloseGoingAway, "server shutting down")
	_ = c.conn.Close()
}

// revoke ends the connection because its credential was revoked: RFC 6455
// §7.4.1's 1008, a policy violation.
func (c *wsConn) revoke() {
	c.closeWith(websocket.ClosePolicyViolation, "credentials revoked")
	_ = c.conn.Close()
}

func (c *wsConn) login() *jmap.Caller { return c.caller }

func (c *wsConn) serve(ctx context.Context) {
	c.conn.SetReadLimit(c.e.opt.Limits.MaxSizeRequest)
	_ = c.conn.SetReadDeadline(time.Now().Add(wsReadTimeout))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(wsReadTimeout))
	})
	// The first ping comes after a random part of the interval, so that
	// connections opened together do not ping together ever after.
	c.ping = time.AfterFunc(wsPingInterval/2+rand.N(wsPingInterval/2), c.keepalive)
	c.reader(ctx)
	c.ping.Stop()
	c.cancel()
	c.setPush(ctx, false, nil, "")
	c.pmu.Lock()
	c.closed = true
	c.pmu.Unlock()
	c.reqs.Wait()
	_ = c.conn.Close()
}

// keepalive pings the client, then waits for the next turn.
func (c *wsConn) keepalive() {
	if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(wsWriteTimeout)); err != nil {
		_ = c.conn.Close()
		return
	}
	c.ping.Reset(wsPingInterval)
}

// reader reads messages until the connection ends.
func (c *wsConn) reader(ctx context.Context) {
	for {
		typ, data, err := c.conn.ReadMessage()
		if err != nil {
			// An oversized message was already closed with 1009 by the
			// library (RFC 6455 §7.4.1).
			return
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(wsReadTimeout))
		if typ != websocket.TextMessage {
			// RFC 8887 §4.3.1: binary frames may close with 1003.
			c.closeWith(websocket.CloseUnsupportedData, "binary frames are not supported")
			return
		}
		// The message is handled on a goroutine of its own, waited for so
		// that messages keep their order: the reader's stack stays small
		// while the connection idles.
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.handle(ctx, data)
		}()
		<-done
	}
}

// closeWith sends a Close frame with the status and reason.
func (c *wsConn) closeWith(code int, reason string) {
	_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason),
		time.Now().Add(wsWriteTimeout))
}

// wsHead is what every client message is read for first.
type wsHead struct {
	Type *string          `json:"@type"`
	ID   *json.RawMessage `json:"id"`
}

// handle answers one text message.
func (c *wsConn) handle(ctx context.Context, data []byte) {
	if !utf8.Valid(data) || !json.Valid(data) {
		c.requestError(nil, &jmap.Problem{Type: jmap.ProblemNotJSON, Status: http.StatusBadRequest,
			Detail: "the message is not valid JSON"})
		return
	}
	var head wsHead
	if err := json.Unmarshal(data, &head); err != nil {
		c.requestError(nil, notRequest("the message is not a JSON object"))
		return
	}
	var id *string
	if head.ID != nil && string(*head.ID) != "null" {
		if err := json.Unmarshal(*head.ID, &id); err != nil {
			c.requestError(nil, notRequest(`"id" must be a string`))
			return
		}
	}
	if head.Type == nil {
		c.requestError(id, notRequest(`the message has no "@type"`))
		return
	}
	switch *head.Type {
	case "Request":
		c.reqs.Add(1)
		go func() {
			defer c.reqs.Done()
			c.request(ctx, id, data)
		}()
	case "WebSocketPushEnable":
		var m struct {
			DataTypes *[]string `json:"dataTypes"`
			PushState *string   `json:"pushState"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			c.requestError(id, notRequest(`"dataTypes" must be null or an array of type names, "pushState" a string`))
			return
		}
		var types map[string]bool
		if m.DataTypes != nil {
			types = map[string]bool{}
			for _, t := range *m.DataTypes {
				types[t] = true
			}
		}
		var pushState string
		if m.PushState != nil {
			pushState = *m.PushState
		}
		c.setPush(ctx, true, types, pushState)
	case "WebSocketPushDisable":
		c.setPush(ctx, false, nil, "")
	default:
		c.requestError(id, notRequest(`"@type" must be "Request", "WebSocketPushEnable" or "WebSocketPushDisable"`))
	}
}

func notRequest(detail string) *jmap.Problem {
	return &jmap.Problem{Type: jmap.ProblemNotRequest, Status: http.StatusBadRequest, Detail: detail}
}

// request runs one Request and writes its Response or RequestError.
func (c *wsConn) request(ctx context.Context, id *string, data []byte) {
	start := time.Now()
	// Each request gets a logger of its own: the dispatcher adds fields to
	// it, and requests run concurrently.
	ctx, reqID := jmap.WithRequestID(ctx)
	l := zerolog.Ctx(ctx).With().Str("ws_req", reqID).Logger()
	ctx = l.WithContext(ctx)
	b, p := c.e.opt.Runner.RunRequest(ctx, c.caller, data)
	if p != nil {
		c.requestError(id, p)
		return
	}
	// RFC 8887 §4.3.3: the Response with its @type and the request's id,
	// spliced in front of the members of the encoded Response object.
	out := make([]byte, 0, len(b)+64)
	out = append(out, `{"@type":"Response",`...)
	if id != nil {
		rid, _ := json.Marshal(*id)
		out = append(out, `"requestId":`...)
		out = append(out, rid...)
		out = append(out, ',')
	}
	out = append(out, bytes.TrimSuffix(b[1:], []byte("\n"))...)
	c.write(out)
	zerolog.Ctx(ctx).Info().Str("path", "ws").Float64("dur_ms", float64(time.Since(start).Microseconds())/1000).Msg("request")
}

// requestError is a request-level problem on a WebSocket (RFC 8887
// §4.3.4).
type requestError struct {
	AtType    string  `json:"@type"`
	RequestID *string `json:"requestId,omitempty"`
	*jmap.Problem
}

func (c *wsConn) requestError(id *string, p *jmap.Problem) {
	b, err := json.Marshal(requestError{AtType: "RequestError", RequestID: id, Problem: p})
	if err != nil {
		return
	}
	c.write(b)
}

// write sends one whole text message; a failed write ends the connection.
func (c *wsConn) write(b []byte) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
	if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		_ = c.conn.Close()
		return false
	}
	return true
}

// setPush turns push on (with the types and the client's last pushState)
// or off (RFC 8887 §4.3.5.2, §4.3.5.3). It runs in the reader, so the
// messages after it are read once it holds.
func (c *wsConn) setPush(ctx context.Context, on bool, types map[string]bool, pushState string) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if c.sub != nil {
		c.sub.Close()
		c.sub, c.cur = nil, nil
	}
	if !on || c.closed {
		return
	}
	sub := c.e.b.SubscribeFunc(c.caller.Principal, types, c.kick)
	cur, err := c.e.b.newCursor(ctx, c.caller.Principal)
	if err != nil {
		sub.Close()
		zerolog.Ctx(ctx).Warn().Err(err).Msg("push state")
		_ = c.conn.Close()
		return
	}
	c.sub, c.cur = sub, cur
	// Changes since the client's pushState, at once. A pushState that
	// does not decode gets nothing.
	if seen, ok := decodeEventID(pushState); ok && pushState != "" {
		if sc := missedChanges(seen, cur.states, types); sc != nil {
			c.send(sc)
		}
	}
}

// kick starts a push goroutine unless one runs; the broker calls it when
// changes are pending.
func (c *wsConn) kick() { c.pushState.kick(c.send, c.Close) }

// send writes a StateChange carrying the cursor as its pushState; c.pmu is
// held.
func (c *wsConn) send(sc *StateChange) {
	sc.PushState = c.cur.id()
	c.write(encodeStateChange(sc))
}
