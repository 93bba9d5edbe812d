// Package policy holds an agency's rotation policy and evaluates credentials
// against it: age against the maximum per secret type, the due-soon window
// and the unused-after threshold.
package policy

import (
	"context"
	"time"

	"keyconsole/models"
)

// Secret types a policy covers.
const (
	TypeAPICredential = "api_credential"
	TypeSSHKey        = "ssh_key"
	TypeWebhookSecret = "webhook_secret"
)

// Policy is an agency's rotation policy.
type Policy struct {
	MaxAgeDays     map[string]int
	DueSoonDays    int
	UnusedDays     int
	MinRSABits     int
	IdPWarningDays int
}

// Default is the policy of an agency that has not set its own: rotate API
// credentials every 90 days, SSH keys every 365 and webhook secrets every 180.
func Default() Policy {
	return Policy{
		MaxAgeDays:     map[string]int{TypeAPICredential: 90, TypeSSHKey: 365, TypeWebhookSecret: 180},
		DueSoonDays:    14,
		UnusedDays:     90,
		MinRSABits:     3072,
		IdPWarningDays: 30,
	}
}

// MaxAge returns the maximum age of a secret type.
func (p Policy) MaxAge(secretType string) time.Duration {
	d := p.MaxAgeDays[secretType]
	if d <= 0 {
		d = Default().MaxAgeDays[secretType]
	}
	return time.Duration(d) * 24 * time.Hour
}

// Age states of a credential against the policy.
const (
	AgeOK      = "ok"
	AgeDueSoon = "due_soon"
	AgeOverdue = "overdue"
)

// Use states of a credential.
const (
	UseRecent = "recent"
	UseNever  = "never_used"
	UseUnused = "unused"
)

// Evaluation is one credential measured against the policy.
type Evaluation struct {
	Age       time.Duration
	AgeState  string
	DueAt     time.Time
	UseState  string
	DaysToDue int
}

// Evaluate measures a credential of secretType last rotated (or created) at
// rotatedAt and last used at lastUsed (nil: never) at time now. Overdue starts
// exactly at the maximum age; due soon starts DueSoonDays before it. A
// credential never used is "never_used" once it is older than the unused
// threshold, so a fresh credential is not flagged before it had a chance.
func (p Policy) Evaluate(secretType string, createdAt, rotatedAt time.Time, lastUsed *time.Time, now time.Time) Evaluation {
	if rotatedAt.IsZero() {
		rotatedAt = createdAt
	}
	due := rotatedAt.Add(p.MaxAge(secretType))
	ev := Evaluation{Age: now.Sub(rotatedAt), DueAt: due, AgeState: AgeOK, UseState: UseRecent}
	ev.DaysToDue = int(due.Sub(now).Hours() / 24)
	switch {
	case !now.Before(due):
		ev.AgeState = AgeOverdue
	case !now.Before(due.Add(-time.Duration(p.DueSoonDays) * 24 * time.Hour)):
		ev.AgeState = AgeDueSoon
	}
	unused := time.Duration(p.UnusedDays) * 24 * time.Hour
	switch {
	case lastUsed == nil || lastUsed.IsZero():
		if now.Sub(createdAt) >= unused {
			ev.UseState = UseNever
		} else {
			ev.UseState = UseRecent
		}
	case now.Sub(*lastUsed) >= unused:
		ev.UseState = UseUnused
	}
	return ev
}

// Cutoffs are the instants at which Evaluate's states of a credential of
// secretType change at now, for counting credentials in the database
// (models.PolicyCutoffs says how each is compared): a credential is overdue
// when rotated at or before now minus the maximum age, due soon when rotated
// at or before DueSoonDays later, and unused (or never used) when last used
// (or created) at or before now minus UnusedDays. Keep it in step with
// Evaluate.
func (p Policy) Cutoffs(secretType string, now time.Time) models.PolicyCutoffs {
	maxAge := p.MaxAge(secretType)
	return models.PolicyCutoffs{
		Now:     now,
		Overdue: now.Add(-maxAge),
		DueSoon: now.Add(-maxAge + time.Duration(p.DueSoonDays)*24*time.Hour),
		Unused:  now.Add(-time.Duration(p.UnusedDays) * 24 * time.Hour),
	}
}

// Source returns an agency's policy.
type Source interface {
	Policy(ctx context.Context, agencyID int64) (Policy, error)
}

// DefaultSource gives every agency the default policy.
type DefaultSource struct{}

// Policy returns the default policy.
func (DefaultSource) Policy(context.Context, int64) (Policy, error) { return Default(), nil }
