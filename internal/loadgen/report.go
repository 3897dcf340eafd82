package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is every figure of one run; --json writes it.
type Report struct {
	Tool         string          `json:"tool"`
	Started      time.Time       `json:"started"`
	SessionURL   string          `json:"sessionUrl"`
	Label        string          `json:"label,omitempty"`
	Capabilities []string        `json:"capabilities"`
	Users        int             `json:"users"`
	Seed         uint64          `json:"seed"`
	Corpus       string          `json:"corpus"`
	Interrupted  bool            `json:"interrupted"`
	Notices      []string        `json:"notices"`
	Import       *ImportReport   `json:"import,omitempty"`
	Workload     *WorkloadReport `json:"workload,omitempty"`
	Push         *PushReport     `json:"push,omitempty"`
	// RSS is the server's memory at each step, when --pid was given.
	RSS map[string]RSS `json:"rss,omitempty"`
}

// WriteJSON writes r to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadReport reads a report written by WriteJSON.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// opOrder returns the operation names of m in the workload's order, then
// any others.
func opOrder[V any](m map[string]V) []string {
	var out []string
	for _, o := range Operations {
		if _, ok := m[o]; ok {
			out = append(out, o)
		}
	}
	for _, o := range sortedNames(m) {
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

func errorsText(m map[string]int) string {
	var parts []string
	for _, k := range sortedNames(m) {
		parts = append(parts, fmt.Sprintf("%s×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// WriteTable prints the human summary.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "jmapload %s  %s\n", r.SessionURL, r.Started.Format(time.RFC3339))
	if r.Interrupted {
		fmt.Fprintln(w, "INTERRUPTED: figures so far")
	}
	for _, n := range r.Notices {
		fmt.Fprintln(w, "notice:", n)
	}
	if im := r.Import; im != nil {
		fmt.Fprintf(w, "\nimport (%s, %d importers): %d messages, %.1f MB in %.1fs = %.0f msg/s, %.2f MB/s; failed %d\n",
			im.Method, im.Importers, im.Messages, float64(im.Bytes)/1e6, im.Seconds, im.MessagesPerS, im.MBPerS, im.Failed)
		if len(im.ErrorsByType) > 0 {
			fmt.Fprintf(w, "  errors: %s\n", errorsText(im.ErrorsByType))
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "request\tcount\tp50 ms\tp90 ms\tp99 ms\tmax ms\terrors\t")
		for _, name := range opOrder(im.Requests) {
			s := im.Requests[name]
			fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t\n", name, s.Count, s.P50Ms, s.P90Ms, s.P99Ms, s.MaxMs, s.Errors)
		}
		tw.Flush()
	}
	if wl := r.Workload; wl != nil {
		fmt.Fprintf(w, "\nworkload: %d clients, %.1fs, mix %s\n", wl.Clients, wl.Seconds, wl.Mix)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "operation\tcount\tops/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\terrors\t")
		row := func(name string, s *OpStats) {
			fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t%.1f\t%d\t\n", name, s.Count, s.PerSec, s.P50Ms, s.P90Ms, s.P99Ms, s.MaxMs, s.Errors)
		}
		for _, name := range opOrder(wl.Ops) {
			row(name, wl.Ops[name])
		}
		if wl.Total != nil {
			row("total", wl.Total)
		}
		tw.Flush()
		for _, name := range opOrder(wl.Ops) {
			if s := wl.Ops[name]; len(s.ErrorsByType) > 0 {
				fmt.Fprintf(w, "  %s errors: %s\n", name, errorsText(s.ErrorsByType))
			}
		}
	}
	if p := r.Push; p != nil && len(p.Transports) == 0 {
		fmt.Fprintln(w, "\npush: the server has no transport to measure (see the notices)")
	} else if p != nil {
		fmt.Fprintf(w, "\npush: %d connections per transport, %d changes in %.1fs\n", p.Connections, p.Changes, p.Seconds)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "transport\topened\tfailed\tdropped\tmissed\tconnect p50 ms\tdelivery p50 ms\tp99 ms\tmax ms\tfrom send p50 ms\tp99 ms\tRSS/conn KB\t")
		for _, k := range sortedNames(p.Transports) {
			t := p.Transports[k]
			d := t.Delivery
			if d == nil {
				d = &OpStats{}
			}
			c := t.Connect
			if c == nil {
				c = &OpStats{}
			}
			fs := t.FromSend
			if fs == nil {
				fs = &OpStats{}
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.1f\t%.2f\t%.2f\t%.1f\t%.2f\t%.2f\t%.1f\t\n", k, t.Opened, t.Failed, t.Dropped, t.Missed,
				c.P50Ms, d.P50Ms, d.P99Ms, d.MaxMs, fs.P50Ms, fs.P99Ms, t.RSSPerConnKB)
		}
		tw.Flush()
		for _, k := range sortedNames(p.Transports) {
			if e := p.Transports[k].ErrorsByType; len(e) > 0 {
				fmt.Fprintf(w, "  %s errors: %s\n", k, errorsText(e))
			}
		}
	}
	if len(r.RSS) > 0 {
		fmt.Fprintln(w, "\nserver memory (KiB):")
		for _, k := range []string{"start", "import", "workload", "push"} {
			if v, ok := r.RSS[k]; ok {
				more := ""
				if v.PSSKB > 0 {
					more = fmt.Sprintf("  PSS %d", v.PSSKB)
				}
				if v.Procs > 1 {
					more += fmt.Sprintf("  (%d processes)", v.Procs)
				}
				fmt.Fprintf(w, "  after %-9s RSS %d  peak %d%s\n", k, v.RSSKB, v.HWMKB, more)
			}
		}
	}
}

// metric is one comparable figure of a report.
type metric struct {
	name   string
	value  float64
	higher bool // true when a higher value is better
}

func (r *Report) metrics() []metric {
	var out []metric
	if im := r.Import; im != nil {
		out = append(out, metric{"import msg/s", im.MessagesPerS, true}, metric{"import MB/s", im.MBPerS, true},
			metric{"import failed", float64(im.Failed), false})
	}
	if wl := r.Workload; wl != nil {
		if wl.Total != nil {
			out = append(out, metric{"total ops/s", wl.Total.PerSec, true}, metric{"total p50 ms", wl.Total.P50Ms, false},
				metric{"total p99 ms", wl.Total.P99Ms, false}, metric{"total errors", float64(wl.Total.Errors), false})
		}
		for _, name := range opOrder(wl.Ops) {
			s := wl.Ops[name]
			out = append(out, metric{name + " ops/s", s.PerSec, true}, metric{name + " p50 ms", s.P50Ms, false},
				metric{name + " p99 ms", s.P99Ms, false}, metric{name + " errors", float64(s.Errors), false})
		}
	}
	if p := r.Push; p != nil {
		for _, k := range sortedNames(p.Transports) {
			t := p.Transports[k]
			out = append(out, metric{k + " failed", float64(t.Failed), false}, metric{k + " missed", float64(t.Missed), false})
			if t.Delivery != nil {
				out = append(out, metric{k + " delivery p50 ms", t.Delivery.P50Ms, false},
					metric{k + " delivery p99 ms", t.Delivery.P99Ms, false})
			}
			if t.FromSend != nil {
				out = append(out, metric{k + " from send p50 ms", t.FromSend.P50Ms, false},
					metric{k + " from send p99 ms", t.FromSend.P99Ms, false})
			}
			if t.RSSPerConnKB != 0 {
				out = append(out, metric{k + " RSS/conn KB", t.RSSPerConnKB, false})
			}
		}
	}
	if v, ok := r.RSS["workload"]; ok {
		out = append(out, metric{"server peak RSS MB", float64(v.HWMKB) / 1024, false})
		if v.PSSKB > 0 {
			out = append(out, metric{"server PSS MB", float64(v.PSSKB) / 1024, false})
		}
	}
	return out
}

// Compare prints the figures of two reports side by side with the ratio
// B/A; a trailing + marks the better side when they differ by more than 5%.
func Compare(w io.Writer, a, b *Report, nameA, nameB string) {
	fmt.Fprintf(w, "A: %s (%s)\nB: %s (%s)\n\n", nameA, a.SessionURL, nameB, b.SessionURL)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "figure\tA\tB\tB/A\tbetter\t")
	ma, mb := a.metrics(), b.metrics()
	index := map[string]metric{}
	for _, m := range mb {
		index[m.name] = m
	}
	seen := map[string]bool{}
	for _, x := range ma {
		seen[x.name] = true
		y, ok := index[x.name]
		if !ok {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t\t\n", x.name, num(x.value))
			continue
		}
		ratio, better := "-", ""
		if x.value != 0 {
			q := y.value / x.value
			ratio = fmt.Sprintf("%.2f", q)
			if math.Abs(q-1) > 0.05 {
				if (q > 1) == x.higher {
					better = "B"
				} else {
					better = "A"
				}
			}
		} else if y.value != 0 {
			if x.higher {
				better = "B"
			} else {
				better = "A"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", x.name, num(x.value), num(y.value), ratio, better)
	}
	for _, y := range mb {
		if !seen[y.name] {
			fmt.Fprintf(tw, "%s\t-\t%s\t-\t\t\n", y.name, num(y.value))
		}
	}
	tw.Flush()
}

func num(v float64) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e9:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}
