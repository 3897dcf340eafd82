package loadgen

import (
	"fmt"
	"html"
	"math"
	"os"
	"strings"
	"time"
)

// palette colours the series of a chart.
var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

type series struct {
	name      string
	quantiles []float64 // ms at 0..100 percent
}

// tailY maps a percentile to a height that stretches the tail: p50, p90,
// p99 and the maximum are equally spaced, as in latency percentile plots.
func tailY(p float64) float64 {
	if p >= 100 {
		return 3
	}
	return math.Min(-math.Log10(1-p/100), 3)
}

// cdfSVG draws latency distributions: the latency (x, log scale) within
// which a percentile (y, tail stretched) of the requests were answered.
func cdfSVG(title string, ss []series) string {
	const w, h, left, right, top, bottom = 760.0, 320.0, 60.0, 190.0, 30.0, 40.0
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, v := range s.quantiles {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 1) {
		return ""
	}
	lo = math.Pow(10, math.Floor(math.Log10(lo)))
	hi = math.Pow(10, math.Ceil(math.Log10(hi)))
	if hi <= lo {
		hi = lo * 10
	}
	pw, ph := w-left-right, h-top-bottom
	x := func(v float64) float64 {
		v = math.Max(v, lo)
		return left + pw*(math.Log10(v)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))
	}
	y := func(p float64) float64 { return top + ph*(1-tailY(p)/3) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`, w, h, w, h)
	fmt.Fprintf(&b, `<text x="%.0f" y="18" font-size="13" font-weight="bold">%s</text>`, left, html.EscapeString(title))
	for d := lo; d <= hi*1.0001; d *= 10 {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`, x(d), top, x(d), top+ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, x(d), top+ph+14, msLabel(d))
	}
	for _, p := range []float64{0, 50, 90, 99, 100} {
		label := fmt.Sprintf("p%.0f", p)
		if p == 100 {
			label = "max"
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`, left, y(p), left+pw, y(p))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, left-4, y(p)+4, label)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">latency (log scale)</text>`, left+pw/2, h-6)
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#888"/>`, left, top, pw, ph)
	for i, s := range ss {
		col := palette[i%len(palette)]
		var pts []string
		for p, v := range s.quantiles {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(v), y(float64(p))))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.8" points="%s"/>`, col, strings.Join(pts, " "))
		ly := top + 14*float64(i)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="3"/>`, left+pw+10, ly+6, left+pw+28, ly+6, col)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s</text>`, left+pw+32, ly+10, html.EscapeString(s.name))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

func msLabel(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%gs", v/1000)
	case v >= 1:
		return fmt.Sprintf("%gms", v)
	}
	return fmt.Sprintf("%gµs", v*1000)
}

// barSVG draws one horizontal bar per value.
func barSVG(title, unit string, names []string, values []float64) string {
	const w, left, bar = 720.0, 110.0, 20.0
	h := 40 + bar*float64(len(names))
	maxV := 0.0
	for _, v := range values {
		maxV = math.Max(maxV, v)
	}
	if maxV == 0 {
		maxV = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`, w, h, w, h)
	fmt.Fprintf(&b, `<text x="%.0f" y="18" font-size="13" font-weight="bold">%s</text>`, left, html.EscapeString(title))
	for i, n := range names {
		yy := 30 + bar*float64(i)
		bw := (w - left - 120) * values[i] / maxV
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, left-6, yy+14, html.EscapeString(n))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, left, yy+2, bw, bar-4, palette[i%len(palette)])
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s %s</text>`, left+bw+6, yy+14, num(values[i]), html.EscapeString(unit))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// WriteHTML writes a self-contained report page: tables and inline SVG
// charts, no scripts or external files.
func (r *Report) WriteHTML(path string) error {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>jmapload report</title>\n<style>")
	b.WriteString("body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse;margin:1em 0}" +
		"td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}" +
		"pre{background:#f8f8f8;padding:1em;overflow:auto}.notice{color:#a60}")
	b.WriteString("</style></head><body>\n")
	fmt.Fprintf(&b, "<h1>jmapload report</h1>\n<p>%s · %s", html.EscapeString(r.SessionURL), r.Started.Format(time.RFC1123))
	if r.Label != "" {
		fmt.Fprintf(&b, " · %s", html.EscapeString(r.Label))
	}
	b.WriteString("</p>\n")
	if r.Interrupted {
		b.WriteString("<p class=\"notice\"><b>Interrupted: figures so far.</b></p>\n")
	}
	for _, n := range r.Notices {
		fmt.Fprintf(&b, "<p class=\"notice\">%s</p>\n", html.EscapeString(n))
	}
	if im := r.Import; im != nil {
		fmt.Fprintf(&b, "<h2>Import</h2>\n<p>%d messages, %.1f MB in %.1f s with %d importers through %s: <b>%.0f messages/s, %.2f MB/s</b>; %d failed.</p>\n",
			im.Messages, float64(im.Bytes)/1e6, im.Seconds, im.Importers, html.EscapeString(im.Method), im.MessagesPerS, im.MBPerS, im.Failed)
		var ss []series
		for _, name := range opOrder(im.Requests) {
			if q := im.Requests[name].QuantilesMs; q != nil {
				ss = append(ss, series{name, q})
			}
		}
		b.WriteString(cdfSVG("Import request latency", ss))
		writeOpTable(&b, im.Requests, nil)
	}
	if wl := r.Workload; wl != nil {
		fmt.Fprintf(&b, "<h2>Workload</h2>\n<p>%d clients for %.1f s, mix <code>%s</code>.</p>\n", wl.Clients, wl.Seconds, html.EscapeString(wl.Mix))
		var ss []series
		var names []string
		var rates []float64
		for _, name := range opOrder(wl.Ops) {
			s := wl.Ops[name]
			if s.QuantilesMs != nil {
				ss = append(ss, series{name, s.QuantilesMs})
			}
			names = append(names, name)
			rates = append(rates, s.PerSec)
		}
		b.WriteString(cdfSVG("Latency distribution per operation", ss))
		b.WriteString("<br>\n")
		b.WriteString(barSVG("Throughput per operation", "ops/s", names, rates))
		writeOpTable(&b, wl.Ops, wl.Total)
	}
	if p := r.Push; p != nil && len(p.Transports) == 0 {
		b.WriteString("<h2>Push</h2>\n<p>The server has no push transport to measure (see the notices).</p>\n")
	} else if p != nil {
		fmt.Fprintf(&b, "<h2>Push</h2>\n<p>%d connections per transport, %d changes in %.1f s. Delivery is measured from the /set response to the state event (an event that beats the response counts as 0), and from sending the /set request.</p>\n",
			p.Connections, p.Changes, p.Seconds)
		var ss []series
		b.WriteString("<table><tr><th>transport</th><th>opened</th><th>failed</th><th>dropped</th><th>missed</th><th>connect p50 ms</th><th>delivery p50 ms</th><th>p99 ms</th><th>max ms</th><th>RSS/conn KB</th></tr>\n")
		for _, k := range sortedNames(p.Transports) {
			t := p.Transports[k]
			d, c := t.Delivery, t.Connect
			if d == nil {
				d = &OpStats{}
			}
			if c == nil {
				c = &OpStats{}
			}
			if d.QuantilesMs != nil {
				ss = append(ss, series{k + " from response", d.QuantilesMs})
			}
			if t.FromSend != nil && t.FromSend.QuantilesMs != nil {
				ss = append(ss, series{k + " from send", t.FromSend.QuantilesMs})
			}
			fmt.Fprintf(&b, "<tr><td>%s</td><td>%d</td><td>%d</td><td>%d</td><td>%d</td><td>%.1f</td><td>%.2f</td><td>%.2f</td><td>%.1f</td><td>%.1f</td></tr>\n",
				html.EscapeString(k), t.Opened, t.Failed, t.Dropped, t.Missed, c.P50Ms, d.P50Ms, d.P99Ms, d.MaxMs, t.RSSPerConnKB)
		}
		b.WriteString("</table>\n")
		b.WriteString(cdfSVG("Push delivery latency", ss))
	}
	if len(r.RSS) > 0 {
		b.WriteString("<h2>Server memory</h2>\n<table><tr><th>after</th><th>RSS KiB</th><th>peak KiB</th><th>PSS KiB</th><th>processes</th></tr>\n")
		for _, k := range []string{"start", "import", "workload", "push"} {
			if v, ok := r.RSS[k]; ok {
				fmt.Fprintf(&b, "<tr><td>%s</td><td>%d</td><td>%d</td><td>%d</td><td>%d</td></tr>\n", k, v.RSSKB, v.HWMKB, v.PSSKB, max(v.Procs, 1))
			}
		}
		b.WriteString("</table>\n")
	}
	var tbl strings.Builder
	r.WriteTable(&tbl)
	fmt.Fprintf(&b, "<h2>Text summary</h2>\n<pre>%s</pre>\n</body></html>\n", html.EscapeString(tbl.String()))
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func writeOpTable(b *strings.Builder, ops map[string]*OpStats, total *OpStats) {
	b.WriteString("<table><tr><th>operation</th><th>count</th><th>ops/s</th><th>mean ms</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>max ms</th><th>errors</th></tr>\n")
	row := func(name string, s *OpStats) {
		errs := fmt.Sprint(s.Errors)
		if len(s.ErrorsByType) > 0 {
			errs += " (" + errorsText(s.ErrorsByType) + ")"
		}
		fmt.Fprintf(b, "<tr><td>%s</td><td>%d</td><td>%.1f</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.1f</td><td>%s</td></tr>\n",
			html.EscapeString(name), s.Count, s.PerSec, s.MeanMs, s.P50Ms, s.P90Ms, s.P99Ms, s.MaxMs, html.EscapeString(errs))
	}
	for _, name := range opOrder(ops) {
		row(name, ops[name])
	}
	if total != nil {
		row("total", total)
	}
	b.WriteString("</table>\n")
}
