package webhooks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"keyconsole/models"
	"keyconsole/services/audit"
)

// Reasons recorded when a rotation window ends.
const (
	EndReasonExpired    = "window_expired"
	EndReasonByAdmin    = "ended_by_admin"
	EndReasonNoOverlap  = "no_overlap"
	EndReasonSuperseded = "superseded"
)

// SystemActor is the audit actor of the background sweep and worker.
func SystemActor() audit.Actor {
	return audit.Actor{Type: audit.ActorSystem, ID: "webhooks", Name: "webhook rotation sweep"}
}

func secretFromBytes(b []byte) Secret { return Secret{v: &secretValue{b: b}} }

// wipe overwrites a secret opened for one use.
func (s Secret) wipe() {
	if s.v != nil {
		clear(s.v.b)
	}
}

// SetSecret gives an endpoint a new secret, generated or typed (a typed one
// refused by ParseSecret is an *InputError and nothing changes). The first
// secret of an endpoint takes effect at once. Otherwise a rotation starts: for
// Overlap (0 to MaxOverlap) every delivery is signed with the new secret and
// the old one, new first; then the old secret is destroyed. Setting a secret
// while a window is open replaces the new secret of that window and keeps the
// old one, so a receiver still on the old secret keeps working; Overlap then
// sets the window's end anew. The new secret is returned to be shown once.
//
// version is the secret version the caller's form was shown for. The check
// is optimistic, like an API credential's regeneration: if the secret was set
// since (a resubmitted form, or a concurrent submission that won), the
// attempt is refused with ErrChanged, audited as denied, and nothing
// changes, so of several submissions of one form exactly one takes effect
// and every secret shown is the one in use.
func (s *Service) SetSecret(ctx context.Context, by Caller, agencyID, id, version int64, sc SecretChoice) (Secret, models.WebhookEndpoint, error) {
	fields := map[string]string{}
	if sc.Overlap < 0 || sc.Overlap > MaxOverlap {
		fields["overlap"] = "Choose an overlap of 0 to 72 hours."
	}
	sec, source, err := choose(sc)
	if err != nil {
		var ie *InputError
		if !errors.As(err, &ie) {
			return Secret{}, models.WebhookEndpoint{}, fmt.Errorf("webhooks: set secret %d: %w", id, err)
		}
		fields["secret"] = ie.Fields["secret"]
	}
	if len(fields) > 0 {
		return Secret{}, models.WebhookEndpoint{}, &InputError{Fields: fields}
	}
	var out, stale, locked models.WebhookEndpoint
	err = s.db.Tx(ctx, func(ctx context.Context) error {
		e, err := s.store.LockEndpoint(ctx, agencyID, id)
		if err != nil {
			return err
		}
		if e.SecretVersion != version {
			stale = e
			return errStale
		}
		locked = e
		now := s.clock()
		newVersion := max(e.SecretVersion, e.PreviousVersion) + 1
		if err := s.secrets.Put(ctx, SecretRef(agencyID, id, newVersion), sec.raw()); err != nil {
			return err
		}
		cols := map[string]any{"secret_version": newVersion, "secret_set_at": now, "new_secret_verified_at": nil, "updated_at": now}
		details := map[string]string{"secret_source": source, "secret_version": strconv.FormatInt(newVersion, 10)}
		action := audit.ActionWebhookSecretRotate
		previous := e.PreviousVersion
		var ended []endedVersion

		switch {
		case e.SecretVersion == 0:
			action = audit.ActionWebhookSecretSet
		case e.InOverlap(now):
			// The pending new secret is replaced; the old one stays.
			if err := s.secrets.Delete(ctx, SecretRef(agencyID, id, e.SecretVersion)); err != nil {
				return err
			}
			details["replaced_version"] = strconv.FormatInt(e.SecretVersion, 10)
		default:
			if e.PreviousVersion != 0 {
				// A window that ended but was not swept yet ends now.
				ended = append(ended, endedVersion{e.PreviousVersion, EndReasonExpired})
			}
			previous = e.SecretVersion
		}
		if e.SecretVersion != 0 {
			if sc.Overlap == 0 {
				if previous != 0 {
					ended = append(ended, endedVersion{previous, EndReasonNoOverlap})
				}
				previous = 0
			}
			details["overlap_hours"] = strconv.FormatFloat(sc.Overlap.Hours(), 'f', -1, 64)
		}
		cols["previous_version"] = previous
		if previous != 0 {
			end := now.Add(sc.Overlap)
			cols["overlap_ends_at"] = end
			details["previous_version"] = strconv.FormatInt(previous, 10)
			details["overlap_ends_at"] = end.Format(time.RFC3339)
		} else {
			cols["overlap_ends_at"] = nil
		}
		ok, err := s.store.UpdateEndpointIf(ctx, agencyID, id, e.SecretVersion, e.PreviousVersion, cols)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: %w", ErrChanged, models.ErrConflict)
		}
		if err := s.record(ctx, by, e, action, audit.OutcomeSuccess, "", details); err != nil {
			return err
		}
		for _, v := range ended {
			if err := s.secrets.Delete(ctx, SecretRef(agencyID, id, v.version)); err != nil {
				return err
			}
			if err := s.record(ctx, by, e, audit.ActionWebhookRotationEnded, audit.OutcomeSuccess, v.reason,
				map[string]string{"destroyed_version": strconv.FormatInt(v.version, 10), "secret_version": strconv.FormatInt(newVersion, 10)}); err != nil {
				return err
			}
		}
		out, err = s.store.Endpoint(ctx, agencyID, id)
		return err
	})
	if errors.Is(err, errStale) {
		sec.wipe()
		return Secret{}, models.WebhookEndpoint{}, s.refuseStaleSecret(ctx, by, stale, version)
	}
	if err != nil {
		if locked.ID != 0 {
			action := audit.ActionWebhookSecretRotate
			if locked.SecretVersion == 0 {
				action = audit.ActionWebhookSecretSet
			}
			err = s.recordKMSRefusal(ctx, by, locked, action, map[string]string{"secret_source": source}, err)
		}
		return Secret{}, models.WebhookEndpoint{}, fmt.Errorf("webhooks: set secret %d: %w", id, err)
	}
	return sec, out, nil
}

// errStale ends SetSecret's transaction when the form's version is not the
// endpoint's any more.
var errStale = errors.New("webhooks: stale secret version")

// refuseStaleSecret audits a secret set refused for a stale version, in its
// own transaction (the attempt changed nothing), and returns ErrChanged, or
// the audit failure if the record could not be written.
func (s *Service) refuseStaleSecret(ctx context.Context, by Caller, e models.WebhookEndpoint, version int64) error {
	action := audit.ActionWebhookSecretRotate
	if e.SecretVersion == 0 {
		action = audit.ActionWebhookSecretSet
	}
	details := map[string]string{"secret_version": strconv.FormatInt(e.SecretVersion, 10), "form_version": strconv.FormatInt(version, 10)}
	if err := s.record(ctx, by, e, action, audit.OutcomeDenied, "stale", details); err != nil {
		return fmt.Errorf("webhooks: set secret %d: %w", e.ID, err)
	}
	return fmt.Errorf("webhooks: set secret %d: %w: %w", e.ID, ErrChanged, models.ErrConflict)
}

type endedVersion struct {
	version int64
	reason  string
}

// Reveal opens an endpoint's current secret for an administrator and audits
// it (a failure to open is audited too).
func (s *Service) Reveal(ctx context.Context, by Caller, agencyID, id int64) (Secret, models.WebhookEndpoint, error) {
	e, err := s.store.Endpoint(ctx, agencyID, id)
	if err != nil {
		return Secret{}, models.WebhookEndpoint{}, fmt.Errorf("webhooks: reveal %d: %w", id, err)
	}
	if e.SecretVersion == 0 {
		return Secret{}, e, fmt.Errorf("webhooks: reveal %d: %w", id, ErrNoSecret)
	}
	pt, err := s.secrets.Get(ctx, SecretRef(agencyID, id, e.SecretVersion))
	details := map[string]string{"secret_version": strconv.FormatInt(e.SecretVersion, 10)}
	if err != nil {
		reason := kmsReason(err)
		if reason == "" {
			reason = "error"
		}
		if aerr := s.record(ctx, by, e, audit.ActionWebhookSecretReveal, audit.OutcomeFailure, reason, details); aerr != nil {
			return Secret{}, e, errors.Join(err, aerr)
		}
		return Secret{}, e, fmt.Errorf("webhooks: reveal %d: %w", id, err)
	}
	if err := s.record(ctx, by, e, audit.ActionWebhookSecretReveal, audit.OutcomeSuccess, "", details); err != nil {
		clear(pt)
		return Secret{}, e, fmt.Errorf("webhooks: reveal %d: %w", id, err)
	}
	return secretFromBytes(pt), e, nil
}

// EndRotation ends an endpoint's rotation window now: the old secret is
// destroyed and deliveries carry the new signature alone.
func (s *Service) EndRotation(ctx context.Context, by Caller, agencyID, id int64) error {
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		e, err := s.store.LockEndpoint(ctx, agencyID, id)
		if err != nil {
			return err
		}
		if e.PreviousVersion == 0 {
			return ErrNoRotation
		}
		return s.endWindow(ctx, by, e, EndReasonByAdmin)
	})
	if err != nil {
		return fmt.Errorf("webhooks: end rotation %d: %w", id, err)
	}
	return nil
}

// endWindow destroys the previous secret of a locked endpoint and records it.
func (s *Service) endWindow(ctx context.Context, by Caller, e models.WebhookEndpoint, reason string) error {
	now := s.clock()
	ok, err := s.store.UpdateEndpointIf(ctx, e.AgencyID, e.ID, e.SecretVersion, e.PreviousVersion,
		map[string]any{"previous_version": 0, "overlap_ends_at": nil, "updated_at": now})
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %w", ErrChanged, models.ErrConflict)
	}
	if err := s.secrets.Delete(ctx, SecretRef(e.AgencyID, e.ID, e.PreviousVersion)); err != nil {
		return err
	}
	details := map[string]string{
		"destroyed_version": strconv.FormatInt(e.PreviousVersion, 10),
		"secret_version":    strconv.FormatInt(e.SecretVersion, 10),
	}
	if e.OverlapEndsAt != nil {
		details["window_end"] = e.OverlapEndsAt.UTC().Format(time.RFC3339)
	}
	if e.NewSecretVerifiedAt != nil {
		details["receiver_verified_at"] = e.NewSecretVerifiedAt.UTC().Format(time.RFC3339)
	}
	return s.record(ctx, by, e, audit.ActionWebhookRotationEnded, audit.OutcomeSuccess, reason, details)
}

// EndExpiredRotations ends every rotation window, of any agency, whose end has
// passed: the old secret is destroyed and the end audited by the system. It
// returns how many windows it ended.
func (s *Service) EndExpiredRotations(ctx context.Context) (int, error) {
	n := 0
	for {
		list, err := s.store.ExpiredOverlaps(ctx, s.clock(), 100)
		if err != nil {
			return n, fmt.Errorf("webhooks: sweep: %w", err)
		}
		if len(list) == 0 {
			return n, nil
		}
		progressed := false
		for _, cand := range list {
			err := s.db.Tx(ctx, func(ctx context.Context) error {
				e, err := s.store.LockEndpoint(ctx, cand.AgencyID, cand.ID)
				if err != nil {
					return err
				}
				if e.PreviousVersion == 0 || e.OverlapEndsAt == nil || e.OverlapEndsAt.After(s.clock()) {
					return nil
				}
				progressed = true
				n++
				return s.endWindow(ctx, Caller{Actor: SystemActor()}, e, EndReasonExpired)
			})
			if err != nil && !errors.Is(err, models.ErrNotFound) && !errors.Is(err, models.ErrConflict) {
				return n, fmt.Errorf("webhooks: sweep endpoint %d: %w", cand.ID, err)
			}
		}
		if !progressed {
			return n, nil
		}
	}
}

// signingSecrets opens the secrets an attempt is signed with at now: the
// current one, and the previous one during an open window unless newOnly.
// It returns them newest first with a label naming their versions.
func (s *Service) signingSecrets(ctx context.Context, e models.WebhookEndpoint, now time.Time, newOnly bool) ([]Secret, string, error) {
	if e.SecretVersion == 0 {
		return nil, "", ErrNoSecret
	}
	versions := []int64{e.SecretVersion}
	if e.InOverlap(now) && !newOnly {
		versions = append(versions, e.PreviousVersion)
	}
	out := make([]Secret, 0, len(versions))
	label := ""
	for _, v := range versions {
		pt, err := s.secrets.Get(ctx, SecretRef(e.AgencyID, e.ID, v))
		if err != nil {
			for _, o := range out {
				o.wipe()
			}
			return nil, "", fmt.Errorf("webhooks: open secret v%d: %w", v, err)
		}
		out = append(out, secretFromBytes(pt))
		if label != "" {
			label += "+"
		}
		label += "v" + strconv.FormatInt(v, 10)
	}
	return out, label, nil
}
