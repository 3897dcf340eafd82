package loadgen

import (
	"bufio"
	"strings"
	"testing"
	"time"
)

func TestPercentile_NearestRank(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, c := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value p0", ms(7), 0, 7 * time.Millisecond},
		{"one value p50", ms(7), 50, 7 * time.Millisecond},
		{"one value p100", ms(7), 100, 7 * time.Millisecond},
		{"median of odd count", ms(1, 2, 3, 4, 5), 50, 3 * time.Millisecond},
		{"median of even count is the lower middle", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p90 of 1..100", hundred, 90, 90 * time.Millisecond},
		{"p99 of 1..100", hundred, 99, 99 * time.Millisecond},
		{"p99.9 of 1..100 is the max", hundred, 99.9, 100 * time.Millisecond},
		{"p1 of 1..100", hundred, 1, 1 * time.Millisecond},
		{"p0 is the min", hundred, 0, 1 * time.Millisecond},
		{"p100 is the max", hundred, 100, 100 * time.Millisecond},
		{"p above 100 is the max", hundred, 150, 100 * time.Millisecond},
		{"p50 of 3 values", ms(10, 20, 30), 50, 20 * time.Millisecond},
		{"p66 of 3 values", ms(10, 20, 30), 66, 20 * time.Millisecond},
		{"p67 of 3 values", ms(10, 20, 30), 67, 30 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Percentile(c.sorted, c.p); got != c.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", c.sorted, c.p, got, c.want)
			}
		})
	}
}

func TestSummarize_SortsAndReports(t *testing.T) {
	lat := []time.Duration{5 * time.Millisecond, 1 * time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond}
	s := Summarize(lat, 2*time.Second)
	if s.Count != 5 || s.PerSec != 2.5 {
		t.Errorf("count %d perSec %v, want 5 and 2.5", s.Count, s.PerSec)
	}
	if s.P50Ms != 3 || s.P90Ms != 5 || s.P99Ms != 5 || s.MaxMs != 5 || s.MeanMs != 3 {
		t.Errorf("p50 %v p90 %v p99 %v max %v mean %v", s.P50Ms, s.P90Ms, s.P99Ms, s.MaxMs, s.MeanMs)
	}
	if len(s.QuantilesMs) != 101 || s.QuantilesMs[0] != 1 || s.QuantilesMs[100] != 5 {
		t.Errorf("quantiles %v", s.QuantilesMs)
	}
	for i := 1; i < len(s.QuantilesMs); i++ {
		if s.QuantilesMs[i] < s.QuantilesMs[i-1] {
			t.Fatalf("quantiles decrease at %d: %v", i, s.QuantilesMs)
		}
	}
	if e := Summarize(nil, time.Second); e.Count != 0 || e.P99Ms != 0 || e.QuantilesMs != nil {
		t.Errorf("empty summary %+v", e)
	}
}

func TestRecorder_CountsErrorsByType(t *testing.T) {
	r := NewRecorder()
	r.Add("open", time.Millisecond)
	r.Fail("open", &Error{Kind: "http", Type: "500"})
	r.Fail("open", &Error{Kind: "http", Type: "500"})
	r.Fail("open", &Error{Kind: "method", Type: "serverFail"})
	st := r.Stats(time.Second)["open"]
	if st.Count != 1 || st.Errors != 3 || st.ErrorsByType["http 500"] != 2 || st.ErrorsByType["method serverFail"] != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestParseMix(t *testing.T) {
	m, err := ParseMix("open=30,page=70,move=0")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.String(); got != "open=30,page=70" {
		t.Errorf("mix %q", got)
	}
	for _, bad := range []string{"", "open", "open=x", "open=-1", "nosuch=3", "open=1,open=2", "open=0"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q) accepted", bad)
		}
	}
	if _, err := ParseMix(DefaultMix); err != nil {
		t.Errorf("default mix: %v", err)
	}
}

func TestParseStatus_ReadsRSS(t *testing.T) {
	in := "Name:\tjmapd\nVmPeak:\t  900 kB\nVmHWM:\t  1234 kB\nVmRSS:\t   1000 kB\nThreads:\t8\n"
	got := parseStatus(bufio.NewScanner(strings.NewReader(in)))
	if got.RSSKB != 1000 || got.HWMKB != 1234 {
		t.Errorf("got %+v", got)
	}
}
