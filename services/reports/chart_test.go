package reports

import (
	"strconv"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/services/inventory"
	"keyconsole/services/policy"
)

// TestChartMarksMatchTheSVGChart checks that the PDF chart draws the same
// data as the SVG chart: per type, as many marks as active credentials, as
// many triangles as due-soon and crosses as overdue credentials, the oldest
// mark at the oldest age; and the same axis.
func TestChartMarksMatchTheSVGChart(t *testing.T) {
	now := time.Date(2025, 6, 2, 12, 0, 0, 0, time.UTC)
	ago := func(d int) time.Time { return now.Add(-time.Duration(d) * 24 * time.Hour) }
	var items []inventory.Item
	add := func(typ string, status string, created int) {
		items = append(items, inventory.Item{Type: typ, ID: int64(len(items) + 1), Name: "c" + strconv.Itoa(len(items)), Status: status, CreatedAt: ago(created)})
	}
	for _, d := range []int{1, 30, 77, 80, 89, 90, 91, 400} {
		add(policy.TypeAPICredential, inventory.StatusActive, d)
	}
	add(policy.TypeAPICredential, inventory.StatusRevoked, 500)
	for _, d := range []int{364, 366, 10} {
		add(policy.TypeSSHKey, inventory.StatusActive, d)
	}
	add(policy.TypeWebhookSecret, inventory.StatusDisabled, 1000)
	exp := now.Add(-24 * time.Hour)
	items = append(items, inventory.Item{Type: inventory.TypeIdPSecret, ID: 99, Name: "idp", Status: inventory.StatusActive, CreatedAt: ago(3), ExpiresAt: &exp})

	p := policy.Default()
	inv := Measure(models.Agency{Slug: "x", Name: "X"}, items, p, now)
	marks := chartMarks(inv)
	if _, ok := marks[inventory.TypeIdPSecret]; ok {
		t.Error("the chart marks IdP client secrets, which have no age limit")
	}
	if len(inv.Chart) != len(policy.Types()) {
		t.Fatalf("%d chart rows", len(inv.Chart))
	}
	for _, r := range inv.Chart {
		ms := marks[r.Type]
		soon, over := 0, 0
		for _, m := range ms {
			switch m.state {
			case policy.AgeDueSoon:
				soon++
			case policy.AgeOverdue:
				over++
			}
		}
		if len(ms) != r.Count || soon != r.DueSoon || over != r.Overdue {
			t.Errorf("%s: %d marks (%d due soon, %d overdue), SVG figures %+v", r.Type, len(ms), soon, over, r)
		}
		if r.Count > 0 && ms[len(ms)-1].days != r.OldestDays {
			t.Errorf("%s: oldest mark %d days, SVG oldest %d", r.Type, ms[len(ms)-1].days, r.OldestDays)
		}
	}
	want := map[string][3]int{policy.TypeAPICredential: {8, 3, 3}, policy.TypeSSHKey: {3, 1, 1}, policy.TypeWebhookSecret: {0, 0, 0}}
	for _, r := range inv.Chart {
		if w := want[r.Type]; r.Count != w[0] || r.DueSoon != w[1] || r.Overdue != w[2] {
			t.Errorf("%s figures %+v, want count/due soon/overdue %v", r.Type, r, w)
		}
	}
	for _, tc := range []struct {
		rows     []inventory.ChartRow
		max, stp int
	}{
		{nil, 35, 7},
		{[]inventory.ChartRow{{LimitDays: 90, OldestDays: 100}}, 120, 15},
		{[]inventory.ChartRow{{LimitDays: 365, OldestDays: 400}, {LimitDays: 90}}, 480, 60},
		{[]inventory.ChartRow{{LimitDays: 90, OldestDays: 5000}}, 5840, 730},
	} {
		m, s := chartScale(tc.rows)
		if m != tc.max || s != tc.stp {
			t.Errorf("chartScale(%v) = %d, %d; want %d, %d", tc.rows, m, s, tc.max, tc.stp)
		}
	}
}

// TestTableFitsThePage checks the column widths against the page width.
func TestTableFitsThePage(t *testing.T) {
	chars := len(pdfColumns) - 1
	for _, c := range pdfColumns {
		chars += c.width
		if len([]rune(c.heading)) > c.width {
			t.Errorf("heading %q is wider than its column", c.heading)
		}
	}
	if w := float64(chars) * 0.6 * pdfTableSize; w > pdfPageW-2*pdfMargin {
		t.Errorf("the table is %.1f points wide; the page has %.1f", w, pdfPageW-2*pdfMargin)
	}
}
