package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"keyconsole/handlers"
	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/agencies"
	"keyconsole/services/audit"
	"keyconsole/services/auth"
	"keyconsole/web"
)

const testKey = "web-test-session-key-0123456789abcdef"

type stack struct {
	srv   *httptest.Server
	auth  *auth.Service
	token string
}

func newStack(t *testing.T, metricsToken string) stack {
	t.Helper()
	db := modelstest.Open(t, models.SQLite)
	audits := models.NewAuditStore(db)
	rec := audit.NewRecorder(db, audits, nil)
	as := models.NewAgencyStore(db)
	ag := agencies.NewService(db, as, rec, nil)
	users := models.NewUserStore(db)
	asvc := auth.NewService(db, users, as, models.NewSessionStore(db), rec, auth.Config{})
	a, err := ag.Create(context.Background(), audit.Actor{Type: audit.ActorSystem}, audit.Origin{}, "demo-county", "Demo County")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ag.Map(context.Background(), audit.Actor{Type: audit.ActorSystem}, audit.Origin{}, a.ID, "okta", "g", "viewer"); err != nil {
		t.Fatal(err)
	}
	_, token, err := asvc.SignIn(context.Background(), auth.ProviderInfo{ID: "okta", Kind: auth.KindOkta}, auth.Claims{Subject: "s", Groups: []string{"g"}}, audit.Origin{})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	h := handlers.New(handlers.Deps{Logger: log, Auth: asvc, Agencies: ag, Users: users, Audit: audits})
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	m := web.NewMetrics()
	s, err := web.New(web.Config{BaseURL: base, SessionKeys: []string{testKey}}, web.Deps{Logger: log, Auth: asvc, Handlers: h,
		Ready: []web.ReadyCheck{{Name: "database", Check: db.Ping}}, Metrics: m, MetricsToken: metricsToken})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = s.Echo
	ts.Start()
	t.Cleanup(ts.Close)
	return stack{srv: ts, auth: asvc, token: token}
}

func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
}

func TestMetricsNeedTheBearerToken(t *testing.T) {
	token := strings.Repeat("m", 40)
	st := newStack(t, token)
	c := noRedirect()
	if _, err := c.Get(st.srv.URL + "/healthz"); err != nil {
		t.Fatal(err)
	}
	res, err := c.Get(st.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("metrics without token: %d", res.StatusCode)
	}
	req, _ := http.NewRequest("GET", st.srv.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `keyconsole_http_requests_total{code="200",method="GET",route="/healthz"}`) {
		t.Fatalf("metrics: %d %s", res.StatusCode, body)
	}
}

func TestMetricsNotExposedWithoutToken(t *testing.T) {
	st := newStack(t, "")
	res, err := noRedirect().Get(st.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("metrics exposed without a token: %d", res.StatusCode)
	}
}

func TestSecurityHeadersAndErrors(t *testing.T) {
	st := newStack(t, "")
	res, err := noRedirect().Get(st.srv.URL + "/no/such/page")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 404 || !strings.Contains(string(body), "Page not found") || !strings.Contains(string(body), res.Header.Get("X-Request-Id")) {
		t.Fatalf("404 page: %d %s", res.StatusCode, body)
	}
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") || res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Referrer-Policy") == "" {
		t.Fatalf("headers: %v", res.Header)
	}
}

func TestStateChangingRequestsNeedCSRF(t *testing.T) {
	st := newStack(t, "")
	c := noRedirect()
	// Forged form posts without the token are refused before any handler runs.
	for _, path := range []string{"/switch-agency", "/auth/signout", "/operator/agencies", "/auth/login/okta"} {
		res, err := c.PostForm(st.srv.URL+path, url.Values{"agency": {"demo-county"}})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s without CSRF token: %d", path, res.StatusCode)
		}
	}
}

func TestReadyz(t *testing.T) {
	st := newStack(t, "")
	res, err := noRedirect().Get(st.srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"database":"ok"`) {
		t.Fatalf("readyz: %d %s", res.StatusCode, body)
	}
}
