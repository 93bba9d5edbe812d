package app

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"keyconsole/app/core"
	"keyconsole/kms/local"
	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/web"
)

// TestNewBuildsTheWholeConsole builds the console as serve does, over
// SQLite and a local keyring: every readiness check passes, and every part's
// counters are on /metrics through the one registration.
func TestNewBuildsTheWholeConsole(t *testing.T) {
	const token = "metrics-bearer-token-0123456789abcdef"
	db := modelstest.Open(t, models.SQLite)
	kr, err := local.New(bytes.Repeat([]byte{7}, local.MasterKeySize), "")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	cfg := Config{
		Web:   web.Config{BaseURL: base, SessionKeys: []string{"app-test-session-key-0123456789abcdef"}},
		Auth:  core.AuthConfig{},
		Token: core.TokenConfig{BaseURL: base, Audience: base + "/api"},
		SFTP:  SFTPConfig{DataDir: t.TempDir()},
		// The metrics are served on the main listener behind the token.
		Metrics: MetricsConfig{Token: token},
	}
	a, err := New(context.Background(), cfg, Options{DB: db, Keyring: kr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = a.Handler()
	ts.Start()
	t.Cleanup(ts.Close)

	get := func(path string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	code, body := get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, name := range []string{"keyconsole_audit_writes_total", "keyconsole_kms_calls_total", "keyconsole_kms_cache_total",
		"keyconsole_token_requests_total", "keyconsole_token_reused_total", "keyconsole_webhook_deliveries_total",
		"keyconsole_audit_aggregated_pending{records=\"token_refusals\"}"} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if strings.Contains(body, "keyconsole_sftp_logins_total") {
		t.Error("SFTP counters registered with the SFTP server disabled")
	}
	if len(a.Background) == 0 || len(a.Shutdown) != 3 {
		t.Fatalf("background %d, shutdown %d", len(a.Background), len(a.Shutdown))
	}
}
