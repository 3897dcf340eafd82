package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmapd/jmapd/jmaptest"
)

// TestRun_AgainstJmapd runs a short scenario against an in-process jmapd:
// every operation of the mix and every step must have run, without error.
func TestRun_AgainstJmapd(t *testing.T) {
	srv := jmaptest.Start(t)
	a := srv.NewUser(t, "load-a@example.test")
	b := srv.NewUser(t, "load-b@example.test")
	cfg := Config{
		SessionURL: srv.URL() + "/.well-known/jmap",
		Users:      []User{{a.Email, a.Password}, {b.Email, b.Password}},
		Seed:       5, Messages: 300, Importers: 2,
		// Equal weights, so that even on a loaded machine every
		// operation runs within the few seconds.
		Mix:     "session=1,mailboxes=1,page=1,open=1,flag=1,move=1,search=1,changes=1",
		Clients: 4, Duration: 3 * time.Second,
		Push: 3, PushDuration: time.Second,
		PID: os.Getpid(), Quiet: true, Timeout: 30 * time.Second,
	}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	rep.WriteTable(&table)
	t.Log("\n" + table.String())
	if rep.Interrupted {
		t.Error("report says interrupted")
	}
	im := rep.Import
	if im == nil || im.Messages != 300 || im.Failed != 0 || im.MessagesPerS <= 0 || im.MBPerS <= 0 {
		t.Fatalf("import %+v", im)
	}
	if im.Method != "Blob/upload" {
		t.Errorf("import method %q: jmapd has %s", im.Method, CapBlob)
	}
	wl := rep.Workload
	if wl == nil {
		t.Fatal("no workload figures")
	}
	for _, op := range Operations {
		s := wl.Ops[op]
		if s == nil || s.Count == 0 || s.PerSec <= 0 {
			t.Errorf("operation %s did not run: %+v", op, s)
			continue
		}
		if s.Errors != 0 {
			t.Errorf("operation %s: %d errors %v", op, s.Errors, s.ErrorsByType)
		}
		if s.P50Ms <= 0 || s.P99Ms < s.P50Ms || s.MaxMs < s.P99Ms {
			t.Errorf("operation %s: percentiles out of order %+v", op, s)
		}
	}
	if wl.Total.Errors != 0 {
		t.Errorf("workload errors: %d", wl.Total.Errors)
	}
	// Both accounts were imported into (messages go to the users in turn).
	for _, c := range []*jmaptest.Client{a, b} {
		if n := inboxTotal(t, srv, c); n == 0 {
			t.Errorf("%s has an empty Inbox after the import", c.Email)
		}
	}
	p := rep.Push
	if p == nil || p.Changes == 0 {
		t.Fatalf("push %+v", p)
	}
	es := p.Transports[PushEventSource]
	if es == nil || es.Opened != 3 || es.Failed != 0 || es.Missed != 0 || es.Dropped != 0 || es.Delivery.Count == 0 {
		t.Errorf("eventsource %+v", es)
	}
	if rep.RSS["workload"].RSSKB == 0 {
		t.Error("no RSS read with --pid")
	}

	// The outputs: JSON reads back, compare and HTML run on it.
	dir := t.TempDir()
	jp := filepath.Join(dir, "a.json")
	if err := rep.WriteJSON(jp); err != nil {
		t.Fatal(err)
	}
	back, err := ReadReport(jp)
	if err != nil {
		t.Fatal(err)
	}
	if back.Workload.Ops[OpOpen].Count != wl.Ops[OpOpen].Count {
		t.Error("JSON does not round-trip")
	}
	var cmp strings.Builder
	Compare(&cmp, rep, back, "a", "b")
	if !strings.Contains(cmp.String(), "open ops/s") || !strings.Contains(cmp.String(), "1.00") {
		t.Errorf("compare output:\n%s", cmp.String())
	}
	hp := filepath.Join(dir, "a.html")
	if err := rep.WriteHTML(hp); err != nil {
		t.Fatal(err)
	}
	page, _ := os.ReadFile(hp)
	if !strings.Contains(string(page), "<svg") || strings.Contains(string(page), "<script") ||
		strings.Contains(string(page), "src=") || strings.Contains(string(page), "stylesheet") {
		t.Error("HTML report is not a self-contained page with SVG charts")
	}
}

func inboxTotal(t *testing.T, srv *jmaptest.Server, c *jmaptest.Client) int {
	t.Helper()
	cl := NewClient(srv.URL()+"/.well-known/jmap", c.Email, c.Password, 10*time.Second)
	defer cl.Close()
	boxes, err := mailboxes(context.Background(), cl, c.Account)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range boxes {
		if m.Role == "inbox" {
			return m.TotalEmails
		}
	}
	return 0
}

// fakeSession answers a session that points its API at the same server.
func fakeSession(w http.ResponseWriter, base string) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"capabilities":{%q:{"maxSizeRequest":1000000,"maxCallsInRequest":16,"maxObjectsInSet":100,"maxObjectsInGet":100},%q:{}},
		"accounts":{"A":{"name":"x","isPersonal":true,"isReadOnly":false,"accountCapabilities":{}}},
		"primaryAccounts":{%q:"A"},"username":"x","apiUrl":%q,"uploadUrl":%q,"downloadUrl":%q,
		"eventSourceUrl":%q,"state":"1"}`, CapCore, CapMail, CapMail, base+"/api", base+"/upload/{accountId}/",
		base+"/download/{accountId}/{blobId}/{name}", base+"/es?types={types}&closeafter={closeafter}&ping={ping}")
}

// TestRun_BrokenServerIsReported points the tool at a server that answers
// 500s, closes connections, hangs past the timeout and sends method
// errors: every failure is counted by type and the run completes.
func TestRun_BrokenServerIsReported(t *testing.T) {
	var n atomic.Int64
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/session":
			fakeSession(w, srv.URL)
			return
		case r.URL.Path == "/es":
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		case r.URL.Path == "/upload/A/":
			w.WriteHeader(http.StatusInsufficientStorage)
			return
		}
		var req struct {
			MethodCalls [][]json.RawMessage `json:"methodCalls"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var name, id string
		_ = json.Unmarshal(req.MethodCalls[0][0], &name)
		_ = json.Unmarshal(req.MethodCalls[0][2], &id)
		if name == "Mailbox/get" && n.Load() == 0 {
			// Discovery works, so the workload starts.
			n.Add(1)
			fmt.Fprintf(w, `{"methodResponses":[["Mailbox/get",{"accountId":"A","state":"1","list":[{"id":"in","name":"Inbox","role":"inbox"},{"id":"ar","name":"Archive","role":"archive"}],"notFound":[]},%q]],"sessionState":"1"}`, id)
			return
		}
		switch n.Add(1) % 5 {
		case 0:
			w.WriteHeader(http.StatusInternalServerError)
		case 1:
			// Close the connection without an answer.
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err == nil {
				buf.Flush()
				conn.Close()
			}
		case 2:
			fmt.Fprintf(w, `{"methodResponses":[["error",{"type":"serverFail"},%q]],"sessionState":"1"}`, id)
		case 3:
			w.Write([]byte("{not json"))
		case 4:
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
		}
	}))
	defer srv.Close()
	cfg := Config{SessionURL: srv.URL + "/session", Users: []User{{"x@example.test", "pw"}}, Messages: 20, Importers: 2,
		Clients: 3, Duration: 1500 * time.Millisecond, Push: 2, PushDuration: 300 * time.Millisecond,
		Timeout: 300 * time.Millisecond, Quiet: true}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("run against a broken server failed instead of reporting: %v", err)
	}
	var table strings.Builder
	rep.WriteTable(&table)
	t.Log("\n" + table.String())
	if rep.Import == nil || rep.Import.Failed != 20 || rep.Import.Messages != 0 {
		t.Errorf("import %+v", rep.Import)
	}
	if rep.Import.ErrorsByType["http 507"] == 0 {
		t.Errorf("import errors %v: the upload URL answered 507", rep.Import.ErrorsByType)
	}
	got := map[string]int{}
	for _, s := range rep.Workload.Ops {
		for k, v := range s.ErrorsByType {
			got[k] += v
		}
	}
	for _, want := range []string{"http 500", "transport closed", "method serverFail", "decode response", "timeout timeout"} {
		if got[want] == 0 {
			t.Errorf("no %q among the workload errors %v", want, got)
		}
	}
	if rep.Workload.Total.Errors == 0 {
		t.Error("workload total has no errors")
	}
	es := rep.Push.Transports[PushEventSource]
	if es == nil || es.Failed != 2 || es.ErrorsByType["http 503"] != 2 {
		t.Errorf("eventsource %+v", es)
	}
	if !strings.Contains(strings.Join(rep.Notices, "\n"), CapBlob) || !strings.Contains(strings.Join(rep.Notices, "\n"), CapWebSocket) {
		t.Errorf("notices %q do not name the missing capabilities", rep.Notices)
	}
}

// TestRun_InterruptReportsSoFar cancels a run in the middle of the
// workload: the report comes back marked interrupted, with figures.
func TestRun_InterruptReportsSoFar(t *testing.T) {
	srv := jmaptest.Start(t)
	a := srv.NewUser(t, "int@example.test")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := Config{SessionURL: srv.URL() + "/.well-known/jmap", Users: []User{{a.Email, a.Password}},
		Messages: 50, Importers: 1, Clients: 2, Duration: time.Minute, Quiet: true}
	done := make(chan struct{})
	var rep *Report
	var err error
	go func() {
		defer close(done)
		rep, err = Run(ctx, cfg)
	}()
	// Interrupt once the workload is under way: after the import, the
	// first flag or move changes the Email state, and a client shows a
	// page (a recorded operation) before it flags or moves anything.
	c := NewClient(srv.URL()+"/.well-known/jmap", a.Email, a.Password, 10*time.Second)
	defer c.Close()
	deadline := time.Now().Add(60 * time.Second)
	imported := ""
	for time.Now().Before(deadline) {
		boxes, err := mailboxes(context.Background(), c, a.Account)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, m := range boxes {
			total += m.TotalEmails
		}
		st := emailState(t, c, a.Account)
		if total == cfg.Messages && imported == "" {
			imported = st
		}
		if imported != "" && st != imported {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("run did not stop after the interrupt")
	}
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Interrupted || rep.Workload == nil || rep.Workload.Total.Count == 0 || rep.Workload.Seconds > 30 {
		t.Errorf("interrupted report %+v", rep.Workload)
	}
	if rep.Workload.Total.Errors != 0 {
		t.Errorf("an interrupt counted as errors: %+v", rep.Workload.Total)
	}
}

func emailState(t *testing.T, c *Client, acct string) string {
	t.Helper()
	res, err := c.API(context.Background(), mailUsing, Call{"Email/get", map[string]any{"accountId": acct, "ids": []string{}}, "0"})
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		State string `json:"state"`
	}
	if err := json.Unmarshal(res["0"], &r); err != nil || r.State == "" {
		t.Fatalf("Email/get state: %s", res["0"])
	}
	return r.State
}
