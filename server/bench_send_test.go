package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmapd/jmapd/internal/config"
	"github.com/jmapd/jmapd/jmaptest"
)

// sendUsing declares the capabilities the sending benchmark uses.
var sendUsing = append([]string{"urn:ietf:params:jmap:submission"}, jmaptest.Using...)

// BenchmarkSubmitLocal measures EmailSubmission/set of a 20 KB message to
// ten users of this server, from 16 senders at once, each submission
// answered only after every copy is durably in its recipient's Inbox.
// It reports submissions per second and latency percentiles.
func BenchmarkSubmitLocal(b *testing.B) {
	const senders, rcpts = 16, 10
	srv := jmaptest.Start(b, func(c *config.Config) { c.Submission.MaxPerHour = 1 << 30 })
	var to []any
	for i := range rcpts {
		u := srv.NewUser(b, fmt.Sprintf("r%d@example.test", i))
		to = append(to, map[string]any{"email": u.Email})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	per := (b.N + senders - 1) / senders
	// Each sender has its own drafts, one per submission, made before the
	// clock starts: distinct messages, as people send them.
	work := make([][][]byte, senders)
	clients := make([]*benchClient, senders)
	var dials atomic.Int64
	for i := range senders {
		c := srv.NewUser(b, fmt.Sprintf("s%d@example.test", i))
		ident := sendCall(b, c, "Identity/get", map[string]any{"accountId": c.Account})["list"].([]any)[0].(map[string]any)["id"]
		drafts := sendCall(b, c, "Mailbox/query", map[string]any{"accountId": c.Account, "filter": map[string]any{"role": "drafts"}})["ids"].([]any)[0]
		for j := 0; j < per; j += 50 {
			create := map[string]any{}
			for k := j; k < min(j+50, per); k++ {
				create[fmt.Sprint(k)] = map[string]any{
					"mailboxIds": map[string]any{drafts.(string): true}, "from": []any{map[string]any{"email": c.Email}},
					"to": to, "subject": fmt.Sprintf("Benchmark %d", k), "bodyValues": map[string]any{"b": map[string]any{"value": benchMessage(k, 20_000, rng)}},
					"textBody": []any{map[string]any{"partId": "b", "type": "text/plain"}}}
			}
			created := sendCall(b, c, "Email/set", map[string]any{"accountId": c.Account, "create": create})["created"].(map[string]any)
			for k := j; k < min(j+50, per); k++ {
				eid := created[fmt.Sprint(k)].(map[string]any)["id"]
				body, _ := json.Marshal(map[string]any{"using": sendUsing, "methodCalls": []any{[]any{"EmailSubmission/set",
					map[string]any{"accountId": c.Account, "create": map[string]any{"s": map[string]any{"identityId": ident, "emailId": eid}}}, "0"}}})
				work[i] = append(work[i], body)
			}
		}
		clients[i] = newBenchClient(srv, c, nil, &dials)
	}
	lat := make([][]time.Duration, senders)
	var wg sync.WaitGroup
	b.ReportAllocs()
	// SUBMIT_CPUPROFILE names a file for a CPU profile of the timed part
	// alone (go test's -cpuprofile also covers making the users and drafts).
	if f := os.Getenv("SUBMIT_CPUPROFILE"); f != "" {
		out, err := os.Create(f)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(out); err != nil {
			b.Fatal(err)
		}
		defer out.Close()
		defer pprof.StopCPUProfile()
	}
	b.ResetTimer()
	start := time.Now()
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			for _, body := range work[i] {
				clients[i].body = body
				t0 := time.Now()
				status, err := clients[i].post(&buf)
				if err != nil || status != 200 || !bytes.Contains(buf.Bytes(), []byte(`"created":{"s"`)) {
					b.Errorf("submit: %d %v %s", status, err, buf.Bytes())
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(len(all))/el.Seconds(), "submissions/s")
	b.ReportMetric(ms(percentile(all, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(all, 99)), "p99-ms")
	for _, c := range clients {
		c.close()
	}
}

// sendCall runs one method call declaring sendUsing.
func sendCall(b *testing.B, c *jmaptest.Client, name string, args map[string]any) map[string]any {
	b.Helper()
	body, _ := json.Marshal(map[string]any{"using": sendUsing, "methodCalls": []any{[]any{name, args, "0"}}})
	status, out := c.Post(b, string(body))
	var r jmaptest.Response
	if status != 200 || json.Unmarshal(out, &r) != nil || r.MethodResponses[0].Name != name {
		b.Fatalf("%s: %d %s", name, status, out)
	}
	return r.MethodResponses[0].Args
}
