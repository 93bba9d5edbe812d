package inventory

import (
	"context"

	"keyconsole/models"
	"keyconsole/services/audit"
)

// Provider is a configured sign-in provider.
type Provider struct {
	ID, Label, Kind string
}

// IdPSecrets lists the client secrets of the configured sign-in providers
// whose expiry dates the agency recorded. They live in the IdP: the console
// neither rotates nor revokes them; the rotate action leads to the runbook.
type IdPSecrets struct {
	// Expiries returns the recorded expiries by provider id.
	Expiries  func(ctx context.Context, agencyID int64) (map[string]models.IdPSecretExpiry, error)
	Providers []Provider
}

// Type is TypeIdPSecret.
func (IdPSecrets) Type() string { return TypeIdPSecret }

// AuditLink relates no user to an IdP secret: recording its expiry date
// gives no access to the secret.
func (IdPSecrets) AuditLink() Link { return Link{TargetType: TypeIdPSecret} }

// List returns the recorded secrets of the configured providers.
func (s IdPSecrets) List(ctx context.Context, agencyID int64) ([]Item, error) {
	recs, err := s.Expiries(ctx, agencyID)
	if err != nil {
		return nil, err
	}
	var out []Item
	for _, p := range s.Providers {
		r, ok := recs[p.ID]
		if !ok {
			continue
		}
		exp := r.ExpiresAt
		out = append(out, Item{Type: TypeIdPSecret, ID: r.ID, Name: p.Label + " client secret", Status: StatusActive,
			CreatedAt: r.UpdatedAt, ExpiresAt: &exp, DetailPath: "/policy/idp-secrets", RotatePath: "/runbooks/" + TypeIdPSecret,
			AuditID: p.ID, Extra: p.ID})
	}
	return out, nil
}

// Revoke is not possible from the console.
func (IdPSecrets) Revoke(context.Context, audit.Actor, audit.Origin, int64, int64, string) error {
	return ErrNotRevocable
}
