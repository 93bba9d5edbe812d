package views

import (
	"sort"
	"time"
)

func sortedMessages(errs FieldErrors) []string {
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, errs[k])
	}
	return out
}

// When formats a time for tables: UTC, to the minute.
func When(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// WhenPtr formats an optional time, "never" when absent.
func WhenPtr(t *time.Time, none string) string {
	if t == nil || t.IsZero() {
		return none
	}
	return When(*t)
}

// Day formats a date.
func Day(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02")
}
