package reports

import (
	"time"

	"keyconsole/services/policy"
)

// AgeLabel says a row's age state in words.
func AgeLabel(r Row) string {
	switch r.AgeState {
	case policy.AgeOK:
		return "ok"
	case policy.AgeDueSoon:
		return "due soon"
	case policy.AgeOverdue:
		return "overdue"
	}
	return "n/a"
}

// UseLabel says a row's use state in words: a credential not used yet but
// younger than the unused threshold is "not yet used".
func UseLabel(r Row) string {
	switch r.UseState {
	case policy.UseRecent:
		if r.LastUsedAt == nil {
			return "not yet used"
		}
		return "in use"
	case policy.UseNever:
		return "never used"
	case policy.UseUnused:
		return "unused"
	}
	return "n/a"
}

// Day writes a date as YYYY-MM-DD (UTC); no date is written as empty.
func Day(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02")
}
