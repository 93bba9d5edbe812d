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

// NewReports returns the reports pages.
func NewReports(h *Handler, svc *reports.Service) *Reports { return &Reports{Handler: h, Reports: svc} }

// Index lists the available reports and summarises the credential inventory
// with its age chart.
func (h *Reports) Index(c echo.Context) error {
	r := h.req(c)
	s := r.scope
	inv, err := h.Reports.Inventory(r.ctx, s.Agency)
	if err != nil {
		return err
	}
	v := views.ReportsView{
		AuditPath: agencyPath(s, "audit"), AuditCSV: agencyPath(s, "audit", "export.csv"), AuditJSONL: agencyPath(s, "audit", "export.jsonl"),
		AuditPDF: agencyPath(s, "audit", "export.pdf"), InventoryCSV: agencyPath(s, "reports", "inventory.csv"), InventoryPDF: agencyPath(s, "reports", "inventory.pdf"),
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
	for _, chart := range inv.Chart {
		cr := views.ChartRowView{Label: chart.Label, Count: strconv.Itoa(chart.Count), Limit: strconv.Itoa(chart.LimitDays), DueSoon: strconv.Itoa(chart.DueSoon),
			Overdue: strconv.Itoa(chart.Overdue), Oldest: "—", Median: "—"}
		if chart.Count > 0 {
			cr.Oldest, cr.Median = strconv.Itoa(chart.OldestDays), strconv.Itoa(chart.MedianDays)
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
		r := h.req(c)
		ex, err := h.Reports.Export(r.ctx, reports.ExportRequest{Agency: r.scope.Agency, Format: format, Actor: r.actor, Origin: r.origin})
		if err != nil {
			return err
		}
		hdr := c.Response().Header()
		hdr.Set(echo.HeaderContentDisposition, `attachment; filename="`+ex.Filename+`"`)
		noStore(c)
		return c.Blob(http.StatusOK, format.ContentType(), ex.Body)
	}
}
