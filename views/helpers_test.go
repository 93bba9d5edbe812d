package views

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestWhenAndDayMatchViews holds When, WhenPtr and Day to time.Format's
// layouts, inside and outside the years they write out by hand.
func TestWhenAndDayMatchViews(t *testing.T) {
	times := []time.Time{time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 12, 5, 0, 0, time.FixedZone("x", -7*3600))}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		times = append(times, time.Unix(r.Int64N(1<<36)-1<<35, r.Int64N(1e9)).In(time.FixedZone("", int(r.Int64N(86400))-43200)))
	}
	for _, tm := range times {
		if got, want := When(tm), tm.UTC().Format("2006-01-02 15:04 UTC"); got != want {
			t.Fatalf("When(%v) = %q, want %q", tm, got, want)
		}
		if got, want := Day(tm), tm.UTC().Format("2006-01-02"); got != want {
			t.Fatalf("Day(%v) = %q, want %q", tm, got, want)
		}
		if got, want := WhenPtr(&tm, "never"), When(tm); got != want {
			t.Fatalf("WhenPtr(%v) = %q, want %q", tm, got, want)
		}
	}
	var zero time.Time
	if When(zero) != "—" || Day(zero) != "—" || WhenPtr(nil, "never") != "never" || WhenPtr(&zero, "never") != "never" {
		t.Fatal("the zero time")
	}
}
