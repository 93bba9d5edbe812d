package handlers

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"keyconsole/models"
	"keyconsole/services/audit"
	"keyconsole/views"
)

// auditPageSize is how many events one page of the audit log shows.
const auditPageSize = 50

// AuditLog serves the audit log viewer and its exports (reviewers and admins).
type AuditLog struct {
	*Handler
	Exporter *audit.Exporter
	Chain    *audit.ChainMonitor
}

// NewAuditLog returns the audit log pages: exporter writes the downloads,
// chain reports whether the agency's chain verifies.
func NewAuditLog(h *Handler, exporter *audit.Exporter, chain *audit.ChainMonitor) *AuditLog {
	return &AuditLog{Handler: h, Exporter: exporter, Chain: chain}
}

// List shows the agency's audit log, filtered by the query string, newest
// first, one keyset page at a time ("before" and "after" carry the cursor).
func (h *AuditLog) List(c echo.Context) error {
	r := h.req(c)
	s, ctx := r.scope, r.ctx
	q := c.QueryParams()
	base := agencyPath(s, "audit")
	d := views.AuditListData{Form: views.AuditFilterForm{From: q.Get("from"), To: q.Get("to"), Actor: q.Get("actor"), Action: q.Get("action"),
		TargetType: q.Get("target_type"), Target: q.Get("target"), Outcome: q.Get("outcome")}, ClearLink: base}
	d.Chain = h.chainView(c, s)
	flt, err := audit.ParseFilter(q.Get)
	var fe *audit.FilterError
	if errors.As(err, &fe) {
		d.Errors = fe.Fields
		d.Filtered = true
		return Render(c, http.StatusUnprocessableEntity, views.AuditList(h.Page(c, "Audit log", "audit"), d))
	}
	if err != nil {
		return err
	}
	d.Filtered = !flt.Empty()
	perm := flt.Values()
	d.ExportCSV = base + "/export.csv" + query(perm)
	d.ExportJSONL = base + "/export.jsonl" + query(perm)
	d.ExportPDF = base + "/export.pdf" + query(perm)

	before, _ := strconv.ParseInt(q.Get("before"), 10, 64)
	after, _ := strconv.ParseInt(q.Get("after"), 10, 64)
	mf := flt.Model(s.Agency.ID)
	var (
		events             []models.AuditEvent
		hasOlder, hasNewer bool
	)
	if after > 0 {
		mf.AfterID = after
		events, err = h.Audit.Ascending(ctx, mf, auditPageSize+1)
		if err != nil {
			return err
		}
		hasNewer = len(events) > auditPageSize
		events = events[:min(len(events), auditPageSize)]
		for i, j := 0, len(events)-1; i < j; i, j = i+1, j-1 {
			events[i], events[j] = events[j], events[i]
		}
	} else {
		mf.BeforeID = before
		events, err = h.Audit.Page(ctx, mf, auditPageSize+1)
		if err != nil {
			return err
		}
		hasOlder = len(events) > auditPageSize
		events = events[:min(len(events), auditPageSize)]
	}
	if len(events) > 0 {
		// The direction not fetched is probed with one keyset lookup.
		probe := flt.Model(s.Agency.ID)
		if after > 0 {
			probe.BeforeID = events[len(events)-1].ID
			more, err := h.Audit.Page(ctx, probe, 1)
			if err != nil {
				return err
			}
			hasOlder = len(more) > 0
		} else if before > 0 {
			probe.AfterID = events[0].ID
			more, err := h.Audit.Ascending(ctx, probe, 1)
			if err != nil {
				return err
			}
			hasNewer = len(more) > 0
		}
	} else if before > 0 || after > 0 {
		d.NewestLink = base + query(perm)
	}
	if hasOlder {
		d.OlderLink = base + query(withCursor(perm, "before", events[len(events)-1].ID))
	}
	if hasNewer {
		d.NewerLink = base + query(withCursor(perm, "after", events[0].ID))
	}
	for _, e := range events {
		d.Rows = append(d.Rows, views.AuditRow{ID: e.ID, Seq: e.Seq, When: e.OccurredAt.UTC().Format("2006-01-02 15:04:05"), Actor: actorLabel(e),
			Action: e.Action, Target: targetLabel(e), Outcome: e.Outcome, Link: base + "/" + strconv.FormatInt(e.ID, 10)})
	}
	return Render(c, http.StatusOK, views.AuditList(h.Page(c, "Audit log", "audit"), d))
}

// Show displays one event of the agency: every field, its details and hashes.
// Another agency's event answers 404 exactly like a missing one.
func (h *AuditLog) Show(c echo.Context) error {
	r := h.req(c)
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	e, err := h.Audit.ByID(r.ctx, r.agency(), id)
	if err != nil {
		return notFoundOr(err)
	}
	d := views.AuditEventData{ID: e.ID, Hash: e.Hash, PrevHash: e.PrevHash, BackLink: agencyPath(r.scope, "audit"), Details: audit.DecodeDetails(e.Details)}
	d.Fields = [][2]string{
		{"Time (UTC)", e.OccurredAt.UTC().Format(time.RFC3339Nano)},
		{"Sequence", strconv.FormatInt(e.Seq, 10)},
		{"Actor type", e.ActorType},
		{"Actor id", e.ActorID},
		{"Actor name", e.ActorName},
		{"Action", e.Action},
		{"Target type", e.TargetType},
		{"Target id", e.TargetID},
		{"Target name", e.TargetName},
		{"Outcome", e.Outcome},
		{"Reason", e.Reason},
		{"Source address", e.SourceIP},
		{"User agent", e.UserAgent},
		{"Request id", e.RequestID},
	}
	return Render(c, http.StatusOK, views.AuditEvent(h.Page(c, "Audit event "+strconv.FormatInt(e.ID, 10), "audit"), d))
}

// Export streams the filtered view as a download in one format. The export
// is recorded in the audit log before the first byte is sent.
func (h *AuditLog) Export(format audit.Format) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := h.req(c)
		s, ctx := r.scope, r.ctx
		// A refused filter unwraps to a *validation.Error: answered 422.
		flt, err := audit.ParseFilter(c.QueryParams().Get)
		if err != nil {
			return err
		}
		ex, err := h.Exporter.Start(ctx, audit.ExportRequest{Agency: s.Agency, Filter: flt, Format: format, Actor: r.actor, Origin: r.origin})
		if err != nil {
			return err
		}
		res := c.Response()
		hdr := res.Header()
		hdr.Set(echo.HeaderContentType, format.ContentType())
		hdr.Set(echo.HeaderContentDisposition, `attachment; filename="`+ex.Filename()+`"`)
		noStore(c)
		res.WriteHeader(http.StatusOK)
		// A long export keeps the connection as long as it makes progress:
		// each batch moves the write deadline on.
		rc := http.NewResponseController(res)
		extend := func(int64) { _ = rc.SetWriteDeadline(time.Now().Add(2 * time.Minute)) }
		extend(0)
		ex.OnBatch = extend
		n, err := ex.WriteTo(ctx, res)
		if err != nil {
			h.Logger.Error("audit export interrupted", "request_id", res.Header().Get(echo.HeaderXRequestID),
				"agency_id", s.Agency.ID, "format", string(format), "records", n, "error", err)
			// Abort the response so the client sees an incomplete download
			// instead of a file that looks whole.
			panic(http.ErrAbortHandler)
		}
		return nil
	}
}

func (h *AuditLog) chainView(c echo.Context, s Scope) views.ChainView {
	st, err := h.Chain.Status(c.Request().Context(), s.Agency.ID)
	if err != nil {
		h.Logger.Error("audit chain check failed", "agency_id", s.Agency.ID, "error", err)
		return views.ChainView{}
	}
	if st.Pending {
		return views.ChainView{Known: true, Pending: true, Verifying: true}
	}
	v := views.ChainView{Known: true, Intact: st.Intact, Anchored: st.Anchored, Records: st.Records, HeadSeq: st.HeadSeq, HeadHash: st.HeadHash,
		CheckedAt: st.CheckedAt.UTC().Format("2006-01-02 15:04:05 UTC"), Verifying: st.Verifying}
	if st.Break != nil {
		v.BreakSeq, v.Problem = st.Break.Seq, st.Break.Problem
		if st.Break.EventID != 0 {
			v.BreakLink = agencyPath(s, "audit", strconv.FormatInt(st.Break.EventID, 10))
		}
	}
	return v
}

func targetLabel(e models.AuditEvent) string {
	name := e.TargetName
	if name == "" {
		name = e.TargetID
	}
	switch {
	case e.TargetType == "":
		return name
	case name == "":
		return e.TargetType
	}
	return e.TargetType + ": " + name
}

func query(v url.Values) string {
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

func withCursor(v url.Values, key string, id int64) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = vs
	}
	out.Set(key, strconv.FormatInt(id, 10))
	return out
}
