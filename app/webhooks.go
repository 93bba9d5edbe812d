package app

import (
	"context"
	"net/netip"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"keyconsole/models"
	"keyconsole/services/policy"
	"keyconsole/services/secrets"
	"keyconsole/services/webhooks"
)

// WebhookConfig is the webhook egress policy: the private ranges
// deliveries may reach, whether https is required, and the console's own
// egress addresses shown to agencies.
type WebhookConfig struct {
	AllowedCIDRs []netip.Prefix
	RequireHTTPS bool
	EgressIPs    []string
}

// NewWebhookService builds the webhook service. sec may be nil where no
// secret is read (the command line's inventory).
func NewWebhookService(c Core, sec *secrets.Service, pol policy.Source, cfg WebhookConfig) *webhooks.Service {
	return webhooks.NewService(c.DB, models.NewWebhookStore(c.DB), sec, c.Recorder, pol, webhooks.Options{
		Egress:    webhooks.EgressPolicy{AllowedCIDRs: cfg.AllowedCIDRs, RequireHTTPS: cfg.RequireHTTPS},
		EgressIPs: cfg.EgressIPs,
		Clock:     c.Clock,
	})
}

// webhookDelivery is the webhook service and its worker (queued deliveries
// with retries, and the sweep that ends rotation windows and destroys old
// secrets).
type webhookDelivery struct {
	Service *webhooks.Service
	Worker  *webhooks.Worker
}

func newWebhooks(c Core, sec *secrets.Service, pol policy.Source, cfg WebhookConfig) webhookDelivery {
	svc := NewWebhookService(c, sec, pol, cfg)
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
