package e2e

import (
	"os"
	"testing"

	"keyconsole/e2e/harness"
	"keyconsole/models"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// browserDialects are the databases a browser scenario runs on: SQLite. The
// stores under every page are tested on both databases in their own
// packages; PostgreSQL scenarios here are kept for what only a real server
// shows: replicas, row locks, the audit chain under concurrency, and one
// sign-in smoke test (TestAdminSignsInAndSeesDashboard).
func browserDialects() []models.Dialect { return []models.Dialect{models.SQLite} }
