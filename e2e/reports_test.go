package e2e

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"keyconsole/e2e/harness"
)

const reportsPath = "/a/" + harness.DemoSlug + "/reports"

// reportsInventoryRows parses an inventory CSV and returns its credential
// rows keyed by name.
func reportsInventoryRows(t *testing.T, b []byte) map[string]map[string]string {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("\ufeff")) {
		t.Fatal("inventory CSV lacks the UTF-8 byte order mark")
	}
	r := csv.NewReader(bytes.NewReader(b[len("\ufeff"):]))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	header := -1
	for i, rec := range recs {
		if rec[0] == "type" {
			header = i
			break
		}
	}
	if header < 0 {
		t.Fatalf("inventory CSV has no header row:\n%s", b)
	}
	rows := map[string]map[string]string{}
	for _, rec := range recs[header+1:] {
		m := map[string]string{}
		for j, col := range recs[header] {
			m[col] = rec[j]
		}
		rows[m["name"]] = m
	}
	return rows
}

func reportsPDFText(t *testing.T, pdf []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "inventory.pdf")
	if err := os.WriteFile(p, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-layout", p, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return string(out)
}

func TestReviewerOpensReportsAndDownloadsTheInventory(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Fatal("pdftotext is required to read the PDF report: install poppler-utils")
	}
	for _, dialect := range browserDialects() {
		t.Run(string(dialect), func(t *testing.T) {
			c := demoConsole(t, harness.Options{Dialect: dialect})

			// An admin creates a credential; it is backdated past the policy's
			// 90 days for API credentials.
			admin := c.Browser()
			signInAdmin(t, c, admin)
			clientID, secret := hygieneCreateAPICredential(t, admin, "Court feed")
			hygieneBackdate(t, c, "api_credentials", "created_at", "client_id = ?", clientID, 120*24*time.Hour)

			b := c.Browser()
			if st := b.SignIn(harness.ReviewerUser()); st != http.StatusOK {
				t.Fatalf("reviewer sign-in landed with %d", st)
			}
			if st := b.Click(`nav a[href="` + reportsPath + `"]`); st != http.StatusOK {
				t.Fatalf("reports page from the navigation: %d", st)
			}
			if p := pathOf(t, b.Location()); p != reportsPath {
				t.Fatalf("navigation led to %s", p)
			}
			// The chart is an accessible image with a text equivalent.
			if !b.Has(`#inventory-chart svg[role="img"][aria-labelledby] > title`) {
				t.Fatal("the Reports page shows no accessible age chart")
			}
			if desc := b.TextContent(`#inventory-chart svg > desc`); !strings.Contains(desc, "API credentials: 1 active, oldest 120 days") {
				t.Fatalf("chart description = %q", desc)
			}
			if row := b.Text(`#inventory-counts tbody tr`); !strings.Contains(row, "API credentials") || !strings.Contains(row, "90 days") {
				t.Fatalf("counts row = %q", row)
			}
			if !b.Has(`a[href="/a/` + harness.DemoSlug + `/audit"]#audit-page-link`) {
				t.Fatal("no link to the audit log's exports")
			}
			hygieneScreenshot(t, b, "reports-"+string(dialect))

			csvFile := download(t, b, "#inventory-csv")
			rows := reportsInventoryRows(t, csvFile)
			row := rows["Court feed"]
			if len(rows) != 1 || row == nil {
				t.Fatalf("inventory CSV rows: %v", rows)
			}
			for col, want := range map[string]string{"type": "api_credential", "reference": clientID, "status": "active",
				"age_days": "120", "age_state": "overdue", "use_state": "never_used", "compliant": "no", "environment": "staging"} {
				if row[col] != want {
					t.Errorf("CSV %s = %q, want %q", col, row[col], want)
				}
			}
			pdf := download(t, b, "#inventory-pdf")
			text := reportsPDFText(t, pdf)
			for _, s := range []string{"keyconsole credential inventory", "Rita Reviewer", "Court feed", clientID, "End of report: 1 credentials.",
				"API credentials: 1 active, oldest 120 days"} {
				if !strings.Contains(text, s) {
					t.Errorf("PDF text lacks %q", s)
				}
			}
			for name, body := range map[string][]byte{"CSV": csvFile, "PDF": pdf, "PDF text": []byte(text)} {
				if bytes.Contains(body, []byte(secret)) {
					t.Errorf("the %s holds the client secret", name)
				}
			}

			evs := c.AuditEvents("report.inventory_export")
			if len(evs) != 2 {
				t.Fatalf("%d inventory export records, want 2", len(evs))
			}
			for i, fm := range []string{"csv", "pdf"} {
				var d map[string]string
				if err := json.Unmarshal([]byte(evs[i].Details), &d); err != nil {
					t.Fatal(err)
				}
				if d["format"] != fm || d["count"] != "1" || evs[i].ActorName != "Rita Reviewer" || evs[i].SourceIP == "" {
					t.Errorf("export record %d: %+v", i, evs[i])
				}
			}

			// A viewer neither sees the link nor reaches the page.
			v := c.Browser()
			if st := v.SignIn(harness.ViewerUser()); st != http.StatusOK {
				t.Fatalf("viewer sign-in landed with %d", st)
			}
			if v.Has(`a[href="` + reportsPath + `"]`) {
				t.Error("the viewer's navigation links to Reports")
			}
			for _, p := range []string{reportsPath, reportsPath + "/inventory.csv", reportsPath + "/inventory.pdf"} {
				if st := v.Open(p); st != http.StatusNotFound {
					t.Errorf("viewer GET %s: %d", p, st)
				}
			}

			// The command line writes the same report, audited as the CLI.
			out := c.MustCLI("report", "inventory", "--agency", harness.DemoSlug, "--format", "csv")
			if got := reportsInventoryRows(t, []byte(out)); got["Court feed"]["reference"] != clientID || len(got) != 1 {
				t.Fatalf("CLI CSV rows: %v", got)
			}
			file := filepath.Join(t.TempDir(), "inventory.pdf")
			res := c.CLI("report", "inventory", "--agency", harness.DemoSlug, "--format", "pdf", "--output", file)
			if res.Code != 0 || !strings.Contains(res.Stderr, "exported the inventory of demo-county (1 credentials) as pdf to "+file) {
				t.Fatalf("CLI pdf: %+v", res)
			}
			st, err := os.Stat(file)
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("CLI output file: %v %v", st, err)
			}
			written, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(reportsPDFText(t, written), "Court feed") {
				t.Fatal("the CLI's PDF lacks the credential")
			}
			for _, tc := range []struct {
				args []string
				code int
				msg  string
			}{
				{[]string{"report", "inventory", "--agency", harness.DemoSlug, "--format", "xlsx"}, 2, "--format must be csv or pdf"},
				{[]string{"report", "inventory", "--format", "csv"}, 2, "needs --agency SLUG"},
				{[]string{"report", "summary"}, 2, `unknown report "summary"`},
				{[]string{"report", "inventory", "--agency", "no-such-county", "--format", "csv"}, 1, `agency "no-such-county"`},
			} {
				if r := c.CLI(tc.args...); r.Code != tc.code || !strings.Contains(r.Stderr, tc.msg) {
					t.Errorf("keyconsole %v: exit %d, stderr %q", tc.args, r.Code, r.Stderr)
				}
			}
			evs = c.AuditEvents("report.inventory_export")
			if len(evs) != 4 || !strings.HasPrefix(evs[2].ActorName, "cli:") || evs[3].ActorType != "system" {
				t.Fatalf("export records after the CLI: %d, %+v", len(evs), evs[len(evs)-1])
			}
		})
	}
}
