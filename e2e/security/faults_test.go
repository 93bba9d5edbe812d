package security

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver for the administrative connection.

	"keyconsole/e2e/harness"
	"keyconsole/kms/kmstest"
	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
)

// kmsEnv points a console at a local-kms server.
func kmsEnv(k *kmstest.Server) map[string]string {
	return map[string]string{
		"KEYCONSOLE_KMS_PROVIDER": "aws",
		"KEYCONSOLE_KMS_KEY_ID":   kmstest.AliasA,
		"KEYCONSOLE_KMS_REGION":   kmstest.Region,
		"KEYCONSOLE_KMS_ENDPOINT": k.Endpoint,
	}
}

// eventually polls check until it reports true or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, check func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(100 * time.Millisecond) {
		if check() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
	}
}

func count(t *testing.T, c *harness.Console, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := c.DB().Gorm.Raw(query, args...).Scan(&n).Error; err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestKMSOutageChangesNothingAndRecovers stops the KMS server under a
// running console whose caches are cold: /readyz reports it, every page that
// needs a secret answers a clear 503 and writes nothing, everything else
// (pages, token endpoint) keeps working, and all of it recovers when KMS
// returns, without a restart.
func TestKMSOutageChangesNothingAndRecovers(t *testing.T) {
	requireLong(t)
	k := kmstest.Start(t)
	c := harness.Start(t, harness.Options{Env: kmsEnv(k)})
	seedAgencies(c)
	admin := signedIn(t, c, harness.AdminUser())
	cred := createAPICredential(t, admin, harness.DemoSlug, "Outage sync", "staging")
	h := createWebhook(t, admin, c, harness.DemoSlug, "Outage hook", "https://receiver.demo-county.example/hook", "OutageSecret0123456789ab")
	// A restart empties every cache of opened secrets and data keys.
	c.Restart()
	admin = signedIn(t, c, harness.AdminUser())
	hooksBefore := count(t, c, "SELECT COUNT(*) FROM webhook_endpoints")
	sealedBefore := count(t, c, "SELECT COUNT(*) FROM sealed_secrets")
	k.Stop(t)

	ready := admin.Get("/readyz")
	if ready.Status != http.StatusServiceUnavailable || !strings.Contains(ready.Body, `"kms":"unavailable"`) || !strings.Contains(ready.Body, `"database":"ok"`) {
		t.Fatalf("/readyz with KMS down: %d %s", ready.Status, ready.Body)
	}
	unavailable := func(what string, r harness.Response) {
		t.Helper()
		if r.Status != http.StatusServiceUnavailable || !strings.Contains(r.Body, "Encryption is unavailable") || !strings.Contains(r.Body, "Nothing was changed") {
			t.Errorf("%s with KMS down: %d\n%s", what, r.Status, mainOf(r))
		}
		if strings.Contains(r.Body, "kms:") || strings.Contains(r.Body, "dial tcp") {
			t.Errorf("%s with KMS down shows an internal error text", what)
		}
	}
	unavailable("reveal a webhook secret", revealWebhook(t, admin, harness.DemoSlug, h))
	unavailable("set a webhook secret", setWebhookSecret(t, admin, harness.DemoSlug, h, "NewOutageSecret012345678", "0"))
	page := admin.Get("/a/" + harness.DemoSlug + "/webhooks/new")
	unavailable("create a webhook", admin.PostForm("/a/"+harness.DemoSlug+"/webhooks", form("_csrf", csrfOf(page.Body), "name", "Born in outage",
		"environment", "staging", "url", "https://receiver.demo-county.example/b", "events", "court_date.scheduled", "secret_source", "generate")))
	if n := count(t, c, "SELECT COUNT(*) FROM webhook_endpoints"); n != hooksBefore {
		t.Errorf("webhook endpoints: %d after refused writes, %d before", n, hooksBefore)
	}
	if n := count(t, c, "SELECT COUNT(*) FROM sealed_secrets"); n != sealedBefore {
		t.Errorf("sealed secrets: %d after refused writes, %d before", n, sealedBefore)
	}
	// What needs no KMS call keeps working.
	for _, p := range []string{"/a/" + harness.DemoSlug + "/", "/a/" + harness.DemoSlug + "/api-credentials", "/a/" + harness.DemoSlug + "/webhooks",
		"/a/" + harness.DemoSlug + "/audit", "/a/" + harness.DemoSlug + "/ssh-keys"} {
		if r := admin.Get(p); r.Status != http.StatusOK {
			t.Errorf("GET %s with KMS down: %d", p, r.Status)
		}
	}
	if r := requestToken(t, c.Client(), cred.ClientID, cred.Secret); r.Status != http.StatusOK {
		t.Errorf("token request with KMS down: %d %+v", r.Status, r)
	}

	k.Restart(t)
	eventually(t, 20*time.Second, "/readyz after KMS returns", func() bool { return admin.Get("/readyz").Status == http.StatusOK })
	if r := revealWebhook(t, admin, harness.DemoSlug, h); r.Status != http.StatusOK || webhookSecretOf(r) != h.Secret {
		t.Fatalf("reveal after KMS returns: %d, the secret is unchanged: %v", r.Status, webhookSecretOf(r) == h.Secret)
	}
	if r := setWebhookSecret(t, admin, harness.DemoSlug, h, "NewOutageSecret012345678", "0"); r.Status != http.StatusOK {
		t.Fatalf("set secret after KMS returns: %d\n%s", r.Status, mainOf(r))
	}
	verifyAudit(t, c)
}

// TestDatabaseOutageAnswers503AndRecovers makes the console's PostgreSQL
// database refuse connections (ALLOW_CONNECTIONS false, open connections
// terminated): /readyz fails, /healthz stays up, requests get a clear 503
// page, and the console recovers on its own once the database is back.
func TestDatabaseOutageAnswers503AndRecovers(t *testing.T) {
	requireLong(t)
	t.Parallel()
	c := harness.Start(t, harness.Options{Dialect: models.Postgres})
	seedAgencies(c)
	admin := signedIn(t, c, harness.AdminUser())
	u, err := url.Parse(c.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	pg, err := sql.Open("pgx", modelstest.PostgresAdminURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	ctx := context.Background()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := pg.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	quoted := `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
	tok := csrfOf(admin.Get("/a/" + harness.DemoSlug + "/").Body)
	exec("ALTER DATABASE " + quoted + " ALLOW_CONNECTIONS false")
	t.Cleanup(func() { _, _ = pg.ExecContext(ctx, "ALTER DATABASE "+quoted+" ALLOW_CONNECTIONS true") })
	exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name)

	eventually(t, 15*time.Second, "/readyz reports the database", func() bool {
		r := admin.Get("/readyz")
		return r.Status == http.StatusServiceUnavailable && strings.Contains(r.Body, `"database":"unavailable"`)
	})
	if r := admin.Get("/healthz"); r.Status != http.StatusOK {
		t.Errorf("/healthz while the database is down: %d", r.Status)
	}
	dash := admin.Get("/a/" + harness.DemoSlug + "/")
	if dash.Status != http.StatusServiceUnavailable || !strings.Contains(dash.Body, "Temporarily unavailable") {
		t.Errorf("dashboard while the database is down: %d\n%s", dash.Status, mainOf(dash))
	}
	if strings.Contains(dash.Body, "SQLSTATE") || strings.Contains(dash.Body, "pgx") {
		t.Errorf("the 503 page shows a database error text")
	}
	if r := admin.PostForm("/a/"+harness.DemoSlug+"/api-credentials", form("_csrf", tok, "name", "x", "environment", "staging")); r.Status != http.StatusServiceUnavailable {
		t.Errorf("form post while the database is down: %d\n%s", r.Status, mainOf(r))
	}
	if r := c.Client().Get("/signin"); r.Status != http.StatusOK {
		t.Errorf("the sign-in page needs no database: %d", r.Status)
	}

	exec("ALTER DATABASE " + quoted + " ALLOW_CONNECTIONS true")
	eventually(t, 20*time.Second, "/readyz after the database returns", func() bool { return admin.Get("/readyz").Status == http.StatusOK })
	if r := admin.Get("/a/" + harness.DemoSlug + "/"); r.Status != http.StatusOK {
		t.Fatalf("dashboard after recovery: %d", r.Status)
	}
	createAPICredential(t, admin, harness.DemoSlug, "After the outage", "staging")
	verifyAudit(t, c)
}

// rawDo sends a request without failing the test on a transport error (the
// server may be killed mid-request).
func rawDo(cl *harness.Client, req *http.Request) (harness.Response, error) {
	resp, err := cl.HTTP.Do(req)
	if err != nil {
		return harness.Response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return harness.Response{}, err
	}
	return harness.Response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}, nil
}

func rawGet(cl *harness.Client, path string) (harness.Response, error) {
	req, _ := http.NewRequest(http.MethodGet, cl.Base+path, nil)
	return rawDo(cl, req)
}

func rawPost(cl *harness.Client, path string, f url.Values) (harness.Response, error) {
	req, _ := http.NewRequest(http.MethodPost, cl.Base+path, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return rawDo(cl, req)
}

// shown collects every secret the console showed, from many goroutines.
type shown struct {
	mu      sync.Mutex
	secrets []string
}

func (s *shown) add(v string) {
	s.mu.Lock()
	s.secrets = append(s.secrets, v)
	s.mu.Unlock()
}

func (s *shown) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.secrets...)
}

// TestKillDuringRegenerationAndRotation kills the console with SIGKILL while
// admins regenerate an API credential and rotate a webhook secret (no
// overlap) as fast as they can, three times. After each restart exactly one
// API secret is valid, the credential's secret version matches its audited
// regenerations, the webhook secret opens and signs test deliveries alone,
// and `keyconsole audit verify` passes.
func TestKillDuringRegenerationAndRotation(t *testing.T) {
	requireLong(t)
	t.Parallel()
	receiver := newSignatureReceiver(t)
	c := harness.Start(t, harness.Options{Env: map[string]string{"KEYCONSOLE_WEBHOOK_ALLOWED_CIDRS": "127.0.0.0/8"}})
	seedAgencies(c)
	admin := signedIn(t, c, harness.AdminUser())
	cred := createAPICredential(t, admin, harness.DemoSlug, "Crash sync", "staging")
	h := createWebhook(t, admin, c, harness.DemoSlug, "Crash hook", receiver.url, "CrashSecret0123456789abc")
	apiSecrets := &shown{}
	apiSecrets.add(cred.Secret)
	hookSecrets := &shown{}
	hookSecrets.add(h.Secret)
	slug := harness.DemoSlug

	for round := 1; round <= 3; round++ {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(2)
			go func() {
				defer wg.Done()
				path := "/a/" + slug + "/api-credentials/" + strconv.FormatInt(cred.ID, 10) + "/regenerate"
				for {
					select {
					case <-stop:
						return
					default:
					}
					page, err := rawGet(admin, path)
					if err != nil || page.Status != http.StatusOK {
						continue
					}
					r, err := rawPost(admin, path, form("_csrf", csrfOf(page.Body), "version", inputValue(page.Body, "version"), "confirm_name", cred.Name))
					if err == nil && r.Status == http.StatusOK {
						if m := clientSecretEl.FindStringSubmatch(r.Body); m != nil {
							apiSecrets.add(strings.TrimSpace(m[1]))
						}
					}
				}
			}()
			go func(w int) {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					secret := fmt.Sprintf("Rot%dw%di%06d%s", round, w, i, "abcdefghijklmn")[:24]
					page, err := rawGet(admin, hookPath(slug, h, "/secret"))
					if err != nil || page.Status != http.StatusOK {
						continue
					}
					hookSecrets.add(secret) // may commit even if the answer is lost
					_, _ = rawPost(admin, hookPath(slug, h, "/secret"), form("_csrf", csrfOf(page.Body), "version", inputValue(page.Body, "version"), "confirm", h.Name,
						"secret_source", "typed", "secret", secret, "overlap_hours", "0"))
				}
			}(w)
		}
		time.Sleep(time.Duration(300+rand.IntN(700)) * time.Millisecond)
		c.Kill()
		close(stop)
		wg.Wait()
		c.Restart()
		admin = signedIn(t, c, harness.AdminUser())

		// API credential: at most one shown secret works, and the stored
		// version is exactly one more than the audited regenerations.
		var valid []string
		for _, s := range apiSecrets.all() {
			if r := requestToken(t, uniqueSource(t, c.URL), cred.ClientID, s); r.Status == http.StatusOK {
				valid = append(valid, s)
			}
		}
		version := count(t, c, "SELECT secret_version FROM api_credentials WHERE id = ?", cred.ID)
		regens := count(t, c, "SELECT COUNT(*) FROM audit_events WHERE action = ? AND target_id = ? AND outcome = 'success'", audit.ActionAPICredentialRegenerate, cred.ClientID)
		if version != regens+1 {
			t.Fatalf("round %d: secret version %d but %d audited regenerations: a change without its audit record (or the reverse)", round, version, regens)
		}
		switch len(valid) {
		case 1:
		case 0:
			// The last regeneration committed but its answer was lost with
			// the process: its secret was never shown. One more must leave
			// exactly that new secret valid.
			r := regenerateAPICredential(t, admin, slug, cred)
			if r.Status != http.StatusOK {
				t.Fatalf("round %d: regenerate after restart: %d", round, r.Status)
			}
			s := secretOf(t, r)
			apiSecrets.add(s)
			if tr := requestToken(t, uniqueSource(t, c.URL), cred.ClientID, s); tr.Status != http.StatusOK {
				t.Fatalf("round %d: the regenerated secret is refused: %+v", round, tr)
			}
		default:
			t.Fatalf("round %d: %d shown secrets are valid at once", round, len(valid))
		}

		// Webhook: the current secret opens, is one that was submitted, and
		// signs a test delivery alone.
		rv := revealWebhook(t, admin, slug, h)
		cur := webhookSecretOf(rv)
		if rv.Status != http.StatusOK || cur == "" {
			t.Fatalf("round %d: reveal after restart: %d\n%s", round, rv.Status, mainOf(rv))
		}
		known := false
		for _, s := range hookSecrets.all() {
			known = known || s == cur
		}
		if !known {
			t.Fatalf("round %d: the webhook secret after restart was never submitted", round)
		}
		if n := count(t, c, "SELECT previous_version FROM webhook_endpoints WHERE id = ?", h.ID); n != 0 {
			t.Fatalf("round %d: an overlap-free rotation left a previous secret version %d", round, n)
		}
		receiver.expect(cur)
		page := admin.Get(hookPath(slug, h, ""))
		if r := admin.PostForm(hookPath(slug, h, "/test"), form("_csrf", csrfOf(page.Body))); r.Status != http.StatusSeeOther {
			t.Fatalf("round %d: test event: %d", round, r.Status)
		}
		receiver.wait(t, fmt.Sprintf("round %d", round))
		verifyAudit(t, c)
	}
}

// fiftyRegenerations sends 50 regenerations of one credential at once, each
// confirmed from the same page (same secret version), and checks that
// exactly one succeeds and its secret alone is valid while the other 49 are
// refused without a change. It returns the console and the credential.
func fiftyRegenerations(t *testing.T, d models.Dialect) (*harness.Console, apiCred) {
	t.Helper()
	c := harness.Start(t, harness.Options{Dialect: d})
	seedAgencies(c)
	admin := signedIn(t, c, harness.AdminUser())
	cred := createAPICredential(t, admin, harness.DemoSlug, "Race sync", "production")
	path := "/a/" + harness.DemoSlug + "/api-credentials/" + strconv.FormatInt(cred.ID, 10) + "/regenerate"
	page := admin.Get(path)
	if page.Status != http.StatusOK {
		t.Fatalf("GET %s: %d", path, page.Status)
	}
	f := form("_csrf", csrfOf(page.Body), "version", inputValue(page.Body, "version"), "confirm_name", cred.Name)
	results := make([]harness.Response, concurrentRegenerations)
	errs := make([]error, concurrentRegenerations)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < concurrentRegenerations; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = rawPost(admin, path, f)
		}()
	}
	close(start)
	wg.Wait()
	var secrets []string
	refused := 0
	for i, r := range results {
		switch {
		case errs[i] != nil:
			t.Fatalf("request %d: %v", i, errs[i])
		case r.Status == http.StatusOK:
			secrets = append(secrets, secretOf(t, r))
		case r.Status == http.StatusConflict:
			refused++
			if strings.Contains(r.Body, `id="client-secret"`) {
				t.Fatalf("a refused regeneration shows a secret")
			}
		default:
			t.Fatalf("request %d: %d\n%s", i, r.Status, mainOf(r))
		}
	}
	if len(secrets) != 1 || refused != concurrentRegenerations-1 {
		t.Fatalf("%d regenerations succeeded and %d were refused, want 1 and %d", len(secrets), refused, concurrentRegenerations-1)
	}
	if r := requestToken(t, uniqueSource(t, c.URL), cred.ClientID, cred.Secret); r.Status == http.StatusOK {
		t.Fatalf("the old secret still works")
	}
	if r := requestToken(t, uniqueSource(t, c.URL), cred.ClientID, secrets[0]); r.Status != http.StatusOK {
		t.Fatalf("the surviving secret is refused: %+v", r)
	}
	if v := count(t, c, "SELECT secret_version FROM api_credentials WHERE id = ?", cred.ID); v != 2 {
		t.Fatalf("secret version %d after one successful regeneration, want 2", v)
	}
	verifyAudit(t, c)
	return c, cred
}

// concurrentRegenerations is how many regenerations race.
const concurrentRegenerations = 50

// TestFiftyConcurrentRegenerations: of 50 simultaneous regenerations of one
// credential exactly one survives, on SQLite and PostgreSQL.
func TestFiftyConcurrentRegenerations(t *testing.T) {
	requireLong(t)
	t.Parallel()
	for _, d := range []models.Dialect{models.SQLite, models.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			c, cred := fiftyRegenerations(t, d)
			success := 0
			for _, e := range c.AuditEvents(audit.ActionAPICredentialRegenerate) {
				if e.TargetID == cred.ClientID && e.Outcome == audit.OutcomeSuccess {
					success++
				}
			}
			if success != 1 {
				t.Fatalf("%d successful regenerations audited, want 1", success)
			}
		})
	}
}

// TestEveryConcurrentRegenerationIsAudited: each of the 50 attempts leaves
// an audit record, the one success and the 49 refusals (a refused attempt at
// a sensitive action is a security event too).
func TestEveryConcurrentRegenerationIsAudited(t *testing.T) {
	requireLong(t)
	t.Parallel()
	c, cred := fiftyRegenerations(t, models.SQLite)
	var success, refused int
	for _, e := range c.AuditEvents(audit.ActionAPICredentialRegenerate) {
		if e.TargetID != cred.ClientID {
			continue
		}
		if e.Outcome == audit.OutcomeSuccess {
			success++
		} else {
			refused++
		}
	}
	if success != 1 || success+refused != concurrentRegenerations {
		t.Fatalf("audit: %d successful and %d refused regenerations recorded, want 1 and %d", success, refused, concurrentRegenerations-1)
	}
}
