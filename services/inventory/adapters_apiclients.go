package inventory

import (
	"context"
	"errors"
	"fmt"

	"keyconsole/services/apiclients"
	"keyconsole/services/audit"
	"keyconsole/services/policy"
)

// APICredentials adapts the API credential service to the inventory.
type APICredentials struct {
	Svc *apiclients.Service
}

// Type is policy.TypeAPICredential.
func (APICredentials) Type() string { return policy.TypeAPICredential }

// AuditLink says the feature's records name a credential by its client_id.
func (APICredentials) AuditLink() Link {
	return Link{TargetType: audit.TargetAPICredential, Relations: map[string]string{
		audit.ActionAPICredentialCreate:     RelCreated,
		audit.ActionAPICredentialRegenerate: RelRotated,
	}}
}

// List returns every API credential of the agency.
func (a APICredentials) List(ctx context.Context, agencyID int64) ([]Item, error) {
	list, err := a.Svc.List(ctx, agencyID)
	if err != nil {
		return nil, err
	}
	out := make([]Item, 0, len(list))
	for _, c := range list {
		it := Item{Type: policy.TypeAPICredential, ID: c.ID, Name: c.Name, Environment: c.Environment, Status: c.Status,
			CreatedAt: c.CreatedAt, RotatedAt: c.RotatedAt, LastUsedAt: c.LastUsedAt, ExpiresAt: c.ExpiresAt,
			DetailPath: fmt.Sprintf("/api-credentials/%d", c.ID), AuditID: c.ClientID, Extra: c.ClientID}
		if c.CreatedByID != nil {
			it.CreatedByUserID = *c.CreatedByID
		}
		if it.Active() {
			it.RotatePath = fmt.Sprintf("/api-credentials/%d/regenerate", c.ID)
		}
		out = append(out, it)
	}
	return out, nil
}

// Revoke revokes a credential; the token endpoint refuses it at once.
func (a APICredentials) Revoke(ctx context.Context, actor audit.Actor, origin audit.Origin, agencyID, id int64, _ string) error {
	_, err := a.Svc.Revoke(ctx, actor, origin, agencyID, id)
	if errors.Is(err, apiclients.ErrRevoked) {
		return ErrInactive
	}
	return err
}

// Rotate regenerates the credential's secret; the old one stops working at
// once and the new one is returned to be shown once.
func (a APICredentials) Rotate(ctx context.Context, actor audit.Actor, origin audit.Origin, agencyID, id int64, _ string) (Rotation, error) {
	cur, err := a.Svc.Get(ctx, agencyID, id)
	if err != nil {
		return Rotation{}, err
	}
	c, secret, err := a.Svc.Regenerate(ctx, actor, origin, agencyID, id, apiclients.RegenerateInput{ConfirmName: cur.Name, Version: cur.SecretVersion})
	switch {
	case errors.Is(err, apiclients.ErrRevoked), errors.Is(err, apiclients.ErrExpired):
		return Rotation{}, ErrInactive
	case err != nil:
		return Rotation{}, err
	}
	s := NewSecret(secret.Reveal())
	return Rotation{NewSecret: &s, SecretLabel: "New client_secret for client_id " + c.ClientID + ":",
		Note: "The old secret stopped working at once: put the new one in the application's environment now."}, nil
}
