package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// APICredential is an agency's OAuth client (client-credentials grant). Only
// a keyed hash of its secret is kept: SecretHash is HMAC-SHA256 of the secret
// under the pepper named by PepperID.
type APICredential struct {
	ID            int64
	AgencyID      int64
	Name          string
	Description   string
	Environment   string
	ClientID      string
	SecretHash    []byte
	PepperID      string
	SecretVersion int64
	// CreateNonce is the one-time token of the form that created the
	// credential; a resubmission of that form finds it taken.
	CreateNonce   *string
	CreatedByID   *int64
	CreatedByName string
	CreatedAt     time.Time
	RotatedAt     *time.Time
	RotatedByName string
	ExpiresAt     *time.Time
	// ExpiredAt is when the expiry was noticed and recorded.
	ExpiredAt     *time.Time
	RevokedAt     *time.Time
	RevokedByName string
	LastUsedAt    *time.Time
	UpdatedAt     time.Time
}

// TableName is the credentials table.
func (APICredential) TableName() string { return "api_credentials" }

// Revoked reports whether the credential was revoked.
func (c APICredential) Revoked() bool { return c.RevokedAt != nil }

// Expired reports whether the credential's expiry date has passed at now.
func (c APICredential) Expired(now time.Time) bool {
	return c.ExpiresAt != nil && !now.Before(*c.ExpiresAt)
}

// AuthCredential is what the token endpoint needs about a client: the
// credential and the slug of its agency, read in one query.
type AuthCredential struct {
	APICredential
	AgencySlug string
}

// APIClientStore reads and writes API credentials. Every query that reads
// agency data filters by the agency id, except AuthByClientID, which serves the
// token endpoint where the client_id is the key.
type APIClientStore struct{ db *DB }

// NewAPIClientStore returns the API credential store.
func NewAPIClientStore(db *DB) *APIClientStore { return &APIClientStore{db: db} }

// Create inserts a credential. A live credential of the same name and
// environment in the agency, or a reused create nonce, is ErrConflict.
func (s *APIClientStore) Create(ctx context.Context, c *APICredential) error {
	if err := s.db.Conn(ctx).Create(c).Error; err != nil {
		return fmt.Errorf("models: create api credential: %w", classify(err))
	}
	return nil
}

// Get returns one credential of an agency.
func (s *APIClientStore) Get(ctx context.Context, agencyID, id int64) (APICredential, error) {
	var c APICredential
	if err := s.db.Conn(ctx).Where("agency_id = ? AND id = ?", agencyID, id).Take(&c).Error; err != nil {
		return APICredential{}, fmt.Errorf("models: api credential %d: %w", id, classify(err))
	}
	return c, nil
}

// GetForUpdate returns one credential of an agency, locked for the rest of
// the transaction in ctx (PostgreSQL row lock; SQLite has a single writer).
func (s *APIClientStore) GetForUpdate(ctx context.Context, agencyID, id int64) (APICredential, error) {
	q := s.db.Conn(ctx).Where("agency_id = ? AND id = ?", agencyID, id)
	if s.db.Dialect == Postgres {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var c APICredential
	if err := q.Take(&c).Error; err != nil {
		return APICredential{}, fmt.Errorf("models: api credential %d: %w", id, classify(err))
	}
	return c, nil
}

// ByNonce returns the credential an agency created with a form nonce.
func (s *APIClientStore) ByNonce(ctx context.Context, agencyID int64, nonce string) (APICredential, error) {
	var c APICredential
	if err := s.db.Conn(ctx).Where("agency_id = ? AND create_nonce = ?", agencyID, nonce).Take(&c).Error; err != nil {
		return APICredential{}, fmt.Errorf("models: api credential by nonce: %w", classify(err))
	}
	return c, nil
}

// List returns every credential of an agency, by environment then name.
func (s *APIClientStore) List(ctx context.Context, agencyID int64) ([]APICredential, error) {
	var out []APICredential
	if err := s.db.Conn(ctx).Where("agency_id = ?", agencyID).Order("environment, name, id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("models: list api credentials: %w", classify(err))
	}
	return out, nil
}

// The statements of Page, one pair per cursor use. On SQLite the
// timestamps are read as their text, which parseDBTime reads far faster
// than the driver.
var (
	pageSQL = dialectSQL{
		SQLite: `
			SELECT id, name, client_id, created_by_name, CAST(created_at AS TEXT), CAST(rotated_at AS TEXT),
			       CAST(expires_at AS TEXT), CAST(revoked_at AS TEXT), CAST(last_used_at AS TEXT)
			FROM api_credentials
			WHERE agency_id = ? AND environment = ?
			ORDER BY id DESC
			LIMIT ?`,
		Postgres: `
			SELECT id, name, client_id, created_by_name, created_at, rotated_at,
			       expires_at, revoked_at, last_used_at
			FROM api_credentials
			WHERE agency_id = $1 AND environment = $2
			ORDER BY id DESC
			LIMIT $3`,
	}
	pageBeforeSQL = dialectSQL{
		SQLite: `
			SELECT id, name, client_id, created_by_name, CAST(created_at AS TEXT), CAST(rotated_at AS TEXT),
			       CAST(expires_at AS TEXT), CAST(revoked_at AS TEXT), CAST(last_used_at AS TEXT)
			FROM api_credentials
			WHERE agency_id = ? AND environment = ? AND id < ?
			ORDER BY id DESC
			LIMIT ?`,
		Postgres: `
			SELECT id, name, client_id, created_by_name, created_at, rotated_at,
			       expires_at, revoked_at, last_used_at
			FROM api_credentials
			WHERE agency_id = $1 AND environment = $2 AND id < $3
			ORDER BY id DESC
			LIMIT $4`,
	}
)

// CredentialListRow is one credential as a list of credentials shows it:
// what Page reads, and nothing else.
type CredentialListRow struct {
	ID            int64
	AgencyID      int64
	Environment   string
	Name          string
	ClientID      string
	CreatedByName string
	CreatedAt     time.Time
	RotatedAt     *time.Time
	ExpiresAt     *time.Time
	RevokedAt     *time.Time
	LastUsedAt    *time.Time
}

// Page returns up to limit credentials of an agency in one environment,
// newest first, older than beforeID when it is positive: a keyset page
// read through the (agency_id, environment, id) index, so a page costs the
// same however many credentials the agency has.
func (s *APIClientStore) Page(ctx context.Context, agencyID int64, environment string, beforeID int64, limit int) ([]CredentialListRow, error) {
	q, args := pageSQL, []any{agencyID, environment, limit}
	if beforeID > 0 {
		q, args = pageBeforeSQL, []any{agencyID, environment, beforeID, limit}
	}
	rows, err := s.db.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("models: api credentials page: %w", classify(err))
	}
	defer rows.Close()
	out := make([]CredentialListRow, 0, limit)
	for rows.Next() {
		out = append(out, CredentialListRow{AgencyID: agencyID, Environment: environment})
		c := &out[len(out)-1]
		if err := rows.Scan(&c.ID, &c.Name, &c.ClientID, &c.CreatedByName, scanTime(&c.CreatedAt),
			scanNullTime(&c.RotatedAt), scanNullTime(&c.ExpiresAt), scanNullTime(&c.RevokedAt), scanNullTime(&c.LastUsedAt)); err != nil {
			return nil, fmt.Errorf("models: api credentials page: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("models: api credentials page: %w", classify(err))
	}
	return out, nil
}

// AuthByClientID returns a credential with its agency's slug by client_id: one
// indexed query, made for every token request so a regenerated or revoked
// secret stops working at once on every replica. Only the columns of
// authByClientIDSQL are read.
func (s *APIClientStore) AuthByClientID(ctx context.Context, clientID string) (AuthCredential, error) {
	var c AuthCredential
	// One row scanned straight into its fields: GORM's statement building
	// and reflection were a third of the lookup.
	err := s.db.queryRow(ctx, authByClientIDSQL, clientID).Scan(&c.ID, &c.AgencyID, &c.Name, &c.Environment,
		&c.ClientID, &c.SecretHash, &c.SecretVersion, &c.PepperID, &c.ExpiresAt, &c.RevokedAt, &c.AgencySlug)
	if errors.Is(err, sql.ErrNoRows) {
		err = gorm.ErrRecordNotFound
	}
	if err != nil {
		return AuthCredential{}, fmt.Errorf("models: api credential by client id: %w", classify(err))
	}
	return c, nil
}

// authByClientIDSQL names the columns authentication reads instead of
// api_credentials.*: that halves the statement's compile time, which the
// SQLite driver pays on every execution.
var authByClientIDSQL = dialectSQL{
	SQLite: `
		SELECT c.id, c.agency_id, c.name, c.environment, c.client_id, c.secret_hash, c.secret_version,
		       c.pepper_id, c.expires_at, c.revoked_at, a.slug
		FROM api_credentials c
		JOIN agencies a ON a.id = c.agency_id
		WHERE c.client_id = ?
		LIMIT 1`,
	Postgres: `
		SELECT c.id, c.agency_id, c.name, c.environment, c.client_id, c.secret_hash, c.secret_version,
		       c.pepper_id, c.expires_at, c.revoked_at, a.slug
		FROM api_credentials c
		JOIN agencies a ON a.id = c.agency_id
		WHERE c.client_id = $1
		LIMIT 1`,
}

// ReplaceSecret stores a new secret hash for a live credential of an
// agency, only if its secret version is still expectVersion; it reports
// whether the row changed.
func (s *APIClientStore) ReplaceSecret(ctx context.Context, agencyID, id, expectVersion int64, hash []byte, pepperID, by string, now time.Time) (bool, error) {
	res := s.db.Conn(ctx).Model(&APICredential{}).
		Where("agency_id = ? AND id = ? AND secret_version = ? AND revoked_at IS NULL", agencyID, id, expectVersion).
		Updates(map[string]any{
			"secret_hash":     hash,
			"pepper_id":       pepperID,
			"secret_version":  gorm.Expr("secret_version + 1"),
			"rotated_at":      now,
			"rotated_by_name": by,
			"updated_at":      now,
		})
	if res.Error != nil {
		return false, fmt.Errorf("models: replace api secret: %w", classify(res.Error))
	}
	return res.RowsAffected == 1, nil
}

// Revoke marks a live credential of an agency revoked; it reports whether
// the row changed (false when it was already revoked).
func (s *APIClientStore) Revoke(ctx context.Context, agencyID, id int64, by string, now time.Time) (bool, error) {
	res := s.db.Conn(ctx).Model(&APICredential{}).
		Where("agency_id = ? AND id = ? AND revoked_at IS NULL", agencyID, id).
		Updates(map[string]any{"revoked_at": now, "revoked_by_name": by, "updated_at": now})
	if res.Error != nil {
		return false, fmt.Errorf("models: revoke api credential: %w", classify(res.Error))
	}
	return res.RowsAffected == 1, nil
}

// TouchLastUsed raises last_used_at of each credential to the given time,
// never lowering it, so replicas flushing in any order converge on the
// latest use.
func (s *APIClientStore) TouchLastUsed(ctx context.Context, lastUse map[int64]time.Time) error {
	// In id order, so that replicas flushing overlapping sets take their
	// row locks in the same order (PostgreSQL) instead of deadlocking.
	ids := make([]int64, 0, len(lastUse))
	for id := range lastUse {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return s.db.Tx(ctx, func(ctx context.Context) error {
		// One prepared statement for the whole flush: through GORM's
		// builder each of up to tens of thousands of rows cost its own
		// statement building and reflection, a burst of CPU once a minute
		// that the token endpoint's latency felt.
		for _, id := range ids {
			at := lastUse[id].UTC().Truncate(time.Microsecond)
			args := []any{at, id, at}
			if s.db.Dialect == Postgres {
				args = args[:2]
			}
			if _, err := s.db.exec(ctx, touchLastUsedSQL, args...); err != nil {
				return fmt.Errorf("models: record api credential use: %w", classify(err))
			}
		}
		return nil
	})
}

var touchLastUsedSQL = dialectSQL{
	SQLite: `
		UPDATE api_credentials SET last_used_at = ?
		WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
	Postgres: `
		UPDATE api_credentials SET last_used_at = $1
		WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)`,
}

// DueForExpiry returns up to limit live credentials whose expiry date has
// passed at now but whose expiry has not been recorded yet.
func (s *APIClientStore) DueForExpiry(ctx context.Context, now time.Time, limit int) ([]APICredential, error) {
	var out []APICredential
	err := s.db.Conn(ctx).
		Where("expires_at IS NOT NULL AND expires_at <= ? AND expired_at IS NULL AND revoked_at IS NULL", now).
		Order("id").Limit(limit).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: api credentials due for expiry: %w", classify(err))
	}
	return out, nil
}

// MarkExpired records that a credential's expiry passed; it reports whether
// this call was the one that recorded it.
func (s *APIClientStore) MarkExpired(ctx context.Context, id int64, now time.Time) (bool, error) {
	res := s.db.Conn(ctx).Model(&APICredential{}).
		Where("id = ? AND expired_at IS NULL", id).
		Updates(map[string]any{"expired_at": now, "updated_at": now})
	if res.Error != nil {
		return false, fmt.Errorf("models: mark api credential expired: %w", classify(res.Error))
	}
	return res.RowsAffected == 1, nil
}

// History returns up to limit audit events of an agency about one target
// (exact target type and id), newest first, before beforeID when positive.
func (s *APIClientStore) History(ctx context.Context, agencyID int64, targetType, targetID string, beforeID int64, limit int) ([]AuditEvent, error) {
	q := s.db.Conn(ctx).Where("agency_id = ? AND target_type = ? AND target_id = ?", agencyID, targetType, targetID)
	if beforeID > 0 {
		q = q.Where("id < ?", beforeID)
	}
	var out []AuditEvent
	if err := q.Order("id DESC").Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("models: api credential history: %w", classify(err))
	}
	return out, nil
}

// LockPlatformKeys serialises the creation and rotation of platform key
// material (the API-secret pepper, token signing keys) across replicas for
// the rest of the transaction in ctx: a PostgreSQL advisory lock, or, on
// SQLite, the database's single writer.
func (s *APIClientStore) LockPlatformKeys(ctx context.Context) error {
	if !InTx(ctx) {
		return fmt.Errorf("models: lock platform keys: needs a transaction")
	}
	if s.db.Dialect != Postgres {
		return nil
	}
	// The lock id is fixed: "kc_keys" read as an integer.
	if err := s.db.Conn(ctx).Exec("SELECT pg_advisory_xact_lock(?)", int64(0x6b635f6b657973)).Error; err != nil {
		return fmt.Errorf("models: lock platform keys: %w", classify(err))
	}
	return nil
}

// Token signing key statuses.
const (
	TokenKeyActive  = "active"
	TokenKeyRetired = "retired"
	TokenKeyExpired = "expired"
)

// TokenSigningKey lists one access-token signing key; its private part is a
// sealed secret (record type token_signing_key, agency 0, record id KID).
type TokenSigningKey struct {
	KID          string `gorm:"column:kid;primaryKey"`
	Status       string
	CreatedAt    time.Time
	ActivatesAt  time.Time
	NotAfter     *time.Time
	PublishUntil *time.Time
	UpdatedAt    time.Time
}

// TableName is the signing key table.
func (TokenSigningKey) TableName() string { return "token_signing_keys" }

// TokenKeyStore reads and writes the list of token signing keys.
type TokenKeyStore struct{ db *DB }

// NewTokenKeyStore returns the token signing key store.
func NewTokenKeyStore(db *DB) *TokenKeyStore { return &TokenKeyStore{db: db} }

// All returns every key, newest first.
func (s *TokenKeyStore) All(ctx context.Context) ([]TokenSigningKey, error) {
	var out []TokenSigningKey
	if err := s.db.Conn(ctx).Order("created_at DESC, kid").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("models: token signing keys: %w", classify(err))
	}
	return out, nil
}

// Live returns the active and retired keys, newest first.
func (s *TokenKeyStore) Live(ctx context.Context) ([]TokenSigningKey, error) {
	var out []TokenSigningKey
	err := s.db.Conn(ctx).Where("status IN ?", []string{TokenKeyActive, TokenKeyRetired}).
		Order("created_at DESC, kid").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: live token signing keys: %w", classify(err))
	}
	return out, nil
}

// Insert adds a key; a second active key is ErrConflict.
func (s *TokenKeyStore) Insert(ctx context.Context, k *TokenSigningKey) error {
	if err := s.db.Conn(ctx).Create(k).Error; err != nil {
		return fmt.Errorf("models: insert token signing key: %w", classify(err))
	}
	return nil
}

// Retire turns the active key kid into a retired one that signs until
// notAfter and is published until publishUntil.
func (s *TokenKeyStore) Retire(ctx context.Context, kid string, notAfter, publishUntil, now time.Time) error {
	res := s.db.Conn(ctx).Model(&TokenSigningKey{}).Where("kid = ? AND status = ?", kid, TokenKeyActive).
		Updates(map[string]any{"status": TokenKeyRetired, "not_after": notAfter, "publish_until": publishUntil, "updated_at": now})
	if res.Error != nil {
		return fmt.Errorf("models: retire token signing key: %w", classify(res.Error))
	}
	if res.RowsAffected != 1 {
		return fmt.Errorf("models: retire token signing key %s: %w", kid, ErrConflict)
	}
	return nil
}

// Expire marks a retired key expired.
func (s *TokenKeyStore) Expire(ctx context.Context, kid string, now time.Time) (bool, error) {
	res := s.db.Conn(ctx).Model(&TokenSigningKey{}).Where("kid = ? AND status = ?", kid, TokenKeyRetired).
		Updates(map[string]any{"status": TokenKeyExpired, "updated_at": now})
	if res.Error != nil {
		return false, fmt.Errorf("models: expire token signing key: %w", classify(res.Error))
	}
	return res.RowsAffected == 1, nil
}
