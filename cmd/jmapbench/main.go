// Command jmapbench loads a running jmapd from a separate process and prints
// throughput and latency percentiles. Each client has its own keep-alive
// connection and sends one request at a time with HTTP Basic auth.
//
//	jmapbench -url http://127.0.0.1:18181 -user bench@example.test -password benchpw \
//	    -clients 32 -duration 20s -method echo
//
// Methods: "echo" sends the Core/echo request of RFC 8620 §4.1; "get1000"
// sends Note/get with 1,000 ids (the server must run with --test-types; the
// Notes are created first when the account has fewer). It is a small tool
// for closing-note figures, not a load generator with scenarios.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	capCore = "urn:ietf:params:jmap:core"
	capTest = "urn:jmapd:params:jmap:test"
	// getObjects is the number of ids of one get1000 request.
	getObjects = 1000
	// setBatch is the number of Notes created per Note/set.
	setBatch = 250
)

const echoBody = `{"using":["` + capCore + `"],"methodCalls":[["Core/echo",{"hello":true,"high":5},"b0"]]}`

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "jmapbench: %v\n", err)
		os.Exit(1)
	}
}

// target is the API endpoint with its credentials.
type target struct {
	api     string
	auth    string
	account string
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("jmapbench", flag.ContinueOnError)
	base := fs.String("url", "http://127.0.0.1:8080", "base `URL` of the server")
	user := fs.String("user", "", "login `email`")
	password := fs.String("password", "", "`password`")
	clients := fs.Int("clients", 32, "concurrent clients, each on its own connection")
	duration := fs.Duration("duration", 20*time.Second, "how long to send requests, after a warm-up request per client")
	method := fs.String("method", "echo", "request to send: echo or get1000")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" || *password == "" {
		return errors.New("-user and -password are required")
	}
	if *clients < 1 || *duration <= 0 {
		return errors.New("-clients and -duration must be positive")
	}
	setup := &http.Client{Timeout: time.Minute}
	tg, err := session(setup, strings.TrimRight(*base, "/"), *user, *password)
	if err != nil {
		return err
	}
	var body []byte
	var check func([]byte) error
	switch *method {
	case "echo":
		body = []byte(echoBody)
		check = func(b []byte) error {
			if !bytes.Contains(b, []byte(`"Core/echo"`)) {
				return fmt.Errorf("unexpected answer: %.200s", b)
			}
			return nil
		}
	case "get1000":
		ids, err := noteIDs(setup, tg)
		if err != nil {
			return err
		}
		body, err = request(capTest, []any{"Note/get", map[string]any{"accountId": tg.account, "ids": ids}, "g"})
		if err != nil {
			return err
		}
		check = func(b []byte) error {
			var args struct {
				List []json.RawMessage `json:"list"`
			}
			if err := one(b, "Note/get", &args); err != nil {
				return err
			}
			if len(args.List) != getObjects {
				return fmt.Errorf("Note/get returned %d records, want %d", len(args.List), getObjects)
			}
			return nil
		}
	default:
		return fmt.Errorf("unknown -method %q (echo or get1000)", *method)
	}
	res, err := load(tg, body, check, *clients, *duration)
	if err != nil {
		return err
	}
	res.print(stdout, *method, *clients)
	return nil
}

// invocation is one method response: [name, arguments, method call id].
type invocation struct {
	Name string
	Args json.RawMessage
}

// UnmarshalJSON reads the name and arguments of the array.
func (inv *invocation) UnmarshalJSON(b []byte) error {
	var parts []json.RawMessage
	if err := json.Unmarshal(b, &parts); err != nil {
		return err
	}
	if len(parts) != 3 {
		return fmt.Errorf("an invocation has 3 members, not %d", len(parts))
	}
	inv.Args = parts[1]
	return json.Unmarshal(parts[0], &inv.Name)
}

// one decodes a response that must hold a single answer named name into v.
func one(b []byte, name string, v any) error {
	var r struct {
		MethodResponses []invocation `json:"methodResponses"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("decode response: %w: %.200s", err, b)
	}
	if len(r.MethodResponses) != 1 || r.MethodResponses[0].Name != name {
		return fmt.Errorf("want one %s answer: %.300s", name, b)
	}
	return json.Unmarshal(r.MethodResponses[0].Args, v)
}

func basicAuth(user, password string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://x", nil)
	req.SetBasicAuth(user, password)
	return req.Header.Get("Authorization")
}

// session fetches the session resource and returns the API URL and the
// primary account of the test capability (or core, without test types).
func session(c *http.Client, base, user, password string) (*target, error) {
	req, err := http.NewRequest(http.MethodGet, base+"/.well-known/jmap", nil)
	if err != nil {
		return nil, err
	}
	auth := basicAuth(user, password)
	req.Header.Set("Authorization", auth)
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("session: %s: %.200s", resp.Status, b)
	}
	var s struct {
		APIURL          string            `json:"apiUrl"`
		PrimaryAccounts map[string]string `json:"primaryAccounts"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	acct := s.PrimaryAccounts[capTest]
	if acct == "" {
		acct = s.PrimaryAccounts[capCore]
	}
	return &target{api: s.APIURL, auth: auth, account: acct}, nil
}

func request(capability string, calls ...[]any) ([]byte, error) {
	return json.Marshal(map[string]any{"using": []string{capCore, capability}, "methodCalls": calls})
}

// call sends one API request and decodes its single answer, which must be
// named name, into v.
func call(c *http.Client, tg *target, body []byte, name string, v any) error {
	req, err := http.NewRequest(http.MethodPost, tg.api, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", tg.auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %.200s", resp.Status, b)
	}
	return one(b, name, v)
}

// noteIDs returns the ids of 1,000 Notes of the account, creating the
// missing ones. The server must serve the test types (--test-types).
func noteIDs(c *http.Client, tg *target) ([]string, error) {
	query := func() ([]string, error) {
		body, err := request(capTest, []any{"Note/query", map[string]any{"accountId": tg.account, "limit": getObjects}, "q"})
		if err != nil {
			return nil, err
		}
		var args struct {
			IDs []string `json:"ids"`
		}
		if err := call(c, tg, body, "Note/query", &args); err != nil {
			return nil, fmt.Errorf("Note/query (does the server run with --test-types?): %w", err)
		}
		return args.IDs, nil
	}
	ids, err := query()
	if err != nil || len(ids) >= getObjects {
		return ids, err
	}
	for have := len(ids); have < getObjects; have += setBatch {
		create := map[string]any{}
		for i := have; i < min(have+setBatch, getObjects); i++ {
			create[fmt.Sprintf("n%d", i)] = map[string]any{
				"title": fmt.Sprintf("Note number %d", i),
				"body":  "A short body: the kind of text a simple record carries.",
			}
		}
		body, err := request(capTest, []any{"Note/set", map[string]any{"accountId": tg.account, "create": create}, "s"})
		if err != nil {
			return nil, err
		}
		var args struct {
			Created map[string]json.RawMessage `json:"created"`
		}
		if err := call(c, tg, body, "Note/set", &args); err != nil {
			return nil, fmt.Errorf("Note/set: %w", err)
		}
		if len(args.Created) != len(create) {
			return nil, fmt.Errorf("Note/set created %d of %d Notes", len(args.Created), len(create))
		}
	}
	return query()
}

// result is what a load run measured.
type result struct {
	requests  int
	errors    int
	conns     int64
	elapsed   time.Duration
	latencies []time.Duration
	// kinds counts the errors by status and problem detail, or by
	// transport error.
	kinds map[string]int
}

// load runs clients for d, each sending body in a loop on its own
// connection, and measures every request.
func load(tg *target, body []byte, check func([]byte) error, clients int, d time.Duration) (*result, error) {
	var conns atomic.Int64
	type client struct {
		http *http.Client
		buf  bytes.Buffer
	}
	cs := make([]*client, clients)
	for i := range cs {
		dialer := &net.Dialer{}
		tr := &http.Transport{
			MaxIdleConns:        clients,
			MaxIdleConnsPerHost: clients,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				conns.Add(1)
				return dialer.DialContext(ctx, network, addr)
			},
		}
		cs[i] = &client{http: &http.Client{Transport: tr, Timeout: time.Minute}}
		defer tr.CloseIdleConnections()
	}
	send := func(c *client) (int, error) {
		req, err := http.NewRequest(http.MethodPost, tg.api, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", tg.auth)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.http.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		c.buf.Reset()
		if _, err := c.buf.ReadFrom(resp.Body); err != nil {
			return 0, err
		}
		return resp.StatusCode, nil
	}
	// Warm up: open every connection and fill the server's credential
	// cache before the clock starts.
	for _, c := range cs {
		status, err := send(c)
		if err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("warm-up: status %d: %.200s", status, c.buf.Bytes())
		}
		if err := check(c.buf.Bytes()); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	res := &result{kinds: map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for _, c := range cs {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1<<14)
			kinds := map[string]int{}
			for time.Now().Before(deadline) {
				t0 := time.Now()
				status, err := send(c)
				lat = append(lat, time.Since(t0))
				switch {
				case err != nil:
					kinds[err.Error()]++
				case status != http.StatusOK:
					var p struct {
						Detail string `json:"detail"`
					}
					_ = json.Unmarshal(c.buf.Bytes(), &p)
					kinds[fmt.Sprintf("status %d: %s", status, p.Detail)]++
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.requests += len(lat)
			res.latencies = append(res.latencies, lat...)
			for k, n := range kinds {
				res.kinds[k] += n
				res.errors += n
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.conns = conns.Load()
	slices.Sort(res.latencies)
	return res, nil
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted, by the
// nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func (r *result) print(w io.Writer, method string, clients int) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
	fmt.Fprintf(w, "method=%s clients=%d conns=%d duration=%s requests=%d\n",
		method, clients, r.conns, r.elapsed.Round(time.Millisecond), r.requests)
	fmt.Fprintf(w, "req/s=%.0f p50=%s p90=%s p99=%s max=%s errors=%d\n",
		float64(r.requests)/r.elapsed.Seconds(), ms(percentile(r.latencies, 50)), ms(percentile(r.latencies, 90)),
		ms(percentile(r.latencies, 99)), ms(percentile(r.latencies, 100)), r.errors)
	kinds := slices.Sorted(maps.Keys(r.kinds))
	for _, k := range kinds {
		fmt.Fprintf(w, "  %d × %s\n", r.kinds[k], k)
	}
}
