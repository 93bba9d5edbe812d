package inventory

import (
	"context"
	"fmt"
	"time"

	"keyconsole/models"
	"keyconsole/services/policy"
)

// Counts are how many active items of one type are in each group of a
// Report: overdue, due soon, never used, unused.
type Counts struct {
	Active, Overdue, DueSoon, NeverUsed, Unused int
}

// Add returns the sum of c and o.
func (c Counts) Add(o Counts) Counts {
	return Counts{Active: c.Active + o.Active, Overdue: c.Overdue + o.Overdue, DueSoon: c.DueSoon + o.DueSoon,
		NeverUsed: c.NeverUsed + o.NeverUsed, Unused: c.Unused + o.Unused}
}

// countsOf converts a database count.
func countsOf(n models.PolicyCounts) Counts {
	return Counts{Active: n.Active, Overdue: n.Overdue, DueSoon: n.DueSoon, NeverUsed: n.NeverUsed, Unused: n.Unused}
}

// Counter is a Source that counts its items in the database, without
// listing them: the counts must equal those of Evaluate over its List at
// the same policy and time (Report.Tally), which a test holds them to.
type Counter interface {
	Counts(ctx context.Context, agencyID int64, p policy.Policy, now time.Time) (Counts, error)
}

// Tally is what the dashboard shows of a Report: its counts by item type.
type Tally struct {
	Now    time.Time
	Policy policy.Policy
	ByType map[string]Counts
}

// Credentials sums the counts of every type the console manages itself
// (all but IdP client secrets, which have tiles of their own).
func (t Tally) Credentials() Counts {
	var sum Counts
	for typ, c := range t.ByType {
		if typ != TypeIdPSecret {
			sum = sum.Add(c)
		}
	}
	return sum
}

// Tally counts the report's groups by item type: the plain version of
// Service.Tally.
func (r Report) Tally() Tally {
	t := Tally{Now: r.Now, Policy: r.Policy, ByType: map[string]Counts{}}
	for _, row := range r.All {
		c := t.ByType[row.Type]
		c.Active++
		switch row.Eval.AgeState {
		case policy.AgeOverdue:
			c.Overdue++
		case policy.AgeDueSoon:
			c.DueSoon++
		}
		if row.Type != TypeIdPSecret {
			switch row.Eval.UseState {
			case policy.UseNever:
				c.NeverUsed++
			case policy.UseUnused:
				c.Unused++
			}
		}
		t.ByType[row.Type] = c
	}
	return t
}

// Tally counts the agency's credentials against its policy now, as Report
// groups them: each Counter source counts in the database, any other source
// is listed and evaluated. Every registered type has an entry.
func (s *Service) Tally(ctx context.Context, agencyID int64) (Tally, error) {
	p, err := s.cfg.Policies.Policy(ctx, agencyID)
	if err != nil {
		return Tally{}, fmt.Errorf("inventory: policy: %w", err)
	}
	now := s.now()
	t := Tally{Now: now, Policy: p, ByType: make(map[string]Counts, len(s.sources))}
	for _, src := range s.sources {
		if c, ok := src.(Counter); ok {
			n, err := c.Counts(ctx, agencyID, p, now)
			if err != nil {
				return Tally{}, fmt.Errorf("inventory: count %s: %w", src.Type(), err)
			}
			t.ByType[src.Type()] = n
			continue
		}
		items, err := src.List(ctx, agencyID)
		if err != nil {
			return Tally{}, fmt.Errorf("inventory: list %s: %w", src.Type(), err)
		}
		t.ByType[src.Type()] = t.ByType[src.Type()]
		for typ, c := range Evaluate(items, p, now).Tally().ByType {
			t.ByType[typ] = t.ByType[typ].Add(c)
		}
	}
	return t, nil
}

// Counts counts the agency's active API credentials in the database.
func (a APICredentials) Counts(ctx context.Context, agencyID int64, p policy.Policy, now time.Time) (Counts, error) {
	n, err := a.Svc.PolicyCounts(ctx, agencyID, p.Cutoffs(policy.TypeAPICredential, now))
	return countsOf(n), err
}

// Counts counts the agency's active SSH keys in the database.
func (k SSHKeys) Counts(ctx context.Context, agencyID int64, p policy.Policy, now time.Time) (Counts, error) {
	n, err := k.Svc.PolicyCounts(ctx, agencyID, p.Cutoffs(policy.TypeSSHKey, now))
	return countsOf(n), err
}

// Counts counts the secrets of the agency's enabled endpoints in the
// database.
func (w Webhooks) Counts(ctx context.Context, agencyID int64, p policy.Policy, now time.Time) (Counts, error) {
	n, err := w.Svc.SecretPolicyCounts(ctx, agencyID, p.Cutoffs(policy.TypeWebhookSecret, now))
	return countsOf(n), err
}
