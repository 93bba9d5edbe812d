package security

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"keyconsole/e2e/harness"
)

// readyz returns the console's /readyz status and its checks.
func readyz(t *testing.T, c *harness.Console) (int, map[string]string) {
	t.Helper()
	r := harness.NewClient(t, c.URL).Get("/readyz")
	checks := map[string]string{}
	if err := json.Unmarshal([]byte(r.Body), &checks); err != nil {
		t.Fatalf("/readyz answered %d with a body that is not a JSON object of checks: %q", r.Status, r.Body)
	}
	return r.Status, checks
}

// TestFinding06_ReplicaThatCannotSignIsNotReady: a replica started with
// the wrong master key cannot open the pepper or the token signing key; it
// says so on /readyz (503, naming both, while the database and KMS are
// fine), answers /.well-known/jwks.json with 503 rather than an empty key
// set, and refuses tokens with 503. The replica with the right key is
// ready and publishes its key before and after.
func TestFinding06_ReplicaThatCannotSignIsNotReady(t *testing.T) {
	t.Parallel()
	good := harness.Start(t, harness.Options{})
	seedAgencies(good)
	cred := createAPICredential(t, signedIn(t, good, harness.AdminUser()), harness.DemoSlug, "Readiness sync", "staging")
	goodReady := func() {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			status, checks := readyz(t, good)
			if status == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the replica with the right master key is not ready: %d %v", status, checks)
			}
			time.Sleep(200 * time.Millisecond)
		}
		r := harness.NewClient(t, good.URL).Get("/.well-known/jwks.json")
		var set struct {
			Keys []map[string]any `json:"keys"`
		}
		if r.Status != http.StatusOK || json.Unmarshal([]byte(r.Body), &set) != nil || len(set.Keys) == 0 {
			t.Fatalf("JWKS of the replica with the right master key: %d %s", r.Status, r.Body)
		}
		if tok := requestToken(t, harness.NewClient(t, good.URL), cred.ClientID, cred.Secret); tok.Status != http.StatusOK {
			t.Fatalf("token from the replica with the right master key: %+v", tok)
		}
	}
	goodReady()
	good.Stop()

	// Same database, its own data directory and so its own master key.
	wrong := harness.Start(t, harness.Options{Env: map[string]string{"KEYCONSOLE_DATABASE_URL": good.DatabaseURL}})
	status, checks := readyz(t, wrong)
	if status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz of the replica with the wrong master key answered %d %v, want 503", status, checks)
	}
	want := map[string]string{"database": "ok", "kms": "ok", "api_secret_pepper": "unavailable", "token_signing_key": "unavailable"}
	for name, v := range want {
		if checks[name] != v {
			t.Errorf("/readyz check %s = %q, want %q (all: %v)", name, checks[name], v, checks)
		}
	}
	cl := harness.NewClient(t, wrong.URL)
	jwks := cl.Get("/.well-known/jwks.json")
	if jwks.Status != http.StatusServiceUnavailable || strings.Contains(jwks.Body, `"keys"`) ||
		jwks.Header.Get("Cache-Control") != "no-store" || jwks.Header.Get("Retry-After") == "" || !strings.Contains(jwks.Body, `"error":"temporarily_unavailable"`) {
		t.Fatalf("JWKS of the replica with the wrong master key: %d %v %s", jwks.Status, jwks.Header, jwks.Body)
	}
	if tok := requestToken(t, cl, cred.ClientID, cred.Secret); tok.Status != http.StatusServiceUnavailable || tok.Error != "temporarily_unavailable" {
		t.Fatalf("token from the replica with the wrong master key: %+v", tok)
	}
	// Which part failed is in the log, without any key material.
	logs := wrong.Logs()
	for _, name := range []string{"api_secret_pepper", "token_signing_key"} {
		if !strings.Contains(logs, `"msg":"readiness check failed","check":"`+name+`"`) {
			t.Errorf("no readiness failure logged for %s", name)
		}
	}
	wrong.Stop()

	// The wrong replica created and changed nothing: the right one is
	// ready again with the same material.
	good.Restart()
	goodReady()
}
