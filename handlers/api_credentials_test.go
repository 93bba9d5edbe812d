package handlers

import (
	"math/rand/v2"
	"testing"
	"time"

	"keyconsole/views"
)

// TestWhenAndDayMatchViews checks the list page's date formatting against
// views.When, views.WhenPtr and views.Day.
func TestWhenAndDayMatchViews(t *testing.T) {
	times := []time.Time{{}, time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 12, 5, 0, 0, time.FixedZone("x", -7*3600))}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		times = append(times, time.Unix(r.Int64N(1<<36)-1<<35, r.Int64N(1e9)).In(time.FixedZone("", int(r.Int64N(86400))-43200)))
	}
	for _, tm := range times {
		if got, want := when(tm), views.When(tm); got != want {
			t.Fatalf("when(%v) = %q, want %q", tm, got, want)
		}
		if got, want := day(tm), views.Day(tm); got != want {
			t.Fatalf("day(%v) = %q, want %q", tm, got, want)
		}
		if got, want := whenPtr(&tm, "never"), views.WhenPtr(&tm, "never"); got != want {
			t.Fatalf("whenPtr(%v) = %q, want %q", tm, got, want)
		}
	}
	if whenPtr(nil, "never") != views.WhenPtr(nil, "never") {
		t.Fatal("whenPtr(nil)")
	}
}
