package models

import (
	"testing"
	"time"
)

// FuzzAppendStoredUTC checks the rewrite of stored times against parsing
// them: wherever appendStoredUTC accepts a text, the driver's reading of
// it must succeed and format to the same bytes.
func FuzzAppendStoredUTC(f *testing.F) {
	for _, s := range []string{
		"2026-11-26 05:05:53.740234+00:00", "2026-11-26 05:05:53+00:00", "2026-11-26T05:05:53.000000000+00:00",
		"2024-02-29 00:00:00.1+00:00", "2023-02-29 00:00:00+00:00", "2026-11-26 05:05:53.+00:00", "0000-01-01 00:00:00+00:00",
		"2026-11-26 05:05:53.1234567890+00:00", "2026-11-26 05:05:53.5+01:00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := appendStoredUTC(nil, s)
		if !ok {
			return
		}
		tm, ok := parseDBTimeAsDriver(s)
		if !ok {
			t.Fatalf("appendStoredUTC(%q) = %q, but the driver does not read it", s, got)
		}
		if want := tm.UTC().Format(time.RFC3339Nano); string(got) != want {
			t.Fatalf("appendStoredUTC(%q) = %q, want %q", s, got, want)
		}
	})
}

func TestAppendStoredUTCTakesTheWrittenForm(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2026, 11, 26, 5, 5, 53, 740234000, time.UTC),
		time.Date(2026, 11, 26, 5, 5, 53, 0, time.UTC),
		time.Date(2024, 2, 29, 23, 59, 59, 100000000, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 1, time.UTC),
	} {
		s := tm.Format(dbTimeLayouts[0])
		got, ok := appendStoredUTC(nil, s)
		if !ok || string(got) != tm.Format(time.RFC3339Nano) {
			t.Errorf("appendStoredUTC(%q) = %q, %v; want %q", s, got, ok, tm.Format(time.RFC3339Nano))
		}
	}
}
