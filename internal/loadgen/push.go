package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Push transports.
const (
	PushEventSource = "eventsource"
	PushWebSocket   = "websocket"
)

// PushReport holds the figures of the push phase.
type PushReport struct {
	// Connections is the number asked for per transport.
	Connections int     `json:"connections"`
	Seconds     float64 `json:"seconds"`
	Changes     int     `json:"changes"`
	// Transports holds, per transport, connect times and delivery latency
	// from the /set response to the state event.
	Transports map[string]*PushTransport `json:"transports"`
}

// PushTransport holds the figures of one push transport.
type PushTransport struct {
	Opened  int `json:"opened"`
	Failed  int `json:"failed"`
	Dropped int `json:"dropped"`
	// Missed counts deliveries not seen within the wait.
	Missed       int            `json:"missed"`
	ErrorsByType map[string]int `json:"errorsByType"`
	Connect      *OpStats       `json:"connect"`
	Delivery     *OpStats       `json:"delivery"`
	// FromSend is the delivery latency from sending the /set request,
	// for servers that push before they answer.
	FromSend *OpStats `json:"fromSend"`
	// RSSPerConnKB is the server's RSS growth per open connection.
	RSSPerConnKB float64 `json:"rssPerConnKB,omitempty"`
}

// pushConn is one open push connection and the states it has seen.
type pushConn struct {
	kind   string
	acct   string
	mu     sync.Mutex
	seen   map[string]time.Time // Email state -> first arrival
	notify chan struct{}
	closed atomic.Bool
	stop   func()
}

func newPushConn(kind, acct string) *pushConn {
	return &pushConn{kind: kind, acct: acct, seen: map[string]time.Time{}, notify: make(chan struct{}, 1)}
}

// stateChange handles a StateChange object (RFC 8620 §7.1).
func (pc *pushConn) stateChange(data []byte, at time.Time) {
	var sc struct {
		Type    string                       `json:"@type"`
		Changed map[string]map[string]string `json:"changed"`
	}
	if json.Unmarshal(data, &sc) != nil || sc.Type != "StateChange" {
		return
	}
	st := sc.Changed[pc.acct]["Email"]
	if st == "" {
		return
	}
	pc.mu.Lock()
	if _, ok := pc.seen[st]; !ok {
		pc.seen[st] = at
	}
	pc.mu.Unlock()
	select {
	case pc.notify <- struct{}{}:
	default:
	}
}

// wait returns when state st arrived, or false at the deadline or when the
// connection closed.
func (pc *pushConn) wait(st string, deadline time.Time) (time.Time, bool) {
	for {
		pc.mu.Lock()
		at, ok := pc.seen[st]
		pc.mu.Unlock()
		if ok {
			return at, true
		}
		if pc.closed.Load() {
			return time.Time{}, false
		}
		left := time.Until(deadline)
		if left <= 0 {
			return time.Time{}, false
		}
		select {
		case <-pc.notify:
		case <-time.After(min(left, 100*time.Millisecond)):
		}
	}
}

// openEventSource connects to the session's event-source URL (RFC 8620
// §7.3) for every type, without pings, and reads events until ctx ends.
func openEventSource(ctx context.Context, c *Client, acct string) (*pushConn, error) {
	u := c.Session.EventSourceURL
	if u == "" {
		return nil, &Error{Kind: "missing", Type: "eventSourceUrl"}
	}
	u = strings.NewReplacer("{types}", "*", "{closeafter}", "no", "{ping}", "0").Replace(u)
	cctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, u, nil)
	if err != nil {
		cancel()
		return nil, &Error{Kind: "transport", Type: "request", Detail: err.Error()}
	}
	req.SetBasicAuth(c.User, c.Password)
	req.Header.Set("Accept", "text/event-stream")
	// The stream has no end: no client timeout, only the context.
	hc := &http.Client{Transport: c.HTTP.Transport}
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		return nil, classify(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, &Error{Kind: "http", Type: fmt.Sprint(resp.StatusCode)}
	}
	pc := newPushConn(PushEventSource, acct)
	pc.stop = cancel
	go func() {
		defer resp.Body.Close()
		defer pc.closed.Store(true)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
		var event string
		var data strings.Builder
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if data.Len() > 0 && (event == "" || event == "state") {
					pc.stateChange([]byte(data.String()), time.Now())
				}
				event = ""
				data.Reset()
			case strings.HasPrefix(line, ":"):
			case strings.HasPrefix(line, "event:"):
				event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
			case strings.HasPrefix(line, "data:"):
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
			}
		}
	}()
	return pc, nil
}

// openWebSocket connects to the WebSocket URL with the "jmap" subprotocol
// and enables push (RFC 8887 §4.3.5).
func openWebSocket(ctx context.Context, c *Client, ws *WebSocketCap, acct string) (*pushConn, error) {
	d := websocket.Dialer{Subprotocols: []string{"jmap"}, HandshakeTimeout: 30 * time.Second}
	h := http.Header{}
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	req.SetBasicAuth(c.User, c.Password)
	h.Set("Authorization", req.Header.Get("Authorization"))
	conn, resp, err := d.DialContext(ctx, ws.URL, h)
	if err != nil {
		if resp != nil {
			return nil, &Error{Kind: "http", Type: fmt.Sprint(resp.StatusCode)}
		}
		return nil, classify(err)
	}
	if conn.Subprotocol() != "jmap" {
		conn.Close()
		return nil, &Error{Kind: "websocket", Type: "subprotocol"}
	}
	// RFC 8887 §4.3.5: dataTypes null means every type.
	enable := map[string]any{"@type": "WebSocketPushEnable", "dataTypes": nil}
	if err := conn.WriteJSON(enable); err != nil {
		conn.Close()
		return nil, classify(err)
	}
	pc := newPushConn(PushWebSocket, acct)
	var once sync.Once
	pc.stop = func() {
		once.Do(func() {
			_ = conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			conn.Close()
		})
	}
	go func() {
		defer pc.closed.Store(true)
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			pc.stateChange(msg, time.Now())
		}
	}()
	go func() {
		<-ctx.Done()
		pc.stop()
	}()
	return pc, nil
}

// PushTest opens push connections, makes changes and measures delivery.
type PushTest struct {
	Accounts []*account
	// Conns is the number of connections per transport.
	Conns    int
	Duration time.Duration
	// Wait is how long a change may take to arrive.
	Wait     time.Duration
	PID      int
	Notices  *Notices
	Progress *Progress
}

// Run performs the push test and returns its figures.
func (p *PushTest) Run(ctx context.Context) *PushReport {
	rep := &PushReport{Connections: p.Conns, Transports: map[string]*PushTransport{}}
	kinds := []string{PushEventSource}
	s := p.Accounts[0].session
	if s.EventSourceURL == "" {
		p.Notices.Add("session has no eventSourceUrl: EventSource push is skipped")
		kinds = nil
	}
	ws := s.WebSocket()
	switch {
	case ws == nil:
		p.Notices.Add("server lacks %s: WebSocket push is skipped", CapWebSocket)
	case !ws.SupportsPush:
		p.Notices.Add("server's WebSocket does not support push: WebSocket push is skipped")
	default:
		kinds = append(kinds, PushWebSocket)
	}
	var all []*pushConn
	defer func() {
		for _, pc := range all {
			pc.stop()
		}
	}()
	byAcct := map[string][]*pushConn{}
	for _, kind := range kinds {
		tr := &PushTransport{ErrorsByType: map[string]int{}}
		rep.Transports[kind] = tr
		rec := NewRecorder()
		before := ReadRSS(p.PID)
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for i := range p.Conns {
			a := p.Accounts[i%len(p.Accounts)]
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				c := NewClient(a.user2client())
				c.Session = a.session
				t := time.Now()
				var pc *pushConn
				var err error
				if kind == PushEventSource {
					pc, err = openEventSource(ctx, c, a.id)
				} else {
					pc, err = openWebSocket(ctx, c, ws, a.id)
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					tr.Failed++
					tr.ErrorsByType[ErrorKey(err)]++
					return
				}
				rec.Add("connect", time.Since(t))
				tr.Opened++
				all = append(all, pc)
				byAcct[a.id] = append(byAcct[a.id], pc)
			}()
		}
		wg.Wait()
		if p.PID > 0 && tr.Opened > 0 {
			// Let the server settle its buffers before reading RSS.
			time.Sleep(time.Second)
			after := ReadRSS(p.PID)
			if before.RSSKB > 0 && after.RSSKB > 0 {
				tr.RSSPerConnKB = float64(after.RSSKB-before.RSSKB) / float64(tr.Opened)
			}
		}
		if tr.Opened == 0 && tr.Failed > 0 && tr.ErrorsByType["http 204"] == tr.Failed {
			// RFC 8620 §7.3 has no 204; Cyrus answers so when push is
			// off (built without WebSocket support, jmap_pushpoll unset).
			p.Notices.Add("server answered every %s connection with 204 No Content, so it cannot push over it: %s push is skipped", kind, kind)
			delete(rep.Transports, kind)
			continue
		}
		tr.Connect = rec.Stats(0)["connect"]
		if tr.Connect == nil {
			tr.Connect = Summarize(nil, 0)
		}
		tr.Connect.PerSec = 0
	}
	kinds = slices.DeleteFunc(kinds, func(k string) bool { return rep.Transports[k] == nil })
	if len(all) == 0 {
		return rep
	}
	// RFC 8887 gives WebSocketPushEnable no answer, so a client cannot
	// know when the server has applied it: give the servers a moment
	// before the first change, so that no connection misses it.
	select {
	case <-ctx.Done():
	case <-time.After(200 * time.Millisecond):
	}
	// One writer per account changes a message and waits for every
	// connection of that account to see the new Email state.
	start := time.Now()
	deadline := start.Add(p.Duration)
	delivery := map[string]*Recorder{}
	for _, k := range kinds {
		delivery[k] = NewRecorder()
	}
	var changes atomic.Int64
	stop := p.Progress.Start(func() string {
		return fmt.Sprintf("push %3.0fs/%.0fs  %d connections  %d changes", time.Since(start).Seconds(),
			p.Duration.Seconds(), len(all), changes.Load())
	})
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, a := range p.Accounts {
		conns := byAcct[a.id]
		if len(conns) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := NewClient(a.user2client())
			c.Session = a.session
			defer c.Close()
			id, err := firstEmail(ctx, c, a)
			if err != nil {
				p.Notices.Add("push: no email to change in %s: %v", a.user.Email, err)
				return
			}
			flag := true
			for ctx.Err() == nil && time.Now().Before(deadline) {
				var val any
				if flag {
					val = true
				}
				flag = !flag
				sent := time.Now()
				res, err := c.API(ctx, mailUsing, Call{"Email/set", map[string]any{"accountId": a.id,
					"update": map[string]any{id: map[string]any{"keywords/$flagged": val}}}, "0"})
				done := time.Now()
				if err == nil {
					err = firstSetError(res["0"])
				}
				if err != nil {
					if ctx.Err() == nil {
						mu.Lock()
						rep.Transports[conns[0].kind].ErrorsByType["set "+ErrorKey(err)]++
						mu.Unlock()
					}
					continue
				}
				var r struct {
					NewState string `json:"newState"`
				}
				_ = json.Unmarshal(res["0"], &r) // checked by firstSetError
				changes.Add(1)
				wait := done.Add(p.Wait)
				for _, pc := range conns {
					at, ok := pc.wait(r.NewState, wait)
					mu.Lock()
					tr := rep.Transports[pc.kind]
					switch {
					case ok:
						// An event may beat the response to the client.
						delivery[pc.kind].Add("delivery", max(at.Sub(done), 0))
						delivery[pc.kind].Add("fromSend", at.Sub(sent))
					case pc.closed.Load():
						tr.ErrorsByType["dropped"]++
					default:
						tr.Missed++
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	stop()
	el := time.Since(start)
	rep.Seconds = el.Seconds()
	rep.Changes = int(changes.Load())
	for _, k := range kinds {
		tr := rep.Transports[k]
		tr.Delivery = delivery[k].Stats(el)["delivery"]
		if tr.Delivery == nil {
			tr.Delivery = Summarize(nil, el)
		}
		tr.FromSend = delivery[k].Stats(el)["fromSend"]
		if tr.FromSend == nil {
			tr.FromSend = Summarize(nil, el)
		}
		for _, pc := range all {
			if pc.kind == k && pc.closed.Load() {
				tr.Dropped++
			}
		}
	}
	return rep
}

// firstEmail returns the id of the newest email in the Inbox.
func firstEmail(ctx context.Context, c *Client, a *account) (string, error) {
	res, err := c.API(ctx, mailUsing, Call{"Email/query", map[string]any{"accountId": a.id,
		"filter": map[string]any{"inMailbox": a.inbox}, "limit": 1}, "0"})
	if err != nil {
		return "", err
	}
	var r struct {
		IDs []string `json:"ids"`
	}
	if json.Unmarshal(res["0"], &r) != nil || len(r.IDs) == 0 {
		return "", fmt.Errorf("inbox is empty")
	}
	return r.IDs[0], nil
}
