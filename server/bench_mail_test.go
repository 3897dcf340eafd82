package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmapd/jmapd/jmaptest"
	"github.com/jmapd/jmapd/store"
)

// benchMessage makes a plain message of about size octets in a thread of
// ten (every tenth message starts one).
func benchMessage(i, size int, rng *rand.Rand) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: Sender %d <s%d@example.test>\r\nTo: alice@example.test\r\n", i%97, i%97)
	fmt.Fprintf(&b, "Subject: Report %d\r\nMessage-ID: <b%d@example.test>\r\n", i/10, i)
	if i%10 != 0 {
		fmt.Fprintf(&b, "In-Reply-To: <b%d@example.test>\r\n", i-1)
	}
	fmt.Fprintf(&b, "Date: %s\r\n\r\n", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Minute).Format(time.RFC1123Z))
	words := []string{"quarterly", "numbers", "lunch", "meeting", "deadline", "draft", "review", "budget", "travel", "notes"}
	for b.Len() < size {
		b.WriteString(words[rng.IntN(len(words))])
		if rng.IntN(12) == 0 {
			b.WriteString(".\r\n")
		} else {
			b.WriteByte(' ')
		}
	}
	b.WriteString("\r\n")
	return b.String()
}

// importBatch uploads messages with Blob/upload and imports them with
// Email/import, in one request.
func importBatch(b testing.TB, c *jmaptest.Client, inbox string, msgs []string, first int) {
	create := map[string]any{}
	emails := map[string]any{}
	for i, m := range msgs {
		id := "m" + strconv.Itoa(i)
		create[id] = map[string]any{"data": []any{map[string]any{"data:asText": m}}}
		emails[id] = map[string]any{"blobId": "#" + id, "mailboxIds": map[string]any{inbox: true},
			"receivedAt": time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(first+i) * time.Minute).Format("2006-01-02T15:04:05Z")}
	}
	r := c.Call(b,
		jmaptest.Call{Name: "Blob/upload", Args: map[string]any{"accountId": c.Account, "create": create}},
		jmaptest.Call{Name: "Email/import", Args: map[string]any{"accountId": c.Account, "emails": emails}})
	if len(r.MethodResponses) != 2 || r.MethodResponses[1].Name != "Email/import" || r.MethodResponses[1].Args["notCreated"] != nil {
		b.Fatalf("import: %+v", r.MethodResponses)
	}
}

func benchInbox(b testing.TB, c *jmaptest.Client) string {
	res := c.One(b, "Mailbox/query", map[string]any{"accountId": c.Account, "filter": map[string]any{"role": "inbox"}})
	return res["ids"].([]any)[0].(string)
}

// settle waits JMAPD_BENCH_SETTLE (say 30s) after a benchmark's bulk
// import, so that what is measured is the serving of a store, not its
// compaction of what was just written.
func settle() {
	if d, err := time.ParseDuration(os.Getenv("JMAPD_BENCH_SETTLE")); err == nil {
		time.Sleep(d)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkEmailImport measures durable imports of 5-50 KB messages by 4
// workers (maxConcurrentUpload), each importing 25 messages per
// Email/import, in the two ways a client uploads them:
//
//   - endpoint: each message on its own to the upload endpoint (RFC 8620
//     §6.1), so that every upload is a durable write of its own;
//   - batched: the 25 messages with Blob/upload (RFC 9404) and their
//     Email/import in one request, one durable write for all.
func BenchmarkEmailImport(b *testing.B) {
	b.Run("endpoint", func(b *testing.B) { benchEmailImport(b, false) })
	b.Run("batched", func(b *testing.B) { benchEmailImport(b, true) })
}

func benchEmailImport(b *testing.B, batched bool) {
	srv := jmaptest.Start(b)
	alice := srv.NewUser(b, "alice@example.test")
	inbox := benchInbox(b, alice)
	rng := rand.New(rand.NewPCG(1, 2))
	const workers, batch = 4, 25
	// The corpus is made before the clock starts, each message cut after
	// "Subject: " where a counter goes in.
	corpus := make([][2]string, 2000)
	size := 0
	for i := range corpus {
		m := benchMessage(i, 5000+rng.IntN(45000), rng)
		at := strings.Index(m, "Subject: ") + len("Subject: ")
		corpus[i] = [2]string{m[:at], m[at:]}
		size += len(m)
	}
	var next atomic.Int64
	b.SetParallelism(workers / 2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			first := int(next.Add(batch)) - batch
			// Each message must be new: a counter in the subject keeps
			// the corpus reusable.
			msg := func(n int) string {
				c := corpus[n%len(corpus)]
				return c[0] + strconv.Itoa(n) + " " + c[1]
			}
			if batched {
				msgs := make([]string, batch)
				for k := range msgs {
					msgs[k] = msg(first + k)
				}
				importBatch(b, alice, inbox, msgs, first)
				continue
			}
			emails := map[string]any{}
			for k := range batch {
				resp, body := alice.Do(b, http.MethodPost, "/jmap/upload/"+alice.Account+"/",
					strings.NewReader(msg(first+k)), http.Header{"Content-Type": {"message/rfc822"}})
				if resp.StatusCode != http.StatusCreated {
					b.Errorf("upload: %s %s", resp.Status, body)
					return
				}
				var up struct {
					BlobID string `json:"blobId"`
				}
				if err := json.Unmarshal(body, &up); err != nil {
					b.Error(err)
					return
				}
				emails["m"+strconv.Itoa(k)] = map[string]any{"blobId": up.BlobID, "mailboxIds": map[string]any{inbox: true}}
			}
			r := alice.Call(b, jmaptest.Call{Name: "Email/import", Args: map[string]any{"accountId": alice.Account, "emails": emails}})
			if r.MethodResponses[0].Name != "Email/import" || r.MethodResponses[0].Args["notCreated"] != nil {
				b.Errorf("import: %+v", r.MethodResponses)
				return
			}
		}
	})
	n := float64(b.N * batch)
	b.ReportMetric(n/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(n*float64(size)/float64(len(corpus))/b.Elapsed().Seconds()/1e6, "MB/s")
}

// BenchmarkMailboxPage is the list view of a large inbox: Email/query
// (inMailbox, receivedAt desc, limit 50, calculateTotal) and Email/get of
// those 50 with the properties a list shows, in one request, by 32
// concurrent clients. JMAPD_BENCH_MESSAGES sets the inbox size (default
// 100000).
func BenchmarkMailboxPage(b *testing.B) {
	total := envInt("JMAPD_BENCH_MESSAGES", 100000)
	srv := jmaptest.Start(b)
	alice := srv.NewUser(b, "alice@example.test")
	inbox := benchInbox(b, alice)
	rng := rand.New(rand.NewPCG(3, 4))
	const batch = 500
	msgs := make([]string, 0, batch)
	for i := 0; i < total; i += batch {
		msgs = msgs[:0]
		for j := i; j < min(i+batch, total); j++ {
			msgs = append(msgs, benchMessage(j, 600, rng))
		}
		importBatch(b, alice, inbox, msgs, i)
	}
	settle()
	page := []jmaptest.Call{
		{Name: "Email/query", ID: "q", Args: map[string]any{"accountId": alice.Account, "filter": map[string]any{"inMailbox": inbox},
			"sort": []any{map[string]any{"property": "receivedAt", "isAscending": false}}, "limit": 50, "calculateTotal": true}},
		{Name: "Email/get", ID: "g", Args: map[string]any{"accountId": alice.Account,
			"#ids":       map[string]any{"resultOf": "q", "name": "Email/query", "path": "/ids"},
			"properties": []string{"threadId", "mailboxIds", "keywords", "from", "subject", "receivedAt", "size", "preview", "hasAttachment"}}},
	}
	r := alice.Call(b, page...)
	if got := r.MethodResponses[0].Args["total"]; got != float64(total) {
		b.Fatalf("total %v, want %d", got, total)
	}
	body, err := json.Marshal(map[string]any{"using": jmaptest.Using, "methodCalls": []any{
		[]any{page[0].Name, page[0].Args, page[0].ID}, []any{page[1].Name, page[1].Args, page[1].ID}}})
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var lat []time.Duration
	var dials, clients atomic.Int64
	// 32 clients on 2 cores; JMAPD_BENCH_CLIENTS=1 (times GOMAXPROCS)
	// measures the latency of one client alone. Each client has its own
	// connection and reads each answer whole; it checks every answer's
	// shape cheaply and decodes one in 64 in full, so that the benchmark's
	// own decoding does not take the CPU the server is measured on.
	b.SetParallelism(envInt("JMAPD_BENCH_CLIENTS", 16))
	stop := loopProfile(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := newBenchClient(srv, alice, body, &dials)
		defer c.close()
		n := clients.Add(1)
		var buf bytes.Buffer
		var mine []time.Duration
		for pb.Next() {
			t0 := time.Now()
			status, err := c.post(&buf)
			mine = append(mine, time.Since(t0))
			if err != nil || status != http.StatusOK {
				b.Errorf("page: %d %v %s", status, err, buf.Bytes())
				return
			}
			if n++; n%64 == 0 {
				err = checkPage(buf.Bytes(), total)
			} else {
				err = checkPageShape(buf.Bytes())
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	stop()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "req/s")
	}
	if rss, anon, ok := residentMB(); ok {
		b.ReportMetric(rss, "rss-MB")
		b.ReportMetric(anon, "rss-anon-MB")
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "live-heap-MB")
	b.ReportMetric(float64(ms.Sys-ms.HeapReleased)/(1<<20), "go-held-MB")
	if name := os.Getenv("JMAPD_BENCH_HEAPPROFILE"); name != "" {
		f, err := os.Create(fmt.Sprintf("%s.%d", name, b.N))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			b.Fatal(err)
		}
	}
}

// checkPageShape checks, without decoding it, that body is the answer to
// the list-view request: Email/query then Email/get with 50 emails.
func checkPageShape(body []byte) error {
	if !bytes.HasPrefix(body, []byte(`{"methodResponses":[["Email/query",`)) ||
		!bytes.Contains(body, []byte(`["Email/get",`)) || bytes.Count(body, []byte(`"threadId":`)) != 50 {
		return fmt.Errorf("page: unexpected answer %.300s", body)
	}
	return nil
}

// checkPage decodes the answer to the list-view request and checks that
// the query totals total and Email/get returns the 50 emails it names, in
// its order, with every property asked for.
func checkPage(body []byte, total int) error {
	var r struct{ MethodResponses [][3]json.RawMessage }
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("page: %v", err)
	}
	type args struct {
		Total int
		IDs   []string
		List  []map[string]json.RawMessage
	}
	var q, g args
	if len(r.MethodResponses) != 2 || string(r.MethodResponses[0][0]) != `"Email/query"` || string(r.MethodResponses[1][0]) != `"Email/get"` ||
		json.Unmarshal(r.MethodResponses[0][1], &q) != nil || json.Unmarshal(r.MethodResponses[1][1], &g) != nil {
		return fmt.Errorf("page: unexpected answer %.300s", body)
	}
	if q.Total != total || len(q.IDs) != 50 || len(g.List) != 50 {
		return fmt.Errorf("page: total %d, %d ids, %d emails", q.Total, len(q.IDs), len(g.List))
	}
	for i, e := range g.List {
		if string(e["id"]) != strconv.Quote(q.IDs[i]) {
			return fmt.Errorf("page: email %d is %s, want %s", i, e["id"], q.IDs[i])
		}
		for _, p := range []string{"threadId", "mailboxIds", "keywords", "from", "subject", "receivedAt", "size", "preview", "hasAttachment"} {
			if _, ok := e[p]; !ok {
				return fmt.Errorf("page: email %d has no %s", i, p)
			}
		}
	}
	return nil
}

// residentMB returns the resident set size of the process (server, client
// and what the import left) in MiB, where /proc tells it, and its part in
// anonymous memory (the Go heap and stacks) rather than mapped files.
func residentMB() (rss, anon float64, ok bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0, false
	}
	field := func(name string) float64 {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, name+":"); ok {
				kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
				return float64(kb) / 1024
			}
		}
		return 0
	}
	return field("VmRSS"), field("RssAnon"), true
}

// BenchmarkSharedPage compares the list view of an inbox for its owner and
// for a grantee, in an account shared with 50 principals (40 users and 10
// groups, nested): the grantee reaches it through a group inside a group.
// The target: the grantee's page costs at most 10% more.
// JMAPD_BENCH_MESSAGES sets the inbox size (default 5000).
func BenchmarkSharedPage(b *testing.B) {
	total := envInt("JMAPD_BENCH_MESSAGES", 5000)
	srv := jmaptest.Start(b)
	alice := srv.NewUser(b, "alice@example.test")
	bob := srv.NewUser(b, "bob@example.test")
	inbox := benchInbox(b, alice)
	rng := rand.New(rand.NewPCG(5, 6))
	const batch = 500
	msgs := make([]string, 0, batch)
	for i := 0; i < total; i += batch {
		msgs = msgs[:0]
		for j := i; j < min(i+batch, total); j++ {
			msgs = append(msgs, benchMessage(j, 600, rng))
		}
		importBatch(b, alice, inbox, msgs, i)
	}
	for i := range 40 {
		u := fmt.Sprintf("user%d@example.test", i)
		srv.Admin(b, "user", "add", u, "--password", "x")
		srv.Admin(b, "share", "alice@example.test", "--with", u, "--rights", "read", "--mailbox", "Inbox")
	}
	srv.Admin(b, "group", "add", "inner@example.test", "--member", "bob@example.test")
	for i := range 9 {
		g := fmt.Sprintf("group%d@example.test", i)
		srv.Admin(b, "group", "add", g, "--member", fmt.Sprintf("user%d@example.test", i))
		srv.Admin(b, "share", "alice@example.test", "--with", g, "--rights", "readAdvanced", "--mailbox", "Inbox")
	}
	// inner is nested in outer by membership: a group member of a group.
	_, err := srv.Store().Update(context.Background(), func(tx store.Tx) error {
		outer, err := tx.Principals().ByEmail("group0@example.test")
		if err != nil {
			return err
		}
		inner, err := tx.Principals().ByEmail("inner@example.test")
		if err != nil {
			return err
		}
		outer.Members = append(outer.Members, inner.ID)
		return tx.Principals().Update(outer)
	})
	if err != nil {
		b.Fatal(err)
	}
	srv.Admin(b, "share", "alice@example.test", "--with", "inner@example.test", "--rights", "read", "--mailbox", "Archive")
	for _, tc := range []struct {
		name string
		c    *jmaptest.Client
	}{{"owner", alice}, {"grantee", bob}} {
		page := []jmaptest.Call{
			{Name: "Email/query", ID: "q", Args: map[string]any{"accountId": alice.Account, "filter": map[string]any{"inMailbox": inbox},
				"sort": []any{map[string]any{"property": "receivedAt", "isAscending": false}}, "limit": 50, "calculateTotal": true}},
			{Name: "Email/get", ID: "g", Args: map[string]any{"accountId": alice.Account,
				"#ids":       map[string]any{"resultOf": "q", "name": "Email/query", "path": "/ids"},
				"properties": []string{"threadId", "mailboxIds", "keywords", "from", "subject", "receivedAt", "size", "preview", "hasAttachment"}}},
		}
		r := tc.c.Call(b, page...)
		if got := r.MethodResponses[0].Args["total"]; got != float64(total) {
			b.Fatalf("%s: total %v, want %d: %+v", tc.name, got, total, r.MethodResponses[0])
		}
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				r := tc.c.Call(b, page...)
				if len(r.MethodResponses) != 2 || r.MethodResponses[1].Name != "Email/get" {
					b.Fatalf("page: %+v", r.MethodResponses)
				}
			}
		})
	}
}

// loopProfile writes a CPU profile of the timed loop alone, without the
// import before it, to the file JMAPD_BENCH_CPUPROFILE names (with the
// benchmark's b.N appended); the returned function ends it.
// JMAPD_BENCH_HEAPPROFILE names the files of heap profiles taken at the
// start (".start" appended) and the end of the loop, while the server
// still runs.
func loopProfile(b *testing.B) func() {
	if name := os.Getenv("JMAPD_BENCH_HEAPPROFILE"); name != "" {
		// The profile at the start, for pprof -base: the difference is
		// what the loop allocated.
		f, err := os.Create(fmt.Sprintf("%s.%d.start", name, b.N))
		if err != nil {
			b.Fatal(err)
		}
		err = pprof.WriteHeapProfile(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	name := os.Getenv("JMAPD_BENCH_CPUPROFILE")
	if name == "" {
		return func() {}
	}
	f, err := os.Create(fmt.Sprintf("%s.%d", name, b.N))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}
