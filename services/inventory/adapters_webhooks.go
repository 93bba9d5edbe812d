package inventory

import (
	"context"
	"fmt"

	"keyconsole/services/audit"
	"keyconsole/services/policy"
	"keyconsole/services/webhooks"
)

// Webhooks adapts the webhook service to the inventory: one item per
// endpoint, measured by the age of its current secret.
type Webhooks struct {
	Svc *webhooks.Service
}

// Type is policy.TypeWebhookSecret.
func (Webhooks) Type() string { return policy.TypeWebhookSecret }

// AuditLink says the feature's records name the endpoint by its id.
func (Webhooks) AuditLink() Link {
	return Link{TargetType: audit.TargetWebhookEndpoint, Relations: map[string]string{
		audit.ActionWebhookCreate:       RelCreated,
		audit.ActionWebhookSecretSet:    RelRotated,
		audit.ActionWebhookSecretRotate: RelRotated,
		audit.ActionWebhookSecretReveal: RelRevealed,
	}}
}

// List returns every endpoint of the agency that has a secret; a disabled
// endpoint is listed as disabled.
func (w Webhooks) List(ctx context.Context, agencyID int64) ([]Item, error) {
	eps, err := w.Svc.Endpoints(ctx, agencyID, "")
	if err != nil {
		return nil, err
	}
	out := make([]Item, 0, len(eps))
	for _, e := range eps {
		if e.SecretVersion == 0 {
			continue
		}
		it := Item{Type: policy.TypeWebhookSecret, ID: e.ID, Name: e.Name, Environment: e.Environment, Status: StatusActive,
			CreatedAt: e.CreatedAt, RotatedAt: e.SecretSetAt, LastUsedAt: e.LastDeliveryAt,
			DetailPath: fmt.Sprintf("/webhooks/%d", e.ID), Extra: e.URL}
		if !e.Enabled {
			it.Status = StatusDisabled
		} else {
			it.RotatePath = fmt.Sprintf("/webhooks/%d/secret", e.ID)
		}
		out = append(out, it)
	}
	return out, nil
}

// Revoke disables the endpoint: no event is signed or sent to it any more.
// Its secrets are kept so an admin can enable it again after rotating.
func (w Webhooks) Revoke(ctx context.Context, actor audit.Actor, origin audit.Origin, agencyID, id int64, _ string) error {
	e, err := w.Svc.Endpoint(ctx, agencyID, id)
	if err != nil {
		return err
	}
	if !e.Enabled {
		return ErrInactive
	}
	return w.Svc.SetEnabled(ctx, webhooks.Caller{Actor: actor, Origin: origin}, agencyID, id, false)
}

// Rotate sets a new console-generated secret with the default overlap
// window, so the receiver can switch within it without dropped events.
func (w Webhooks) Rotate(ctx context.Context, actor audit.Actor, origin audit.Origin, agencyID, id int64, _ string) (Rotation, error) {
	cur, err := w.Svc.Endpoint(ctx, agencyID, id)
	if err != nil {
		return Rotation{}, err
	}
	sec, e, err := w.Svc.SetSecret(ctx, webhooks.Caller{Actor: actor, Origin: origin}, agencyID, id, cur.SecretVersion, webhooks.SecretChoice{Generate: true, Overlap: webhooks.DefaultOverlap})
	if err != nil {
		return Rotation{}, err
	}
	s := NewSecret(sec.Reveal())
	note := "Update WEBHOOK_SECRET in the receiving application"
	if e.OverlapEndsAt != nil {
		note += " before " + e.OverlapEndsAt.UTC().Format("2006-01-02 15:04 UTC") + ", when the old secret stops being used"
	}
	return Rotation{NewSecret: &s, SecretLabel: "New webhook secret of " + e.URL + ":", Note: note + "."}, nil
}
