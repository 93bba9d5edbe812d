package auth

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"keyconsole/models"
	"keyconsole/services/audit"
)

// Failed sign-in limits: CJIS allows at most 5 consecutive failed sign-ins
// of an account within 15 minutes before it delays further attempts.
const (
	// DefaultMaxFailures is the number of failures that pauses an account.
	DefaultMaxFailures = 5
	// DefaultFailureWindow is how long a failure counts against an account.
	DefaultFailureWindow = 15 * time.Minute
)

// A failure counts against one account only: the identity provider's
// subject, which only the provider can vouch for, so nobody can pause
// another person's account by failing on purpose. Refusals before the
// subject is known (bad state, unreadable tokens) count against no account.

// lockedUntil returns when the account's sign-ins resume, or the zero time
// if it may sign in now.
func (s *Service) lockedUntil(ctx context.Context, provider, subject string, now time.Time) (time.Time, error) {
	if subject == "" {
		return time.Time{}, nil
	}
	times, err := s.failures.Since(ctx, provider, subject, now.Add(-s.cfg.FailureWindow), s.cfg.MaxFailures)
	if err != nil {
		return time.Time{}, fmt.Errorf("auth: sign-in failures: %w", err)
	}
	if len(times) < s.cfg.MaxFailures {
		return time.Time{}, nil
	}
	// The account may sign in again once the oldest of its last
	// MaxFailures failures leaves the window.
	return times[s.cfg.MaxFailures-1].Add(s.cfg.FailureWindow), nil
}

// recordFailure counts a failed sign-in of the account and returns when its
// sign-ins resume if this failure paused it.
func (s *Service) recordFailure(ctx context.Context, provider, subject, reason string, now time.Time) (time.Time, error) {
	if subject == "" {
		return time.Time{}, nil
	}
	if err := s.failures.Prune(ctx, now.Add(-s.cfg.FailureWindow)); err != nil {
		return time.Time{}, err
	}
	if err := s.failures.Record(ctx, &models.SignInFailure{Provider: provider, Subject: clip(subject, 255), Reason: reason, FailedAt: now}); err != nil {
		return time.Time{}, err
	}
	return s.lockedUntil(ctx, provider, clip(subject, 255), now)
}

// clearFailures forgets the account's failures after a successful sign-in:
// the limit is on consecutive failures.
func (s *Service) clearFailures(ctx context.Context, provider, subject string) error {
	return s.failures.Clear(ctx, provider, clip(subject, 255))
}

// lockedRefusal is the refusal shown while an account is paused.
func (s *Service) lockedRefusal(until time.Time) *Refusal {
	return &Refusal{RefusedThrottled, fmt.Sprintf(
		"Too many failed sign-ins for this account (%d within %d minutes). Sign-in for this account is paused until %s UTC; other accounts are not affected. If these attempts were not yours, tell your agency administrator.",
		s.cfg.MaxFailures, int(s.cfg.FailureWindow/time.Minute), until.UTC().Format("15:04"))}
}

// refuseLocked audits a sign-in refused because the account is paused.
func (s *Service) refuseLocked(ctx context.Context, actor audit.Actor, providerID string, until time.Time, origin audit.Origin) (*Refusal, error) {
	err := s.audit.Record(ctx, audit.Event{AgencyID: models.PlatformAgencyID, Actor: actor, Action: audit.ActionSignInRefused,
		TargetType: "provider", TargetID: providerID, Outcome: audit.OutcomeDenied, Reason: RefusedThrottled, Origin: origin,
		Details: map[string]string{"provider": providerID, "paused_until": until.UTC().Format(time.RFC3339),
			"max_failures": strconv.Itoa(s.cfg.MaxFailures), "window": s.cfg.FailureWindow.String()}})
	if err != nil {
		return nil, err
	}
	return s.lockedRefusal(until), nil
}

// anonymousActor names an account not (or not yet) known as a user.
func anonymousActor(providerID, subject string) audit.Actor {
	if subject == "" {
		return audit.Actor{Type: audit.ActorAnonymous}
	}
	return audit.Actor{Type: audit.ActorAnonymous, ID: clip(providerID+":"+subject, 200)}
}
