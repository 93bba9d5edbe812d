package reports_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
	"keyconsole/services/inventory"
	"keyconsole/services/policy"
	"keyconsole/services/reports"
	"keyconsole/services/reports/reportstest"
)

func agencies(t *testing.T, db *models.DB) (models.Agency, models.Agency) {
	t.Helper()
	ctx := context.Background()
	st := models.NewAgencyStore(db)
	var out []models.Agency
	for _, a := range []models.Agency{{Slug: "demo-county", Name: "Demo County"}, {Slug: "other-county", Name: "Other County"}} {
		a.CreatedAt, a.UpdatedAt = time.Now().UTC(), time.Now().UTC()
		if err := st.Create(ctx, &a); err != nil {
			t.Fatal(err)
		}
		got, err := st.BySlug(ctx, a.Slug)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got)
	}
	return out[0], out[1]
}

func seed(t *testing.T, db *models.DB) (*reportstest.Fixture, *reports.Service) {
	t.Helper()
	demo, other := agencies(t, db)
	f := reportstest.Seed(t, db, demo, other)
	svc := reports.NewService(reports.Config{Inventory: f.Inventory, Policies: f.Policies, Audit: f.Audit, Clock: f.Clock})
	return f, svc
}

var reviewer = audit.Actor{Type: audit.ActorUser, ID: "7", Name: "Rita Reviewer"}

func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Fatal("pdftotext is required to read the PDF: install poppler-utils (apt-get install -y poppler-utils)")
	}
	p := filepath.Join(t.TempDir(), "report.pdf")
	if err := os.WriteFile(p, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-layout", p, "-").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("pdftotext: %v: %s", err, ee.Stderr)
		}
		t.Fatalf("pdftotext: %v", err)
	}
	return string(out)
}

// parseCSV reads the report back: the description block as key/value and
// the credential rows keyed by type:id.
func parseCSV(t *testing.T, b []byte) (map[string]string, map[string]map[string]string) {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("\ufeff")) {
		t.Fatal("CSV lacks the UTF-8 byte order mark")
	}
	if !bytes.Contains(b, []byte("\r\n")) || bytes.Contains(bytes.ReplaceAll(b, []byte("\r\n"), nil), []byte("\n")) {
		t.Fatal("CSV lines do not all end in CRLF")
	}
	r := csv.NewReader(bytes.NewReader(b[len("\ufeff"):]))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{}
	i := 0
	for ; i < len(recs) && recs[i][0] != "type"; i++ {
		if len(recs[i]) == 2 {
			meta[recs[i][0]] = recs[i][1]
		}
	}
	if i == len(recs) {
		t.Fatal("CSV has no header row")
	}
	if got := strings.Join(recs[i], ","); got != strings.Join(reports.CSVColumns(), ",") {
		t.Fatalf("CSV header = %s", got)
	}
	rows := map[string]map[string]string{}
	for _, rec := range recs[i+1:] {
		if len(rec) != len(reports.CSVColumns()) {
			t.Fatalf("CSV row has %d fields: %q", len(rec), rec)
		}
		m := map[string]string{}
		for j, c := range reports.CSVColumns() {
			m[c] = rec[j]
		}
		key := m["type"] + ":" + m["id"]
		if rows[key] != nil {
			t.Fatalf("CSV lists %s twice", key)
		}
		rows[key] = m
	}
	return meta, rows
}

func TestInventoryCSVHoldsExactlyTheAgencysCredentials(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		f, svc := seed(t, db)
		ex, err := svc.Export(ctx, reports.ExportRequest{Agency: f.Demo, Format: reports.FormatCSV, Actor: reviewer, Origin: audit.Origin{RequestID: "r1"}})
		if err != nil {
			t.Fatal(err)
		}
		if ex.Count != len(f.Want) || ex.Filename != "inventory-demo-county-20250602T120000Z.csv" {
			t.Fatalf("export count %d filename %q", ex.Count, ex.Filename)
		}
		meta, rows := parseCSV(t, ex.Body)
		for k, want := range map[string]string{
			"agency": "Demo County (demo-county)", "generated_by": "Rita Reviewer", "generated_at": "2025-06-02T12:00:00Z",
			"credentials": "9", "active": "7", "compliant": "4", "not_compliant": "3",
			"policy": "maximum age: API credentials 90 days, SSH keys 365 days, Webhook secrets 180 days; due soon 14 days before; unused after 90 days; IdP client secrets due soon 30 days before expiry",
		} {
			if meta[k] != want {
				t.Errorf("CSV %s = %q, want %q", k, meta[k], want)
			}
		}
		if len(rows) != len(f.Want) {
			t.Errorf("CSV has %d credentials, want %d", len(rows), len(f.Want))
		}
		for _, w := range f.Want {
			r := rows[w.Key()]
			if r == nil {
				t.Errorf("CSV lacks %s (%s)", w.Key(), w.Name)
				continue
			}
			name := w.Name
			if strings.HasPrefix(name, "=") {
				name = "'" + name // neutralised formula
			}
			for col, want := range map[string]string{
				"name": name, "reference": w.Reference, "environment": w.Environment, "status": w.Status,
				"age_state": w.AgeState, "use_state": w.UseState, "compliant": w.Compliant, "age_days": strconv.Itoa(w.AgeDays),
			} {
				if r[col] != want {
					t.Errorf("%s (%s) %s = %q, want %q", w.Key(), w.Name, col, r[col], want)
				}
			}
			if _, err := time.Parse(time.RFC3339, r["created_at"]); err != nil {
				t.Errorf("%s created_at %q: %v", w.Key(), r["created_at"], err)
			}
		}
		// Dates of single rows, exactly.
		byName := map[string]reportstest.Want{}
		for _, w := range f.Want {
			byName[w.Name] = w
		}
		day := func(n int) string { return reportstest.Now.Add(time.Duration(n) * 24 * time.Hour).Format(time.RFC3339) }
		for _, tc := range []struct{ name, col, want string }{
			{"Case sync", "created_at", day(-100)},
			{"Case sync", "last_used_at", ""},
			{"Case sync", "last_rotated_at", ""},
			{"Case sync", "due_at", day(-10)},
			{"Reports feed", "created_at", day(-120)},
			{"Reports feed", "last_rotated_at", day(-5)},
			{"Reports feed", "last_used_at", day(-1)},
			{"Reports feed", "due_at", day(85)},
			{"Old export", "due_at", ""},
			{"Case events", "last_rotated_at", day(-170)},
			{"Okta client secret", "expires_at", day(10)},
			{"Okta client secret", "due_at", day(10)},
		} {
			if got := rows[byName[tc.name].Key()][tc.col]; got != tc.want {
				t.Errorf("%s %s = %q, want %q", tc.name, tc.col, got, tc.want)
			}
		}
		body := string(ex.Body)
		for _, s := range append(f.OtherNames, f.OtherRefs...) {
			if strings.Contains(body, s) {
				t.Errorf("the CSV shows the other agency's %q", s)
			}
		}
		for _, s := range f.Secrets {
			if strings.Contains(body, s) {
				t.Errorf("the CSV holds a secret value (%d characters)", len(s))
			}
		}

		// The other agency's report holds only its own three credentials.
		ex2, err := svc.Export(ctx, reports.ExportRequest{Agency: f.Other, Format: reports.FormatCSV, Actor: reviewer})
		if err != nil {
			t.Fatal(err)
		}
		_, other := parseCSV(t, ex2.Body)
		if len(other) != 3 {
			t.Errorf("the other agency's CSV has %d credentials, want 3", len(other))
		}
		for _, w := range f.Want {
			if other[w.Key()] != nil && other[w.Key()]["name"] == w.Name {
				t.Errorf("the other agency's CSV shows %s", w.Name)
			}
		}
	})
}

var pageOf = regexp.MustCompile(`page (\d+) of (\d+)`)

func TestInventoryPDFShowsSummaryChartAndRows(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		f, svc := seed(t, db)
		ex, err := svc.Export(ctx, reports.ExportRequest{Agency: f.Demo, Format: reports.FormatPDF, Actor: reviewer})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(ex.Body, []byte("%PDF-1.4")) || ex.Filename != "inventory-demo-county-20250602T120000Z.pdf" {
			t.Fatalf("not a PDF report: %q %q", ex.Body[:8], ex.Filename)
		}
		text := pdfText(t, ex.Body)
		for _, s := range []string{
			"keyconsole credential inventory",
			"maximum age: API credentials 90 days, SSH keys 365 days, Webhook secrets 180 days;",
			"Credential ages against the policy limit, by type",
			"API credentials: 3 active, oldest 100 days, median 80 days, limit 90 days, 1 due soon, 1 overdue.",
			"SSH keys: 2 active, oldest 400 days, median 205 days, limit 365 days, 0 due soon, 1 overdue.",
			"Webhook secrets: 1 active, oldest 170 days, median 170 days, limit 180 days, 1 due soon, 0 overdue.",
			"within policy", "due soon", "overdue", "policy limit", "limit 90 days", "limit 365 days",
			"Age in days since creation or last rotation",
			"End of report: 9 credentials.",
			"page 1 of 2", "page 2 of 2",
		} {
			if !strings.Contains(text, s) {
				t.Errorf("PDF text lacks %q", s)
			}
		}
		// pdftotext widens the gaps of fixed-width text by a variable amount.
		for _, re := range []string{
			`Agency:\s+Demo County \(demo-county\)\n`,
			`Generated by:\s+Rita Reviewer\n`,
			`Generated at:\s+2025-06-02 12:00:00 UTC\n`,
			`Credentials:\s+9 \(7 active\); of the active: 4 compliant, 3 not compliant\n`,
			`By status:\s+active 7, revoked 1, disabled 1\n`,
		} {
			if !regexp.MustCompile(re).MatchString(text) {
				t.Errorf("PDF summary lacks a line matching %s", re)
			}
		}
		checkMargins(t, ex.Body)
		// The counts table: type, total, active, within, due soon, overdue,
		// never used, unused, compliant, not compliant, limit.
		for _, re := range []string{
			`API credentials\s+4\s+3\s+1\s+1\s+1\s+1\s+0\s+2\s+1\s+90 days`,
			`SSH keys\s+2\s+2\s+1\s+0\s+1\s+0\s+1\s+1\s+1\s+365 days`,
			`Webhook secrets\s+2\s+1\s+0\s+1\s+0\s+1\s+0\s+0\s+1\s+180 days`,
			`IdP client secrets\s+1\s+1\s+0\s+1\s+0\s+n/a\s+n/a\s+1\s+0\s+expiry`,
			`All types\s+9\s+7\s+2\s+3\s+2\s+2\s+1\s+4\s+3\n`,
		} {
			if !regexp.MustCompile(re).MatchString(text) {
				t.Errorf("PDF counts lack a line matching %s", re)
			}
		}
		// One table line per credential, found by the start of its
		// reference (names of keys of one account start alike), with its
		// states.
		for _, w := range f.Want {
			ref := prefix(w.Reference, 25)
			var line string
			for _, l := range strings.Split(text, "\n") {
				if strings.Contains(l, ref) && strings.Contains(l, reports.TypeLabel(w.Type)) {
					if line != "" {
						t.Errorf("PDF lists %s twice", w.Name)
					}
					line = l
				}
			}
			if line == "" {
				t.Errorf("PDF table lacks %s", w.Name)
				continue
			}
			row := reports.Row{AgeState: w.AgeState, UseState: w.UseState}
			for _, s := range []string{prefix(w.Name, 26), w.Status, reports.AgeLabel(row), w.Compliant} {
				if !strings.Contains(line, " "+s) && !strings.HasPrefix(line, s) {
					t.Errorf("PDF line of %s lacks %q: %s", w.Name, s, line)
				}
			}
		}
		for _, s := range append(f.OtherNames, f.OtherRefs...) {
			if strings.Contains(text, prefix(s, 20)) {
				t.Errorf("the PDF shows the other agency's %q", s)
			}
		}
		for _, s := range f.Secrets {
			if strings.Contains(text, s) || bytes.Contains(ex.Body, []byte(s)) {
				t.Errorf("the PDF holds a secret value (%d characters)", len(s))
			}
		}
		if svg := svcChart(t, svc, f); strings.Contains(svg, "q-token-in-the-query") {
			t.Error("the chart holds the webhook URL's query")
		}
	})
}

var bboxWord = regexp.MustCompile(`<word xMin="([0-9.]+)" yMin="([0-9.]+)" xMax="([0-9.]+)" yMax="([0-9.]+)">([^<]*)</word>`)

// checkMargins fails when any word of the document leaves the page's
// half-inch margins.
func checkMargins(t *testing.T, pdf []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "report.pdf")
	if err := os.WriteFile(p, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-bbox", p, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext -bbox: %v", err)
	}
	words := bboxWord.FindAllStringSubmatch(string(out), -1)
	if len(words) == 0 {
		t.Fatal("pdftotext found no words")
	}
	for _, m := range words {
		var box [4]float64
		for i := range box {
			box[i], _ = strconv.ParseFloat(m[i+1], 64)
		}
		// The footer sits in the bottom margin, its baseline 22 points
		// above the edge.
		if box[0] < 36-0.01 || box[2] > 792-36+0.01 || box[1] < 36-0.01 || box[3] > 612-18 {
			t.Errorf("word %q at %v leaves the margins", m[5], box)
		}
	}
}

// prefix returns the first n characters of s (the PDF table cuts longer
// cells).
func prefix(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

func svcChart(t *testing.T, svc *reports.Service, f *reportstest.Fixture) string {
	t.Helper()
	inv, err := svc.Inventory(context.Background(), f.Demo)
	if err != nil {
		t.Fatal(err)
	}
	return string(inv.ChartSVG())
}

func TestExportsAreAudited(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		f, svc := seed(t, db)
		origin := audit.Origin{SourceIP: "127.0.0.1", UserAgent: "test", RequestID: "req-42"}
		for _, fm := range []reports.Format{reports.FormatCSV, reports.FormatPDF} {
			if _, err := svc.Export(ctx, reports.ExportRequest{Agency: f.Demo, Format: fm, Actor: reviewer, Origin: origin}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := svc.Export(ctx, reports.ExportRequest{Agency: f.Demo, Format: "xlsx", Actor: reviewer}); !errors.Is(err, reports.ErrFormat) {
			t.Fatalf("unknown format: %v", err)
		}
		evs, err := models.NewAuditStore(db).Page(ctx, models.AuditFilter{AgencyID: f.Demo.ID, Action: audit.ActionReportInventoryExport}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 2 {
			t.Fatalf("%d export records, want 2", len(evs))
		}
		for i, fm := range []string{"pdf", "csv"} { // newest first
			e := evs[i]
			want := fmt.Sprintf(`{"count":"9","format":"%s"}`, fm)
			if e.Details != want || e.ActorName != "Rita Reviewer" || e.Outcome != audit.OutcomeSuccess || e.RequestID != "req-42" ||
				e.TargetType != audit.TargetCredentialInventory || e.TargetName != "Demo County" {
				t.Errorf("record %d: %+v", i, e)
			}
		}
		if v, err := audit.NewVerifier(models.NewAuditStore(db)).Verify(ctx, f.Demo.ID); err != nil || !v.Intact {
			t.Fatalf("chain after exports: %+v %v", v, err)
		}
	})
}

// TestPDFPagesEveryRow measures many credentials without a database: every
// row appears exactly once across the table pages and each page says its
// number out of the right total.
func TestPDFPagesEveryRow(t *testing.T) {
	now := reportstest.Now
	for _, n := range []int{0, 1, 48, 49, 150} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			var items []inventory.Item
			for i := 0; i < n; i++ {
				items = append(items, inventory.Item{Type: policy.TypeSSHKey, ID: int64(i + 1), Name: fmt.Sprintf("key-%04d", i),
					Status: inventory.StatusActive, CreatedAt: now.Add(-time.Duration(i*3) * 24 * time.Hour), Extra: "SHA256:x"})
			}
			inv := reports.Measure(models.Agency{Slug: "big-county", Name: "Big County"}, items, policy.Default(), now)
			var buf bytes.Buffer
			if err := reports.WritePDF(&buf, inv, "Rita Reviewer"); err != nil {
				t.Fatal(err)
			}
			text := pdfText(t, buf.Bytes())
			checkMargins(t, buf.Bytes())
			pages := 1 + max(1, (n+47)/48)
			seen := map[string]bool{}
			for _, m := range pageOf.FindAllStringSubmatch(text, -1) {
				if m[2] != strconv.Itoa(pages) {
					t.Fatalf("footer %q, want of %d", m[0], pages)
				}
				seen[m[1]] = true
			}
			if len(seen) != pages {
				t.Fatalf("footers on %d pages, want %d", len(seen), pages)
			}
			for i := 0; i < n; i++ {
				if c := strings.Count(text, fmt.Sprintf("key-%04d ", i)); c != 1 {
					t.Fatalf("key-%04d appears %d times", i, c)
				}
			}
			if !strings.Contains(text, fmt.Sprintf("End of report: %d credentials.", n)) {
				t.Fatal("no end line")
			}
			if n == 0 && !strings.Contains(text, "The agency has no credentials.") {
				t.Fatal("an empty report does not say so")
			}
		})
	}
}
