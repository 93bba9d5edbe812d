// Package modelstest opens real, freshly migrated databases for tests: a
// SQLite file in the test's temporary directory and a PostgreSQL database
// created for the test and dropped after it. PostgreSQL databases are cloned
// (CREATE DATABASE … TEMPLATE, through pgtestdb) from a template migrated
// once per schema history, so a test pays for a copy, not for the migrations.
package modelstest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver for creating test databases.
	"github.com/peterldowns/pgtestdb"

	"keyconsole/migrations"
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
	if d == models.Postgres {
		db, err := models.Open(context.Background(), models.DBConfig{URL: MigratedURL(t)})
		if err != nil {
			t.Fatalf("open %s: %v", d, err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
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

// MigratedURL returns the URL of a fresh PostgreSQL database that already
// holds the whole schema, cloned from the template of the current migration
// history and dropped when the test ends (kept for inspection if it failed).
func MigratedURL(t testing.TB) string {
	t.Helper()
	u, err := url.Parse(PostgresAdminURL())
	if err != nil {
		t.Fatalf("modelstest: %s: %v", PostgresAdminURL(), err)
	}
	pw, _ := u.User.Password()
	conf := pgtestdb.Config{
		DriverName: "pgx",
		Host:       u.Hostname(),
		Port:       u.Port(),
		User:       u.User.Username(),
		Password:   pw,
		Database:   strings.TrimPrefix(u.Path, "/"),
		Options:    u.RawQuery,
		// The tests connect as the administrative role itself: some create
		// roles and grants of their own.
		TestRole:                  &pgtestdb.Role{Username: u.User.Username(), Password: pw},
		ForceTerminateConnections: true,
	}
	if conf.Port == "" {
		conf.Port = "5432"
	}
	return pgtestdb.Custom(t, conf, schemaMigrator{}).URL()
}

// schemaMigrator builds the template with the product's own migrations; its
// hash is that of the embedded PostgreSQL schema history, so a new migration
// makes a new template.
type schemaMigrator struct{}

func (schemaMigrator) Hash() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.Postgres, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.Postgres, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:16], err
}

func (schemaMigrator) Migrate(ctx context.Context, _ *sql.DB, conf pgtestdb.Config) error {
	db, err := models.Open(ctx, models.DBConfig{URL: conf.URL()})
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Migrate(ctx)
	return err
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

// RefuseWrites makes the PostgreSQL database behind db refuse every write,
// as a hot standby does after a failover (default_transaction_read_only),
// until the returned function is called. For the rest of the test db keeps
// no idle connection, so each statement opens a session that sees the
// setting at once.
func RefuseWrites(t testing.TB, db *models.DB) (restore func()) {
	t.Helper()
	if db.Dialect != models.Postgres {
		t.Fatalf("modelstest: RefuseWrites needs PostgreSQL")
	}
	var name string
	if err := db.Gorm.Raw("SELECT current_database()").Scan(&name).Error; err != nil {
		t.Fatalf("modelstest: current database: %v", err)
	}
	db.SQL().SetMaxIdleConns(0)
	admin, err := sql.Open("pgx", PostgresAdminURL())
	if err != nil {
		t.Fatalf("modelstest: %v", err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	quoted := `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
	set := func(q string) {
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("modelstest: %s: %v", q, err)
		}
	}
	set("ALTER DATABASE " + quoted + " SET default_transaction_read_only = on")
	return func() { set("ALTER DATABASE " + quoted + " RESET default_transaction_read_only") }
}
