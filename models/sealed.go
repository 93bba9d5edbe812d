package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm/clause"
)

// SealedSecret is one envelope-encrypted secret, owned by the record named by
// (RecordType, RecordID) in an agency (0 for platform secrets).
type SealedSecret struct {
	ID         int64
	AgencyID   int64
	RecordType string
	RecordID   string
	Provider   string
	KeyID      string
	Blob       []byte
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// SealedStore reads and writes sealed secrets.
type SealedStore struct{ db *DB }

// NewSealedStore returns the sealed-secret store.
func NewSealedStore(db *DB) *SealedStore { return &SealedStore{db: db} }

// Upsert writes the sealed secret of a record, replacing an older one.
func (s *SealedStore) Upsert(ctx context.Context, v *SealedSecret) error {
	err := s.db.Conn(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "record_type"}, {Name: "record_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"agency_id", "provider", "key_id", "blob", "updated_at"}),
	}).Create(v).Error
	if err != nil {
		return fmt.Errorf("models: store sealed secret: %w", classify(err))
	}
	return nil
}

// Get returns the sealed secret of a record in an agency.
func (s *SealedStore) Get(ctx context.Context, agencyID int64, recordType, recordID string) (SealedSecret, error) {
	var v SealedSecret
	err := s.db.Conn(ctx).Where("agency_id = ? AND record_type = ? AND record_id = ?", agencyID, recordType, recordID).Take(&v).Error
	if err != nil {
		return SealedSecret{}, fmt.Errorf("models: sealed secret %s/%s: %w", recordType, recordID, classify(err))
	}
	return v, nil
}

// Delete removes the sealed secret of a record (destroying it).
func (s *SealedStore) Delete(ctx context.Context, agencyID int64, recordType, recordID string) error {
	err := s.db.Conn(ctx).Where("agency_id = ? AND record_type = ? AND record_id = ?", agencyID, recordType, recordID).Delete(&SealedSecret{}).Error
	if err != nil {
		return fmt.Errorf("models: delete sealed secret: %w", classify(err))
	}
	return nil
}

// NotUnderKey returns up to limit sealed secrets whose key id differs from
// keyID, after afterID, in id order: the work list of a rewrap.
func (s *SealedStore) NotUnderKey(ctx context.Context, keyID string, afterID int64, limit int) ([]SealedSecret, error) {
	var out []SealedSecret
	err := s.db.Conn(ctx).Where("key_id <> ? AND id > ?", keyID, afterID).Order("id").Limit(limit).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: sealed secrets to rewrap: %w", classify(err))
	}
	return out, nil
}

// CountNotUnderKey counts sealed secrets under another key id.
func (s *SealedStore) CountNotUnderKey(ctx context.Context, keyID string) (int64, error) {
	var n int64
	if err := s.db.Conn(ctx).Model(&SealedSecret{}).Where("key_id <> ?", keyID).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("models: count sealed secrets: %w", classify(err))
	}
	return n, nil
}

// ReplaceBlob swaps a rewrapped blob in, only if the row still holds the blob
// that was rewrapped (a concurrent change wins).
func (s *SealedStore) ReplaceBlob(ctx context.Context, id int64, old []byte, keyID string, blob []byte, now time.Time) (bool, error) {
	res := s.db.Conn(ctx).Model(&SealedSecret{}).Where("id = ? AND blob = ?", id, old).
		Updates(map[string]any{"key_id": keyID, "blob": blob, "updated_at": now})
	if res.Error != nil {
		return false, fmt.Errorf("models: replace sealed blob: %w", classify(res.Error))
	}
	return res.RowsAffected == 1, nil
}
