package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/jmapd/jmapd/internal/config"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/jmaptest"
	"github.com/jmapd/jmapd/server"
	"github.com/jmapd/jmapd/store"
)

// echoClients is the number of concurrent keep-alive clients of the echo
// target: 15,000 requests/s with p99 under 10 ms on 2 cores.
const echoClients = 32

// echoBody is the Core/echo request of RFC 8620 §4.1.
const echoBody = `{"using":["urn:ietf:params:jmap:core"],"methodCalls":[["Core/echo",{"hello":true,"high":5},"b0"]]}`

// getObjects is the number of records of the /get target: under 5 ms.
const getObjects = 1000

// startWithLogger starts a server as jmaptest.Start does, but with the given
// root logger: jmaptest always logs to a bare zerolog.New(io.Discard).
func startWithLogger(b *testing.B, log zerolog.Logger, opts ...jmaptest.Option) *jmaptest.Server {
	b.Helper()
	cfg := config.Default()
	cfg.Data = b.TempDir()
	cfg.Listen = "127.0.0.1:0"
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		b.Fatalf("config: %v", err)
	}
	srv, err := server.New(context.Background(), server.Options{Config: cfg, Log: log, TestTypes: true})
	if err != nil {
		b.Fatalf("start server: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(func() {
		tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			b.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			b.Errorf("serve: %v", err)
		}
	})
	return &jmaptest.Server{Server: srv, Dir: cfg.Data, HTTP: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// productionLogger is the root logger cmd/jmapd builds for a non-terminal
// stderr (JSON, info level, with timestamps), writing to io.Discard.
func productionLogger() zerolog.Logger {
	return zerolog.New(io.Discard).Level(zerolog.InfoLevel).With().Timestamp().Logger()
}

// benchClient is one keep-alive HTTP client with its own connection.
type benchClient struct {
	http  *http.Client
	url   string
	auth  string
	body  []byte
	dials *atomic.Int64
}

func newBenchClient(srv *jmaptest.Server, c *jmaptest.Client, body []byte, dials *atomic.Int64) *benchClient {
	d := &net.Dialer{}
	tr := &http.Transport{
		MaxIdleConns:        echoClients,
		MaxIdleConnsPerHost: echoClients,
		IdleConnTimeout:     time.Minute,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return d.DialContext(ctx, network, addr)
		},
	}
	req, _ := http.NewRequest(http.MethodPost, "http://x", nil)
	req.SetBasicAuth(c.Email, c.Password)
	return &benchClient{
		http:  &http.Client{Transport: tr, Timeout: 30 * time.Second},
		url:   srv.URL() + jmap.PathAPI,
		auth:  req.Header.Get("Authorization"),
		body:  body,
		dials: dials,
	}
}

// post sends the client's body and returns the status and response body.
func (c *benchClient) post(buf *bytes.Buffer) (int, error) {
	req, err := http.NewRequest(http.MethodPost, c.url, bytes.NewReader(c.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	buf.Reset()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

func (c *benchClient) close() { c.http.CloseIdleConnections() }

// percentile returns the p-th percentile (0 < p <= 100) of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkEchoHTTP measures Core/echo over HTTP keep-alive with Basic auth
// from 32 concurrent clients of one user, each on its own connection. The
// sub-benchmarks differ in the root logger: "testlog" is jmaptest.Start's
// (info level, no timestamp, io.Discard), "jsonlog" is the production
// logger of cmd/jmapd writing to io.Discard, "nolog" has logging off (to
// tell what the request log line costs), and "jsonlog-limit32" raises
// maxConcurrentRequests from its default of 16 to the number of clients.
//
// It runs with b.RunParallel rather than b.Loop: the clients are the
// concurrency under test, and RunParallel is the one loop that shares b.N
// between goroutines. The benchmark and the server share the machine's
// cores, so cmd/jmapbench gives the figures of a separate load process.
func BenchmarkEchoHTTP(b *testing.B) {
	b.Run("testlog", func(b *testing.B) { benchEcho(b, jmaptest.Start(b)) })
	b.Run("jsonlog", func(b *testing.B) { benchEcho(b, startWithLogger(b, productionLogger())) })
	b.Run("nolog", func(b *testing.B) { benchEcho(b, startWithLogger(b, zerolog.Nop())) })
	b.Run("jsonlog-limit32", func(b *testing.B) {
		benchEcho(b, startWithLogger(b, productionLogger(), func(c *config.Config) {
			c.Limits.MaxConcurrentRequests = echoClients
		}))
	})
}

func benchEcho(b *testing.B, srv *jmaptest.Server) {
	user := srv.NewUser(b, "bench@example.test")
	var dials atomic.Int64
	clients := make([]*benchClient, echoClients)
	var buf bytes.Buffer
	for i := range clients {
		clients[i] = newBenchClient(srv, user, []byte(echoBody), &dials)
		defer clients[i].close()
		// Open the connection and fill the credential cache (one argon2
		// run) before the clock starts.
		status, err := clients[i].post(&buf)
		if err != nil || status != http.StatusOK {
			b.Fatalf("warm-up: status %d, err %v: %s", status, err, buf.Bytes())
		}
		if i == 0 && !strings.Contains(buf.String(), `["Core/echo",{"hello":true,"high":5},"b0"]`) {
			b.Fatalf("warm-up: unexpected answer %s", buf.Bytes())
		}
	}
	var (
		next    atomic.Int64
		mu      sync.Mutex
		lat     = make([]time.Duration, 0, 1<<16)
		errs    atomic.Int64
		limited atomic.Int64
	)
	// RunParallel starts parallelism*GOMAXPROCS goroutines.
	b.SetParallelism((echoClients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := clients[int(next.Add(1)-1)%echoClients]
		var buf bytes.Buffer
		local := make([]time.Duration, 0, 1<<12)
		for pb.Next() {
			start := time.Now()
			status, err := c.post(&buf)
			local = append(local, time.Since(start))
			switch {
			case err != nil:
				errs.Add(1)
			case status == http.StatusTooManyRequests:
				limited.Add(1)
			case status != http.StatusOK:
				errs.Add(1)
			}
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	b.ReportMetric(ms(percentile(lat, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(lat, 99)), "p99-ms")
	b.ReportMetric(ms(percentile(lat, 100)), "max-ms")
	b.ReportMetric(float64(limited.Load()), "429s")
	b.ReportMetric(float64(errs.Load()), "errors")
	b.ReportMetric(float64(dials.Load()), "conns")
	if n := errs.Load(); n > 0 {
		b.Errorf("%d requests failed", n)
	}
}

// noteBatch is the number of Notes created per Note/set.
const noteBatch = 250

// createNotes creates n Notes in the client's account and returns their ids.
func createNotes(b *testing.B, c *jmaptest.Client, n int) []string {
	b.Helper()
	ids := make([]string, 0, n)
	for start := 0; start < n; start += noteBatch {
		create := map[string]any{}
		for i := start; i < min(start+noteBatch, n); i++ {
			create[fmt.Sprintf("n%d", i)] = map[string]any{
				"title": fmt.Sprintf("Note number %d", i),
				"body":  "A short body: the kind of text a simple record carries.",
			}
		}
		res := c.One(b, "Note/set", map[string]any{"accountId": c.Account, "create": create})
		created, _ := res["created"].(map[string]any)
		if len(created) != len(create) {
			b.Fatalf("Note/set created %d of %d: %v", len(created), len(create), res["notCreated"])
		}
		for _, v := range created {
			id, _ := v.(map[string]any)["id"].(string)
			ids = append(ids, id)
		}
	}
	return ids
}

func getBody(acct string, ids []string) []byte {
	b, _ := json.Marshal(map[string]any{
		"using":       []string{jmap.CapCore, "urn:jmapd:params:jmap:test"},
		"methodCalls": []any{[]any{"Note/get", map[string]any{"accountId": acct, "ids": ids}, "g"}},
	})
	return b
}

// BenchmarkGet1000 measures Note/get of 1,000 ids over HTTP, one request at a
// time on a keep-alive connection with Basic auth.
func BenchmarkGet1000(b *testing.B) {
	srv := jmaptest.Start(b)
	user := srv.NewUser(b, "bench@example.test")
	ids := createNotes(b, user, getObjects)
	var dials atomic.Int64
	c := newBenchClient(srv, user, getBody(user.Account, ids), &dials)
	defer c.close()
	var buf bytes.Buffer
	status, err := c.post(&buf)
	if err != nil || status != http.StatusOK {
		b.Fatalf("warm-up: status %d, err %v", status, err)
	}
	var r jmaptest.Response
	if err := json.Unmarshal(buf.Bytes(), &r); err != nil {
		b.Fatal(err)
	}
	if list, _ := r.MethodResponses[0].Args["list"].([]any); len(list) != getObjects {
		b.Fatalf("Note/get returned %d records, want %d", len(list), getObjects)
	}
	size := buf.Len()
	lat := make([]time.Duration, 0, 1<<12)
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		status, err := c.post(&buf)
		lat = append(lat, time.Since(start))
		if err != nil || status != http.StatusOK || buf.Len() != size {
			b.Fatalf("status %d, err %v, %d bytes (want %d)", status, err, buf.Len(), size)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(ms(b.Elapsed())/float64(b.N), "ms/op")
	b.ReportMetric(ms(percentile(lat, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(lat, 99)), "p99-ms")
	b.ReportMetric(float64(size), "resp-bytes")
}

// BenchmarkGet1000InProcess runs the same Note/get through
// Registry.Execute, without HTTP, authentication or the final response
// encoding, to tell the method's cost from the endpoint's.
func BenchmarkGet1000InProcess(b *testing.B) {
	srv := jmaptest.Start(b)
	user := srv.NewUser(b, "bench@example.test")
	ids := createNotes(b, user, getObjects)
	var p *store.Principal
	ctx := context.Background()
	err := srv.Store().View(ctx, func(tx store.Tx) error {
		var err error
		p, err = tx.Principals().ByEmail(user.Email)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	caller := &jmap.Caller{Principal: p.ID, Username: p.Email}
	reg := srv.Registry()
	req, err := jmap.DecodeRequest(getBody(user.Account, ids), reg.Limits, reg.KnownCapability)
	if err != nil {
		b.Fatal(err)
	}
	check := reg.Execute(ctx, caller, req, "s")
	if len(check.MethodResponses) != 1 || check.MethodResponses[0].Name != "Note/get" {
		b.Fatalf("Note/get answered %s", check.MethodResponses[0].Args)
	}
	lat := make([]time.Duration, 0, 1<<12)
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		resp := reg.Execute(ctx, caller, req, "s")
		lat = append(lat, time.Since(start))
		if len(resp.MethodResponses) != 1 || resp.MethodResponses[0].Name != "Note/get" {
			b.Fatalf("Note/get answered %s", resp.MethodResponses[0].Args)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(ms(b.Elapsed())/float64(b.N), "ms/op")
	b.ReportMetric(ms(percentile(lat, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(lat, 99)), "p99-ms")
}
