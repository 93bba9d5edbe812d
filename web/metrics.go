package web

import (
	"crypto/subtle"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the console's Prometheus registry. Services keep plain counters;
// cmd exposes them here as collectors, so no service imports Prometheus.
type Metrics struct {
	Registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	cache    sync.Map // seriesKey -> routeSeries
}

// NewMetrics returns a registry with the HTTP and process collectors.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyconsole_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "keyconsole_http_request_duration_seconds", Help: "HTTP request latency by route and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.latency, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// middleware records every request under its route pattern (never the raw
// path, which would carry ids and explode the label set).
func (m *Metrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		s := m.series(route, c.Request().Method, c.Response().Status)
		s.count.Inc()
		s.latency.Observe(time.Since(start).Seconds())
		return nil
	}
}

// routeSeries are the series of one route, method and status code.
type routeSeries struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

type seriesKey struct {
	route, method string
	code          int
}

// series returns the series for a request, looked up once per route,
// method and code: the label values' hashing is otherwise paid on every
// request. Routes are patterns and codes few, so the map stays small.
func (m *Metrics) series(route, method string, code int) routeSeries {
	k := seriesKey{route, method, code}
	if s, ok := m.cache.Load(k); ok {
		return s.(routeSeries)
	}
	s := routeSeries{
		count:   m.requests.WithLabelValues(route, method, strconv.Itoa(code)),
		latency: m.latency.WithLabelValues(route, method),
	}
	m.cache.Store(k, s)
	return s
}

// Handler serves the registry; with a token it demands "Authorization: Bearer <token>".
func (m *Metrics) Handler(token string) http.Handler {
	return BearerOnly(token, promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
}

// BearerOnly serves h only to requests carrying "Authorization: Bearer
// <token>"; with an empty token it serves h as it is.
func BearerOnly(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
