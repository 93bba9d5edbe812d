package policy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"keyconsole/models"
	"keyconsole/services/audit"
)

// Service keeps agency policies and IdP secret expiry dates in the database.
// It is the console's policy Source.
type Service struct {
	db    *models.DB
	store *models.PolicyStore
	audit *audit.Recorder
	clock func() time.Time
}

// NewService returns the stored-policy service.
func NewService(db *models.DB, store *models.PolicyStore, rec *audit.Recorder, clock func() time.Time) *Service {
	if clock == nil {
		clock = time.Now
	}
	return &Service{db: db, store: store, audit: rec, clock: clock}
}

func (s *Service) now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }

// Policy returns the agency's policy: its stored one, or the default.
func (s *Service) Policy(ctx context.Context, agencyID int64) (Policy, error) {
	p, _, err := s.Current(ctx, agencyID)
	return p, err
}

// Stored describes where an agency's policy comes from.
type Stored struct {
	// Custom is false while the agency uses the default policy.
	Custom    bool
	UpdatedAt time.Time
}

// Current returns the agency's policy and whether it was set by the agency.
func (s *Service) Current(ctx context.Context, agencyID int64) (Policy, Stored, error) {
	row, err := s.store.Get(ctx, agencyID)
	if errors.Is(err, models.ErrNotFound) {
		return Default(), Stored{}, nil
	}
	if err != nil {
		return Policy{}, Stored{}, fmt.Errorf("policy: %w", err)
	}
	return fromRow(row), Stored{Custom: true, UpdatedAt: row.UpdatedAt}, nil
}

func fromRow(r models.AgencyPolicy) Policy {
	return Policy{
		MaxAgeDays: map[string]int{
			TypeAPICredential: r.APICredentialMaxAgeDays,
			TypeSSHKey:        r.SSHKeyMaxAgeDays,
			TypeWebhookSecret: r.WebhookSecretMaxAgeDays,
		},
		DueSoonDays:    r.DueSoonDays,
		UnusedDays:     r.UnusedDays,
		MinRSABits:     r.MinRSABits,
		IdPWarningDays: r.IdPWarningDays,
	}
}

// Change is an admin's edit of the agency policy.
type Change struct {
	AgencyID   int64
	AgencyName string
	UserID     int64
	Actor      audit.Actor
	Origin     audit.Origin
	// Preset names the preset applied, if the change came from one.
	Preset string
	Policy Policy
}

// Update validates and stores a new policy for the agency and records the
// change with every changed value before and after. It returns the changed
// field names; none means nothing was written or recorded. A refused policy
// returns a *ValidationError and changes nothing.
func (s *Service) Update(ctx context.Context, c Change) ([]string, error) {
	if err := Validate(c.Policy); err != nil {
		return nil, err
	}
	var changed []string
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		// Locked before the read even when the agency has no row yet, so
		// two first saves do not both record the default as "before".
		if err := s.store.LockAgency(ctx, c.AgencyID); err != nil {
			return err
		}
		before := Default()
		row, err := s.store.GetForUpdate(ctx, c.AgencyID)
		switch {
		case err == nil:
			before = fromRow(row)
		case errors.Is(err, models.ErrNotFound):
			row = models.AgencyPolicy{AgencyID: c.AgencyID, CreatedAt: s.now()}
		default:
			return err
		}
		changed = Changes(before, c.Policy)
		if len(changed) == 0 {
			return nil
		}
		now := s.now()
		uid := c.UserID
		row.APICredentialMaxAgeDays = c.Policy.MaxAgeDays[TypeAPICredential]
		row.SSHKeyMaxAgeDays = c.Policy.MaxAgeDays[TypeSSHKey]
		row.WebhookSecretMaxAgeDays = c.Policy.MaxAgeDays[TypeWebhookSecret]
		row.DueSoonDays = c.Policy.DueSoonDays
		row.UnusedDays = c.Policy.UnusedDays
		row.MinRSABits = c.Policy.MinRSABits
		row.IdPWarningDays = c.Policy.IdPWarningDays
		row.UpdatedByUserID = &uid
		row.UpdatedAt = now
		if err := s.store.Put(ctx, &row); err != nil {
			return err
		}
		fb, fa := before.Fields(), c.Policy.Fields()
		details := map[string]string{"changed": strings.Join(changed, ",")}
		for _, k := range changed {
			details["before."+k] = strconv.Itoa(fb[k])
			details["after."+k] = strconv.Itoa(fa[k])
		}
		if c.Preset != "" {
			details["preset"] = c.Preset
		}
		return s.audit.Record(ctx, audit.Event{AgencyID: c.AgencyID, Actor: c.Actor, Action: audit.ActionPolicyUpdate,
			TargetType: "policy", TargetID: strconv.FormatInt(c.AgencyID, 10), TargetName: c.AgencyName,
			Outcome: audit.OutcomeSuccess, Origin: c.Origin, Details: details})
	})
	if err != nil {
		return nil, fmt.Errorf("policy: update agency %d: %w", c.AgencyID, err)
	}
	return changed, nil
}

// IdPSecrets returns the recorded expiries of the agency, by provider id.
func (s *Service) IdPSecrets(ctx context.Context, agencyID int64) (map[string]models.IdPSecretExpiry, error) {
	rows, err := s.store.IdPSecrets(ctx, agencyID)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	out := make(map[string]models.IdPSecretExpiry, len(rows))
	for _, r := range rows {
		out[r.Provider] = r
	}
	return out, nil
}

// IdPSecretChange records (or, with a nil ExpiresAt, clears) the expiry date
// of one provider's client secret.
type IdPSecretChange struct {
	AgencyID      int64
	UserID        int64
	Actor         audit.Actor
	Origin        audit.Origin
	Provider      string
	ProviderLabel string
	ProviderKind  string
	ExpiresAt     *time.Time
	Note          string
}

// SetIdPSecret validates and stores an expiry date, audited with the date
// before and after. A refused date returns a *ValidationError.
func (s *Service) SetIdPSecret(ctx context.Context, c IdPSecretChange) error {
	now := s.now()
	errs := map[string]string{}
	if c.ExpiresAt != nil {
		exp := c.ExpiresAt.UTC()
		switch {
		case exp.Before(now.AddDate(-5, 0, 0)):
			errs["expires_at"] = "The expiry date is too far in the past to be right."
		case c.ProviderKind == "azure" && exp.After(now.AddDate(0, 24, 1)):
			errs["expires_at"] = "Azure AD client secrets expire within 24 months; check the date in the Azure portal."
		case exp.After(now.AddDate(10, 0, 0)):
			errs["expires_at"] = "The expiry date must be within the next ten years."
		}
	}
	if len(c.Note) > 200 {
		errs["note"] = "The note must be at most 200 characters."
	}
	if strings.ContainsAny(c.Note, "\r\n") {
		errs["note"] = "The note must be a single line."
	}
	if len(errs) > 0 {
		return &ValidationError{Fields: errs}
	}
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		// The date replaced is read under the agency's lock, so concurrent
		// records each audit the one they replaced.
		if err := s.store.LockAgency(ctx, c.AgencyID); err != nil {
			return err
		}
		before := ""
		old, err := s.store.IdPSecret(ctx, c.AgencyID, c.Provider)
		switch {
		case err == nil:
			before = old.ExpiresAt.UTC().Format(time.DateOnly)
		case errors.Is(err, models.ErrNotFound):
		default:
			return err
		}
		details := map[string]string{"provider": c.Provider, "before.expires_at": before}
		action := audit.ActionIdPSecretRecord
		if c.ExpiresAt == nil {
			if before == "" {
				return nil
			}
			if err := s.store.DeleteIdPSecret(ctx, c.AgencyID, c.Provider); err != nil {
				return err
			}
			action = audit.ActionIdPSecretDelete
		} else {
			if before == c.ExpiresAt.UTC().Format(time.DateOnly) && old.Note == c.Note {
				return nil
			}
			uid := c.UserID
			e := &models.IdPSecretExpiry{AgencyID: c.AgencyID, Provider: c.Provider, ExpiresAt: c.ExpiresAt.UTC(), Note: c.Note,
				RecordedByUserID: &uid, CreatedAt: now, UpdatedAt: now}
			if err := s.store.PutIdPSecret(ctx, e); err != nil {
				return err
			}
			details["after.expires_at"] = e.ExpiresAt.Format(time.DateOnly)
		}
		return s.audit.Record(ctx, audit.Event{AgencyID: c.AgencyID, Actor: c.Actor, Action: action,
			TargetType: "idp_secret", TargetID: c.Provider, TargetName: c.ProviderLabel,
			Outcome: audit.OutcomeSuccess, Origin: c.Origin, Details: details})
	})
	if err != nil {
		return fmt.Errorf("policy: idp secret %s: %w", c.Provider, err)
	}
	return nil
}
