package web

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"keyconsole/app/core"
	"keyconsole/handlers"
	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/agencies"
	"keyconsole/services/audit"
	"keyconsole/services/auth"
)

type auditStack struct {
	srv     *httptest.Server
	web     *Server
	audits  *models.AuditStore
	demo    models.Agency
	other   models.Agency
	tokens  map[string]string
	otherEv models.AuditEvent
}

// newAuditStack runs the real console stack (web.New with the audit routes)
// on 127.0.0.1 over a fresh database with two agencies and users signed in
// through the auth service: demo's admin, reviewer and viewer, and the
// other agency's reviewer.
func newAuditStack(t *testing.T, db *models.DB) auditStack {
	t.Helper()
	ctx := context.Background()
	// The stores and services are built as the console builds them.
	c := core.New(db, nil, nil)
	audits, ag, users := c.Audits, c.AgencySvc, c.Users
	rec := c.Recorder
	asvc := core.NewAuth(c, core.AuthConfig{})
	sys := audit.Actor{Type: audit.ActorSystem, ID: "test"}
	st := auditStack{audits: audits, tokens: map[string]string{}}
	var err error
	if st.demo, err = ag.Create(ctx, sys, audit.Origin{}, "demo-county", "Demo County"); err != nil {
		t.Fatal(err)
	}
	if st.other, err = ag.Create(ctx, sys, audit.Origin{}, "other-county", "Other County"); err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		agency      int64
		group, role string
	}{{st.demo.ID, "demo-admins", "admin"}, {st.demo.ID, "demo-reviewers", "reviewer"}, {st.demo.ID, "demo-viewers", "viewer"}, {st.other.ID, "other-reviewers", "reviewer"}} {
		if _, err := ag.Map(ctx, sys, audit.Origin{}, m.agency, "okta", m.group, m.role); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"demo-admins", "demo-reviewers", "demo-viewers", "other-reviewers"} {
		_, token, err := asvc.SignIn(ctx, auth.ProviderInfo{ID: "okta", Kind: auth.KindOkta},
			auth.Claims{Subject: u, Email: u + "@example.gov", Name: u, Groups: []string{u}}, audit.Origin{})
		if err != nil {
			t.Fatal(err)
		}
		st.tokens[u] = token
	}
	actors := []audit.Actor{{Type: audit.ActorUser, ID: "1", Name: "Ada Admin"}, {Type: audit.ActorUser, ID: "2", Name: "=HYPERLINK(\"http://evil.example\",\"x\")"}}
	for i := 0; i < 120; i++ {
		action, outcome := "api_credential.rotate", audit.OutcomeSuccess
		if i%3 == 0 {
			action, outcome = "ssh_key.upload", audit.OutcomeFailure
		}
		if err := rec.Record(ctx, audit.Event{AgencyID: st.demo.ID, Actor: actors[i%2], Action: action, Outcome: outcome,
			TargetType: "api_credential", TargetID: "cred-" + strconv.Itoa(i), TargetName: "@SUM(1+1) sync", Reason: "-" + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Record(ctx, audit.Event{AgencyID: st.other.ID, Actor: actors[0], Action: "api_credential.rotate", Outcome: audit.OutcomeSuccess}); err != nil {
		t.Fatal(err)
	}
	evs, err := audits.Page(ctx, models.AuditFilter{AgencyID: st.other.ID}, 1)
	if err != nil {
		t.Fatal(err)
	}
	st.otherEv = evs[0]

	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	h := handlers.New(handlers.Deps{Logger: log, Auth: asvc, Agencies: ag, Users: users, Audit: audits})
	ah := &handlers.AuditLog{Handler: h, Exporter: audit.NewExporter(audits, rec, nil), Chain: audit.NewChainMonitor(audit.NewVerifier(audits), time.Minute, time.Hour, nil)}
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	s, err := New(Config{BaseURL: base, SessionKeys: []string{"audit-test-session-key-0123456789abcdef"}},
		Deps{Logger: log, Auth: asvc, Handlers: h, Mount: []func(e *echo.Echo, r *Router){AuditRoutes(ah)}})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = s.Echo
	ts.Start()
	t.Cleanup(ts.Close)
	st.srv, st.web = ts, s
	return st
}

// client returns an HTTP client carrying the user's session cookie, made with
// the server's own cookie codecs.
func (st auditStack) client(t *testing.T, user string) *http.Client {
	t.Helper()
	v, err := st.web.jar.encodeSessionToken(st.tokens[user])
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(st.srv.URL)
	jar.SetCookies(u, []*http.Cookie{{Name: st.web.jar.sessionName, Value: v, Path: "/"}})
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type reply struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, c *http.Client, u string) reply {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	// The request id differs on every answer; nothing else may.
	body := strings.ReplaceAll(string(b), res.Header.Get(echo.HeaderXRequestID), "REQUEST-ID")
	return reply{status: res.StatusCode, header: res.Header, body: body}
}

var mainContent = regexp.MustCompile(`(?s)<main.*</main>`)

func TestAuditAccessAnswersLikeAMissingPage(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		st := newAuditStack(t, db)
		demo := st.srv.URL + "/a/demo-county/audit"
		paths := []string{"", "/export.csv", "/export.jsonl", "/export.pdf", "/1"}

		t.Run("viewer", func(t *testing.T) {
			c := st.client(t, "demo-viewers")
			missing := get(t, c, st.srv.URL+"/a/demo-county/no-such-page")
			if missing.status != http.StatusNotFound {
				t.Fatalf("missing page: %d", missing.status)
			}
			for _, p := range paths {
				r := get(t, c, demo+p)
				if r.status != http.StatusNotFound || r.header.Get("Content-Disposition") != "" {
					t.Fatalf("viewer GET %s: %d %v", p, r.status, r.header)
				}
				if mainContent.FindString(r.body) != mainContent.FindString(missing.body) {
					t.Fatalf("viewer GET %s differs from a missing page:\n%s\n---\n%s", p, mainContent.FindString(r.body), mainContent.FindString(missing.body))
				}
			}
			if dash := get(t, c, st.srv.URL+"/a/demo-county/"); dash.status != http.StatusOK || strings.Contains(dash.body, `href="/a/demo-county/audit"`) {
				t.Fatalf("viewer dashboard: %d, audit link shown: %v", dash.status, strings.Contains(dash.body, "/audit"))
			}
		})

		t.Run("another agency's reviewer", func(t *testing.T) {
			c := st.client(t, "other-reviewers")
			for _, p := range paths {
				r := get(t, c, demo+p)
				missing := get(t, c, st.srv.URL+"/a/no-such-county/audit"+p)
				if r.status != http.StatusNotFound || r.body != missing.body {
					t.Fatalf("GET %s: %d, differs from a missing agency: %v", p, r.status, r.body != missing.body)
				}
			}
		})

		t.Run("another agency's event", func(t *testing.T) {
			c := st.client(t, "demo-reviewers")
			r := get(t, c, demo+"/"+strconv.FormatInt(st.otherEv.ID, 10))
			missing := get(t, c, demo+"/99999999")
			notNumber := get(t, c, demo+"/abc")
			if r.status != http.StatusNotFound || r.body != missing.body || notNumber.body != missing.body {
				t.Fatalf("other agency's event: %d, same as missing: %v", r.status, r.body == missing.body)
			}
			if strings.Contains(r.body, st.otherEv.Hash) {
				t.Fatal("the other agency's event leaked")
			}
		})

		t.Run("admin", func(t *testing.T) {
			if r := get(t, st.client(t, "demo-admins"), demo); r.status != http.StatusOK {
				t.Fatalf("admin: %d", r.status)
			}
		})
	})
}

var rowLink = regexp.MustCompile(`href="/a/demo-county/audit/(\d+)"`)

func TestReviewerBrowsesAndExports(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		st := newAuditStack(t, db)
		c := st.client(t, "demo-reviewers")
		base := st.srv.URL + "/a/demo-county/audit"

		first := get(t, c, base)
		if first.status != http.StatusOK || !strings.Contains(first.body, "Chain intact.") {
			t.Fatalf("audit page: %d\n%s", first.status, first.body)
		}
		ids := rowLink.FindAllStringSubmatch(first.body, -1)
		if len(ids) != 50 {
			t.Fatalf("first page shows %d events, want 50", len(ids))
		}

		t.Run("keyset pages", func(t *testing.T) {
			seen := map[string]bool{}
			page, pages := first, 0
			for {
				pages++
				for _, m := range rowLink.FindAllStringSubmatch(page.body, -1) {
					if seen[m[1]] {
						t.Fatalf("event %s shown twice", m[1])
					}
					seen[m[1]] = true
				}
				older := regexp.MustCompile(`id="page-older" href="([^"]+)"`).FindStringSubmatch(page.body)
				if older == nil {
					break
				}
				if !strings.Contains(older[1], "before=") || strings.Contains(older[1], "offset") {
					t.Fatalf("older link %q does not carry a keyset cursor", older[1])
				}
				page = get(t, c, st.srv.URL+strings.ReplaceAll(older[1], "&amp;", "&"))
			}
			// Every record of the agency: the 120 events and those of setting it up and signing in.
			n, err := st.audits.Count(context.Background(), models.AuditFilter{AgencyID: st.demo.ID})
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(seen)) != n || pages != int((n+49)/50) {
				t.Fatalf("walked %d events over %d pages, want %d", len(seen), pages, n)
			}
			newer := regexp.MustCompile(`id="page-newer" href="([^"]+)"`).FindStringSubmatch(page.body)
			if newer == nil || !strings.Contains(newer[1], "after=") {
				t.Fatal("the last page has no Newer link")
			}
			back := get(t, c, st.srv.URL+strings.ReplaceAll(newer[1], "&amp;", "&"))
			if got := rowLink.FindAllStringSubmatch(back.body, -1); len(got) != 50 {
				t.Fatalf("newer page shows %d events", len(got))
			}
		})

		t.Run("filter is a permalink", func(t *testing.T) {
			q := url.Values{"action": {"ssh_key."}, "outcome": {"failure"}, "from": {time.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02")}}
			r := get(t, c, base+"?"+q.Encode())
			rows := rowLink.FindAllStringSubmatch(r.body, -1)
			if r.status != http.StatusOK || len(rows) != 40 {
				t.Fatalf("filtered page: %d with %d rows, want 40", r.status, len(rows))
			}
			if strings.Contains(r.body, "api_credential.rotate</code>") {
				t.Fatal("the filter let other actions through")
			}
			if !strings.Contains(r.body, `href="/a/demo-county/audit/export.csv?`+strings.ReplaceAll(q.Encode(), "&", "&amp;")+`"`) {
				t.Fatal("the CSV export link does not carry the filter")
			}
			bad := get(t, c, base+"?from=yesterday&outcome=maybe")
			if bad.status != http.StatusUnprocessableEntity || !strings.Contains(bad.body, "Outcome must be success, failure or denied.") {
				t.Fatalf("invalid filter: %d", bad.status)
			}
		})

		t.Run("event detail", func(t *testing.T) {
			e, err := st.audits.ByID(context.Background(), st.demo.ID, mustInt(t, ids[0][1]))
			if err != nil {
				t.Fatal(err)
			}
			r := get(t, c, base+"/"+ids[0][1])
			if r.status != http.StatusOK || !strings.Contains(r.body, e.Hash) || !strings.Contains(r.body, e.PrevHash) || !strings.Contains(r.body, e.Action) {
				t.Fatalf("event page: %d", r.status)
			}
		})

		t.Run("csv export", func(t *testing.T) {
			r := get(t, c, base+"/export.csv?outcome=success&action=api_credential.rotate")
			if r.status != http.StatusOK || r.header.Get("Content-Type") != "text/csv; charset=utf-8" ||
				!strings.HasPrefix(r.header.Get("Content-Disposition"), `attachment; filename="audit-demo-county-`) {
				t.Fatalf("export: %d %v", r.status, r.header)
			}
			rd := csv.NewReader(strings.NewReader(strings.TrimPrefix(r.body, "\ufeff")))
			rd.FieldsPerRecord = -1
			recs, err := rd.ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			var header int
			for i, rec := range recs {
				if rec[0] == "id" {
					header = i
				}
			}
			rows := recs[header+1:]
			if len(rows) != 80 {
				t.Fatalf("CSV has %d rows, want the 80 successes", len(rows))
			}
			var formulas int
			for _, rec := range rows {
				for _, cell := range rec {
					if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
						t.Fatalf("cell %q is not neutralised", cell)
					}
					if strings.HasPrefix(cell, `'=HYPERLINK(`) || strings.HasPrefix(cell, "'@SUM(") {
						formulas++
					}
				}
			}
			if formulas < 80 {
				t.Fatalf("only %d neutralised formula cells", formulas)
			}
			evs, err := st.audits.Page(context.Background(), models.AuditFilter{AgencyID: st.demo.ID, Action: audit.ActionAuditExport}, 1)
			if err != nil || len(evs) != 1 || evs[0].ActorName != "demo-reviewers" || !strings.Contains(evs[0].Details, `"record_count":"80"`) ||
				!strings.Contains(evs[0].Details, `"format":"csv"`) {
				t.Fatalf("export not audited: %+v %v", evs, err)
			}
		})

		t.Run("pdf and jsonl exports", func(t *testing.T) {
			pdf := get(t, c, base+"/export.pdf?action=ssh_key.upload")
			if pdf.status != http.StatusOK || pdf.header.Get("Content-Type") != "application/pdf" || !strings.HasPrefix(pdf.body, "%PDF-1.4") ||
				!strings.HasSuffix(pdf.body, "%%EOF\n") {
				t.Fatalf("pdf export: %d %v", pdf.status, pdf.header)
			}
			jl := get(t, c, base+"/export.jsonl?action=ssh_key.upload")
			lines := strings.Split(strings.TrimSpace(jl.body), "\n")
			if jl.status != http.StatusOK || len(lines) != 42 || !strings.Contains(lines[41], `"records":40`) {
				t.Fatalf("jsonl export: %d, %d lines", jl.status, len(lines))
			}
			if bad := get(t, c, base+"/export.csv?outcome=maybe"); bad.status != http.StatusUnprocessableEntity || bad.header.Get("Content-Disposition") != "" {
				t.Fatalf("export with an invalid filter: %d", bad.status)
			}
		})

		t.Run("broken chain is shown", func(t *testing.T) {
			e, err := st.audits.BySeq(context.Background(), st.demo.ID, 10)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Gorm.Exec("UPDATE audit_events SET reason = 'edited' WHERE id = ?", e.ID).Error; err != nil {
				t.Fatal(err)
			}
			// A fresh monitor: the page's result is cached for a minute.
			fresh := newAuditStackServerOnly(t, st, db)
			r := get(t, fresh.client(t, "demo-reviewers"), fresh.srv.URL+"/a/demo-county/audit")
			want := fmt.Sprintf("Chain broken at sequence %d:", e.Seq)
			if !strings.Contains(r.body, want) || !strings.Contains(r.body, fmt.Sprintf(`href="/a/demo-county/audit/%d"`, e.ID)) {
				t.Fatalf("page does not show the break %q", want)
			}
		})
	})
}

// newAuditStackServerOnly starts a second server over the same database and
// sessions (a new chain monitor with no remembered result).
func newAuditStackServerOnly(t *testing.T, st auditStack, db *models.DB) auditStack {
	t.Helper()
	audits := models.NewAuditStore(db)
	rec := audit.NewRecorder(db, audits, nil)
	as := models.NewAgencyStore(db)
	users := models.NewUserStore(db)
	asvc := auth.NewService(db, users, as, models.NewSessionStore(db), rec, auth.Config{})
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	h := handlers.New(handlers.Deps{Logger: log, Auth: asvc, Agencies: agencies.NewService(db, as, rec, nil), Users: users, Audit: audits})
	ah := &handlers.AuditLog{Handler: h, Exporter: audit.NewExporter(audits, rec, nil), Chain: audit.NewChainMonitor(audit.NewVerifier(audits), time.Minute, time.Hour, nil)}
	ts := httptest.NewUnstartedServer(nil)
	s, err := New(Config{BaseURL: "http://" + ts.Listener.Addr().String(), SessionKeys: []string{"audit-test-session-key-0123456789abcdef"}},
		Deps{Logger: log, Auth: asvc, Handlers: h, Mount: []func(e *echo.Echo, r *Router){AuditRoutes(ah)}})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = s.Echo
	ts.Start()
	t.Cleanup(ts.Close)
	out := st
	out.srv, out.web = ts, s
	return out
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
