package handlers_test

import (
	"context"
	"testing"
	"time"

	"keyconsole/models/modelstest"
	"keyconsole/services/policy"
)

// TestFault05_DashboardWorkInGoDoesNotGrowWithCredentials: the dashboard's
// figures are counted by the database, so what the console itself does for
// them (measured in allocations, which a busy machine does not change) is
// the same for 200 credentials as for 3,000.
func TestFault05_DashboardWorkInGoDoesNotGrowWithCredentials(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, d := range modelstest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			allocs := map[int]float64{}
			for _, n := range []int{200, 3000} {
				st := newDashStack(t, modelstest.Open(t, d), policy.Default(), now)
				st.seedSpread(t, n)
				ctx := context.Background()
				if _, err := st.dashboard(ctx); err != nil {
					t.Fatal(err)
				}
				allocs[n] = testing.AllocsPerRun(5, func() {
					if _, err := st.dashboard(ctx); err != nil {
						t.Fatal(err)
					}
				})
			}
			t.Logf("allocations per dashboard: %.0f with 200 credentials, %.0f with 3,000", allocs[200], allocs[3000])
			if allocs[3000] > allocs[200]*1.1+20 {
				t.Fatalf("the dashboard's work grows with the credentials: %.0f allocations with 3,000, %.0f with 200", allocs[3000], allocs[200])
			}
		})
	}
}
