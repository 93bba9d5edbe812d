package models

import (
	"context"
	"fmt"
	"time"
)

// BySeq returns the event of an agency's chain at a sequence number.
func (s *AuditStore) BySeq(ctx context.Context, agencyID, seq int64) (AuditEvent, error) {
	var e AuditEvent
	if err := s.db.Conn(ctx).Where("agency_id = ? AND seq = ?", agencyID, seq).Take(&e).Error; err != nil {
		return AuditEvent{}, fmt.Errorf("models: audit event seq %d: %w", seq, classify(err))
	}
	return e, nil
}

// FirstInChain returns the lowest-sequence event of an agency's chain.
func (s *AuditStore) FirstInChain(ctx context.Context, agencyID int64) (AuditEvent, error) {
	var e AuditEvent
	if err := s.db.Conn(ctx).Where("agency_id = ?", agencyID).Order("seq ASC").Limit(1).Take(&e).Error; err != nil {
		return AuditEvent{}, fmt.Errorf("models: first audit event: %w", classify(err))
	}
	return e, nil
}

// FirstAtOrAfter returns the lowest-sequence event of an agency that occurred
// at or after t, leaving out events with the action skip (purge anchors carry
// the time they were written, not the time of the span they stand for).
func (s *AuditStore) FirstAtOrAfter(ctx context.Context, agencyID int64, t time.Time, skip string) (AuditEvent, error) {
	var e AuditEvent
	err := s.db.Conn(ctx).Where("agency_id = ? AND occurred_at >= ? AND action <> ?", agencyID, t.UTC(), skip).
		Order("seq ASC").Limit(1).Take(&e).Error
	if err != nil {
		return AuditEvent{}, fmt.Errorf("models: audit event after %s: %w", t.UTC().Format(time.RFC3339), classify(err))
	}
	return e, nil
}

// CountThrough returns how many events of an agency have seq <= seq, leaving
// out events with the action skip.
func (s *AuditStore) CountThrough(ctx context.Context, agencyID, seq int64, skip string) (int64, error) {
	var n int64
	err := s.db.Conn(ctx).Model(&AuditEvent{}).Where("agency_id = ? AND seq <= ? AND action <> ?", agencyID, seq, skip).Count(&n).Error
	if err != nil {
		return 0, fmt.Errorf("models: count audit events: %w", classify(err))
	}
	return n, nil
}

// DeleteThrough removes every event of an agency with seq <= seq and returns
// how many were removed. Only the audit purge calls it, inside the
// transaction that also writes the purge anchor and the purge record.
func (s *AuditStore) DeleteThrough(ctx context.Context, agencyID, seq int64) (int64, error) {
	res := s.db.Conn(ctx).Where("agency_id = ? AND seq <= ?", agencyID, seq).Delete(&AuditEvent{})
	if res.Error != nil {
		return 0, fmt.Errorf("models: delete audit events: %w", classify(res.Error))
	}
	return res.RowsAffected, nil
}

// Insert writes an event without moving the chain head (purge anchors, which
// take the place of the removed span at the start of the chain).
func (s *AuditStore) Insert(ctx context.Context, e *AuditEvent) error {
	if err := s.db.Conn(ctx).Create(e).Error; err != nil {
		return fmt.Errorf("models: insert audit event: %w", classify(err))
	}
	return nil
}
