package web_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

	"keyconsole/app/core"
	"keyconsole/handlers"
	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
	"keyconsole/services/auth"
	"keyconsole/web"
)

// fuzzSessionKey is the session key of the fuzzed console.
const fuzzSessionKey = "fuzz-callback-session-key-0123456789abcdef"

// Flags of FuzzCallbackParams choosing how much of a real sign-in the
// fuzzed callback builds on.
const (
	// fuzzRealState starts a real sign-in first, so the browser holds a
	// login cookie and the fuzzed callback can carry its real state.
	fuzzRealState = 1 << iota
	// fuzzRealCode also lets the provider issue a real authorization code.
	fuzzRealCode
	// fuzzAppendState appends the fuzzed state to the real one.
	fuzzAppendState
	// fuzzStaleSession sends a session cookie the console never issued.
	fuzzStaleSession
)

// lockedBuffer collects the server's log lines from concurrent requests.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) take() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	b.buf.Reset()
	return s
}

// callbackStack is the real Echo application with one OIDC provider (a
// mockoidc server on 127.0.0.1) whose users have no agency role.
type callbackStack struct {
	base string
	logs *lockedBuffer
}

func newCallbackStack(tb testing.TB) callbackStack {
	tb.Helper()
	idp, err := mockoidc.NewServer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	if err := idp.Start(ln, nil); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = idp.Shutdown() })

	ctx := context.Background()
	db := modelstest.Open(tb, models.SQLite)
	// The stores and services are built as the console builds them.
	c := core.New(db, nil, nil)
	audits, ag, users := c.Audits, c.AgencySvc, c.Users
	asvc := core.NewAuth(c, core.AuthConfig{})
	a, err := ag.Create(ctx, audit.Actor{Type: audit.ActorSystem}, audit.Origin{}, "demo-county", "Demo County")
	if err != nil {
		tb.Fatal(err)
	}
	// Only this group has a role, and the provider's users are not in it:
	// no parameters whatsoever may turn a callback into a session.
	if _, err := ag.Map(ctx, audit.Actor{Type: audit.ActorSystem}, audit.Origin{}, a.ID, "mock", "fuzz-admins", models.RoleAdmin); err != nil {
		tb.Fatal(err)
	}

	logs := &lockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := handlers.New(handlers.Deps{Logger: log, Auth: asvc, Agencies: ag, Users: users, Audit: audits})
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	cfg := idp.Config()
	prov := &web.OIDCProvider{
		Info:   auth.ProviderInfo{ID: "mock", Kind: auth.KindGeneric, Label: "Mock", GroupsClaim: "groups"},
		Issuer: cfg.Issuer, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
		Scopes:     []string{"openid", "email", "profile", "groups"},
		HTTPClient: &http.Client{Timeout: 10 * time.Second},
	}
	s, err := web.New(web.Config{BaseURL: base, SessionKeys: []string{fuzzSessionKey}, Providers: []*web.OIDCProvider{prov}},
		web.Deps{Logger: log, Auth: asvc, Handlers: h, Ready: []web.ReadyCheck{{Name: "database", Check: db.Ping}}})
	if err != nil {
		tb.Fatal(err)
	}
	ts.Config.Handler = s.Echo
	ts.Start()
	tb.Cleanup(ts.Close)
	return callbackStack{base: base, logs: logs}
}

func fuzzClient(tb testing.TB) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// startSignIn begins a real sign-in with the client and returns the state the
// console sent to the provider and, when withCode is set, the code the
// provider issued for it.
func (st callbackStack) startSignIn(t *testing.T, cl *http.Client, withCode bool) (state, code string) {
	t.Helper()
	res, err := cl.Get(st.base + "/auth/login/mock")
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusFound {
		t.Fatalf("GET /auth/login/mock: %d", res.StatusCode)
	}
	authz, err := url.Parse(res.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	state = authz.Query().Get("state")
	if !withCode {
		return state, ""
	}
	res, err = cl.Get(authz.String())
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	back, err := url.Parse(res.Header.Get("Location"))
	if err != nil || back.Query().Get("code") == "" {
		t.Fatalf("provider did not redirect back with a code: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	return state, back.Query().Get("code")
}

// FuzzCallbackParams drives GET /auth/callback/mock through the real Echo
// stack with arbitrary state, code, error and iss values, alone or on top of
// a real sign-in (real login cookie, state and authorization code). Whatever
// the values, the console never answers 5xx, never panics and never sets a
// session cookie (the provider's users hold no role). The seed corpus is in
// testdata/fuzz/FuzzCallbackParams.
func FuzzCallbackParams(f *testing.F) {
	st := newCallbackStack(f)
	f.Add("", "", "", "", uint8(0))
	f.Add("x", "y", "access_denied", "https://evil.example", uint8(fuzzRealState))
	f.Fuzz(func(t *testing.T, state, code, errParam, iss string, flags uint8) {
		cl := fuzzClient(t)
		if flags&fuzzStaleSession != 0 {
			u, _ := url.Parse(st.base + "/")
			cl.Jar.SetCookies(u, []*http.Cookie{{Name: "keyconsole_session", Value: state + code}})
		}
		q := url.Values{}
		if flags&(fuzzRealState|fuzzRealCode) != 0 {
			realState, realCode := st.startSignIn(t, cl, flags&fuzzRealCode != 0)
			switch {
			case flags&fuzzAppendState != 0:
				q.Set("state", realState+state)
			default:
				q.Set("state", realState)
			}
			if realCode != "" {
				code = realCode
			}
		} else if state != "" {
			q.Set("state", state)
		}
		if code != "" {
			q.Set("code", code)
		}
		if errParam != "" {
			q.Set("error", errParam)
		}
		if iss != "" {
			q.Set("iss", iss)
		}
		res, err := cl.Get(st.base + "/auth/callback/mock?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		_ = res.Body.Close()
		logs := st.logs.take()
		if res.StatusCode >= 500 {
			t.Fatalf("callback answered %d\n%s\nlogs:\n%s", res.StatusCode, body, logs)
		}
		if strings.Contains(logs, "panic serving request") {
			t.Fatalf("callback panicked:\n%s", logs)
		}
		for _, c := range res.Cookies() {
			if strings.HasSuffix(c.Name, "keyconsole_session") && c.Value != "" && c.MaxAge >= 0 {
				t.Fatalf("callback set a session cookie (status %d)", res.StatusCode)
			}
		}
	})
}
