package security

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"keyconsole/e2e/harness"
	"keyconsole/models"
	"keyconsole/services/audit"
)

// concurrentSecretSets is how many submissions of one secret form race.
const concurrentSecretSets = 8

// TestFinding07_ConcurrentWebhookSecretSetsOneWins submits one webhook
// secret form (one secret version) eight times at once, each with its own
// typed secret, on SQLite and PostgreSQL: exactly one answers 200 and shows
// its secret, which is then the endpoint's current one; the other seven
// answer 409 with a page that says nothing was changed and shows no secret,
// and only the one success is audited as a rotation.
func TestFinding07_ConcurrentWebhookSecretSetsOneWins(t *testing.T) {
	t.Parallel()
	for _, d := range []models.Dialect{models.SQLite, models.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			receiver := newSignatureReceiver(t)
			c := harness.Start(t, harness.Options{Dialect: d, Env: map[string]string{"KEYCONSOLE_WEBHOOK_ALLOWED_CIDRS": "127.0.0.0/8"}})
			seedAgencies(c)
			admin := signedIn(t, c, harness.AdminUser())
			h := createWebhook(t, admin, c, harness.DemoSlug, "Race hook", receiver.url, "RaceSecret0123456789abcd")
			page := admin.Get(hookPath(harness.DemoSlug, h, "/secret"))
			if page.Status != http.StatusOK {
				t.Fatalf("GET secret form: %d", page.Status)
			}
			token, version := csrfOf(page.Body), inputValue(page.Body, "version")

			submitted := make([]string, concurrentSecretSets)
			results := make([]harness.Response, concurrentSecretSets)
			errs := make([]error, concurrentSecretSets)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range concurrentSecretSets {
				submitted[i] = fmt.Sprintf("RaceSet%02d-abcdefghijklmn", i)[:24]
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					results[i], errs[i] = rawPost(admin, hookPath(harness.DemoSlug, h, "/secret"), form("_csrf", token, "version", version,
						"confirm", h.Name, "secret_source", "typed", "secret", submitted[i], "overlap_hours", "24"))
				}()
			}
			close(start)
			wg.Wait()

			var won []string
			refused := 0
			for i, r := range results {
				switch {
				case errs[i] != nil:
					t.Fatalf("submission %d: %v", i, errs[i])
				case r.Status == http.StatusOK:
					if got := webhookSecretOf(r); got != submitted[i] {
						t.Fatalf("submission %d shows %q, want its own secret", i, got)
					}
					won = append(won, submitted[i])
				case r.Status == http.StatusConflict:
					refused++
					body := mainOf(r)
					if webhookSecretOf(r) != "" || strings.Contains(r.Body, submitted[i]) {
						t.Fatalf("a refused submission shows a secret:\n%s", body)
					}
					if !strings.Contains(body, "Nothing was changed") {
						t.Fatalf("the refusal does not say nothing was changed:\n%s", body)
					}
				default:
					t.Fatalf("submission %d: %d\n%s", i, r.Status, mainOf(r))
				}
			}
			if len(won) != 1 || refused != concurrentSecretSets-1 {
				t.Fatalf("%d submissions set a secret and %d were refused, want 1 and %d", len(won), refused, concurrentSecretSets-1)
			}
			if cur := webhookSecretOf(revealWebhook(t, admin, harness.DemoSlug, h)); cur != won[0] {
				t.Fatalf("the current secret is not the one shown to the winning submission")
			}
			if v := count(t, c, "SELECT secret_version FROM webhook_endpoints WHERE id = ?", h.ID); v != 2 {
				t.Fatalf("secret version %d after one set, want 2", v)
			}
			var success, denied int
			for _, e := range c.AuditEvents(audit.ActionWebhookSecretRotate) {
				switch e.Outcome {
				case audit.OutcomeSuccess:
					success++
				case audit.OutcomeDenied:
					denied++
				}
			}
			if success != 1 || denied != concurrentSecretSets-1 {
				t.Fatalf("audit: %d successful and %d refused rotations, want 1 and %d", success, denied, concurrentSecretSets-1)
			}
			verifyAudit(t, c)
		})
	}
}
