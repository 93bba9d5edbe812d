package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"keyconsole/e2e/harness"
)

const hygienePath = "/a/" + harness.DemoSlug + "/hygiene"

// createAPICredential creates a staging credential through the console's
// pages and returns its client_id and secret as shown once.
func createAPICredential(t *testing.T, b *harness.Browser, name string) (string, string) {
	t.Helper()
	if st := b.Open("/a/" + harness.DemoSlug + "/api-credentials/new"); st != http.StatusOK {
		t.Fatalf("new credential page: %d", st)
	}
	b.Fill("#name", name)
	b.Click("#create-credential")
	id := strings.TrimSpace(b.Text("#client-id"))
	secret := strings.TrimSpace(b.TextContent("#client-secret"))
	if id == "" || secret == "" {
		t.Fatalf("no client_id/secret shown after creating %s (page %s)", name, b.Location())
	}
	return id, secret
}

// backdate moves a credential's creation into the past, as if it had been
// created that long ago.
func backdate(t *testing.T, c *harness.Console, table, column, where string, arg any, age time.Duration) {
	t.Helper()
	at := time.Now().UTC().Add(-age).Truncate(time.Microsecond)
	if err := c.DB().Gorm.Exec("UPDATE "+table+" SET "+column+" = ? WHERE "+where, at, arg).Error; err != nil {
		t.Fatalf("backdate %s: %v", table, err)
	}
}

func screenshot(t *testing.T, b *harness.Browser, name string) {
	t.Helper()
	dir := os.Getenv("KEYCONSOLE_E2E_SCREENSHOTS")
	if dir == "" {
		return
	}
	b.Screenshot(filepath.Join(dir, name+".png"))
}

func TestHygieneDashboardShowsOverdueCredentialAndRotatesIt(t *testing.T) {
	t.Parallel()
	c := demoConsole(t, harness.Options{})
	b := c.Browser()
	signInAdmin(t, c, b)

	clientID, oldSecret := createAPICredential(t, b, "Case sync")
	backdate(t, c, "api_credentials", "created_at", "client_id = ?", clientID, 120*24*time.Hour)

	// The dashboard counts it and links to the review.
	if st := b.Open(dashboardPath); st != http.StatusOK {
		t.Fatalf("dashboard: %d", st)
	}
	tiles := b.Text("ul.usa-card-group")
	if !strings.Contains(tiles, "Overdue credentials") || !strings.Contains(tiles, "1") {
		t.Fatalf("dashboard tiles do not show one overdue credential: %q", tiles)
	}
	if !b.Has(`a[href="` + hygienePath + `#overdue"]`) {
		t.Fatalf("dashboard has no link to the overdue list")
	}

	if st := b.Open(hygienePath); st != http.StatusOK {
		t.Fatalf("hygiene page: %d", st)
	}
	if got := strings.TrimSpace(b.Text("#count-overdue")); got != "1" {
		t.Fatalf("overdue count = %q, want 1", got)
	}
	row := strings.ToLower(b.TextContent("#overdue-table tbody tr"))
	for _, want := range []string{"case sync", clientID, "api credentials", "120 days", "overdue by 30 days", "never used"} {
		if !strings.Contains(row, want) {
			t.Errorf("overdue row %q does not contain %q", row, want)
		}
	}
	// The age chart is an accessible image with a text equivalent.
	if !b.Has(`svg[role="img"][aria-labelledby] > title`) || !b.Has(`svg[role="img"] > desc`) {
		t.Errorf("age chart lacks role=img, title or desc")
	}
	if desc := b.TextContent(`svg[role="img"] > desc`); !strings.Contains(desc, "API credentials: 1 active, oldest 120 days") {
		t.Errorf("chart description = %q", desc)
	}
	if table := b.Text("#chart-table"); !strings.Contains(table, "API credentials") || !strings.Contains(table, "120") {
		t.Errorf("chart table = %q", table)
	}
	screenshot(t, b, "hygiene-overdue")

	// Rotate from the row: the feature's regenerate page, then a new secret.
	b.Click("#overdue-table a.kc-rotate")
	if p := pathOf(t, b.Location()); !strings.HasSuffix(p, "/regenerate") {
		t.Fatalf("rotate action led to %s, want the regenerate page", p)
	}
	b.Fill("#confirm_name", "Case sync")
	if st := b.Click("#confirm-regenerate"); st != http.StatusOK {
		t.Fatalf("regenerate answered %d", st)
	}
	newSecret := strings.TrimSpace(b.TextContent("#client-secret"))
	if newSecret == "" || newSecret == oldSecret {
		t.Fatalf("regeneration showed no new secret")
	}

	if st := b.Open(hygienePath); st != http.StatusOK {
		t.Fatalf("hygiene page: %d", st)
	}
	if got := strings.TrimSpace(b.Text("#count-overdue")); got != "0" {
		t.Fatalf("overdue count after rotation = %q, want 0", got)
	}
	if !b.Has("#overdue-empty") {
		t.Errorf("overdue list not empty after rotation")
	}
	screenshot(t, b, "hygiene-after-rotation")

	var regenerated int
	for _, e := range c.AuditEvents("api_credential.regenerate") {
		if e.TargetID == clientID && e.ActorName == "Ada Admin" && e.Outcome == "success" {
			regenerated++
		}
	}
	if regenerated != 1 {
		t.Errorf("api_credential.regenerate records for %s = %d, want 1", clientID, regenerated)
	}
}
