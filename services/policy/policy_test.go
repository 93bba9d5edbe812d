package policy

import (
	"testing"
	"time"
)

func TestEvaluateBoundaries(t *testing.T) {
	p := Default()
	day := 24 * time.Hour
	created := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	used := created.Add(day)
	tests := []struct {
		name     string
		typ      string
		now      time.Time
		lastUsed *time.Time
		wantAge  string
		wantUse  string
	}{
		{"api day 75 ok", TypeAPICredential, created.Add(75*day + time.Hour), &used, AgeOK, UseRecent},
		{"api day 76 due soon (14 days before 90)", TypeAPICredential, created.Add(76 * day), &used, AgeDueSoon, UseRecent},
		{"api one second before 90 days", TypeAPICredential, created.Add(90*day - time.Second), &used, AgeDueSoon, UseRecent},
		{"api exactly 90 days overdue", TypeAPICredential, created.Add(90 * day), &used, AgeOverdue, UseRecent},
		{"ssh day 350 ok", TypeSSHKey, created.Add(350*day + time.Hour), &used, AgeOK, UseUnused},
		{"ssh day 351 due soon", TypeSSHKey, created.Add(351 * day), &used, AgeDueSoon, UseUnused},
		{"ssh day 365 overdue", TypeSSHKey, created.Add(365 * day), &used, AgeOverdue, UseUnused},
		{"webhook day 179 due soon", TypeWebhookSecret, created.Add(179 * day), &used, AgeDueSoon, UseUnused},
		{"webhook day 180 overdue", TypeWebhookSecret, created.Add(180 * day), &used, AgeOverdue, UseUnused},
		{"never used but young", TypeAPICredential, created.Add(89 * day), nil, AgeDueSoon, UseRecent},
		{"never used at 90 days", TypeAPICredential, created.Add(90 * day), nil, AgeOverdue, UseNever},
		{"used 89 days ago", TypeSSHKey, used.Add(89 * day), &used, AgeOK, UseRecent},
		{"used exactly 90 days ago", TypeSSHKey, used.Add(90 * day), &used, AgeOK, UseUnused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := p.Evaluate(tt.typ, created, time.Time{}, tt.lastUsed, tt.now)
			if ev.AgeState != tt.wantAge || ev.UseState != tt.wantUse {
				t.Fatalf("got %s/%s, want %s/%s", ev.AgeState, ev.UseState, tt.wantAge, tt.wantUse)
			}
		})
	}
}

func TestEvaluateUsesRotationTime(t *testing.T) {
	p := Default()
	created := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	rotated := created.Add(200 * 24 * time.Hour)
	ev := p.Evaluate(TypeAPICredential, created, rotated, nil, rotated.Add(24*time.Hour))
	if ev.AgeState != AgeOK {
		t.Fatalf("a rotated credential's age counts from its rotation: %s", ev.AgeState)
	}
	if ev.UseState != UseNever {
		t.Fatalf("never used since creation long ago: %s", ev.UseState)
	}
}
