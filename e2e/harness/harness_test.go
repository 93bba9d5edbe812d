package harness_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"

	"keyconsole/e2e/harness"
	"keyconsole/models"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// TestLifecycle checks the process control later fault tests rely on: a
// graceful stop, a crash, and restarts on the same address and data.
func TestLifecycle(t *testing.T) {
	c := harness.Start(t, harness.Options{})
	c.SeedDemo()
	cl := c.Client()
	if r := cl.Get("/healthz"); r.Status != http.StatusOK {
		t.Fatalf("/healthz = %d", r.Status)
	}

	c.Stop()
	if c.Running() || c.ExitCode() != 0 {
		t.Fatalf("after Stop: running %v, exit code %d, want a clean exit 0", c.Running(), c.ExitCode())
	}
	if !strings.Contains(c.Logs(), "keyconsole stopped") {
		t.Error("a graceful stop did not log its shutdown")
	}

	c.Restart()
	if r := cl.Get("/signin"); r.Status != http.StatusOK || !strings.Contains(r.Body, `id="signin-mock"`) {
		t.Fatalf("after Restart /signin = %d without the mock provider's button", r.Status)
	}

	c.Kill()
	if c.Running() || c.ExitCode() != -1 {
		t.Fatalf("after Kill: running %v, exit code %d, want death by signal (-1)", c.Running(), c.ExitCode())
	}
	c.Restart()
	if r := cl.Get("/healthz"); r.Status != http.StatusOK {
		t.Fatalf("after a crash and Restart /healthz = %d", r.Status)
	}
	a, err := models.NewAgencyStore(c.DB()).BySlug(context.Background(), harness.DemoSlug)
	if err != nil || a.Name != harness.DemoName {
		t.Errorf("seeded agency after restarts: %+v, %v", a, err)
	}
	if n := strings.Count(c.Logs(), "--- harness: keyconsole serve (start "); n != 3 {
		t.Errorf("logs show %d starts, want 3 (logs are kept across restarts)", n)
	}
}
