// Package metrics holds the Prometheus collectors of jmapd: HTTP requests,
// JMAP method calls, open connections and store size.
package metrics

import (
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the set of collectors of one server.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	calls    *prometheus.CounterVec
	callDur  *prometheus.HistogramVec
	conns    prometheus.Gauge
}

// New returns the collectors, with storeSize reporting the store's bytes on
// disk at each scrape.
func New(storeSize func() int64) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jmapd_http_requests_total", Help: "HTTP requests by endpoint and status code.",
	}, []string{"endpoint", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "jmapd_http_request_duration_seconds", Help: "HTTP request latency by endpoint.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"endpoint"})
	m.calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jmapd_method_calls_total", Help: "JMAP method calls by method and error type (empty on success).",
	}, []string{"method", "error"})
	m.callDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "jmapd_method_duration_seconds", Help: "JMAP method call latency by method.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .5, 2},
	}, []string{"method"})
	m.conns = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "jmapd_open_connections", Help: "Open HTTP connections.",
	})
	size := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "jmapd_store_size_bytes", Help: "Bytes the store occupies on disk.",
	}, func() float64 { return float64(storeSize()) })
	m.reg.MustRegister(m.requests, m.latency, m.calls, m.callDur, m.conns, size,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// ObserveCall records one JMAP method call.
func (m *Metrics) ObserveCall(method, errType string, seconds float64) {
	m.calls.WithLabelValues(method, errType).Inc()
	m.callDur.WithLabelValues(method).Observe(seconds)
}

// ObserveRequest records one HTTP request to endpoint.
func (m *Metrics) ObserveRequest(endpoint string, code int, d time.Duration) {
	m.requests.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(endpoint).Observe(d.Seconds())
}

// ConnState tracks open connections; set it as http.Server.ConnState.
func (m *Metrics) ConnState(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		m.conns.Inc()
	case http.StateClosed, http.StateHijacked:
		m.conns.Dec()
	}
}
