package main

import (
	"context"
	"errors"

	"keyconsole/handlers"
	"keyconsole/models"
	"keyconsole/services/inventory"
	"keyconsole/services/policy"
	"keyconsole/web"
)

// wirePolicy stores agency policies in the database and makes them the
// runtime's policy source; it runs before the features that read it.
func wirePolicy(_ context.Context, rt *runtime) error {
	rt.policyDB = models.NewPolicyStore(rt.db)
	rt.policy = policy.NewService(rt.db, rt.policyDB, rt.recorder, rt.clock)
	rt.policies = rt.policy
	return nil
}

// wireHygiene adds the policy, hygiene review, IdP secret tracker,
// personnel-change and runbook pages with their dashboard tiles. It runs
// after the credential features and reads each through the runtime's own
// service instance.
func wireHygiene(_ context.Context, rt *runtime) error {
	if rt.policy == nil || rt.apiclients == nil || rt.sshkeys == nil || rt.webhooks == nil {
		return errors.New("hygiene: the policy and credential features must be wired first")
	}
	pol := rt.policy
	inv := inventory.NewService(inventory.Config{DB: rt.db, Audit: rt.recorder, Policies: pol, Store: rt.policyDB,
		Users: rt.users, Sessions: rt.sessions, Clock: rt.clock})
	inv.Add(inventory.APICredentials{Svc: rt.apiclients})
	inv.Add(inventory.SSHKeys{Svc: rt.sshkeys})
	inv.Add(inventory.Webhooks{Svc: rt.webhooks})
	rt.inventory = inv

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
