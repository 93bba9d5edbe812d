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
	"keyconsole/services/oauth"
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

// aggregatorMetrics exposes the counters of a refusal aggregation under
// the label records=<records>: refusals waiting in memory for the next
// flush (what a crash would lose), first refusals written at once, failed
// writes (kept and retried), refusals counted per reason only because the
// bound of pending keys was reached, and refusals lost at shutdown because
// the database refused them until the end of the grace period.
func aggregatorMetrics(records string, stats func() oauth.FailureStats) []prometheus.Collector {
	labels := prometheus.Labels{"records": records}
	counter := func(name, help string, f func(oauth.FailureStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(f(stats())) })
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyconsole_audit_aggregated_pending", Help: "Keys of aggregated audit records waiting in memory for the next flush.", ConstLabels: labels,
		}, func() float64 { return float64(stats().Pending) }),
		counter("keyconsole_audit_aggregated_written_at_once_total", "First refusals of a key written as their own audit record at once.",
			func(s oauth.FailureStats) uint64 { return s.WrittenAtOnce }),
		counter("keyconsole_audit_aggregated_write_errors_total", "Failed writes of aggregated audit records; what they held is kept and retried.",
			func(s oauth.FailureStats) uint64 { return s.WriteErrors }),
		counter("keyconsole_audit_aggregated_overflow_total", "Refusals counted per reason only, because the bound of pending keys was reached.",
			func(s oauth.FailureStats) uint64 { return s.Overflowed }),
		counter("keyconsole_audit_aggregated_lost_total", "Refusals never audited: the database refused them until the end of the shutdown.",
			func(s oauth.FailureStats) uint64 { return s.Lost }),
	}
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
