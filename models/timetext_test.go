package models

import (
	"testing"
	"time"
)

// TestParseDBTimeAgreesWithTimeParse checks the hand-written reading of
// SQLite's text timestamps against time.Parse with the driver's layouts.
func TestParseDBTimeAgreesWithTimeParse(t *testing.T) {
	for _, s := range []string{
		"2026-11-26 05:05:53.740495+00:00",
		"2026-11-26 05:05:53+00:00",
		"2026-11-26 05:05:53.1+02:30",
		"2026-11-26T05:05:53.123456789-07:00",
		"2024-02-29 23:59:59.999999999-00:00",
		"2026-11-26 05:05:53.740495",
		"2026-11-26T05:05:53",
		"2026-11-26 05:05:53.740495Z",
		"2026-11-26 05:05",
		"2026-11-26",
		"2026-11-26 05:05:53.740495 +0000 UTC",
		"2026-11-26 05:05:53.740495 +0100 CET m=+0.000000001",
	} {
		got, err := parseDBTime(s)
		if err != nil {
			t.Errorf("%q: %v", s, err)
			continue
		}
		var want time.Time
		var werr error = errNoLayout
		for _, l := range append(dbTimeLayouts, "2006-01-02 15:04:05.999999999 -0700 MST") {
			v := s
			if len(v) > 0 && v[len(v)-1] == 'Z' {
				v = v[:len(v)-1]
			}
			if i := indexOf(v, " m="); i > 0 {
				v = v[:i]
			}
			if w, e := time.Parse(l, v); e == nil {
				want, werr = w, nil
				break
			}
		}
		if werr != nil {
			t.Errorf("%q: time.Parse refuses it", s)
			continue
		}
		if !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%q: %v, want %v in UTC", s, got, want)
		}
	}
	for _, s := range []string{"", "2026-02-30 00:00:00", "2026-13-01 00:00:00", "2026-11-26 24:00:00", "2026-11-26 05:05:53.", "2026-11-26 05:05:53+0000x", "yesterday", "2026-11-26 05:05:5a"} {
		if v, err := parseDBTime(s); err == nil {
			t.Errorf("%q: read as %v, want an error", s, v)
		}
	}
}

var errNoLayout = errString("no layout")

type errString string

func (e errString) Error() string { return string(e) }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func BenchmarkParseDBTime(b *testing.B) {
	for b.Loop() {
		if _, err := parseDBTime("2026-11-26 05:05:53.740495+00:00"); err != nil {
			b.Fatal(err)
		}
	}
}
