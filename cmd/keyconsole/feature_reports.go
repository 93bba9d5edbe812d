package main

import (
	"context"
	"errors"

	"keyconsole/handlers"
	"keyconsole/models"
	"keyconsole/services/apiclients"
	"keyconsole/services/inventory"
	"keyconsole/services/policy"
	"keyconsole/services/reports"
	"keyconsole/services/secrets"
	"keyconsole/services/sshkeys"
	"keyconsole/services/webhooks"
	"keyconsole/web"
)

// wireReports adds the Reports page and the credential inventory downloads.
// It runs after wireHygiene, whose policy source it measures against.
func wireReports(_ context.Context, rt *runtime) error {
	if rt.inventory == nil {
		return errors.New("reports: the hygiene feature (credential inventory) must be wired first")
	}
	svc := reports.NewService(reports.Config{Inventory: rt.inventory, Policies: rt.policies, Audit: rt.recorder, Clock: rt.clock})
	rt.mounts = append(rt.mounts, web.ReportsRoutes(&handlers.Reports{Handler: rt.handler, Reports: svc}))
	return nil
}

// idpExpiries is a policy source that also keeps the agencies' IdP client
// secret expiry dates (the stored-policy service).
type idpExpiries interface {
	IdPSecrets(ctx context.Context, agencyID int64) (map[string]models.IdPSecretExpiry, error)
}

// newReports builds the reports service for the command line over an
// inventory of every credential feature, each read through its own service. Listing needs no
// secret, so sec may be nil (the command line reads no KMS).
func newReports(a *app, sec *secrets.Service, pol policy.Source, providers []inventory.Provider) *reports.Service {
	inv := inventory.NewService(inventory.Config{DB: a.db, Audit: a.recorder, Policies: pol, Users: a.users, Sessions: a.sessions, Clock: a.clock})
	inv.Add(inventory.APICredentials{Svc: apiclients.NewService(apiclients.Config{
		DB: a.db, Store: models.NewAPIClientStore(a.db), Agencies: a.agencies, Audit: a.recorder,
		Secrets: sec, Policies: pol, Clock: a.clock, Logger: a.log,
	})})
	inv.Add(inventory.SSHKeys{Svc: sshkeys.NewService(a.db, models.NewSSHKeyStore(a.db), a.recorder, pol, a.clock, a.log)})
	inv.Add(inventory.Webhooks{Svc: webhooks.NewService(a.db, models.NewWebhookStore(a.db), sec, a.recorder, pol, webhooks.Options{Clock: a.clock})})
	if ex, ok := pol.(idpExpiries); ok {
		inv.Add(inventory.IdPSecrets{Expiries: ex.IdPSecrets, Providers: providers})
	}
	return reports.NewService(reports.Config{Inventory: inv, Policies: pol, Audit: a.recorder, Clock: a.clock})
}
