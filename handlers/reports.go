package handlers

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"keyconsole/services/reports"
	"keyconsole/views"
)

// Reports serves the Reports page and the credential inventory downloads
// (reviewers and admins).
type Reports struct {
	*Handler
	Reports *reports.Service
}

// Index lists the available reports and summarises the credential inventory
// with its age chart.
func (h *Reports) Index(c echo.Context) error {
	s, _ := ScopeOf(c)
	inv, err := h.Reports.Inventory(c.Request().Context(), s.Agency)
	if err != nil {
		return err
	}
	base := "/a/" + s.Agency.Slug
	v := views.ReportsView{
		AuditPath: base + "/audit", AuditCSV: base + "/audit/export.csv", AuditJSONL: base + "/audit/export.jsonl", AuditPDF: base + "/audit/export.pdf",
		InventoryCSV: base + "/reports/inventory.csv", InventoryPDF: base + "/reports/inventory.pdf",
		MeasuredAt: views.When(inv.GeneratedAt), PolicyText: inv.PolicyText(), ChartSVG: string(inv.ChartSVG()),
	}
	for _, ts := range inv.Summary.Types {
		v.Counts = append(v.Counts, countRow(ts))
	}
	v.All = countRow(inv.Summary.All)
	v.All.Limit = ""
	for _, st := range inv.Summary.Statuses {
		v.Statuses = append(v.Statuses, views.InventoryStatusRow{Status: st.Status, Count: st.Count})
	}
	for _, r := range inv.Chart {
		cr := views.ChartRowView{Label: r.Label, Count: strconv.Itoa(r.Count), Limit: strconv.Itoa(r.LimitDays), DueSoon: strconv.Itoa(r.DueSoon),
			Overdue: strconv.Itoa(r.Overdue), Oldest: "—", Median: "—"}
		if r.Count > 0 {
			cr.Oldest, cr.Median = strconv.Itoa(r.OldestDays), strconv.Itoa(r.MedianDays)
		}
		v.ChartRows = append(v.ChartRows, cr)
	}
	return Render(c, http.StatusOK, views.ReportsPage(h.Page(c, "Reports", "reports"), v))
}

func countRow(ts reports.TypeSummary) views.InventoryCountRow {
	r := views.InventoryCountRow{Label: ts.Label, Total: ts.Total, Active: ts.Active, OK: ts.OK, DueSoon: ts.DueSoon, Overdue: ts.Overdue,
		NeverUsed: "n/a", Unused: "n/a", Compliant: ts.Compliant, NotCompliant: ts.NotCompliant, Limit: "expiry date"}
	if ts.MeasuresUse {
		r.NeverUsed, r.Unused = strconv.Itoa(ts.NeverUsed), strconv.Itoa(ts.Unused)
	}
	if ts.LimitDays > 0 {
		r.Limit = strconv.Itoa(ts.LimitDays) + " days"
	}
	return r
}

// Inventory downloads the credential inventory in one format. The report is
// made in full and its download recorded in the audit log before any byte
// is sent.
func (h *Reports) Inventory(format reports.Format) echo.HandlerFunc {
	return func(c echo.Context) error {
		s, _ := ScopeOf(c)
		pr, _ := PrincipalOf(c)
		ex, err := h.Reports.Export(c.Request().Context(), reports.ExportRequest{Agency: s.Agency, Format: format, Actor: pr.Actor(), Origin: Origin(c)})
		if err != nil {
			return err
		}
		hdr := c.Response().Header()
		hdr.Set(echo.HeaderContentDisposition, `attachment; filename="`+ex.Filename+`"`)
		hdr.Set("Cache-Control", "no-store")
		return c.Blob(http.StatusOK, format.ContentType(), ex.Body)
	}
}
