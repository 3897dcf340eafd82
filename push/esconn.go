package push

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/jmapd/jmapd/jmap"
)

// esWriteTimeout bounds one write to an EventSource client.
const esWriteTimeout = 10 * time.Second

// esConn is an EventSource stream over a connection taken from the HTTP/1
// server: its only goroutine waits for the client to go away; events are
// written by a goroutine started when changes are pending and pings by a
// timer. The response has no length and ends when the connection closes.
type esConn struct {
	e       *Endpoints
	conn    net.Conn
	q       esQuery
	release func()
	caller  *jmap.Caller

	wmu  sync.Mutex // one event written at a time
	ping *time.Timer
	once sync.Once // end

	pushState // held while the stream opens
}

// eventSourceConn serves the stream on the hijacked connection; false when
// the connection cannot be taken (the caller streams instead). It owns
// release once it returns true.
func (e *Endpoints) eventSourceConn(w http.ResponseWriter, r *http.Request, q esQuery, release func()) bool {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	ctx := r.Context()
	c := &esConn{e: e, conn: conn, q: q, release: release, caller: jmap.CallerFrom(ctx)}
	if brw.Reader.Buffered() > 0 || !e.track(c) {
		// Pipelined requests behind a stream, or shutting down.
		_ = conn.Close()
		release()
		return true
	}
	// Events wait until the stream is open: flush needs c.pmu.
	c.pmu.Lock()
	c.sub = e.b.SubscribeFunc(c.caller.Principal, q.types, c.kick)
	if c.cur, err = e.b.newCursor(ctx, c.caller.Principal); err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Msg("push state")
		c.write([]byte("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
		c.pmu.Unlock()
		c.end()
		return true
	}
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	h := esHeader(r)
	h.Set("Connection", "close")
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	_ = h.Write(&head)
	// A comment opens the stream at once, so the client knows it is
	// subscribed before any change happens.
	head.WriteString("\r\n: jmapd\n\n")
	if !c.write(head.Bytes()) {
		c.pmu.Unlock()
		c.end()
		return true
	}
	if q.ping > 0 {
		c.ping = time.AfterFunc(time.Duration(q.ping)*time.Second, c.keepalive)
	}
	go c.watch()
	defer c.pmu.Unlock()
	// RFC 8620 §7.3: a client reconnecting with the last event id it saw
	// gets what it missed at once.
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		if seen, ok := decodeEventID(last); ok {
			if missed := missedChanges(seen, c.cur.states, q.types); missed != nil {
				c.send(missed)
			}
		}
	}
	return true
}

// Close ends the stream (on server shutdown).
func (c *esConn) Close() { _ = c.conn.Close() }

func (c *esConn) revoke() { c.Close() }

func (c *esConn) login() *jmap.Caller { return c.caller }

// watch reads until the client goes away, then lets go of everything.
func (c *esConn) watch() {
	var buf [64]byte
	for {
		if _, err := c.conn.Read(buf[:]); err != nil {
			break
		}
	}
	c.end()
}

// end closes the connection and releases what it holds.
func (c *esConn) end() {
	c.once.Do(func() {
		_ = c.conn.Close()
		c.pmu.Lock()
		if c.sub != nil {
			c.sub.Close()
			c.sub = nil
		}
		c.pmu.Unlock()
		if c.ping != nil {
			c.ping.Stop()
		}
		c.release()
		c.e.untrack(c)
	})
}

// write sends b whole; a failed write closes the connection.
func (c *esConn) write(b []byte) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(esWriteTimeout))
	if _, err := c.conn.Write(b); err != nil {
		_ = c.conn.Close()
		return false
	}
	return true
}

// keepalive sends a ping event (RFC 8620 §7.3) and waits for the next
// turn.
func (c *esConn) keepalive() {
	if c.write(fmt.Appendf(nil, "event: ping\ndata: {\"interval\":%d}\n\n", c.q.ping)) {
		c.ping.Reset(time.Duration(c.q.ping) * time.Second)
	}
}

// kick starts a push goroutine unless one runs; the broker calls it when
// changes are pending.
func (c *esConn) kick() { c.pushState.kick(c.send, c.Close) }

// send writes a state event and the event id after it; c.pmu is held.
func (c *esConn) send(sc *StateChange) {
	ev := fmt.Appendf(nil, "event: state\nid: %s\ndata: %s\n\n", c.cur.id(), encodeStateChange(sc))
	if !c.write(ev) {
		return
	}
	if c.q.closeAfter {
		_ = c.conn.Close()
		return
	}
	if c.ping != nil {
		// A ping is due "whenever this time elapses since the previous
		// event was sent".
		c.ping.Reset(time.Duration(c.q.ping) * time.Second)
	}
}
