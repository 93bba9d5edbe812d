package inventory

import (
	"bytes"
	"fmt"
	"html"
	"sort"
	"strings"
	"time"

	"keyconsole/services/policy"
)

// ChartRow is one secret type of the age chart, in figures: the text
// equivalent of the chart.
type ChartRow struct {
	Type       string
	Label      string
	Count      int
	OldestDays int
	MedianDays int
	LimitDays  int
	DueSoon    int
	Overdue    int
}

// chartPoint is one credential on the chart.
type chartPoint struct {
	name  string
	days  int
	state string
}

func ageDays(d time.Duration) int {
	if d < 0 {
		return 0
	}
	return int(d / (24 * time.Hour))
}

func chartData(items []Item, p policy.Policy, now time.Time) ([]ChartRow, map[string][]chartPoint) {
	pts := map[string][]chartPoint{}
	for _, it := range items {
		if !it.Active() || it.Type == TypeIdPSecret {
			continue
		}
		ev := EvaluateItem(it, p, now)
		pts[it.Type] = append(pts[it.Type], chartPoint{name: it.Name, days: ageDays(ev.Age), state: ev.AgeState})
	}
	var rows []ChartRow
	for _, t := range policy.Types() {
		list := pts[t]
		sort.SliceStable(list, func(i, j int) bool { return list[i].days < list[j].days })
		r := ChartRow{Type: t, Label: policy.TypeLabel(t), Count: len(list), LimitDays: p.MaxAgeDays[t]}
		if r.LimitDays <= 0 {
			r.LimitDays = int(p.MaxAge(t) / (24 * time.Hour))
		}
		for _, pt := range list {
			switch pt.state {
			case policy.AgeOverdue:
				r.Overdue++
			case policy.AgeDueSoon:
				r.DueSoon++
			}
		}
		if n := len(list); n > 0 {
			r.OldestDays = list[n-1].days
			if n%2 == 1 {
				r.MedianDays = list[n/2].days
			} else {
				r.MedianDays = (list[n/2-1].days + list[n/2].days) / 2
			}
		}
		rows = append(rows, r)
	}
	return rows, pts
}

// AgeChartRows returns the figures the age chart draws, one row per secret
// type: for the text table that accompanies the chart and for reports.
func AgeChartRows(items []Item, p policy.Policy, now time.Time) []ChartRow {
	rows, _ := chartData(items, p, now)
	return rows
}

// Chart geometry.
const (
	chartW      = 760
	chartLeft   = 150
	chartRight  = 30
	chartTop    = 20
	chartRowH   = 64
	chartAxisH  = 46
	chartLegend = 30
)

// AgeChartSVG draws the ages of the active credentials (revoked and expired
// ones left out) against the policy's maximum age, one band per secret
// type: each credential is a mark at its age in days, the limit a dashed
// line and the due-soon window a shaded stretch before it. States differ in
// shape as well as colour (circle ok, triangle due soon, cross overdue). The
// SVG is a standalone document (role="img" with <title> and <desc>) that
// pages embed inline and reports can render.
func AgeChartSVG(items []Item, p policy.Policy, now time.Time) []byte {
	rows, pts := chartData(items, p, now)
	maxDays := 30
	for _, r := range rows {
		maxDays = max(maxDays, r.LimitDays+r.LimitDays/5, r.OldestDays+r.OldestDays/20+1)
	}
	step := tickStep(maxDays)
	maxDays = (maxDays + step - 1) / step * step
	plotW := float64(chartW - chartLeft - chartRight)
	x := func(days int) float64 { return float64(chartLeft) + plotW*float64(min(days, maxDays))/float64(maxDays) }
	height := chartTop + chartRowH*len(rows) + chartAxisH + chartLegend

	var desc []string
	for _, r := range rows {
		if r.Count == 0 {
			desc = append(desc, fmt.Sprintf("%s: none active; limit %d days.", r.Label, r.LimitDays))
			continue
		}
		desc = append(desc, fmt.Sprintf("%s: %d active, oldest %d days, median %d days, limit %d days, %d due soon, %d overdue.",
			r.Label, r.Count, r.OldestDays, r.MedianDays, r.LimitDays, r.DueSoon, r.Overdue))
	}

	var b bytes.Buffer
	e := html.EscapeString
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="kc-age-chart" role="img" aria-labelledby="kc-age-chart-title kc-age-chart-desc" viewBox="0 0 %d %d" width="%d" height="%d" font-family="Source Sans Pro, Helvetica, Arial, sans-serif" font-size="13">`, chartW, height, chartW, height)
	fmt.Fprintf(&b, `<title id="kc-age-chart-title">Credential ages against the rotation policy limit, by type</title>`)
	fmt.Fprintf(&b, `<desc id="kc-age-chart-desc">%s</desc>`, e(strings.Join(desc, " ")))
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`, chartW, height)

	for i, r := range rows {
		y0 := chartTop + i*chartRowH
		mid := float64(y0) + float64(chartRowH)/2 + 5
		fmt.Fprintf(&b, `<g aria-hidden="true">`)
		fmt.Fprintf(&b, `<text x="10" y="%.1f" fill="#1b1b1b" font-weight="bold">%s</text>`, mid-4, e(r.Label))
		fmt.Fprintf(&b, `<text x="10" y="%.1f" fill="#565c65">%d active</text>`, mid+14, r.Count)
		soon := max(0, r.LimitDays-p.DueSoonDays)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#fef0c8"/>`, x(soon), y0+16, x(r.LimitDays)-x(soon), chartRowH-22)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#f8dfe2"/>`, x(r.LimitDays), y0+16, x(maxDays)-x(r.LimitDays), chartRowH-22)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#a9aeb1" stroke-width="1"/>`, chartLeft, mid, x(maxDays), mid)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#b50909" stroke-width="2" stroke-dasharray="5 3"/>`, x(r.LimitDays), y0+14, x(r.LimitDays), y0+chartRowH-4)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#b50909" text-anchor="middle" font-size="11">limit %d days</text>`, x(r.LimitDays), y0+11, r.LimitDays)
		for j, pt := range pts[r.Type] {
			// Spread marks of equal age vertically so each stays visible.
			cy := mid + float64((j%5)-2)*5
			cx := x(pt.days)
			switch pt.state {
			case policy.AgeOverdue:
				fmt.Fprintf(&b, `<path d="M%.1f %.1fl10 10m0 -10l-10 10" transform="translate(-5 -5)" stroke="#b50909" stroke-width="3" fill="none"><title>%s: %d days, overdue</title></path>`, cx, cy, e(pt.name), pt.days)
			case policy.AgeDueSoon:
				fmt.Fprintf(&b, `<path d="M%.1f %.1fl6 10h-12z" fill="#c05600" stroke="#1b1b1b" stroke-width="0.5"><title>%s: %d days, due soon</title></path>`, cx, cy-6, e(pt.name), pt.days)
			default:
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="5" fill="#005ea2" stroke="#ffffff" stroke-width="1"><title>%s: %d days, within policy</title></circle>`, cx, cy, e(pt.name), pt.days)
			}
		}
		fmt.Fprintf(&b, `</g>`)
	}

	axisY := chartTop + chartRowH*len(rows)
	fmt.Fprintf(&b, `<g aria-hidden="true">`)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%.1f" y2="%d" stroke="#1b1b1b" stroke-width="1"/>`, chartLeft, axisY, x(maxDays), axisY)
	for d := 0; d <= maxDays; d += step {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#1b1b1b"/>`, x(d), axisY, x(d), axisY+5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#1b1b1b">%d</text>`, x(d), axisY+19, d)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#1b1b1b">Age in days since creation or last rotation</text>`, float64(chartLeft)+plotW/2, axisY+37)
	ly := axisY + chartAxisH + 10
	fmt.Fprintf(&b, `<circle cx="%d" cy="%d" r="5" fill="#005ea2"/><text x="%d" y="%d" fill="#1b1b1b">within policy</text>`, chartLeft, ly, chartLeft+10, ly+4)
	fmt.Fprintf(&b, `<path d="M%d %dl6 10h-12z" fill="#c05600"/><text x="%d" y="%d" fill="#1b1b1b">due soon</text>`, chartLeft+130, ly-6, chartLeft+140, ly+4)
	fmt.Fprintf(&b, `<path d="M%d %dl10 10m0 -10l-10 10" stroke="#b50909" stroke-width="3"/><text x="%d" y="%d" fill="#1b1b1b">overdue</text>`, chartLeft+235, ly-5, chartLeft+252, ly+4)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#b50909" stroke-width="2" stroke-dasharray="5 3"/><text x="%d" y="%d" fill="#1b1b1b">policy limit</text>`, chartLeft+340, ly-7, chartLeft+340, ly+7, chartLeft+348, ly+4)
	fmt.Fprintf(&b, `</g></svg>`)
	return b.Bytes()
}

func tickStep(maxDays int) int {
	for _, s := range []int{7, 15, 30, 60, 90, 180, 365} {
		if maxDays/s <= 10 {
			return s
		}
	}
	return 730
}
