package models

import (
	"context"
	"fmt"
	"time"
)

// SFTP account environments.
const (
	EnvProd = "prod"
	EnvStg  = "stg"
)

// SFTPAccount is an agency's SFTP login for one environment. Name is the SSH
// user name, "<agency slug>-<environment>", unique across the console.
type SFTPAccount struct {
	ID            int64
	AgencyID      int64
	Name          string
	Environment   string
	CreatedByID   *int64
	CreatedByName string
	CreatedAt     time.Time
}

// TableName is the SFTP accounts table.
func (SFTPAccount) TableName() string { return "sftp_accounts" }

// SSHKey is a public key of an SFTP account. PublicKey is the canonical
// "type base64" form; Fingerprint is the OpenSSH SHA256 fingerprint.
type SSHKey struct {
	ID            int64
	AgencyID      int64
	AccountID     int64
	KeyType       string
	Bits          int
	Fingerprint   string
	PublicKey     string
	Comment       string
	CreatedByID   *int64
	CreatedByName string
	CreatedAt     time.Time
	ExpiresAt     *time.Time
	// ExpiredAt is when the expiry sweep recorded that ExpiresAt had passed.
	ExpiredAt     *time.Time
	RevokedAt     *time.Time
	RevokedByName string
	LastUsedAt    *time.Time
}

// TableName is the SSH keys table.
func (SSHKey) TableName() string { return "ssh_keys" }

// SSH key statuses.
const (
	SSHKeyActive  = "active"
	SSHKeyRevoked = "revoked"
	SSHKeyExpired = "expired"
)

// Status is the key's state at now: revoked, expired (recorded, or its
// expiry date has passed) or active.
func (k SSHKey) Status(now time.Time) string {
	switch {
	case k.RevokedAt != nil:
		return SSHKeyRevoked
	case k.ExpiredAt != nil, k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		return SSHKeyExpired
	}
	return SSHKeyActive
}

// LoginKey is an active key with its account, read in one query for
// public-key authentication.
type LoginKey struct {
	SSHKey
	AccountName string
}

// activeKey is the condition of a key not revoked and not recorded as
// expired; it matches the partial index ssh_keys_active_fingerprint_agency
// (unique per agency and fingerprint).
const activeKey = "revoked_at IS NULL AND expired_at IS NULL"

// SSHKeyStore reads and writes SFTP accounts and their keys. Every query that
// reads agency data filters by agency id, except the lookups of
// authentication (by account name, and fingerprint within it), where the SSH
// user name is the key.
type SSHKeyStore struct{ db *DB }

// NewSSHKeyStore returns the SSH key store.
func NewSSHKeyStore(db *DB) *SSHKeyStore { return &SSHKeyStore{db: db} }

// CreateAccount inserts an account; a taken name or (agency, environment) is
// ErrConflict.
func (s *SSHKeyStore) CreateAccount(ctx context.Context, a *SFTPAccount) error {
	if err := s.db.Conn(ctx).Create(a).Error; err != nil {
		return fmt.Errorf("models: create sftp account: %w", classify(err))
	}
	return nil
}

// Accounts lists an agency's accounts by name.
func (s *SSHKeyStore) Accounts(ctx context.Context, agencyID int64) ([]SFTPAccount, error) {
	var out []SFTPAccount
	if err := s.db.Conn(ctx).Where("agency_id = ?", agencyID).Order("name").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("models: sftp accounts: %w", classify(err))
	}
	return out, nil
}

// Account returns one account of an agency.
func (s *SSHKeyStore) Account(ctx context.Context, agencyID, id int64) (SFTPAccount, error) {
	var a SFTPAccount
	if err := s.db.Conn(ctx).Where("agency_id = ? AND id = ?", agencyID, id).Take(&a).Error; err != nil {
		return SFTPAccount{}, fmt.Errorf("models: sftp account %d: %w", id, classify(err))
	}
	return a, nil
}

// AccountByName returns the account with an SSH user name, in any agency.
func (s *SSHKeyStore) AccountByName(ctx context.Context, name string) (SFTPAccount, error) {
	var a SFTPAccount
	if err := s.db.Conn(ctx).Where("name = ?", name).Take(&a).Error; err != nil {
		return SFTPAccount{}, fmt.Errorf("models: sftp account by name: %w", classify(err))
	}
	return a, nil
}

// CreateKey inserts a key. An active key with the same fingerprint in the
// same agency is ErrConflict; another agency's copy of the key is no
// conflict.
func (s *SSHKeyStore) CreateKey(ctx context.Context, k *SSHKey) error {
	if err := s.db.Conn(ctx).Create(k).Error; err != nil {
		return fmt.Errorf("models: create ssh key: %w", classify(err))
	}
	return nil
}

// Keys lists every key of an agency, revoked and expired ones included,
// oldest first.
func (s *SSHKeyStore) Keys(ctx context.Context, agencyID int64) ([]SSHKey, error) {
	var out []SSHKey
	if err := s.db.Conn(ctx).Where("agency_id = ?", agencyID).Order("id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("models: ssh keys: %w", classify(err))
	}
	return out, nil
}

// Key returns one key of an agency.
func (s *SSHKeyStore) Key(ctx context.Context, agencyID, id int64) (SSHKey, error) {
	var k SSHKey
	if err := s.db.Conn(ctx).Where("agency_id = ? AND id = ?", agencyID, id).Take(&k).Error; err != nil {
		return SSHKey{}, fmt.Errorf("models: ssh key %d: %w", id, classify(err))
	}
	return k, nil
}

// ActiveByFingerprint returns the agency's active key (not revoked, expiry
// not recorded) with a fingerprint, on any of its accounts. Its expiry date
// may have passed: the caller compares ExpiresAt with the time.
func (s *SSHKeyStore) ActiveByFingerprint(ctx context.Context, agencyID int64, fingerprint string) (SSHKey, error) {
	var k SSHKey
	if err := s.db.Conn(ctx).Where("fingerprint = ? AND agency_id = ? AND "+activeKey, fingerprint, agencyID).Take(&k).Error; err != nil {
		return SSHKey{}, fmt.Errorf("models: active ssh key by fingerprint: %w", classify(err))
	}
	return k, nil
}

// LoginKey returns the active key with a fingerprint on the account named
// account, with the account's name, in one indexed query. The caller checks
// ExpiresAt. The same key may be active in other agencies: only the copy of
// the named account is found.
func (s *SSHKeyStore) LoginKey(ctx context.Context, account, fingerprint string) (LoginKey, error) {
	var k LoginKey
	err := s.db.Conn(ctx).Table("ssh_keys").
		Select("ssh_keys.*, sftp_accounts.name AS account_name").
		Joins("JOIN sftp_accounts ON sftp_accounts.id = ssh_keys.account_id").
		Where("ssh_keys.fingerprint = ? AND sftp_accounts.name = ? AND ssh_keys.revoked_at IS NULL AND ssh_keys.expired_at IS NULL", fingerprint, account).
		Take(&k).Error
	if err != nil {
		return LoginKey{}, fmt.Errorf("models: login key: %w", classify(err))
	}
	return k, nil
}

// ActiveKeyID returns the id of an account's active key with a fingerprint.
func (s *SSHKeyStore) ActiveKeyID(ctx context.Context, accountID int64, fingerprint string) (int64, error) {
	var k SSHKey
	err := s.db.Conn(ctx).Select("id").Where("fingerprint = ? AND "+activeKey+" AND account_id = ?", fingerprint, accountID).Take(&k).Error
	if err != nil {
		return 0, fmt.Errorf("models: active ssh key id: %w", classify(err))
	}
	return k.ID, nil
}

// UsableKeyIDs returns which of ids are keys still active (not revoked,
// expiry not recorded) whose expiry date, if any, lies after now, in any
// agency: the periodic check of open SFTP sessions, by primary key.
func (s *SSHKeyStore) UsableKeyIDs(ctx context.Context, ids []int64, now time.Time) ([]int64, error) {
	const chunk = 500
	var out []int64
	for len(ids) > 0 {
		n := min(len(ids), chunk)
		var got []int64
		err := s.db.Conn(ctx).Model(&SSHKey{}).
			Where("id IN ? AND "+activeKey+" AND (expires_at IS NULL OR expires_at > ?)", ids[:n], now.UTC()).
			Pluck("id", &got).Error
		if err != nil {
			return nil, fmt.Errorf("models: usable ssh keys: %w", classify(err))
		}
		out = append(out, got...)
		ids = ids[n:]
	}
	return out, nil
}

// AuthorizedKey is one line's worth of an authorized_keys listing.
type AuthorizedKey struct {
	PublicKey string
	Comment   string
}

// AuthorizedKeys returns the keys of the account named name that are active
// and unexpired at now, oldest first, in one indexed query. An unknown
// account has none.
func (s *SSHKeyStore) AuthorizedKeys(ctx context.Context, name string, now time.Time) ([]AuthorizedKey, error) {
	var out []AuthorizedKey
	err := s.db.Conn(ctx).Table("ssh_keys").
		Select("ssh_keys.public_key, ssh_keys.comment").
		Joins("JOIN sftp_accounts ON sftp_accounts.id = ssh_keys.account_id").
		Where("sftp_accounts.name = ? AND ssh_keys.revoked_at IS NULL AND ssh_keys.expired_at IS NULL AND (ssh_keys.expires_at IS NULL OR ssh_keys.expires_at > ?)", name, now.UTC()).
		Order("ssh_keys.id").
		Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: authorized keys: %w", classify(err))
	}
	return out, nil
}

// Revoke marks an agency's active key revoked at at; it reports false when
// the key was already revoked or its expiry recorded.
func (s *SSHKeyStore) Revoke(ctx context.Context, agencyID, id int64, at time.Time, byName string) (bool, error) {
	res := s.db.Conn(ctx).Model(&SSHKey{}).Where("agency_id = ? AND id = ? AND "+activeKey, agencyID, id).
		Updates(map[string]any{"revoked_at": at.UTC(), "revoked_by_name": byName})
	if res.Error != nil {
		return false, fmt.Errorf("models: revoke ssh key %d: %w", id, classify(res.Error))
	}
	return res.RowsAffected == 1, nil
}

// MarkExpired records that a key's expiry date has passed, once: it reports
// false when the key was revoked or already marked, or has not expired at at.
func (s *SSHKeyStore) MarkExpired(ctx context.Context, id int64, at time.Time) (bool, error) {
	res := s.db.Conn(ctx).Model(&SSHKey{}).
		Where("id = ? AND "+activeKey+" AND expires_at IS NOT NULL AND expires_at <= ?", id, at.UTC()).
		Update("expired_at", at.UTC())
	if res.Error != nil {
		return false, fmt.Errorf("models: mark ssh key %d expired: %w", id, classify(res.Error))
	}
	return res.RowsAffected == 1, nil
}

// DueForExpiry returns up to limit active keys whose expiry date is at or
// before now and not yet recorded, in any agency.
func (s *SSHKeyStore) DueForExpiry(ctx context.Context, now time.Time, limit int) ([]SSHKey, error) {
	var out []SSHKey
	err := s.db.Conn(ctx).Where("expires_at IS NOT NULL AND expires_at <= ? AND expired_at IS NULL AND revoked_at IS NULL", now.UTC()).
		Order("expires_at, id").Limit(limit).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: ssh keys due for expiry: %w", classify(err))
	}
	return out, nil
}

// TouchLastUsed raises last_used_at of each key to the given time (never
// lowers it), in one transaction.
func (s *SSHKeyStore) TouchLastUsed(ctx context.Context, lastUse map[int64]time.Time) error {
	return s.db.Tx(ctx, func(ctx context.Context) error {
		for id, at := range lastUse {
			err := s.db.Conn(ctx).Model(&SSHKey{}).
				Where("id = ? AND (last_used_at IS NULL OR last_used_at < ?)", id, at.UTC()).
				Update("last_used_at", at.UTC()).Error
			if err != nil {
				return fmt.Errorf("models: touch ssh key %d: %w", id, classify(err))
			}
		}
		return nil
	})
}

// hostKeyLock is the PostgreSQL advisory lock key that serialises creating
// the SFTP host key across replicas ("kcsftphk" read as an integer).
const hostKeyLock int64 = 0x6b63736674706b

// LockHostKeyCreation serialises the creation of the SFTP host key among
// replicas for the rest of the transaction carried by ctx. It must be the
// first statement of that transaction. PostgreSQL takes an advisory
// transaction lock. SQLite takes the database's write lock at once with a
// write that changes nothing, so that the reads that follow see every
// commit of another process and the transaction cannot fail to upgrade to a
// writer later (its transactions otherwise begin deferred).
func (s *SSHKeyStore) LockHostKeyCreation(ctx context.Context) error {
	if !InTx(ctx) {
		return fmt.Errorf("models: lock host key creation: no transaction")
	}
	q, args := "UPDATE sftp_accounts SET id = id WHERE 0 = 1", []any(nil)
	if s.db.Dialect == Postgres {
		q, args = "SELECT pg_advisory_xact_lock(?)", []any{hostKeyLock}
	}
	if err := s.db.Conn(ctx).Exec(q, args...).Error; err != nil {
		return fmt.Errorf("models: lock host key creation: %w", classify(err))
	}
	return nil
}
