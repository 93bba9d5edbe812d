// Package modelstest opens real, freshly migrated databases for tests: a
// SQLite file in the test's temporary directory and a PostgreSQL database
// created for the test and dropped after it.
package modelstest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver for creating test databases.

	"keyconsole/models"
)

// PostgresAdminURL is the server tests create their databases on; override
// with KEYCONSOLE_TEST_POSTGRES_URL.
func PostgresAdminURL() string {
	if v := os.Getenv("KEYCONSOLE_TEST_POSTGRES_URL"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// Dialects are the databases every store test runs on.
var Dialects = []models.Dialect{models.SQLite, models.Postgres}

// Each runs fn once per dialect with a fresh, migrated database.
func Each(t *testing.T, fn func(t *testing.T, db *models.DB)) {
	t.Helper()
	for _, d := range Dialects {
		t.Run(string(d), func(t *testing.T) {
			fn(t, Open(t, d))
		})
	}
}

// Open returns a fresh, migrated database of the given dialect, closed and
// removed when the test ends.
func Open(t testing.TB, d models.Dialect) *models.DB {
	t.Helper()
	url := NewURL(t, d)
	db, err := models.Open(context.Background(), models.DBConfig{URL: url})
	if err != nil {
		t.Fatalf("open %s: %v", d, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate %s: %v", d, err)
	}
	return db
}

// NewURL creates an empty database and returns its URL (for tests that run
// the binary). The database is dropped when the test ends.
func NewURL(t testing.TB, d models.Dialect) string {
	t.Helper()
	if d == models.SQLite {
		return filepath.Join(t.TempDir(), "keyconsole.db")
	}
	admin, err := sql.Open("pgx", PostgresAdminURL())
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "kc_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		_ = admin.Close()
		t.Fatalf("postgres is required for the tests (start it, or set KEYCONSOLE_TEST_POSTGRES_URL): create database: %v", err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		_ = admin.Close()
	})
	base := PostgresAdminURL()
	i := strings.LastIndex(base, "/")
	q := ""
	if j := strings.Index(base[i:], "?"); j >= 0 {
		q = base[i+j:]
		base = base[:i+j]
	}
	return fmt.Sprintf("%s/%s%s", base[:strings.LastIndex(base, "/")], name, q)
}
