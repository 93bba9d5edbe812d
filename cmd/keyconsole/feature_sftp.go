package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"keyconsole/handlers"
	"keyconsole/models"
	"keyconsole/services/sshkeys"
	"keyconsole/web"
)

// expirySweepInterval is how often expired SSH keys are recorded and audited.
const expirySweepInterval = time.Minute

// wireSFTP adds the SSH keys pages and dashboard tile, the sweep that records
// expired keys, and, unless KEYCONSOLE_SFTP_ADDR is empty, the SFTP server.
func wireSFTP(_ context.Context, rt *runtime) error {
	if rt.secrets == nil {
		return errors.New("sftp: the secret service is not wired")
	}
	store := models.NewSSHKeyStore(rt.db)
	svc := sshkeys.NewService(rt.db, store, rt.recorder, rt.policies, rt.clock, rt.log)
	rt.sshkeys = svc
	h := handlers.NewSSHKeys(rt.handler, svc)
	rt.mounts = append(rt.mounts, web.SSHKeysRoutes(h))
	rt.tiles = append(rt.tiles, h.Tiles)
	rt.background = append(rt.background, func(ctx context.Context) error {
		return svc.RunExpirySweep(ctx, expirySweepInterval)
	})
	if rt.cfg.SFTPAddr == "" {
		rt.log.Info("sftp server disabled (KEYCONSOLE_SFTP_ADDR is empty)")
		return nil
	}
	auth, err := newSFTPAuthenticator(rt.app, store)
	if err != nil {
		return err
	}
	if rt.metrics != nil {
		if err := registerSFTPMetrics(rt.metrics.Registry, auth); err != nil {
			return err
		}
	}
	rt.background = append(rt.background, func(ctx context.Context) error {
		return runSFTPServer(ctx, rt.app, rt.secrets, store, auth)
	})
	rt.shutdown = append(rt.shutdown, func(ctx context.Context) {
		if err := auth.Close(ctx); err != nil {
			rt.log.Error("sftp: last write of key use or refusal records failed", "error", err)
		}
	})
	return nil
}

// registerSFTPMetrics exposes the authenticator's counters: completed
// logins, refused keys by reason, and the aggregation of their audit
// records.
func registerSFTPMetrics(reg prometheus.Registerer, auth *sshkeys.Authenticator) error {
	cs := []prometheus.Collector{prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "keyconsole_sftp_logins_total", Help: "Completed SFTP public-key logins.",
	}, func() float64 { return float64(auth.Stats().Logins) })}
	for _, reason := range []string{sshkeys.ReasonUnknownKey, sshkeys.ReasonWrongAccount, sshkeys.ReasonExpired, sshkeys.ReasonRateLimited} {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyconsole_sftp_login_refusals_total", Help: "Refused SFTP public keys, by reason.", ConstLabels: prometheus.Labels{"reason": reason},
		}, func() float64 { return float64(auth.Stats().Refused[reason]) }))
	}
	cs = append(cs, aggregatorMetrics("sftp_refusals", auth.FailureStats)...)
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("sftp: metrics: %w", err)
		}
	}
	return nil
}
