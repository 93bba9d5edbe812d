package models

import (
	"context"
	"fmt"
	"time"
)

// SignInFailure is one failed sign-in of an account (a provider's subject):
// the identity provider vouched for the subject, and the console refused it.
type SignInFailure struct {
	ID       int64
	Provider string
	Subject  string
	Reason   string
	FailedAt time.Time
}

// SignInFailureStore counts failed sign-ins per account.
type SignInFailureStore struct{ db *DB }

// NewSignInFailureStore returns the failed sign-in store.
func NewSignInFailureStore(db *DB) *SignInFailureStore { return &SignInFailureStore{db: db} }

// Record adds a failure of the account.
func (s *SignInFailureStore) Record(ctx context.Context, f *SignInFailure) error {
	if err := s.db.Conn(ctx).Create(f).Error; err != nil {
		return fmt.Errorf("models: record sign-in failure: %w", classify(err))
	}
	return nil
}

// Since returns the times of the account's failures after since, newest
// first, at most limit of them.
func (s *SignInFailureStore) Since(ctx context.Context, provider, subject string, since time.Time, limit int) ([]time.Time, error) {
	var rows []SignInFailure
	err := s.db.Conn(ctx).Where("provider = ? AND subject = ? AND failed_at > ?", provider, subject, since).
		Order("failed_at DESC").Order("id DESC").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("models: sign-in failures: %w", classify(err))
	}
	out := make([]time.Time, len(rows))
	for i, r := range rows {
		out[i] = r.FailedAt.UTC()
	}
	return out, nil
}

// Clear removes the account's failures (after a successful sign-in).
func (s *SignInFailureStore) Clear(ctx context.Context, provider, subject string) error {
	if err := s.db.Conn(ctx).Where("provider = ? AND subject = ?", provider, subject).Delete(&SignInFailure{}).Error; err != nil {
		return fmt.Errorf("models: clear sign-in failures: %w", classify(err))
	}
	return nil
}

// Prune removes every failure older than before.
func (s *SignInFailureStore) Prune(ctx context.Context, before time.Time) error {
	if err := s.db.Conn(ctx).Where("failed_at < ?", before).Delete(&SignInFailure{}).Error; err != nil {
		return fmt.Errorf("models: prune sign-in failures: %w", classify(err))
	}
	return nil
}
