package push

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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
	defer release()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.wg.Add(1)
	e.mu.Unlock()
	defer e.wg.Done()
	conn, err := upgrader.Upgrade(hijacker{w}, r, nil)
	if err != nil {
		return // the upgrader answered
	}
	ctx, cancel := context.WithCancel(r.Context())
	c := &wsConn{e: e, conn: conn, caller: jmap.CallerFrom(r.Context()), ctl: make(chan wsControl)}
	defer cancel()
	c.serve(ctx, cancel)
}

// wsConn is one JMAP WebSocket connection.
type wsConn struct {
	e      *Endpoints
	conn   *websocket.Conn
	caller *jmap.Caller
	ctl    chan wsControl // push enable/disable, to the writer
	reqs   sync.WaitGroup // requests in flight

	wmu sync.Mutex // one message written at a time, each whole
}

// wsControl asks the writer to enable (types, pushState) or disable push.
type wsControl struct {
	enable    bool
	types     map[string]bool
	pushState string
	// done is closed once the writer has applied it: messages after it
	// are read only then, so a change they cause is pushed.
	done chan struct{}
}

func (c *wsConn) serve(ctx context.Context, cancel context.CancelFunc) {
	c.conn.SetReadLimit(c.e.opt.Limits.MaxSizeRequest)
	_ = c.conn.SetReadDeadline(time.Now().Add(wsReadTimeout))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(wsReadTimeout))
	})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writer(ctx)
		// The writer stops on shutdown or a failed write: unblock the
		// reader.
		_ = c.conn.Close()
	}()
	c.reader(ctx)
	cancel()
	<-writerDone
	c.reqs.Wait()
	_ = c.conn.Close()
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
		c.handle(ctx, data)
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
		ctl := wsControl{enable: true}
		if m.DataTypes != nil {
			ctl.types = map[string]bool{}
			for _, t := range *m.DataTypes {
				ctl.types[t] = true
			}
		}
		if m.PushState != nil {
			ctl.pushState = *m.PushState
		}
		c.control(ctx, ctl)
	case "WebSocketPushDisable":
		c.control(ctx, wsControl{})
	default:
		c.requestError(id, notRequest(`"@type" must be "Request", "WebSocketPushEnable" or "WebSocketPushDisable"`))
	}
}

func notRequest(detail string) *jmap.Problem {
	return &jmap.Problem{Type: jmap.ProblemNotRequest, Status: http.StatusBadRequest, Detail: detail}
}

// control hands a push setting to the writer, which owns the
// subscription.
func (c *wsConn) control(ctx context.Context, ctl wsControl) {
	ctl.done = make(chan struct{})
	select {
	case c.ctl <- ctl:
	case <-ctx.Done():
		return
	}
	select {
	case <-ctl.done:
	case <-ctx.Done():
	}
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

// writer pushes StateChanges while push is enabled and pings the client.
func (c *wsConn) writer(ctx context.Context) {
	ping := time.NewTicker(wsPingInterval)
	defer ping.Stop()
	var sub *Subscription
	var cur *cursor
	defer func() {
		if sub != nil {
			sub.Close()
		}
	}()
	for {
		var ready <-chan struct{}
		var subDone <-chan struct{}
		if sub != nil {
			ready, subDone = sub.Ready, sub.Done
		}
		select {
		case <-ctx.Done():
			return
		case <-c.e.done:
			c.closeWith(websocket.CloseGoingAway, "server shutting down")
			return
		case <-subDone:
			c.closeWith(websocket.CloseGoingAway, "server shutting down")
			return
		case <-ping.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(wsWriteTimeout)); err != nil {
				return
			}
		case ctl := <-c.ctl:
			if sub != nil {
				sub.Close()
				sub, cur = nil, nil
			}
			if !ctl.enable {
				close(ctl.done)
				continue
			}
			sub = c.e.b.Subscribe(c.caller.Principal, ctl.types)
			close(ctl.done)
			var err error
			if cur, err = c.e.b.newCursor(ctx, c.caller.Principal); err != nil {
				zerolog.Ctx(ctx).Warn().Err(err).Msg("push state")
				return
			}
			// RFC 8887 §4.3.5.2: changes since the client's pushState at
			// once. A pushState that does not decode gets nothing.
			if seen, ok := decodeEventID(ctl.pushState); ok && ctl.pushState != "" {
				if sc := missedChanges(seen, cur.states, ctl.types); sc != nil && !c.push(sc, cur) {
					return
				}
			}
		case <-ready:
			sc := sub.Take()
			if sc == nil || !cur.advance(sc) {
				continue
			}
			if !c.push(sc, cur) {
				return
			}
		}
	}
}

// push writes a StateChange carrying the cursor as its pushState.
func (c *wsConn) push(sc *StateChange, cur *cursor) bool {
	sc.PushState = cur.id()
	b, err := json.Marshal(sc)
	if err != nil {
		return false
	}
	return c.write(b)
}
