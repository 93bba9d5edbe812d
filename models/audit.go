package models

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// PlatformAgencyID is the chain of events that belong to no agency (platform
// operators' actions, sign-ins that never reached an agency).
const PlatformAgencyID int64 = 0

// AuditEvent is one security-relevant event. Each agency's events form a hash
// chain: Hash covers PrevHash and every other field.
type AuditEvent struct {
	ID         int64
	AgencyID   int64
	Seq        int64
	OccurredAt time.Time
	ActorType  string
	ActorID    string
	ActorName  string
	Action     string
	TargetType string
	TargetID   string
	TargetName string
	Outcome    string
	Reason     string
	SourceIP   string
	UserAgent  string
	RequestID  string
	Details    string
	PrevHash   string
	Hash       string
}

// AuditHead is the newest link of one agency's chain.
type AuditHead struct {
	AgencyID  int64 `gorm:"primaryKey;autoIncrement:false"`
	Seq       int64
	Hash      string
	UpdatedAt time.Time
}

// AuditFilter selects audit events of one agency.
type AuditFilter struct {
	AgencyID   int64
	From, To   *time.Time
	Actor      string
	Action     string
	TargetType string
	Target     string
	Outcome    string
	// BeforeID gives keyset pagination: only events with a smaller id.
	BeforeID int64
	// AfterID selects events with a larger id (ascending walks).
	AfterID int64
}

// AuditStore appends to and reads the audit chain.
type AuditStore struct{ db *DB }

// NewAuditStore returns the audit store.
func NewAuditStore(db *DB) *AuditStore { return &AuditStore{db: db} }

// LockHead returns the chain head of an agency, locked for the rest of the
// transaction in ctx (PostgreSQL row lock; SQLite has a single writer).
func (s *AuditStore) LockHead(ctx context.Context, agencyID int64, genesis string, now time.Time) (AuditHead, error) {
	c := s.db.Conn(ctx)
	if err := c.Clauses(clause.OnConflict{DoNothing: true}).Create(&AuditHead{AgencyID: agencyID, Seq: 0, Hash: genesis, UpdatedAt: now}).Error; err != nil {
		return AuditHead{}, fmt.Errorf("models: audit head: %w", classify(err))
	}
	q := c.Where("agency_id = ?", agencyID)
	if s.db.Dialect == Postgres {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var h AuditHead
	if err := q.Take(&h).Error; err != nil {
		return AuditHead{}, fmt.Errorf("models: audit head: %w", classify(err))
	}
	return h, nil
}

// Append inserts an event and moves the chain head to it.
func (s *AuditStore) Append(ctx context.Context, e *AuditEvent) error {
	c := s.db.Conn(ctx)
	if err := c.Create(e).Error; err != nil {
		return fmt.Errorf("models: append audit event: %w", classify(err))
	}
	res := c.Model(&AuditHead{}).Where("agency_id = ? AND seq = ?", e.AgencyID, e.Seq-1).
		Updates(map[string]any{"seq": e.Seq, "hash": e.Hash, "updated_at": e.OccurredAt})
	if res.Error != nil {
		return fmt.Errorf("models: move audit head: %w", classify(res.Error))
	}
	if res.RowsAffected != 1 {
		return fmt.Errorf("models: move audit head: %w", ErrConflict)
	}
	return nil
}

// Head returns an agency's chain head without locking it.
func (s *AuditStore) Head(ctx context.Context, agencyID int64) (AuditHead, error) {
	var h AuditHead
	if err := s.db.Conn(ctx).Where("agency_id = ?", agencyID).Take(&h).Error; err != nil {
		return AuditHead{}, fmt.Errorf("models: audit head: %w", classify(err))
	}
	return h, nil
}

// Heads returns every chain head.
func (s *AuditStore) Heads(ctx context.Context) ([]AuditHead, error) {
	var out []AuditHead
	if err := s.db.Conn(ctx).Order("agency_id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("models: audit heads: %w", classify(err))
	}
	return out, nil
}

func (s *AuditStore) filtered(ctx context.Context, f AuditFilter) *gorm.DB {
	q := s.db.Conn(ctx).Model(&AuditEvent{}).Where("agency_id = ?", f.AgencyID)
	if f.From != nil {
		q = q.Where("occurred_at >= ?", f.From.UTC())
	}
	if f.To != nil {
		q = q.Where("occurred_at < ?", f.To.UTC())
	}
	if f.Actor != "" {
		q = q.Where("(actor_name = ? OR actor_id = ?)", f.Actor, f.Actor)
	}
	if f.Action != "" {
		if strings.HasSuffix(f.Action, ".") {
			q = q.Where("action LIKE ?", strings.ReplaceAll(f.Action, "%", "")+"%")
		} else {
			q = q.Where("action = ?", f.Action)
		}
	}
	if f.TargetType != "" {
		q = q.Where("target_type = ?", f.TargetType)
	}
	if f.Target != "" {
		q = q.Where("(target_id = ? OR target_name = ?)", f.Target, f.Target)
	}
	if f.Outcome != "" {
		q = q.Where("outcome = ?", f.Outcome)
	}
	if f.BeforeID > 0 {
		q = q.Where("id < ?", f.BeforeID)
	}
	if f.AfterID > 0 {
		q = q.Where("id > ?", f.AfterID)
	}
	return q
}

// Page returns up to limit events matching f, newest first (keyset on id).
func (s *AuditStore) Page(ctx context.Context, f AuditFilter, limit int) ([]AuditEvent, error) {
	var out []AuditEvent
	if err := s.filtered(ctx, f).Order("id DESC").Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("models: audit page: %w", classify(err))
	}
	return out, nil
}

// Count returns how many events match f.
func (s *AuditStore) Count(ctx context.Context, f AuditFilter) (int64, error) {
	var n int64
	if err := s.filtered(ctx, f).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("models: audit count: %w", classify(err))
	}
	return n, nil
}

// ByID returns one event of an agency.
func (s *AuditStore) ByID(ctx context.Context, agencyID, id int64) (AuditEvent, error) {
	var e AuditEvent
	if err := s.db.Conn(ctx).Where("agency_id = ? AND id = ?", agencyID, id).Take(&e).Error; err != nil {
		return AuditEvent{}, fmt.Errorf("models: audit event %d: %w", id, classify(err))
	}
	return e, nil
}

// ChainOrder returns up to limit events of an agency with seq > afterSeq, by seq.
func (s *AuditStore) ChainOrder(ctx context.Context, agencyID, afterSeq int64, limit int) ([]AuditEvent, error) {
	var out []AuditEvent
	if err := s.db.Conn(ctx).Where("agency_id = ? AND seq > ?", agencyID, afterSeq).Order("seq ASC").Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("models: audit chain: %w", classify(err))
	}
	return out, nil
}
