package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"keyconsole/handlers"
	"keyconsole/models"
	"keyconsole/services/webhooks"
	"keyconsole/web"
)

// wireWebhooks adds the webhook endpoint pages, the delivery service and its
// background worker (queued deliveries with retries, and the sweep that ends
// rotation windows and destroys old secrets).
func wireWebhooks(ctx context.Context, rt *runtime) error {
	if rt.secrets == nil {
		return errors.New("webhooks: the secret service is not wired")
	}
	svc := webhooks.NewService(rt.db, models.NewWebhookStore(rt.db), rt.secrets, rt.recorder, rt.policies, webhooks.Options{
		Egress:    webhooks.EgressPolicy{AllowedCIDRs: rt.cfg.WebhookCIDRs, RequireHTTPS: rt.cfg.production()},
		EgressIPs: rt.cfg.WebhookEgress,
		Clock:     rt.clock,
	})
	rt.webhooks = svc
	h := handlers.NewWebhooks(rt.handler, svc)
	rt.mounts = append(rt.mounts, web.WebhooksRoutes(h))
	rt.tiles = append(rt.tiles, h.Tiles)

	host, _ := os.Hostname()
	worker := svc.NewWorker(webhooks.WorkerOptions{ID: host, Logger: rt.log.With("component", "webhooks")})
	rt.background = append(rt.background, worker.Run)
	// At shutdown the worker has stopped claiming (its context ended); the
	// attempts in flight finish within the grace, so a clean stop sends
	// nothing twice.
	rt.shutdown = append(rt.shutdown, func(ctx context.Context) {
		_ = worker.Shutdown(ctx) // it logs the attempts it had to cut
	})

	if rt.metrics != nil {
		for name, f := range map[string]func(webhooks.Stats) uint64{
			"enqueued": func(s webhooks.Stats) uint64 { return s.Enqueued }, "succeeded": func(s webhooks.Stats) uint64 { return s.Succeeded },
			"failed": func(s webhooks.Stats) uint64 { return s.Failed }, "refused": func(s webhooks.Stats) uint64 { return s.Refused },
			"retried": func(s webhooks.Stats) uint64 { return s.Retried },
		} {
			if err := rt.metrics.Registry.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "keyconsole_webhook_deliveries_total", Help: "Webhook delivery attempts and queued events, by result.", ConstLabels: prometheus.Labels{"result": name},
			}, func() float64 { return float64(f(svc.Stats())) })); err != nil {
				return fmt.Errorf("webhooks: metrics: %w", err)
			}
		}
	}
	return nil
}
