package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// AgencyPolicy is an agency's stored rotation policy. An agency without one
// has the default policy.
type AgencyPolicy struct {
	AgencyID                int64 `gorm:"primaryKey;autoIncrement:false"`
	APICredentialMaxAgeDays int   `gorm:"column:api_credential_max_age_days"`
	SSHKeyMaxAgeDays        int   `gorm:"column:ssh_key_max_age_days"`
	WebhookSecretMaxAgeDays int   `gorm:"column:webhook_secret_max_age_days"`
	DueSoonDays             int
	UnusedDays              int
	MinRSABits              int `gorm:"column:min_rsa_bits"`
	IdPWarningDays          int `gorm:"column:idp_warning_days"`
	UpdatedByUserID         *int64
	CreatedAt               time.Time
	UpdatedAt               time.Time
}

// IdPSecretExpiry is the recorded expiry date of the client secret of one of
// the agency's identity provider applications. The secret stays in the IdP.
type IdPSecretExpiry struct {
	ID               int64
	AgencyID         int64
	Provider         string
	ExpiresAt        time.Time
	Note             string
	RecordedByUserID *int64
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// TableName names the table of IdP secret expiries.
func (IdPSecretExpiry) TableName() string { return "idp_secret_expiries" }

// PolicyStore reads and writes agency policies and IdP secret expiries.
type PolicyStore struct{ db *DB }

// NewPolicyStore returns the policy store.
func NewPolicyStore(db *DB) *PolicyStore { return &PolicyStore{db: db} }

// Get returns an agency's stored policy, or ErrNotFound when it has none.
//
// Most pages read the policy; the row is scanned straight into its fields,
// without GORM's statement building and reflection (and the error value
// GORM builds for the common case of an agency on the defaults).
func (s *PolicyStore) Get(ctx context.Context, agencyID int64) (AgencyPolicy, error) {
	var p AgencyPolicy
	err := s.db.queryRow(ctx, policyGetSQL, agencyID).Scan(&p.AgencyID, &p.APICredentialMaxAgeDays, &p.SSHKeyMaxAgeDays,
		&p.WebhookSecretMaxAgeDays, &p.DueSoonDays, &p.UnusedDays, &p.MinRSABits, &p.IdPWarningDays, &p.UpdatedByUserID, &p.CreatedAt, &p.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		err = gorm.ErrRecordNotFound
	}
	if err != nil {
		return AgencyPolicy{}, fmt.Errorf("models: policy of agency %d: %w", agencyID, classify(err))
	}
	return p, nil
}

var policyGetSQL = dialectSQL{
	SQLite: `
		SELECT agency_id, api_credential_max_age_days, ssh_key_max_age_days, webhook_secret_max_age_days,
		       due_soon_days, unused_days, min_rsa_bits, idp_warning_days, updated_by_user_id, created_at, updated_at
		FROM agency_policies
		WHERE agency_id = ?`,
	Postgres: `
		SELECT agency_id, api_credential_max_age_days, ssh_key_max_age_days, webhook_secret_max_age_days,
		       due_soon_days, unused_days, min_rsa_bits, idp_warning_days, updated_by_user_id, created_at, updated_at
		FROM agency_policies
		WHERE agency_id = $1`,
}

// LockAgency serialises changes to an agency's policy and IdP secret
// records for the rest of the transaction in ctx, whether or not a row
// exists yet: a change reads what it replaces (for the audit record's
// "before") and must not read what a concurrent first write is replacing.
// PostgreSQL locks the agency's row (FOR NO KEY UPDATE, which leaves
// inserts referencing the agency free); SQLite has one writer.
func (s *PolicyStore) LockAgency(ctx context.Context, agencyID int64) error {
	if !InTx(ctx) {
		return fmt.Errorf("models: lock agency policy: needs a transaction")
	}
	if s.db.Dialect != Postgres {
		return nil
	}
	if err := s.db.Conn(ctx).Exec("SELECT id FROM agencies WHERE id = ? FOR NO KEY UPDATE", agencyID).Error; err != nil {
		return fmt.Errorf("models: lock agency policy %d: %w", agencyID, classify(err))
	}
	return nil
}

// GetForUpdate returns an agency's stored policy locked for the rest of the
// transaction in ctx (PostgreSQL; SQLite has one writer), or ErrNotFound.
func (s *PolicyStore) GetForUpdate(ctx context.Context, agencyID int64) (AgencyPolicy, error) {
	q := s.db.Conn(ctx).Where("agency_id = ?", agencyID)
	if s.db.Dialect == Postgres {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var p AgencyPolicy
	if err := q.Take(&p).Error; err != nil {
		return AgencyPolicy{}, fmt.Errorf("models: policy of agency %d: %w", agencyID, classify(err))
	}
	return p, nil
}

// Put inserts or replaces an agency's policy.
func (s *PolicyStore) Put(ctx context.Context, p *AgencyPolicy) error {
	err := s.db.Conn(ctx).Clauses(clause.OnConflict{
		Columns: []clause.Column{{Name: "agency_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"api_credential_max_age_days", "ssh_key_max_age_days", "webhook_secret_max_age_days",
			"due_soon_days", "unused_days", "min_rsa_bits", "idp_warning_days", "updated_by_user_id", "updated_at"}),
	}).Create(p).Error
	if err != nil {
		return fmt.Errorf("models: put policy of agency %d: %w", p.AgencyID, classify(err))
	}
	return nil
}

// IdPSecrets lists an agency's recorded IdP secret expiries by provider.
func (s *PolicyStore) IdPSecrets(ctx context.Context, agencyID int64) ([]IdPSecretExpiry, error) {
	var out []IdPSecretExpiry
	if err := s.db.Conn(ctx).Where("agency_id = ?", agencyID).Order("provider, id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("models: idp secrets: %w", classify(err))
	}
	return out, nil
}

// IdPSecret returns the recorded expiry of one provider's secret, or ErrNotFound.
func (s *PolicyStore) IdPSecret(ctx context.Context, agencyID int64, provider string) (IdPSecretExpiry, error) {
	var e IdPSecretExpiry
	if err := s.db.Conn(ctx).Where("agency_id = ? AND provider = ?", agencyID, provider).Take(&e).Error; err != nil {
		return IdPSecretExpiry{}, fmt.Errorf("models: idp secret %s: %w", provider, classify(err))
	}
	return e, nil
}

// PutIdPSecret inserts or replaces the expiry of one provider's secret.
func (s *PolicyStore) PutIdPSecret(ctx context.Context, e *IdPSecretExpiry) error {
	err := s.db.Conn(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "agency_id"}, {Name: "provider"}},
		DoUpdates: clause.AssignmentColumns([]string{"expires_at", "note", "recorded_by_user_id", "updated_at"}),
	}).Create(e).Error
	if err != nil {
		return fmt.Errorf("models: put idp secret %s: %w", e.Provider, classify(err))
	}
	got, err := s.IdPSecret(ctx, e.AgencyID, e.Provider)
	if err != nil {
		return err
	}
	*e = got
	return nil
}

// DeleteIdPSecret removes the record of one provider's secret; ErrNotFound
// when there is none.
func (s *PolicyStore) DeleteIdPSecret(ctx context.Context, agencyID int64, provider string) error {
	res := s.db.Conn(ctx).Where("agency_id = ? AND provider = ?", agencyID, provider).Delete(&IdPSecretExpiry{})
	if res.Error != nil {
		return fmt.Errorf("models: delete idp secret %s: %w", provider, classify(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("models: delete idp secret %s: %w", provider, ErrNotFound)
	}
	return nil
}

// ActorTouch is what a user did to one audit target: the action, how often
// and when last, summed over the agency's successful audit records.
type ActorTouch struct {
	TargetType string
	TargetID   string
	TargetName string
	Action     string
	Count      int64
	LastAt     time.Time
}

// TouchesByUser summarises the successful audit records of an agency whose
// actor is the given user, per target and action, for the given target types.
func (s *PolicyStore) TouchesByUser(ctx context.Context, agencyID, userID int64, targetTypes []string) ([]ActorTouch, error) {
	if len(targetTypes) == 0 {
		return nil, nil
	}
	var rows []struct {
		TargetType string
		TargetID   string
		TargetName string
		Action     string
		N          int64
		LastID     int64
	}
	err := s.db.Conn(ctx).Model(&AuditEvent{}).
		Select("target_type, target_id, MAX(target_name) AS target_name, action, COUNT(*) AS n, MAX(id) AS last_id").
		Where("agency_id = ? AND actor_type = ? AND actor_id = ? AND outcome = ? AND target_type IN ?",
			agencyID, "user", fmt.Sprint(userID), "success", targetTypes).
		Group("target_type, target_id, action").Order("target_type, target_id, action").
		Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("models: audit touches of user %d: %w", userID, classify(err))
	}
	ids := make([]int64, 0, len(rows))
	for _, r := range rows {
		ids = append(ids, r.LastID)
	}
	at := map[int64]time.Time{}
	for start := 0; start < len(ids); start += 500 {
		end := min(start+500, len(ids))
		var evs []AuditEvent
		if err := s.db.Conn(ctx).Select("id, occurred_at").Where("id IN ?", ids[start:end]).Find(&evs).Error; err != nil {
			return nil, fmt.Errorf("models: audit touches of user %d: %w", userID, classify(err))
		}
		for _, e := range evs {
			at[e.ID] = e.OccurredAt
		}
	}
	out := make([]ActorTouch, 0, len(rows))
	for _, r := range rows {
		out = append(out, ActorTouch{TargetType: r.TargetType, TargetID: r.TargetID, TargetName: r.TargetName, Action: r.Action, Count: r.N, LastAt: at[r.LastID]})
	}
	return out, nil
}

// OperationEvents returns an agency's audit records of one linked operation
// (details carrying "operation": op), oldest first.
func (s *PolicyStore) OperationEvents(ctx context.Context, agencyID int64, op string) ([]AuditEvent, error) {
	if op == "" || strings.ContainsAny(op, `"%_\`) {
		return nil, fmt.Errorf("models: operation events: %w", ErrNotFound)
	}
	var out []AuditEvent
	err := s.db.Conn(ctx).Where("agency_id = ? AND details LIKE ?", agencyID, `%"operation":"`+op+`"%`).
		Order("id").Limit(5000).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: operation events: %w", classify(err))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("models: operation %s: %w", op, ErrNotFound)
	}
	return out, nil
}
