package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"keyconsole/kms"
	"keyconsole/web"
)

// wireMetrics creates the registry, exposes the core counters and, when
// KEYCONSOLE_METRICS_ADDR is set, serves /metrics on that separate address.
func wireMetrics(ctx context.Context, rt *runtime) error {
	rt.metrics = web.NewMetrics()
	reg := rt.metrics.Registry
	audits := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyconsole_audit_writes_total", Help: "Audit records written, by outcome."}, []string{"outcome"})
	reg.MustRegister(audits)
	rt.recorder.OnWrite = func(_, outcome string) { audits.WithLabelValues(outcome).Inc() }
	if rt.envelope != nil {
		env := rt.envelope
		for _, op := range []string{kms.OpGenerateDataKey, kms.OpDecrypt, kms.OpEncrypt} {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "keyconsole_kms_calls_total", Help: "Calls to the key-management service, by operation.", ConstLabels: prometheus.Labels{"operation": op},
			}, func() float64 { return float64(env.Stats().KMSCalls[op]) }))
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "keyconsole_kms_errors_total", Help: "Failed calls to the key-management service, by operation.", ConstLabels: prometheus.Labels{"operation": op},
			}, func() float64 { return float64(env.Stats().KMSErrors[op]) }))
		}
		for name, f := range map[string]func(kms.Stats) uint64{
			"seal_hit": func(s kms.Stats) uint64 { return s.SealCacheHits }, "seal_miss": func(s kms.Stats) uint64 { return s.SealCacheMisses },
			"open_hit": func(s kms.Stats) uint64 { return s.OpenCacheHits }, "open_miss": func(s kms.Stats) uint64 { return s.OpenCacheMisses },
		} {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "keyconsole_kms_cache_total", Help: "Data-key cache lookups by kind and result.", ConstLabels: prometheus.Labels{"lookup": name},
			}, func() float64 { return float64(f(env.Stats())) }))
		}
	}
	if addr := rt.cfg.MetricsAddr; addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return errors.New("KEYCONSOLE_METRICS_ADDR " + addr + ": " + err.Error())
		}
		srv := &http.Server{Handler: metricsMux(rt.cfg, rt.metrics), ReadHeaderTimeout: 5 * time.Second}
		rt.background = append(rt.background, func(ctx context.Context) error {
			go func() { <-ctx.Done(); _ = srv.Close() }()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	return nil
}

// metricsMux is the handler of the separate metrics address: /metrics and,
// with KEYCONSOLE_PROFILING, Go's runtime profiles, both behind the
// metrics bearer token when one is set.
func metricsMux(cfg *config, m *web.Metrics) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler(cfg.MetricsToken))
	if cfg.Profiling {
		mux.Handle("/debug/pprof/", web.BearerOnly(cfg.MetricsToken, http.HandlerFunc(pprof.Index)))
		mux.Handle("/debug/pprof/profile", web.BearerOnly(cfg.MetricsToken, http.HandlerFunc(pprof.Profile)))
		mux.Handle("/debug/pprof/trace", web.BearerOnly(cfg.MetricsToken, http.HandlerFunc(pprof.Trace)))
	}
	return mux
}
