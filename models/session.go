package models

import (
	"context"
	"fmt"
	"time"
)

// Session is a signed-in browser session, kept on the server so that sign-out,
// timeouts and disabling a user take effect at once on every replica. ID is the
// SHA-256 of the token in the cookie, never the token itself.
type Session struct {
	ID              string
	UserID          int64
	Provider        string
	CurrentAgencyID *int64
	CreatedAt       time.Time
	LastSeenAt      time.Time
	AuthTime        time.Time
	RevokedAt       *time.Time
	RevokeReason    string
	SourceIP        string
	UserAgent       string
}

// LoginAttempt records an authorization request so its callback is accepted once.
type LoginAttempt struct {
	StateHash  string `gorm:"primaryKey"`
	Provider   string
	CreatedAt  time.Time
	ConsumedAt *time.Time
}

// SessionStore reads and writes sessions and login attempts.
type SessionStore struct{ db *DB }

// NewSessionStore returns the session store.
func NewSessionStore(db *DB) *SessionStore { return &SessionStore{db: db} }

// Create inserts a session.
func (s *SessionStore) Create(ctx context.Context, sess *Session) error {
	if err := s.db.Conn(ctx).Create(sess).Error; err != nil {
		return fmt.Errorf("models: create session: %w", classify(err))
	}
	return nil
}

// ByID finds a session by the hash of its token.
func (s *SessionStore) ByID(ctx context.Context, id string) (Session, error) {
	var sess Session
	if err := s.db.Conn(ctx).Where("id = ?", id).Take(&sess).Error; err != nil {
		return Session{}, fmt.Errorf("models: session: %w", classify(err))
	}
	return sess, nil
}

// Touch records activity on a session.
func (s *SessionStore) Touch(ctx context.Context, id string, at time.Time) error {
	if err := s.db.Conn(ctx).Model(&Session{}).Where("id = ? AND revoked_at IS NULL", id).Update("last_seen_at", at).Error; err != nil {
		return fmt.Errorf("models: touch session: %w", classify(err))
	}
	return nil
}

// SetAgency changes the agency a session is looking at.
func (s *SessionStore) SetAgency(ctx context.Context, id string, agencyID int64) error {
	if err := s.db.Conn(ctx).Model(&Session{}).Where("id = ?", id).Update("current_agency_id", agencyID).Error; err != nil {
		return fmt.Errorf("models: session agency: %w", classify(err))
	}
	return nil
}

// SetAuthTime records a fresh sign-in on an existing session.
func (s *SessionStore) SetAuthTime(ctx context.Context, id string, at time.Time) error {
	if err := s.db.Conn(ctx).Model(&Session{}).Where("id = ?", id).Updates(map[string]any{"auth_time": at, "last_seen_at": at}).Error; err != nil {
		return fmt.Errorf("models: session auth time: %w", classify(err))
	}
	return nil
}

// Revoke ends a session; it reports whether a live session was ended.
func (s *SessionStore) Revoke(ctx context.Context, id, reason string, at time.Time) (bool, error) {
	res := s.db.Conn(ctx).Model(&Session{}).Where("id = ? AND revoked_at IS NULL", id).
		Updates(map[string]any{"revoked_at": at, "revoke_reason": reason})
	if res.Error != nil {
		return false, fmt.Errorf("models: revoke session: %w", classify(res.Error))
	}
	return res.RowsAffected > 0, nil
}

// RevokeUser ends every live session of a user and returns how many.
func (s *SessionStore) RevokeUser(ctx context.Context, userID int64, reason string, at time.Time) (int64, error) {
	res := s.db.Conn(ctx).Model(&Session{}).Where("user_id = ? AND revoked_at IS NULL", userID).
		Updates(map[string]any{"revoked_at": at, "revoke_reason": reason})
	if res.Error != nil {
		return 0, fmt.Errorf("models: revoke user sessions: %w", classify(res.Error))
	}
	return res.RowsAffected, nil
}

// CreateAttempt records a started authorization request.
func (s *SessionStore) CreateAttempt(ctx context.Context, a *LoginAttempt) error {
	if err := s.db.Conn(ctx).Create(a).Error; err != nil {
		return fmt.Errorf("models: create login attempt: %w", classify(err))
	}
	return nil
}

// ConsumeAttempt marks a login attempt used. It returns ErrNotFound if the
// attempt is unknown, already used or older than maxAge.
func (s *SessionStore) ConsumeAttempt(ctx context.Context, stateHash string, now time.Time, maxAge time.Duration) (LoginAttempt, error) {
	var a LoginAttempt
	c := s.db.Conn(ctx)
	res := c.Model(&LoginAttempt{}).
		Where("state_hash = ? AND consumed_at IS NULL AND created_at > ?", stateHash, now.Add(-maxAge)).
		Update("consumed_at", now)
	if res.Error != nil {
		return a, fmt.Errorf("models: consume login attempt: %w", classify(res.Error))
	}
	if res.RowsAffected != 1 {
		return a, fmt.Errorf("models: consume login attempt: %w", ErrNotFound)
	}
	if err := c.Where("state_hash = ?", stateHash).Take(&a).Error; err != nil {
		return a, fmt.Errorf("models: consume login attempt: %w", classify(err))
	}
	return a, nil
}

// PruneAttempts deletes login attempts older than the cutoff.
func (s *SessionStore) PruneAttempts(ctx context.Context, before time.Time) error {
	if err := s.db.Conn(ctx).Where("created_at < ?", before).Delete(&LoginAttempt{}).Error; err != nil {
		return fmt.Errorf("models: prune login attempts: %w", classify(err))
	}
	return nil
}
