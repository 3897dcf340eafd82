package loadgen

import (
	"math"
	"slices"
	"sort"
	"sync"
	"time"
)

// Percentile returns the p-th percentile (0 ≤ p ≤ 100) of sorted by the
// nearest-rank method: the smallest value such that at least p percent of
// the values are at or below it. It returns 0 for an empty slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	if p >= 100 {
		return sorted[n-1]
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

// Recorder collects latencies and error counts per operation; it is safe for
// concurrent use.
type Recorder struct {
	mu  sync.Mutex
	ops map[string]*opRecord
}

type opRecord struct {
	lat    []time.Duration
	bytes  int64
	errors map[string]int
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{ops: map[string]*opRecord{}}
}

func (r *Recorder) op(name string) *opRecord {
	o := r.ops[name]
	if o == nil {
		o = &opRecord{errors: map[string]int{}}
		r.ops[name] = o
	}
	return o
}

// Add records one successful operation.
func (r *Recorder) Add(name string, d time.Duration) {
	r.mu.Lock()
	o := r.op(name)
	o.lat = append(o.lat, d)
	r.mu.Unlock()
}

// AddBytes adds to the byte count of an operation.
func (r *Recorder) AddBytes(name string, n int64) {
	r.mu.Lock()
	r.op(name).bytes += n
	r.mu.Unlock()
}

// Fail records one failed operation under the error's bucket.
func (r *Recorder) Fail(name string, err error) {
	r.FailKey(name, ErrorKey(err))
}

// FailKey records one failed operation under key.
func (r *Recorder) FailKey(name, key string) {
	r.mu.Lock()
	r.op(name).errors[key]++
	r.mu.Unlock()
}

// Count returns the number of successful operations recorded so far.
func (r *Recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, o := range r.ops {
		n += len(o.lat)
	}
	return n
}

// Errors returns the number of failed operations recorded so far.
func (r *Recorder) Errors() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, o := range r.ops {
		for _, c := range o.errors {
			n += c
		}
	}
	return n
}

// Stats summarises every operation over an elapsed wall time.
func (r *Recorder) Stats(elapsed time.Duration) map[string]*OpStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]*OpStats{}
	for name, o := range r.ops {
		out[name] = Summarize(o.lat, elapsed)
		out[name].Bytes = o.bytes
		for k, v := range o.errors {
			out[name].Errors += v
			out[name].ErrorsByType[k] = v
		}
	}
	return out
}

// OpStats are the figures of one operation. Latencies are in milliseconds.
type OpStats struct {
	Count        int            `json:"count"`
	Errors       int            `json:"errors"`
	ErrorsByType map[string]int `json:"errorsByType"`
	PerSec       float64        `json:"perSec"`
	Bytes        int64          `json:"bytes,omitempty"`
	MeanMs       float64        `json:"meanMs"`
	P50Ms        float64        `json:"p50Ms"`
	P90Ms        float64        `json:"p90Ms"`
	P99Ms        float64        `json:"p99Ms"`
	MaxMs        float64        `json:"maxMs"`
	// QuantilesMs holds the 0th to 100th percentiles in steps of one, for
	// plotting the distribution.
	QuantilesMs []float64 `json:"quantilesMs,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Summarize computes the figures of one operation's latencies. lat is
// sorted in place.
func Summarize(lat []time.Duration, elapsed time.Duration) *OpStats {
	s := &OpStats{Count: len(lat), ErrorsByType: map[string]int{}}
	if len(lat) == 0 {
		return s
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	s.MeanMs = ms(sum / time.Duration(len(lat)))
	s.P50Ms = ms(Percentile(lat, 50))
	s.P90Ms = ms(Percentile(lat, 90))
	s.P99Ms = ms(Percentile(lat, 99))
	s.MaxMs = ms(lat[len(lat)-1])
	if elapsed > 0 {
		s.PerSec = float64(len(lat)) / elapsed.Seconds()
	}
	s.QuantilesMs = make([]float64, 101)
	for p := range 101 {
		s.QuantilesMs[p] = ms(Percentile(lat, float64(p)))
	}
	return s
}

// sortedNames returns the keys of m in order.
func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
