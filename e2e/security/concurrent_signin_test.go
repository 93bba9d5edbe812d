package security

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"keyconsole/e2e/harness"
)

// TestFault02_ConcurrentFirstSignInOnTwoReplicas: one person's first
// sign-ins, completed at the same moment in many browsers across two
// replicas on PostgreSQL, all land signed in (303), with one user row.
func TestFault02_ConcurrentFirstSignInOnTwoReplicas(t *testing.T) {
	requireLong(t)
	t.Parallel()
	const perReplica, rounds = 20, 3
	a, b := startReplicas(t)
	for r := range rounds {
		u := harness.AdminUser()
		u.Subject = "e2e-first-race-" + string(rune('a'+r))
		// Every browser goes through the console and the provider up to the
		// callback; the callbacks are then delivered together.
		type held struct {
			cl       *harness.Client
			callback string
		}
		var pending []held
		for _, c := range []*harness.Console{a, b} {
			for range perReplica {
				cl := harness.NewClient(t, c.URL)
				c.Queue(u)
				start := cl.Get("/auth/login/" + harness.ProviderID)
				if start.Status != http.StatusFound {
					t.Fatalf("GET /auth/login: %d", start.Status)
				}
				authz := cl.Get(start.Location())
				if authz.Status != http.StatusFound || !strings.Contains(authz.Location(), "/auth/callback/") {
					t.Fatalf("provider authorization: %d %q", authz.Status, authz.Location())
				}
				pending = append(pending, held{cl, authz.Location()})
			}
		}
		answers := make([]harness.Response, len(pending))
		release := make(chan struct{})
		var wg sync.WaitGroup
		for i, h := range pending {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-release
				answers[i] = h.cl.Get(h.callback)
			}()
		}
		close(release)
		wg.Wait()
		for i, ans := range answers {
			if ans.Status != http.StatusSeeOther {
				t.Fatalf("round %d: callback %d of %d answered %d; errors logged:\n%s", r+1, i+1, len(answers), ans.Status, errorLines(a.Logs()+b.Logs()))
			}
		}
		if n := count(t, a, "SELECT COUNT(*) FROM users WHERE subject = ?", u.Subject); n != 1 {
			t.Fatalf("round %d: %d user rows, want 1", r+1, n)
		}
	}
	verifyAudit(t, a)
}

// errorLines returns the lines of a console log at level ERROR.
func errorLines(logs string) string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `"level":"ERROR"`) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
