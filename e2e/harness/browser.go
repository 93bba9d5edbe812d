package harness

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// ChromiumEnv names a variable that overrides the Chromium binary.
const ChromiumEnv = "KEYCONSOLE_E2E_CHROMIUM"

// opTimeout bounds every single browser step.
const opTimeout = 15 * time.Second

// ChromiumPath returns the Chromium binary ($KEYCONSOLE_E2E_CHROMIUM,
// /usr/bin/chromium, or chromium on PATH). A machine without one fails the
// test, naming what to install.
func ChromiumPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(ChromiumEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("harness: Chromium is required for the end-to-end tests: %s=%s: %v (install it with `apt-get install -y chromium`)", ChromiumEnv, p, err)
		}
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("harness: Chromium is required for the end-to-end tests and was not found: install it with `apt-get install -y chromium` (or set %s to its path)", ChromiumEnv)
	return ""
}

// Browser is one headless Chromium with its own profile, driving one tab
// against a console. Its methods fail the test on error; use them from the
// test that created the browser.
type Browser struct {
	t       testing.TB
	ctx     context.Context
	console *Console
}

// Browser starts a headless Chromium for the console, closed when the test ends.
func (c *Console) Browser() *Browser {
	c.t.Helper()
	return NewBrowser(c.t, c)
}

// NewBrowser starts a headless Chromium (chromedp's default options plus
// --disable-quic, --no-first-run, --disable-component-update,
// --disable-sync, --disable-gpu, and a temporary profile) for the console.
func NewBrowser(t testing.TB, c *Console) *Browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(ChromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoFirstRun,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 1024),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	// The first action starts the browser and binds it to ctx: it must run on
	// ctx itself, not on a context with a deadline, or the deadline would end
	// the browser. A watchdog covers a browser that never starts.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx, chromedp.Navigate("about:blank")) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("harness: start Chromium: %v", err)
		}
	case <-time.After(45 * time.Second):
		cancelCtx()
		t.Fatalf("harness: Chromium did not start within 45s")
	}
	return &Browser{t: t, ctx: ctx, console: c}
}

// Context is the chromedp context of the browser's tab, for steps the
// helpers do not cover. Give each step its own deadline.
func (b *Browser) Context() context.Context { return b.ctx }

func (b *Browser) op() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, opTimeout)
}

func (b *Browser) url(path string) string {
	if len(path) > 0 && path[0] == '/' {
		return b.console.URL + path
	}
	return path
}

// Open loads path (or an absolute URL) and returns the HTTP status of the
// document that finally loaded, after redirects.
func (b *Browser) Open(path string) int {
	b.t.Helper()
	ctx, cancel := b.op()
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(b.url(path)))
	if err != nil {
		b.t.Fatalf("harness: browser open %s: %v", path, err)
	}
	return statusOf(resp)
}

// OpenResponse loads path and returns the response of the final document,
// headers included.
func (b *Browser) OpenResponse(path string) *network.Response {
	b.t.Helper()
	ctx, cancel := b.op()
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(b.url(path)))
	if err != nil {
		b.t.Fatalf("harness: browser open %s: %v", path, err)
	}
	if resp == nil {
		b.t.Fatalf("harness: browser open %s: no response", path)
	}
	return resp
}

// Reload reloads the page and returns the status of the document that
// finally loaded.
func (b *Browser) Reload() int {
	b.t.Helper()
	ctx, cancel := b.op()
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[chromedp.Void](`location.reload()`)(ctx, t)
		return err
	}))
	if err != nil {
		b.t.Fatalf("harness: browser reload: %v", err)
	}
	return statusOf(resp)
}

// Click clicks the element matching the CSS selector, waits for the
// navigation it starts, and returns the HTTP status of the document that
// finally loaded.
func (b *Browser) Click(sel string) int {
	b.t.Helper()
	ctx, cancel := b.op()
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		b.t.Fatalf("harness: browser click %s: %v", sel, err)
	}
	return statusOf(resp)
}

// Fill sets the value of the input, textarea or select matching sel.
func (b *Browser) Fill(sel, value string) {
	b.t.Helper()
	ctx, cancel := b.op()
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS(sel), value)); err != nil {
		b.t.Fatalf("harness: browser fill %s: %v", sel, err)
	}
}

// Text returns the visible text of the first element matching the CSS
// selector, waiting for it to appear.
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	ctx, cancel := b.op()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("harness: browser text %s (page %s): %v", sel, b.Location(), err)
	}
	return s
}

// TextContent returns the DOM text of the first element matching the CSS
// selector, before CSS transforms such as text-transform: uppercase.
func (b *Browser) TextContent(sel string) string {
	b.t.Helper()
	ctx, cancel := b.op()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("harness: browser text content %s (page %s): %v", sel, b.Location(), err)
	}
	return s
}

// Value returns the value attribute of the first element matching sel (for
// example a hidden _csrf field).
func (b *Browser) Value(sel string) string {
	b.t.Helper()
	ctx, cancel := b.op()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("harness: browser value %s: %v", sel, err)
	}
	return s
}

// Has reports whether an element matches the CSS selector now, without waiting.
func (b *Browser) Has(sel string) bool {
	b.t.Helper()
	q, _ := json.Marshal(sel)
	ctx, cancel := b.op()
	defer cancel()
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector(`+string(q)+`) !== null`))
	if err != nil {
		b.t.Fatalf("harness: browser query %s: %v", sel, err)
	}
	return ok
}

// Location returns the URL of the page.
func (b *Browser) Location() string {
	b.t.Helper()
	ctx, cancel := b.op()
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		b.t.Fatalf("harness: browser location: %v", err)
	}
	return loc
}

// Cookies returns the browser's cookies for the console, to replay them
// from a Client.
func (b *Browser) Cookies() []*http.Cookie {
	b.t.Helper()
	ctx, cancel := b.op()
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.console.URL + "/"}})
	if err != nil {
		b.t.Fatalf("harness: browser cookies: %v", err)
	}
	out := make([]*http.Cookie, 0, len(res.Cookies))
	for _, c := range res.Cookies {
		hc := &http.Cookie{Name: c.Name, Value: c.Value, Path: c.Path, HttpOnly: c.HTTPOnly, Secure: c.Secure}
		switch c.SameSite {
		case network.CookieSameSiteLax:
			hc.SameSite = http.SameSiteLaxMode
		case network.CookieSameSiteStrict:
			hc.SameSite = http.SameSiteStrictMode
		case network.CookieSameSiteNone:
			hc.SameSite = http.SameSiteNoneMode
		}
		out = append(out, hc)
	}
	return out
}

// Screenshot saves a PNG of the whole page to path (for debugging).
func (b *Browser) Screenshot(path string) {
	b.t.Helper()
	ctx, cancel := b.op()
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("harness: screenshot: %v", err)
	}
	if err := os.WriteFile(path, buf, 0o600); err != nil {
		b.t.Fatalf("harness: screenshot: %v", err)
	}
}

// SignIn queues u at the provider, opens /signin, clicks the mock
// provider's button and follows the flow back into the console. It returns
// the HTTP status of the page the browser lands on.
func (b *Browser) SignIn(u User) int {
	b.t.Helper()
	b.console.Queue(u)
	if st := b.Open("/signin"); st != http.StatusOK {
		b.t.Fatalf("harness: /signin answered %d", st)
	}
	return b.Click("#signin-" + ProviderID)
}

// SignInHeld starts a sign-in of u like SignIn, but holds the provider's
// redirect back to the console: the browser never delivers it. It returns
// the callback URL (…/auth/callback/mock?code=…&state=…) for the test to
// deliver, alter or replay.
func (b *Browser) SignInHeld(u User) string {
	b.t.Helper()
	b.console.Queue(u)
	if st := b.Open("/signin"); st != http.StatusOK {
		b.t.Fatalf("harness: /signin answered %d", st)
	}
	return b.HoldCallback(func(ctx context.Context) error {
		return chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#signin-"+ProviderID), chromedp.NodeVisible))
	})
}

// HoldCallback runs trigger and intercepts the first request the browser
// then makes to /auth/callback/*: the request is aborted before it reaches
// the console (the browser stays on the page it was on) and its URL is
// returned.
func (b *Browser) HoldCallback(trigger func(ctx context.Context) error) string {
	b.t.Helper()
	ctx, cancel := b.op()
	defer cancel()
	paused := chromedp.Events(ctx, fetch.RequestPaused)
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{
		Patterns: []*fetch.RequestPattern{{URLPattern: b.console.URL + "/auth/callback/*", RequestStage: fetch.RequestStageRequest}},
	}); err != nil {
		b.t.Fatalf("harness: enable request interception: %v", err)
	}
	defer func() {
		dctx, dcancel := b.op()
		defer dcancel()
		_, _ = chromedp.Call(dctx, fetch.Disable, cdp.Empty{})
	}()
	if err := trigger(ctx); err != nil {
		b.t.Fatalf("harness: hold callback: trigger: %v", err)
	}
	for ev, err := range paused {
		if err != nil {
			b.t.Fatalf("harness: hold callback: no request to /auth/callback/: %v", err)
		}
		held := ev.Request.URL
		if _, err := chromedp.Call(ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonAborted}); err != nil {
			b.t.Fatalf("harness: hold callback: abort: %v", err)
		}
		return held
	}
	b.t.Fatalf("harness: hold callback: %v", errors.New("no request to /auth/callback/ intercepted"))
	return ""
}

func statusOf(resp *network.Response) int {
	if resp == nil {
		return 0
	}
	return int(resp.Status)
}
