package main

import (
	"context"
	"errors"

	"keyconsole/handlers"
	"keyconsole/models"
	"keyconsole/services/apiclients"
	"keyconsole/services/inventory"
	"keyconsole/services/policy"
	"keyconsole/services/sshkeys"
	"keyconsole/services/webhooks"
	"keyconsole/web"
)

// wireHygiene stores agency policies in the database and makes them the
// runtime's policy source (it runs before the features that read it), and
// adds the policy, hygiene review, IdP secret tracker, personnel-change and
// runbook pages with their dashboard tiles. The inventory reads each
// credential feature through its own service.
func wireHygiene(_ context.Context, rt *runtime) error {
	if rt.secrets == nil {
		return errors.New("hygiene: the secret service is not wired")
	}
	store := models.NewPolicyStore(rt.db)
	pol := policy.NewService(rt.db, store, rt.recorder, rt.clock)
	rt.policies = pol

	inv := inventory.NewService(inventory.Config{DB: rt.db, Audit: rt.recorder, Policies: pol, Store: store,
		Users: rt.users, Sessions: rt.sessions, Clock: rt.clock})
	inv.Add(inventory.APICredentials{Svc: apiclients.NewService(apiclients.Config{
		DB: rt.db, Store: models.NewAPIClientStore(rt.db), Agencies: rt.agencies, Audit: rt.recorder,
		Secrets: rt.secrets, Policies: pol, Clock: rt.clock, Logger: rt.log,
	})})
	inv.Add(inventory.SSHKeys{Svc: sshkeys.NewService(rt.db, models.NewSSHKeyStore(rt.db), rt.recorder, pol, rt.clock, rt.log)})
	// This instance only lists endpoints and rotates or disables them; it
	// never delivers.
	inv.Add(inventory.Webhooks{Svc: webhooks.NewService(rt.db, models.NewWebhookStore(rt.db), rt.secrets, rt.recorder, pol, webhooks.Options{Clock: rt.clock})})

	kinds := map[string]string{"dev": "dev"}
	for _, p := range rt.cfg.Providers {
		kinds[p.ID] = p.Kind
	}
	var providers []handlers.IdPProvider
	var invProviders []inventory.Provider
	for _, p := range rt.handler.Providers {
		providers = append(providers, handlers.IdPProvider{ID: p.ID, Label: p.Label, Kind: kinds[p.ID]})
		invProviders = append(invProviders, inventory.Provider{ID: p.ID, Label: p.Label, Kind: kinds[p.ID]})
	}
	inv.Add(inventory.IdPSecrets{Expiries: pol.IdPSecrets, Providers: invProviders})

	h := &handlers.Hygiene{Handler: rt.handler, Policies: pol, Inventory: inv, Providers: providers}
	rt.mounts = append(rt.mounts, web.PolicyRoutes(h))
	rt.tiles = append(rt.tiles, h.Tiles)
	return nil
}
