package push_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/jmapd/jmapd/internal/config"
	"github.com/jmapd/jmapd/jmaptest"
)

// The push load benchmark holds many idle EventSource and WebSocket
// connections (half each) open against an in-process server and measures
//   - server memory per connection (heap and stacks in use, after GC,
//     divided by the connection count),
//   - fan-out latency: from just before the Note/set request of a commit
//     until each of the N connections (all of one user) has its
//     StateChange,
//   - single-user latency: the same for a commit of another user with one
//     EventSource and one WebSocket, while the N connections stay open.
//
// The clients run in a child process (this test binary again, running
// TestPushLoadClient), so that the server's memory is measured alone.
//
//	PUSH_CONNS=2000 go test ./push -run '^$' -bench BenchmarkPushLoad -benchtime 20x
func BenchmarkPushLoad(b *testing.B) {
	n := 2000
	if s := os.Getenv("PUSH_CONNS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	srv := jmaptest.Start(b, func(c *config.Config) { c.Push.MaxConnectionsPerUser = n + 10 })
	alice := srv.NewUser(b, "alice@example.test")
	bob := srv.NewUser(b, "bob@example.test")

	if os.Getenv("PUSH_HEAP") != "" {
		runtime.MemProfileRate = 64
	}
	// Warm up what a first commit and push allocate lazily, so that the
	// memory measured is the connections'.
	createNote(b, alice)
	createNote(b, bob)
	runtime.GC()
	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	g0 := runtime.NumGoroutine()

	child := exec.Command(os.Args[0], "-test.run=^TestPushLoadClient$", "-test.timeout=0")
	child.Env = append(os.Environ(), "PUSH_LOAD_CLIENT="+strings.Join([]string{
		srv.URL(), alice.Email, alice.Password, bob.Email, bob.Password, strconv.Itoa(n)}, " "))
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = child.Wait()
	}()
	arrivals := make(chan arrival, 4096)
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 1 && f[0] == "ready":
				close(ready)
			case len(f) == 4 && f[0] == "ev":
				ns, _ := strconv.ParseInt(f[3], 10, 64)
				arrivals <- arrival{who: f[1], state: f[2], at: time.Unix(0, ns)}
			}
		}
		close(arrivals)
	}()
	opened := time.Now()
	select {
	case <-ready:
	case <-time.After(5 * time.Minute):
		b.Fatal("the clients did not connect")
	}
	openDur := time.Since(opened)
	runtime.GC()
	runtime.GC()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	if p := os.Getenv("PUSH_HEAP"); p != "" {
		// A heap profile with every connection open, for go tool pprof.
		if f, err := os.Create(p); err == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	inuse := func(m *runtime.MemStats) float64 { return float64(m.HeapInuse + m.StackInuse) }
	perConn := (inuse(&m1) - inuse(&m0)) / float64(n+2)
	goroutines := float64(runtime.NumGoroutine()-g0) / float64(n+2)

	// commit changes who's account and waits until want connections have
	// the new state; it returns each connection's latency.
	commit := func(who *jmaptest.Client, name string, want int) []time.Duration {
		start := time.Now()
		state := createNote(b, who)
		var lat []time.Duration
		deadline := time.After(time.Minute)
		for len(lat) < want {
			select {
			case a, ok := <-arrivals:
				if !ok {
					b.Fatal("the client process ended")
				}
				if a.who == name && a.state == state {
					lat = append(lat, a.at.Sub(start))
				}
			case <-deadline:
				b.Fatalf("%d of %d connections got state %s", len(lat), want, state)
			}
		}
		return lat
	}
	var fanout []time.Duration
	for b.Loop() {
		fanout = append(fanout, commit(alice, "alice", n)...)
	}
	b.StopTimer()
	var single []time.Duration
	for range 50 {
		single = append(single, commit(bob, "bob", 2)...)
	}
	b.ReportMetric(perConn/1024, "KB/conn")
	b.ReportMetric(float64(m1.StackInuse-m0.StackInuse)/float64(n+2)/1024, "stackKB/conn")
	b.ReportMetric(goroutines, "goroutines/conn")
	b.ReportMetric(pct(fanout, 50), "fanout-p50-ms")
	b.ReportMetric(pct(fanout, 99), "fanout-p99-ms")
	b.ReportMetric(pct(single, 50), "single-p50-ms")
	b.ReportMetric(pct(single, 99), "single-p99-ms")
	b.Logf("%d connections opened in %v", n, openDur.Round(time.Millisecond))
}

type arrival struct {
	who, state string
	at         time.Time
}

// pct returns the p-th percentile of ds in milliseconds.
func pct(ds []time.Duration, p int) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(len(s)*p/100, len(s)-1)
	return float64(s[i].Microseconds()) / 1000
}

// TestPushLoadClient is the client process of BenchmarkPushLoad: it does
// nothing unless started by it. It opens the connections, prints "ready",
// then one "ev USER STATE UNIXNANO" line per Note state received, until
// its stdin closes.
func TestPushLoadClient(t *testing.T) {
	spec := os.Getenv("PUSH_LOAD_CLIENT")
	if spec == "" {
		return
	}
	f := strings.Fields(spec)
	base := f[0]
	n, _ := strconv.Atoi(f[5])
	out := make(chan string, 65536)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := &http.Transport{MaxIdleConnsPerHost: -1}
	hc := &http.Client{Transport: tr}
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/jmap/ws"
	sem := make(chan struct{}, 32)
	open := func(name, email, pw string, ws bool) {
		sem <- struct{}{}
		defer func() { <-sem }()
		// report finds the Note state without decoding the whole
		// message, to keep the client's share of the CPUs small.
		report := func(b []byte) {
			now := time.Now().UnixNano()
			_, rest, ok := bytes.Cut(b, []byte(`"Note":"`))
			if !ok {
				return
			}
			st, _, _ := bytes.Cut(rest, []byte(`"`))
			out <- "ev " + name + " " + string(st) + " " + strconv.FormatInt(now, 10)
		}
		if ws {
			h := http.Header{}
			req, _ := http.NewRequest(http.MethodGet, "/", nil)
			req.SetBasicAuth(email, pw)
			h.Set("Authorization", req.Header.Get("Authorization"))
			conn, _, err := (&websocket.Dialer{Subprotocols: []string{"jmap"}, ReadBufferSize: 1024, WriteBufferSize: 1024}).Dial(wsURL, h)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			// The answer to a request sent after the enable says push is on.
			for _, m := range []string{`{"@type":"WebSocketPushEnable","dataTypes":["Note"]}`,
				`{"@type":"Request","id":"on","using":["urn:ietf:params:jmap:core"],"methodCalls":[["Core/echo",{},"0"]]}`} {
				if err := conn.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
					t.Errorf("enable: %v", err)
					return
				}
			}
			if _, _, err := conn.ReadMessage(); err != nil {
				t.Errorf("enable: %v", err)
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				for {
					_, b, err := conn.ReadMessage()
					if err != nil {
						return
					}
					report(b)
				}
			}()
			return
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/jmap/eventsource?types=Note&closeafter=no&ping=0", nil)
		req.SetBasicAuth(email, pw)
		resp, err := hc.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("eventsource: %v %v", err, resp)
			return
		}
		br := bufio.NewReaderSize(resp.Body, 1024)
		// The opening comment says the subscription is in place.
		if _, err := br.ReadString('\n'); err != nil {
			t.Errorf("eventsource: %v", err)
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer resp.Body.Close()
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if strings.HasPrefix(line, "data: ") {
					report([]byte(line[len("data: "):]))
				}
			}
		}()
	}
	var opening sync.WaitGroup
	for i := range n {
		opening.Add(1)
		go func() {
			defer opening.Done()
			ws := i%2 == 0
			switch os.Getenv("PUSH_KIND") {
			case "ws":
				ws = true
			case "es":
				ws = false
			}
			open("alice", f[1], f[2], ws)
		}()
	}
	opening.Add(2)
	go func() { defer opening.Done(); open("bob", f[3], f[4], true) }()
	go func() { defer opening.Done(); open("bob", f[3], f[4], false) }()
	opening.Wait()
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(w, "ready")
	w.Flush()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
		tr.CloseIdleConnections()
		os.Exit(0)
	}()
	for line := range out {
		fmt.Fprintln(w, line)
		if len(out) == 0 {
			w.Flush()
		}
	}
}
