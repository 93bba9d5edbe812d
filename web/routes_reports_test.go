package web

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
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
	"keyconsole/services/audit"
	"keyconsole/services/auth"
	"keyconsole/services/reports/reportstest"
)

type reportsStack struct {
	srv    *httptest.Server
	web    *Server
	db     *models.DB
	f      *reportstest.Fixture
	tokens map[string]string
}

// newReportsStack runs the real console stack (web.New with the reports
// routes) on 127.0.0.1 over a fresh database holding two agencies'
// credentials of every type, with demo's admin, reviewer and viewer and the
// other agency's reviewer signed in through the auth service.
func newReportsStack(t *testing.T, db *models.DB) reportsStack {
	t.Helper()
	ctx := context.Background()
	// The stores and services are built as the console builds them.
	c := core.New(db, nil, nil)
	audits, ag, users := c.Audits, c.AgencySvc, c.Users
	asvc := core.NewAuth(c, core.AuthConfig{})
	sys := audit.Actor{Type: audit.ActorSystem, ID: "test"}
	demo, err := ag.Create(ctx, sys, audit.Origin{}, "demo-county", "Demo County")
	if err != nil {
		t.Fatal(err)
	}
	other, err := ag.Create(ctx, sys, audit.Origin{}, "other-county", "Other County")
	if err != nil {
		t.Fatal(err)
	}
	st := reportsStack{db: db, tokens: map[string]string{}}
	for _, m := range []struct {
		agency      int64
		group, role string
	}{{demo.ID, "demo-admins", "admin"}, {demo.ID, "demo-reviewers", "reviewer"}, {demo.ID, "demo-viewers", "viewer"}, {other.ID, "other-reviewers", "reviewer"}} {
		if _, err := ag.Map(ctx, sys, audit.Origin{}, m.agency, "okta", m.group, m.role); err != nil {
			t.Fatal(err)
		}
		_, token, err := asvc.SignIn(ctx, auth.ProviderInfo{ID: "okta", Kind: auth.KindOkta},
			auth.Claims{Subject: m.group, Email: m.group + "@example.gov", Name: m.group, Groups: []string{m.group}}, audit.Origin{})
		if err != nil {
			t.Fatal(err)
		}
		st.tokens[m.group] = token
	}
	st.f = reportstest.Seed(t, db, demo, other)
	svc := core.NewReports(st.f.Core, st.f.Inventory, st.f.Policies)

	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	h := handlers.New(handlers.Deps{Logger: log, Auth: asvc, Agencies: ag, Users: users, Audit: audits})
	ts := httptest.NewUnstartedServer(nil)
	s, err := New(Config{BaseURL: "http://" + ts.Listener.Addr().String(), SessionKeys: []string{"reports-test-session-key-0123456789abcdef"}},
		Deps{Logger: log, Auth: asvc, Handlers: h, Mount: []func(e *echo.Echo, r *Router){ReportsRoutes(&handlers.Reports{Handler: h, Reports: svc})}})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = s.Echo
	ts.Start()
	t.Cleanup(ts.Close)
	st.srv, st.web = ts, s
	return st
}

// client returns an HTTP client carrying the user's session cookie.
func (st reportsStack) client(t *testing.T, user string) *http.Client {
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

type reportsReply struct {
	status int
	header http.Header
	body   []byte
}

func reportsGet(t *testing.T, c *http.Client, u string) reportsReply {
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
	b = bytes.ReplaceAll(b, []byte(res.Header.Get(echo.HeaderXRequestID)), []byte("REQUEST-ID"))
	return reportsReply{status: res.StatusCode, header: res.Header, body: b}
}

var reportsMain = regexp.MustCompile(`(?s)<main.*</main>`)

func (st reportsStack) exportRecords(t *testing.T) []models.AuditEvent {
	t.Helper()
	evs, err := models.NewAuditStore(st.db).Page(context.Background(), models.AuditFilter{AgencyID: st.f.Demo.ID, Action: audit.ActionReportInventoryExport}, 100)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestReportsAccessAnswersLikeAMissingPage(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		st := newReportsStack(t, db)
		demo := st.srv.URL + "/a/demo-county/reports"
		paths := []string{"", "/inventory.csv", "/inventory.pdf"}

		t.Run("viewer", func(t *testing.T) {
			c := st.client(t, "demo-viewers")
			missing := reportsGet(t, c, st.srv.URL+"/a/demo-county/no-such-page")
			if missing.status != http.StatusNotFound {
				t.Fatalf("missing page: %d", missing.status)
			}
			for _, p := range paths {
				r := reportsGet(t, c, demo+p)
				if r.status != http.StatusNotFound || r.header.Get("Content-Disposition") != "" {
					t.Fatalf("viewer GET %s: %d %v", p, r.status, r.header)
				}
				if !bytes.Equal(reportsMain.Find(r.body), reportsMain.Find(missing.body)) {
					t.Fatalf("viewer GET %s differs from a missing page", p)
				}
			}
		})

		t.Run("another agency's reviewer", func(t *testing.T) {
			c := st.client(t, "other-reviewers")
			for _, p := range paths {
				r := reportsGet(t, c, demo+p)
				missing := reportsGet(t, c, st.srv.URL+"/a/no-such-county/reports"+p)
				if r.status != http.StatusNotFound || !bytes.Equal(r.body, missing.body) {
					t.Fatalf("GET %s: %d, differs from a missing agency: %v", p, r.status, !bytes.Equal(r.body, missing.body))
				}
			}
			// Their own agency's reports hold only their own credentials.
			own := reportsGet(t, c, st.srv.URL+"/a/other-county/reports/inventory.csv")
			if own.status != http.StatusOK {
				t.Fatalf("own inventory: %d", own.status)
			}
			for _, w := range st.f.Want {
				if bytes.Contains(own.body, []byte(w.Reference)) {
					t.Fatalf("the other agency's inventory shows demo's %s", w.Name)
				}
			}
		})

		t.Run("signed out", func(t *testing.T) {
			c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			for _, p := range paths {
				if r := reportsGet(t, c, demo+p); r.status == http.StatusOK || r.header.Get("Content-Disposition") != "" {
					t.Fatalf("signed-out GET %s: %d", p, r.status)
				}
			}
		})

		if n := len(st.exportRecords(t)); n != 0 {
			t.Fatalf("%d exports of demo's inventory recorded after refused requests", n)
		}

		t.Run("admin", func(t *testing.T) {
			c := st.client(t, "demo-admins")
			for _, p := range paths {
				if r := reportsGet(t, c, demo+p); r.status != http.StatusOK {
					t.Fatalf("admin GET %s: %d", p, r.status)
				}
			}
		})
	})
}

func TestReviewerReadsReportsAndDownloadsTheInventory(t *testing.T) {
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Fatal("pdftotext is required to read the PDF: install poppler-utils")
	}
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		st := newReportsStack(t, db)
		c := st.client(t, "demo-reviewers")
		base := st.srv.URL + "/a/demo-county/reports"

		t.Run("page", func(t *testing.T) {
			r := reportsGet(t, c, base)
			if r.status != http.StatusOK {
				t.Fatalf("reports page: %d", r.status)
			}
			body := string(r.body)
			for _, s := range []string{
				`<h1>Reports</h1>`,
				`href="/a/demo-county/audit"`, `href="/a/demo-county/audit/export.csv"`, `href="/a/demo-county/audit/export.pdf"`,
				`id="inventory-csv" href="/a/demo-county/reports/inventory.csv"`, `id="inventory-pdf" href="/a/demo-county/reports/inventory.pdf"`,
				`<svg xmlns="http://www.w3.org/2000/svg" class="kc-age-chart" role="img"`,
				`<th scope="row">API credentials</th><td>4</td><td>3</td><td>1</td><td>1</td><td>1</td><td>1</td><td>0</td><td>2</td><td>1</td><td>90 days</td>`,
				`<th scope="row">IdP client secrets</th><td>1</td><td>1</td><td>0</td><td>1</td><td>0</td><td>n/a</td><td>n/a</td><td>1</td><td>0</td><td>expiry date</td>`,
				`<th scope="row">All types</th><td>9</td><td>7</td><td>2</td><td>3</td><td>2</td><td>2</td><td>1</td><td>4</td><td>3</td><td></td>`,
				`<th scope="row">revoked</th><td>1</td>`, `<th scope="row">disabled</th><td>1</td>`,
				`<th scope="row">SSH keys</th><td>2</td><td>400</td><td>205</td><td>365</td><td>0</td><td>1</td>`,
			} {
				if !strings.Contains(body, s) {
					t.Errorf("reports page lacks %s", s)
				}
			}
			if !regexp.MustCompile(`<a href="/a/demo-county/reports"[^>]*aria-current="page"`).MatchString(body) {
				t.Error("the navigation does not mark Reports as the current page")
			}
			for _, s := range st.f.Secrets {
				if strings.Contains(body, s) {
					t.Errorf("the reports page holds a secret value (%d characters)", len(s))
				}
			}
			for _, s := range append(st.f.OtherNames, st.f.OtherRefs...) {
				if strings.Contains(body, s) {
					t.Errorf("the reports page shows the other agency's %q", s)
				}
			}
			if n := len(st.exportRecords(t)); n != 0 {
				t.Fatalf("viewing the page recorded %d exports", n)
			}
		})

		t.Run("csv", func(t *testing.T) {
			r := reportsGet(t, c, base+"/inventory.csv")
			if r.status != http.StatusOK || r.header.Get("Content-Type") != "text/csv; charset=utf-8" ||
				r.header.Get("Content-Disposition") != `attachment; filename="inventory-demo-county-20250602T120000Z.csv"` ||
				r.header.Get("Cache-Control") != "no-store" {
				t.Fatalf("csv: %d %v", r.status, r.header)
			}
			rd := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(r.body, []byte("\ufeff"))))
			rd.FieldsPerRecord = -1
			recs, err := rd.ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			header := -1
			for i, rec := range recs {
				if rec[0] == "type" {
					header = i
				}
			}
			if header < 0 {
				t.Fatal("no header row")
			}
			got := map[string]string{}
			for _, rec := range recs[header+1:] {
				got[rec[0]+":"+rec[1]] = rec[2]
			}
			if len(got) != len(st.f.Want) || len(recs)-header-1 != len(st.f.Want) {
				t.Fatalf("CSV has %d rows, want %d", len(recs)-header-1, len(st.f.Want))
			}
			for _, w := range st.f.Want {
				if _, ok := got[w.Key()]; !ok {
					t.Errorf("CSV lacks %s", w.Name)
				}
			}
			for _, s := range st.f.Secrets {
				if bytes.Contains(r.body, []byte(s)) {
					t.Errorf("the CSV holds a secret value (%d characters)", len(s))
				}
			}
		})

		t.Run("pdf", func(t *testing.T) {
			r := reportsGet(t, c, base+"/inventory.pdf")
			if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/pdf" ||
				r.header.Get("Content-Disposition") != `attachment; filename="inventory-demo-county-20250602T120000Z.pdf"` {
				t.Fatalf("pdf: %d %v", r.status, r.header)
			}
			p := filepath.Join(t.TempDir(), "inventory.pdf")
			if err := os.WriteFile(p, r.body, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("pdftotext", "-layout", p, "-").Output()
			if err != nil {
				t.Fatal(err)
			}
			text := string(out)
			for _, s := range []string{"keyconsole credential inventory", "Generated by:", "demo-reviewers", "Case sync", "Reports feed", "Okta client secret",
				"End of report: 9 credentials.", "page 2 of 2", "Credential ages against the policy limit, by type"} {
				if !strings.Contains(text, s) {
					t.Errorf("PDF text lacks %q", s)
				}
			}
			for _, s := range st.f.Secrets {
				if strings.Contains(text, s) || bytes.Contains(r.body, []byte(s)) {
					t.Errorf("the PDF holds a secret value (%d characters)", len(s))
				}
			}
		})

		evs := st.exportRecords(t)
		if len(evs) != 2 {
			t.Fatalf("%d export records, want 2", len(evs))
		}
		for i, fm := range []string{"pdf", "csv"} { // newest first
			e := evs[i]
			if e.Details != `{"count":"9","format":"`+fm+`"}` || e.ActorType != audit.ActorUser || e.ActorName != "demo-reviewers" ||
				e.SourceIP != "127.0.0.1" || e.RequestID == "" || e.Outcome != audit.OutcomeSuccess {
				t.Errorf("export record %d: %+v", i, e)
			}
			if _, err := strconv.ParseInt(e.ActorID, 10, 64); err != nil {
				t.Errorf("export record %d actor id %q", i, e.ActorID)
			}
		}
	})
}
