package app

import (
	"context"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"keyconsole/app/core"
	"keyconsole/services/policy"
	"keyconsole/services/secrets"
	"keyconsole/services/webhooks"
)

// webhookDelivery is the webhook service and its worker (queued deliveries
// with retries, and the sweep that ends rotation windows and destroys old
// secrets).
type webhookDelivery struct {
	Service *webhooks.Service
	Worker  *webhooks.Worker
}

func newWebhooks(c core.Core, sec *secrets.Service, pol policy.Source, cfg core.WebhookConfig) webhookDelivery {
	svc := core.NewWebhooks(c, sec, pol, cfg)
	host, _ := os.Hostname()
	return webhookDelivery{Service: svc, Worker: svc.NewWorker(webhooks.WorkerOptions{ID: host, Logger: c.Log.With("component", "webhooks")})}
}

// shutdown lets the attempts in flight finish within the grace: the worker
// has stopped claiming (its context ended), so a clean stop sends nothing
// twice.
func (w webhookDelivery) shutdown(ctx context.Context) {
	_ = w.Worker.Shutdown(ctx) // it logs the attempts it had to cut
}

func (w webhookDelivery) collectors() []prometheus.Collector { return webhookMetrics(w.Service) }
