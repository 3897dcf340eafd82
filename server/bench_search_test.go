package server_test

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmapd/jmapd/jmaptest"
)

// searchVocabulary is the number of distinct words of the text search
// corpus; word i is made of syllables, so every word is distinct.
const searchVocabulary = 30000

func searchWord(i int) string {
	syl := []string{"ka", "to", "ri", "mu", "se", "lo", "pa", "ne", "di", "vo", "gu", "shi", "ba", "fe", "zo", "qui"}
	var b strings.Builder
	for {
		b.WriteString(syl[i%len(syl)])
		i /= len(syl)
		if i == 0 {
			return b.String()
		}
	}
}

// searchMessage makes a message of about words words drawn with Zipf's law
// from the vocabulary, as natural text is.
func searchMessage(i, words int, z *rand.Zipf) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: Sender %d <s%d@example.test>\r\nTo: alice@example.test\r\n", i%97, i%97)
	fmt.Fprintf(&b, "Subject: %s %s\r\nMessage-ID: <t%d@example.test>\r\n", searchWord(int(z.Uint64())), searchWord(int(z.Uint64())), i)
	fmt.Fprintf(&b, "Date: %s\r\n\r\n", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Minute).Format(time.RFC1123Z))
	for w := range words {
		b.WriteString(searchWord(int(z.Uint64())))
		if w%15 == 14 {
			b.WriteString(".\r\n")
		} else {
			b.WriteByte(' ')
		}
	}
	b.WriteString("\r\n")
	return b.String()
}

// memoryMB returns the resident set size and its peak, from
// /proc/self/status, and the Go heap in use, in MB.
func memoryMB() (rss, peak, heap float64) {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "VmRSS:" || f[0] == "VmHWM:") {
			kb, _ := strconv.ParseFloat(f[1], 64)
			if f[0] == "VmRSS:" {
				rss = kb / 1024
			} else {
				peak = kb / 1024
			}
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return rss, peak, float64(ms.HeapInuse) / (1 << 20)
}

// BenchmarkTextSearch is a search from a mail client on a large account:
// Email/query {text: word} (receivedAt desc, limit 50, calculateTotal)
// and SearchSnippet/get of the 50, in one request, one client. The words
// are rare (in about 0.1% of the messages), medium (about 3%) and common
// (about 30%). JMAPD_BENCH_MESSAGES sets the account size (default
// 100000); messages have 200 words.
func BenchmarkTextSearch(b *testing.B) {
	total := envInt("JMAPD_BENCH_MESSAGES", 100000)
	srv := jmaptest.Start(b)
	alice := srv.NewUser(b, "alice@example.test")
	inbox := benchInbox(b, alice)
	rng := rand.New(rand.NewPCG(5, 6))
	z := rand.NewZipf(rng, 1.1, 2, searchVocabulary-1)
	const batch = 500
	msgs := make([]string, 0, batch)
	freq := make([]int, searchVocabulary) // messages holding word i
	t0 := time.Now()
	for i := 0; i < total; i += batch {
		msgs = msgs[:0]
		for j := i; j < min(i+batch, total); j++ {
			m := searchMessage(j, 200, z)
			seen := map[string]bool{}
			msgs = append(msgs, m)
			for _, w := range strings.Fields(m[strings.Index(m, "\r\n\r\n"):]) {
				seen[strings.TrimSuffix(w, ".")] = true
			}
			for w := range seen {
				if k := wordIndex(w); k >= 0 {
					freq[k]++
				}
			}
		}
		importBatch(b, alice, inbox, msgs, i)
	}
	importRate := float64(total) / time.Since(t0).Seconds()
	settle()
	// Words whose share of messages is closest to each class, among those
	// that are no substring of another word (so the count is exact).
	pick := func(share float64) []string {
		type cand struct {
			w    string
			diff float64
		}
		var cs []cand
		for k, n := range freq {
			if n == 0 {
				continue
			}
			d := float64(n)/float64(total) - share
			cs = append(cs, cand{searchWord(k), d * d})
		}
		slices.SortFunc(cs, func(a, b cand) int {
			if a.diff < b.diff {
				return -1
			}
			if a.diff > b.diff {
				return 1
			}
			return 0
		})
		var out []string
		for _, c := range cs[:min(8, len(cs))] {
			out = append(out, c.w)
		}
		b.Logf("share %.3f: words %v", share, out)
		return out
	}
	search := func(word string) {
		r := alice.Call(b,
			jmaptest.Call{Name: "Email/query", ID: "q", Args: map[string]any{"accountId": alice.Account, "filter": map[string]any{"text": word},
				"sort": []any{map[string]any{"property": "receivedAt", "isAscending": false}}, "limit": 50, "calculateTotal": true}},
			jmaptest.Call{Name: "SearchSnippet/get", ID: "s", Args: map[string]any{"accountId": alice.Account, "filter": map[string]any{"text": word},
				"#emailIds": map[string]any{"resultOf": "q", "name": "Email/query", "path": "/ids"}}})
		if len(r.MethodResponses) != 2 || r.MethodResponses[1].Name != "SearchSnippet/get" {
			b.Fatalf("search %q: %+v", word, r.MethodResponses)
		}
	}
	var disk int64
	filepath.WalkDir(srv.Dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				disk += info.Size()
			}
		}
		return nil
	})
	for _, class := range []struct {
		name  string
		share float64
	}{{"rare", 0.001}, {"medium", 0.03}, {"common", 0.3}} {
		words := pick(class.share)
		b.Run(class.name, func(b *testing.B) {
			b.ReportAllocs()
			var lat []time.Duration
			i := 0
			var stopProfile func()
			if class.name == "common" {
				stopProfile = loopProfile(b)
			} else {
				stopProfile = func() {}
			}
			for b.Loop() {
				t := time.Now()
				search(words[i%len(words)])
				lat = append(lat, time.Since(t))
				i++
			}
			stopProfile()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			rss, peak, heap := memoryMB()
			b.ReportMetric(rss, "rss-MB")
			b.ReportMetric(peak, "peak-rss-MB")
			b.ReportMetric(heap, "heap-MB")
			b.ReportMetric(importRate, "import-msgs/s")
			b.ReportMetric(float64(disk)/(1<<20), "disk-MB")
		})
	}
}

// wordIndex inverts searchWord, or returns -1.
func wordIndex(w string) int {
	syl := []string{"ka", "to", "ri", "mu", "se", "lo", "pa", "ne", "di", "vo", "gu", "shi", "ba", "fe", "zo", "qui"}
	n, mul := 0, 1
	for len(w) > 0 {
		k := slices.IndexFunc(syl, func(s string) bool { return strings.HasPrefix(w, s) })
		if k < 0 {
			return -1
		}
		w = w[len(syl[k]):]
		n += k * mul
		mul *= len(syl)
	}
	return n
}
