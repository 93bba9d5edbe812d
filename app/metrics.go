package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"keyconsole/kms"
	"keyconsole/services/apiclients"
	"keyconsole/services/guard"
	"keyconsole/services/sshkeys"
	"keyconsole/services/webhooks"
	"keyconsole/web"
)

// registerMetrics is the one place collectors join the registry; a name
// registered twice is an error, not a panic.
func registerMetrics(reg prometheus.Registerer, groups ...[]prometheus.Collector) error {
	for _, cs := range groups {
		for _, c := range cs {
			if err := reg.Register(c); err != nil {
				return fmt.Errorf("metrics: %w", err)
			}
		}
	}
	return nil
}

// auditMetrics counts audit records written, by outcome; onWrite is the
// recorder's hook.
func auditMetrics() (cs []prometheus.Collector, onWrite func(action, outcome string)) {
	audits := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyconsole_audit_writes_total", Help: "Audit records written, by outcome."}, []string{"outcome"})
	return []prometheus.Collector{audits}, func(_, outcome string) { audits.WithLabelValues(outcome).Inc() }
}

// kmsMetrics counts the envelope's KMS calls, their errors and the data-key
// cache lookups.
func kmsMetrics(env *kms.Envelope) []prometheus.Collector {
	var cs []prometheus.Collector
	for _, op := range []string{kms.OpGenerateDataKey, kms.OpDecrypt, kms.OpEncrypt} {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyconsole_kms_calls_total", Help: "Calls to the key-management service, by operation.", ConstLabels: prometheus.Labels{"operation": op},
		}, func() float64 { return float64(env.Stats().KMSCalls[op]) }))
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyconsole_kms_errors_total", Help: "Failed calls to the key-management service, by operation.", ConstLabels: prometheus.Labels{"operation": op},
		}, func() float64 { return float64(env.Stats().KMSErrors[op]) }))
	}
	for name, f := range map[string]func(kms.Stats) uint64{
		"seal_hit": func(s kms.Stats) uint64 { return s.SealCacheHits }, "seal_miss": func(s kms.Stats) uint64 { return s.SealCacheMisses },
		"open_hit": func(s kms.Stats) uint64 { return s.OpenCacheHits }, "open_miss": func(s kms.Stats) uint64 { return s.OpenCacheMisses },
	} {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyconsole_kms_cache_total", Help: "Data-key cache lookups by kind and result.", ConstLabels: prometheus.Labels{"lookup": name},
		}, func() float64 { return float64(f(env.Stats())) }))
	}
	return cs
}

// tokenMetrics counts the token endpoint's answers and the aggregation of
// its refusal records.
func tokenMetrics(endpoint *apiclients.TokenEndpoint, failures *guard.FailureAggregator) []prometheus.Collector {
	var cs []prometheus.Collector
	for result, f := range map[string]func(apiclients.TokenStats) uint64{
		"issued":       func(s apiclients.TokenStats) uint64 { return s.Issued },
		"refused":      func(s apiclients.TokenStats) uint64 { return s.Refused },
		"rate_limited": func(s apiclients.TokenStats) uint64 { return s.RateLimited },
		"unavailable":  func(s apiclients.TokenStats) uint64 { return s.Unavailable },
	} {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyconsole_token_requests_total", Help: "Token endpoint answers, by result.", ConstLabels: prometheus.Labels{"result": result},
		}, func() float64 { return float64(f(endpoint.Stats())) }))
	}
	cs = append(cs, aggregatorMetrics("token_refusals", failures.Stats)...)
	cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "keyconsole_token_reused_total", Help: "Issued token answers that repeated a token signed within the reuse window (KEYCONSOLE_TOKEN_REUSE).",
	}, func() float64 { return float64(endpoint.Stats().Reused) }))
	return cs
}

// webhookMetrics counts delivery attempts and queued events, by result.
func webhookMetrics(svc *webhooks.Service) []prometheus.Collector {
	var cs []prometheus.Collector
	for name, f := range map[string]func(webhooks.Stats) uint64{
		"enqueued": func(s webhooks.Stats) uint64 { return s.Enqueued }, "succeeded": func(s webhooks.Stats) uint64 { return s.Succeeded },
		"failed": func(s webhooks.Stats) uint64 { return s.Failed }, "refused": func(s webhooks.Stats) uint64 { return s.Refused },
		"retried": func(s webhooks.Stats) uint64 { return s.Retried },
	} {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyconsole_webhook_deliveries_total", Help: "Webhook delivery attempts and queued events, by result.", ConstLabels: prometheus.Labels{"result": name},
		}, func() float64 { return float64(f(svc.Stats())) }))
	}
	return cs
}

// sftpMetrics exposes the authenticator's counters: completed logins,
// refused keys by reason, and the aggregation of their audit records.
func sftpMetrics(auth *sshkeys.Authenticator) []prometheus.Collector {
	cs := []prometheus.Collector{prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "keyconsole_sftp_logins_total", Help: "Completed SFTP public-key logins.",
	}, func() float64 { return float64(auth.Stats().Logins) })}
	for _, reason := range []string{sshkeys.ReasonUnknownKey, sshkeys.ReasonWrongAccount, sshkeys.ReasonExpired, sshkeys.ReasonRateLimited} {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyconsole_sftp_login_refusals_total", Help: "Refused SFTP public keys, by reason.", ConstLabels: prometheus.Labels{"reason": reason},
		}, func() float64 { return float64(auth.Stats().Refused[reason]) }))
	}
	return append(cs, aggregatorMetrics("sftp_refusals", auth.FailureStats)...)
}

// aggregatorMetrics exposes the counters of a refusal aggregation under
// the label records=<records>: refusals waiting in memory for the next
// flush (what a crash would lose), first refusals written at once, failed
// writes (kept and retried), refusals counted per reason only because the
// bound of pending keys was reached, and refusals lost at shutdown because
// the database refused them until the end of the grace period.
func aggregatorMetrics(records string, stats func() guard.FailureStats) []prometheus.Collector {
	labels := prometheus.Labels{"records": records}
	counter := func(name, help string, f func(guard.FailureStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(f(stats())) })
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyconsole_audit_aggregated_pending", Help: "Keys of aggregated audit records waiting in memory for the next flush.", ConstLabels: labels,
		}, func() float64 { return float64(stats().Pending) }),
		counter("keyconsole_audit_aggregated_written_at_once_total", "First refusals of a key written as their own audit record at once.",
			func(s guard.FailureStats) uint64 { return s.WrittenAtOnce }),
		counter("keyconsole_audit_aggregated_write_errors_total", "Failed writes of aggregated audit records; what they held is kept and retried.",
			func(s guard.FailureStats) uint64 { return s.WriteErrors }),
		counter("keyconsole_audit_aggregated_overflow_total", "Refusals counted per reason only, because the bound of pending keys was reached.",
			func(s guard.FailureStats) uint64 { return s.Overflowed }),
		counter("keyconsole_audit_aggregated_lost_total", "Refusals never audited: the database refused them until the end of the shutdown.",
			func(s guard.FailureStats) uint64 { return s.Lost }),
	}
}

// MetricsConfig is the separate metrics address (empty: none), its bearer
// token, and whether Go's runtime profiles are served beside /metrics.
type MetricsConfig struct {
	Addr      string
	Token     string
	Profiling bool
}

// metricsServer listens on the separate metrics address and returns the
// background work that serves it until its context ends.
func metricsServer(cfg MetricsConfig, m *web.Metrics) (func(ctx context.Context) error, error) {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, errors.New("KEYCONSOLE_METRICS_ADDR " + cfg.Addr + ": " + err.Error())
	}
	srv := &http.Server{Handler: metricsMux(cfg, m), ReadHeaderTimeout: 5 * time.Second}
	return func(ctx context.Context) error {
		go func() { <-ctx.Done(); _ = srv.Close() }()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}, nil
}

// metricsMux is the handler of the separate metrics address: /metrics and,
// with KEYCONSOLE_PROFILING, Go's runtime profiles, both behind the
// metrics bearer token when one is set.
func metricsMux(cfg MetricsConfig, m *web.Metrics) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler(cfg.Token))
	if cfg.Profiling {
		mux.Handle("/debug/pprof/", web.BearerOnly(cfg.Token, http.HandlerFunc(pprof.Index)))
		mux.Handle("/debug/pprof/profile", web.BearerOnly(cfg.Token, http.HandlerFunc(pprof.Profile)))
		mux.Handle("/debug/pprof/trace", web.BearerOnly(cfg.Token, http.HandlerFunc(pprof.Trace)))
	}
	return mux
}
