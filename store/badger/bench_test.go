package badger_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmapd/jmapd/store"
	"github.com/jmapd/jmapd/store/badger"
)

// benchWriters is the number of concurrent writers per GOMAXPROCS: a server
// has many requests waiting on commits at once, far more than it has CPUs.
const benchWriters = 16

// BenchmarkUpdateParallel measures small record writes from many goroutines,
// with group commit: commits waiting at the same time share one db.Sync.
func BenchmarkUpdateParallel(b *testing.B) { benchmarkUpdate(b, false) }

// BenchmarkUpdateSyncEach is BenchmarkUpdateParallel with one db.Sync per
// commit, to show what group commit saves.
func BenchmarkUpdateSyncEach(b *testing.B) { benchmarkUpdate(b, true) }

func benchmarkUpdate(b *testing.B, syncEach bool) {
	db := openStore(b, badger.Options{})
	if syncEach {
		badger.SyncEachCommit(db)
	}
	syncs := badger.CountSyncs(db)
	record := []byte(`{"subject":"` + strings.Repeat("s", 60) + `","from":"alice@example.test","keywords":{"$seen":true},"size":20480}`)
	ctx := context.Background()
	var accounts atomic.Int64
	var mu sync.Mutex
	var latencies []time.Duration

	b.SetParallelism(benchWriters)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// One account per writer: the writes never conflict, so the
		// figures are about commits and syncs, not retries.
		acct := store.AccountID(fmt.Sprintf("acct%d", accounts.Add(1)))
		var mine []time.Duration
		for pb.Next() {
			start := time.Now()
			_, err := db.Update(ctx, func(tx store.Tx) error {
				id, err := tx.NewID()
				if err != nil {
					return err
				}
				return tx.Create(acct, "Email", id, record)
			})
			mine = append(mine, time.Since(start))
			if err != nil {
				b.Error(err)
				return
			}
		}
		mu.Lock()
		latencies = append(latencies, mine...)
		mu.Unlock()
	})
	b.StopTimer()

	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
	if n := syncs(); n > 0 {
		b.ReportMetric(float64(b.N)/float64(n), "commits/sync")
	}
	slices.Sort(latencies)
	for _, p := range []struct {
		unit string
		q    float64
	}{{"p50-us", 0.50}, {"p99-us", 0.99}} {
		if len(latencies) > 0 {
			b.ReportMetric(float64(latencies[int(p.q*float64(len(latencies)-1))].Microseconds()), p.unit)
		}
	}
}
