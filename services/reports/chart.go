package reports

import (
	"fmt"
	"sort"
	"time"

	"keyconsole/services/inventory"
	"keyconsole/services/pdfdoc"
	"keyconsole/services/policy"
)

// chartMark is one active credential on the age chart.
type chartMark struct {
	days  int
	state string
}

// chartMarks returns the marks of the age chart by type, from the same
// measure as inventory.AgeChartSVG: every active credential of a policy type
// at its age in whole days, with its age state.
func chartMarks(inv Inventory) map[string][]chartMark {
	out := map[string][]chartMark{}
	for _, it := range inv.items {
		if !it.Active() || it.Type == inventory.TypeIdPSecret {
			continue
		}
		ev := inventory.EvaluateItem(it, inv.Policy, inv.GeneratedAt)
		days := 0
		if ev.Age > 0 {
			days = int(ev.Age / (24 * time.Hour))
		}
		out[it.Type] = append(out[it.Type], chartMark{days: days, state: ev.AgeState})
	}
	for _, list := range out {
		sort.SliceStable(list, func(i, j int) bool { return list[i].days < list[j].days })
	}
	return out
}

// chartScale returns the last day of the axis and the tick step, chosen as
// the SVG chart chooses them: room past the longest limit and the oldest
// credential, rounded up to a whole step.
func chartScale(rows []inventory.ChartRow) (maxDays, step int) {
	maxDays = 30
	for _, r := range rows {
		maxDays = max(maxDays, r.LimitDays+r.LimitDays/5, r.OldestDays+r.OldestDays/20+1)
	}
	step = 730
	for _, s := range []int{7, 15, 30, 60, 90, 180, 365} {
		if maxDays/s <= 10 {
			step = s
			break
		}
	}
	return (maxDays + step - 1) / step * step, step
}

// Chart geometry in points.
const (
	chartLabelW = 150.0 // type names left of the plot
	chartRightM = 20.0
	chartBandH  = 34.0
)

// drawAgeChart draws the age chart with its top at y and returns the y below
// its legend. One band per policy type: the due-soon window shaded amber and
// the stretch past the limit shaded red, the limit a dashed red line, each
// active credential a mark at its age whose shape says its state (circle
// within policy, triangle due soon, cross overdue), as in the SVG chart.
func drawAgeChart(p *pdfdoc.Page, inv Inventory, y float64) float64 {
	rows := inv.Chart
	marks := chartMarks(inv)
	maxDays, step := chartScale(rows)
	x0 := pdfMargin + chartLabelW
	plotW := pdfPageW - pdfMargin - chartRightM - x0
	x := func(days int) float64 { return x0 + plotW*float64(min(days, maxDays))/float64(maxDays) }

	p.Save()
	for i, r := range rows {
		top := y - float64(i)*chartBandH
		bottom := top - chartBandH
		shadeTop, shadeBottom := top-10, bottom+2
		mid := (shadeTop + shadeBottom) / 2

		p.Fill(colInk)
		p.Text(pdfdoc.HelveticaBold, 9, pdfMargin, mid+1, r.Label)
		p.Fill(colMuted)
		p.Text(pdfdoc.Courier, 7.5, pdfMargin, mid-9, fmt.Sprintf("%d active", r.Count))

		soon := max(0, r.LimitDays-inv.Policy.DueSoonDays)
		p.Fill(colSoonBg)
		p.FillRect(x(soon), shadeBottom, x(r.LimitDays)-x(soon), shadeTop-shadeBottom)
		p.Fill(colOverBg)
		p.FillRect(x(r.LimitDays), shadeBottom, x(maxDays)-x(r.LimitDays), shadeTop-shadeBottom)
		p.Stroke(colRule)
		p.LineWidth(0.75)
		p.Dash(0, 0)
		p.StrokeLine(x0, mid, x(maxDays), mid)
		p.Stroke(colOverdue)
		p.LineWidth(1.25)
		p.Dash(3.5, 2)
		p.StrokeLine(x(r.LimitDays), top-8.5, x(r.LimitDays), bottom)
		p.Dash(0, 0)
		p.Fill(colOverdue)
		p.TextCenter(pdfdoc.Courier, 6.5, x(r.LimitDays), top-7, fmt.Sprintf("limit %d days", r.LimitDays))

		for j, m := range marks[r.Type] {
			// Spread marks of equal age vertically so each stays visible.
			drawMark(p, m.state, x(m.days), mid+float64((j%5)-2)*3)
		}
	}

	axisY := y - float64(len(rows))*chartBandH
	p.Stroke(colInk)
	p.LineWidth(0.75)
	p.StrokeLine(x0, axisY, x(maxDays), axisY)
	p.Fill(colInk)
	for d := 0; d <= maxDays; d += step {
		p.StrokeLine(x(d), axisY, x(d), axisY-4)
		p.TextCenter(pdfdoc.Courier, 7, x(d), axisY-12, fmt.Sprint(d))
	}
	p.TextCenter(pdfdoc.Courier, 7.5, x0+plotW/2, axisY-23, "Age in days since creation or last rotation")

	// Legend: each symbol drawn as on the chart, then its meaning in words.
	ly := axisY - 37
	lx := x0
	item := func(draw func(cx, cy float64), text string) {
		draw(lx+4, ly+2.5)
		p.Fill(colInk)
		p.Text(pdfdoc.Courier, 7.5, lx+12, ly, text)
		lx += 12 + pdfdoc.CourierWidth(7.5, text) + 18
	}
	item(func(cx, cy float64) { drawMark(p, policy.AgeOK, cx, cy) }, "within policy")
	item(func(cx, cy float64) { drawMark(p, policy.AgeDueSoon, cx, cy) }, "due soon")
	item(func(cx, cy float64) { drawMark(p, policy.AgeOverdue, cx, cy) }, "overdue")
	item(func(cx, cy float64) {
		p.Stroke(colOverdue)
		p.LineWidth(1.25)
		p.Dash(3.5, 2)
		p.StrokeLine(cx, cy-5, cx, cy+6)
		p.Dash(0, 0)
	}, "policy limit")
	item(func(cx, cy float64) { p.Fill(colSoonBg); p.FillRect(cx-5, cy-4, 10, 8) }, "due-soon window")
	item(func(cx, cy float64) { p.Fill(colOverBg); p.FillRect(cx-5, cy-4, 10, 8) }, "past the limit")
	p.Restore()
	return ly - 14
}

// drawMark draws one credential's mark centred on (cx, cy).
func drawMark(p *pdfdoc.Page, state string, cx, cy float64) {
	switch state {
	case policy.AgeOverdue:
		p.Stroke(colOverdue)
		p.LineWidth(1.6)
		p.Dash(0, 0)
		p.StrokeLine(cx-3, cy-3, cx+3, cy+3)
		p.StrokeLine(cx-3, cy+3, cx+3, cy-3)
	case policy.AgeDueSoon:
		p.Fill(colDueSoon)
		p.Stroke(colInk)
		p.LineWidth(0.4)
		p.Dash(0, 0)
		p.MoveTo(cx, cy+3.8)
		p.LineTo(cx+3.6, cy-2.6)
		p.LineTo(cx-3.6, cy-2.6)
		p.ClosePath()
		p.FillStrokePath()
	default:
		p.Fill(colOK)
		p.Stroke(pdfdoc.White)
		p.LineWidth(0.5)
		p.Dash(0, 0)
		p.Circle(cx, cy, 3.2)
		p.FillStrokePath()
	}
}
