package security

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"keyconsole/e2e/harness"
)

// TestFinding13_TestEventsLimitedThroughTheConsole presses "Send test event"
// of one endpoint again and again through the real console: after a few
// sends it answers 429 with a page that says nothing was sent and a
// Retry-After header, the receiver got exactly the sent ones, and another
// endpoint can still be tested.
func TestFinding13_TestEventsLimitedThroughTheConsole(t *testing.T) {
	t.Parallel()
	receiver := newSignatureReceiver(t)
	c := harness.Start(t, harness.Options{Env: map[string]string{"KEYCONSOLE_WEBHOOK_ALLOWED_CIDRS": "127.0.0.0/8"}})
	seedAgencies(c)
	admin := signedIn(t, c, harness.AdminUser())
	busy := createWebhook(t, admin, c, harness.DemoSlug, "Busy hook", receiver.url, "BusySecret0123456789abcd")
	quiet := createWebhook(t, admin, c, harness.DemoSlug, "Quiet hook", receiver.url, "QuietSecret0123456789abc")
	token := csrfOf(admin.Get(hookPath(harness.DemoSlug, busy, "")).Body)

	sent := 0
	var limited harness.Response
	for range 30 {
		r := admin.PostForm(hookPath(harness.DemoSlug, busy, "/test"), form("_csrf", token))
		if r.Status == http.StatusTooManyRequests {
			limited = r
			break
		}
		if r.Status != http.StatusSeeOther {
			t.Fatalf("test event %d: %d\n%s", sent+1, r.Status, mainOf(r))
		}
		sent++
	}
	if limited.Status == 0 {
		t.Fatalf("%d test events of one endpoint in a row were all sent", sent)
	}
	if body := mainOf(limited); !strings.Contains(body, "Too many test events") || !strings.Contains(body, "Nothing was sent") {
		t.Fatalf("the limited answer does not say what happened:\n%s", body)
	}
	if s, err := strconv.Atoi(limited.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", limited.Header.Get("Retry-After"))
	}
	if n := len(receiver.all()); n != sent {
		t.Fatalf("the receiver got %d test events, the console answered %d as sent", n, sent)
	}
	if r := admin.PostForm(hookPath(harness.DemoSlug, quiet, "/test"), form("_csrf", token)); r.Status != http.StatusSeeOther {
		t.Fatalf("another endpoint's test event: %d\n%s", r.Status, mainOf(r))
	}
}
