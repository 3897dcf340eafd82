package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Operations of the workload mix, in report order.
const (
	OpSession   = "session"
	OpMailboxes = "mailboxes"
	OpPage      = "page"
	OpOpen      = "open"
	OpFlag      = "flag"
	OpMove      = "move"
	OpSearch    = "search"
	OpChanges   = "changes"
)

// Operations lists every workload operation.
var Operations = []string{OpSession, OpMailboxes, OpPage, OpOpen, OpFlag, OpMove, OpSearch, OpChanges}

// DefaultMix is the operation mix of a client that reads much and writes a
// little, in percent.
const DefaultMix = "session=2,mailboxes=8,page=25,open=30,flag=10,move=5,search=5,changes=15"

// Mix is a weighted choice among operations.
type Mix struct {
	ops     []string
	weights []int
	total   int
}

// ParseMix reads "op=weight,op=weight,...".
func ParseMix(s string) (*Mix, error) {
	m := &Mix{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		name, w, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("mix: %q is not op=weight", f)
		}
		if !slices.Contains(Operations, name) {
			return nil, fmt.Errorf("mix: unknown operation %q (known: %s)", name, strings.Join(Operations, ", "))
		}
		n, err := strconv.Atoi(w)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("mix: weight of %s must be a non-negative integer", name)
		}
		if slices.Contains(m.ops, name) {
			return nil, fmt.Errorf("mix: %s given twice", name)
		}
		if n > 0 {
			m.ops = append(m.ops, name)
			m.weights = append(m.weights, n)
			m.total += n
		}
	}
	if m.total == 0 {
		return nil, errors.New("mix: no operation has a weight")
	}
	return m, nil
}

// Ops returns the operations with a weight.
func (m *Mix) Ops() []string { return append([]string(nil), m.ops...) }

// Without returns the mix less op.
func (m *Mix) Without(op string) *Mix {
	out := &Mix{}
	for i, o := range m.ops {
		if o != op {
			out.ops = append(out.ops, o)
			out.weights = append(out.weights, m.weights[i])
			out.total += m.weights[i]
		}
	}
	return out
}

func (m *Mix) pick(rng *rand.Rand) string {
	r := rng.IntN(m.total)
	for i, w := range m.weights {
		if r < w {
			return m.ops[i]
		}
		r -= w
	}
	return m.ops[len(m.ops)-1]
}

// WorkloadReport holds the figures of the workload phase.
type WorkloadReport struct {
	Clients int                 `json:"clients"`
	Seconds float64             `json:"seconds"`
	Mix     string              `json:"mix"`
	Total   *OpStats            `json:"total"`
	Ops     map[string]*OpStats `json:"ops"`
}

// Workload runs simulated clients.
type Workload struct {
	Accounts []*account
	Clients  int
	Duration time.Duration
	Mix      *Mix
	Think    time.Duration
	Timeout  time.Duration
	Seed     uint64
	Rec      *Recorder
	Progress *Progress
	Notices  *Notices
}

// simClient is one simulated client's state.
type simClient struct {
	w          *Workload
	c          *Client
	a          *account
	rng        *rand.Rand
	page       []string // ids of the last page shown
	moved      []string // ids this client moved out of the Inbox
	emailState string
	words      []string
}

// Run runs the clients until the duration is over or ctx ends, and returns
// the figures so far.
func (w *Workload) Run(ctx context.Context) *WorkloadReport {
	mix := w.Mix
	for _, a := range w.Accounts {
		if a.archive == "" {
			mix = mix.Without(OpMove)
		}
	}
	if len(mix.ops) == 0 {
		w.Notices.Add("no operation left in the mix")
		return &WorkloadReport{Clients: w.Clients, Mix: w.Mix.String(), Ops: map[string]*OpStats{}}
	}
	start := time.Now()
	deadline := start.Add(w.Duration)
	stop := w.Progress.Start(func() string {
		el := time.Since(start)
		n := w.Rec.Count()
		return fmt.Sprintf("workload %3.0fs/%.0fs  %d clients  %d ops  %.0f ops/s  errors %d",
			el.Seconds(), w.Duration.Seconds(), w.Clients, n, float64(n)/el.Seconds(), w.Rec.Errors())
	})
	var wg sync.WaitGroup
	for i := range w.Clients {
		a := w.Accounts[i%len(w.Accounts)]
		c := NewClient(a.user2client())
		c.HTTP.Timeout = w.Timeout
		c.Session = a.session
		sc := &simClient{w: w, c: c, a: a, rng: rand.New(rand.NewPCG(w.Seed, uint64(i)+1)), words: SearchWords()}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				sc.run(ctx, mix.pick(sc.rng))
				if w.Think > 0 {
					select {
					case <-time.After(time.Duration(sc.rng.Int64N(int64(2 * w.Think)))):
					case <-ctx.Done():
					}
				}
			}
		}()
	}
	wg.Wait()
	stop()
	el := time.Since(start)
	r := &WorkloadReport{Clients: w.Clients, Seconds: el.Seconds(), Mix: mix.String(), Ops: w.Rec.Stats(el)}
	var all []time.Duration
	total := 0
	w.Rec.mu.Lock()
	for _, o := range w.Rec.ops {
		all = append(all, o.lat...)
		for _, n := range o.errors {
			total += n
		}
	}
	w.Rec.mu.Unlock()
	r.Total = Summarize(all, el)
	r.Total.Errors = total
	r.Total.QuantilesMs = nil
	return r
}

// String writes the mix back as op=weight pairs.
func (m *Mix) String() string {
	parts := make([]string, len(m.ops))
	for i, o := range m.ops {
		parts[i] = o + "=" + strconv.Itoa(m.weights[i])
	}
	return strings.Join(parts, ",")
}

// run performs one operation and records it. An operation cut short by
// the end of ctx is not recorded.
func (sc *simClient) run(ctx context.Context, op string) {
	// An operation that needs ids first shows a page, as a client would.
	if (op == OpOpen || op == OpFlag || op == OpMove) && len(sc.page) == 0 {
		op = OpPage
	}
	if op == OpChanges && sc.emailState == "" {
		op = OpPage
	}
	t := time.Now()
	err := sc.do(ctx, op)
	d := time.Since(t)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		sc.w.Rec.Fail(op, err)
		return
	}
	sc.w.Rec.Add(op, d)
}

func (sc *simClient) do(ctx context.Context, op string) error {
	a := sc.a
	switch op {
	case OpSession:
		_, err := sc.c.FetchSession(ctx)
		return err
	case OpMailboxes:
		_, err := sc.c.API(ctx, mailUsing, Call{"Mailbox/get", map[string]any{"accountId": a.id, "ids": nil}, "0"})
		return err
	case OpPage:
		return sc.showPage(ctx)
	case OpOpen:
		id := sc.page[sc.rng.IntN(len(sc.page))]
		res, err := sc.c.API(ctx, mailUsing, Call{"Email/get", map[string]any{"accountId": a.id, "ids": []string{id},
			"properties": []string{"id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt",
				"messageId", "inReplyTo", "references", "sender", "from", "to", "cc", "replyTo", "subject", "sentAt",
				"hasAttachment", "preview", "bodyValues", "textBody", "htmlBody", "attachments"},
			"fetchAllBodyValues": true, "maxBodyValueBytes": 262144}, "0"})
		if err != nil {
			return err
		}
		var r struct {
			List     []json.RawMessage `json:"list"`
			NotFound []string          `json:"notFound"`
		}
		if err := json.Unmarshal(res["0"], &r); err != nil {
			return &Error{Kind: "decode", Type: "Email/get"}
		}
		if len(r.List) != 1 {
			// Another client may have moved it; that is not an error
			// of the server, but the page is stale.
			sc.page = nil
		}
		return nil
	case OpFlag:
		id := sc.page[sc.rng.IntN(len(sc.page))]
		kw := "keywords/$seen"
		if sc.rng.IntN(3) == 0 {
			kw = "keywords/$flagged"
		}
		var val any = true
		if sc.rng.IntN(2) == 0 {
			val = nil
		}
		res, err := sc.c.API(ctx, mailUsing, Call{"Email/set", map[string]any{"accountId": a.id,
			"update": map[string]any{id: map[string]any{kw: val}}}, "0"})
		if err != nil {
			return err
		}
		return sc.setResult(res["0"])
	case OpMove:
		var id, to string
		if len(sc.moved) > 0 && sc.rng.IntN(2) == 0 {
			id, to = sc.moved[len(sc.moved)-1], a.inbox
			sc.moved = sc.moved[:len(sc.moved)-1]
		} else {
			i := sc.rng.IntN(len(sc.page))
			id, to = sc.page[i], a.archive
			sc.page = slices.Delete(sc.page, i, i+1)
			sc.moved = append(sc.moved, id)
		}
		res, err := sc.c.API(ctx, mailUsing, Call{"Email/set", map[string]any{"accountId": a.id,
			"update": map[string]any{id: map[string]any{"mailboxIds": map[string]bool{to: true}}}}, "0"})
		if err != nil {
			return err
		}
		return sc.setResult(res["0"])
	case OpSearch:
		filter := map[string]any{"text": sc.words[sc.rng.IntN(len(sc.words))]}
		_, err := sc.c.API(ctx, mailUsing,
			Call{"Email/query", map[string]any{"accountId": a.id, "filter": filter,
				"sort": []any{map[string]any{"property": "receivedAt", "isAscending": false}}, "limit": 20}, "q"},
			Call{"SearchSnippet/get", map[string]any{"accountId": a.id, "filter": filter,
				"#emailIds": Ref{ResultOf: "q", Name: "Email/query", Path: "/ids"}}, "s"})
		return err
	case OpChanges:
		res, err := sc.c.API(ctx, mailUsing, Call{"Email/changes", map[string]any{"accountId": a.id,
			"sinceState": sc.emailState, "maxChanges": 256}, "0"})
		var e *Error
		if errors.As(err, &e) && e.Kind == "method" && e.Type == "cannotCalculateChanges" {
			// RFC 8620 §5.2: the client starts over; not a failure.
			sc.emailState = ""
			return nil
		}
		if err != nil {
			return err
		}
		var r struct {
			NewState string `json:"newState"`
		}
		if err := json.Unmarshal(res["0"], &r); err != nil || r.NewState == "" {
			return &Error{Kind: "decode", Type: "Email/changes"}
		}
		sc.emailState = r.NewState
		return nil
	}
	return fmt.Errorf("unknown operation %s", op)
}

// setResult turns a notUpdated entry into an error. notFound is expected
// when another client moved the message first and only clears the page.
func (sc *simClient) setResult(raw json.RawMessage) error {
	err := firstSetError(raw)
	var e *Error
	if errors.As(err, &e) && e.Type == "notFound" {
		sc.page = nil
		return nil
	}
	return err
}

// showPage queries a page of the Inbox, newest first, and gets the list
// properties of its emails through a result reference (RFC 8620 §3.7).
func (sc *simClient) showPage(ctx context.Context) error {
	a := sc.a
	pos := 0
	if sc.rng.IntN(5) == 0 {
		pos = 50 * (1 + sc.rng.IntN(10))
	}
	res, err := sc.c.API(ctx, mailUsing,
		Call{"Email/query", map[string]any{"accountId": a.id, "filter": map[string]any{"inMailbox": a.inbox},
			"sort":     []any{map[string]any{"property": "receivedAt", "isAscending": false}},
			"position": pos, "limit": 50, "calculateTotal": true}, "q"},
		Call{"Email/get", map[string]any{"accountId": a.id,
			"#ids": Ref{ResultOf: "q", Name: "Email/query", Path: "/ids"},
			"properties": []string{"id", "threadId", "mailboxIds", "keywords", "from", "subject", "receivedAt",
				"size", "preview", "hasAttachment"}}, "g"})
	if err != nil {
		return err
	}
	var q struct {
		IDs   []string `json:"ids"`
		Total int      `json:"total"`
	}
	var g struct {
		State string `json:"state"`
		List  []struct {
			ID string `json:"id"`
		} `json:"list"`
	}
	if json.Unmarshal(res["q"], &q) != nil || json.Unmarshal(res["g"], &g) != nil {
		return &Error{Kind: "decode", Type: "Email/query"}
	}
	if len(q.IDs) == 0 && pos > 0 {
		// Past the end of a small mailbox: show the first page next.
		return nil
	}
	sc.page = sc.page[:0]
	for _, e := range g.List {
		sc.page = append(sc.page, e.ID)
	}
	if sc.emailState == "" {
		sc.emailState = g.State
	}
	return nil
}

// user2client returns the arguments of NewClient for the account's user.
func (a *account) user2client() (string, string, string, time.Duration) {
	return a.sessionURL, a.user.Email, a.user.Password, time.Minute
}
