// Package modelstest opens real, freshly migrated databases for tests: a
// SQLite file in the test's temporary directory and a PostgreSQL database
// created for the test and dropped after it. PostgreSQL databases are cloned
// (CREATE DATABASE … TEMPLATE) from a template migrated once per schema
// history, so a test pays for a copy, not for the migrations.
package modelstest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver for creating test databases.

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
func Dialects() []models.Dialect {
	return []models.Dialect{models.SQLite, models.Postgres}
}

// Each runs fn once per dialect with a fresh, migrated database.
func Each(t *testing.T, fn func(t *testing.T, db *models.DB)) {
	t.Helper()
	for _, d := range Dialects() {
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
// history and dropped when the test ends.
//
// Written here rather than taken from a template-database library: the ones
// available hash with MD5, which panics under GODEBUG=fips140=only, the mode
// `make test-long` runs every test in.
func MigratedURL(t testing.TB) string {
	t.Helper()
	tpl, err := template()
	if err != nil {
		t.Fatalf("postgres is required for the tests (start it, or set KEYCONSOLE_TEST_POSTGRES_URL): template: %v", err)
	}
	admin, err := sql.Open("pgx", PostgresAdminURL())
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	name := "kc_test_" + randomHex(6)
	// Copies of one template may be made side by side; only a connection to
	// the template itself would stop them, and none stays open.
	if _, err := admin.Exec("CREATE DATABASE " + name + " TEMPLATE " + tpl); err != nil {
		_ = admin.Close()
		t.Fatalf("postgres: create database from %s: %v", tpl, err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		_ = admin.Close()
	})
	return databaseURL(name)
}

var templateOnce struct {
	sync.Once
	name string
	err  error
}

// template returns the name of the migrated template database of the
// current schema history, creating it once per machine: its name carries
// the history's hash, and an advisory lock keeps test binaries running at
// the same time from building it twice.
func template() (string, error) {
	templateOnce.Do(func() {
		templateOnce.name, templateOnce.err = ensureTemplate(context.Background())
	})
	return templateOnce.name, templateOnce.err
}

func ensureTemplate(ctx context.Context) (string, error) {
	hash, err := schemaHash()
	if err != nil {
		return "", err
	}
	name := "kc_template_" + hash
	admin, err := sql.Open("pgx", PostgresAdminURL())
	if err != nil {
		return "", err
	}
	defer admin.Close()
	conn, err := admin.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	const lockKey = 0x6b63746d706c // "kctmpl"
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", lockKey); err != nil {
		return "", err
	}
	defer conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock($1)", lockKey) //nolint:errcheck
	var ready bool
	err = conn.QueryRowContext(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", name).Scan(&ready)
	switch {
	case err == nil && ready:
		return name, nil
	case err == nil:
		// A build that did not finish (the process died): start again.
		if _, err := conn.ExecContext(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			return "", err
		}
	case !errors.Is(err, sql.ErrNoRows):
		return "", err
	}
	if _, err := conn.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	db, err := models.Open(ctx, models.DBConfig{URL: databaseURL(name)})
	if err != nil {
		return "", err
	}
	_, err = db.Migrate(ctx)
	_ = db.Close()
	if err != nil {
		return "", err
	}
	// Marked a template only once complete, so a half-built one is rebuilt.
	if _, err := conn.ExecContext(ctx, "UPDATE pg_database SET datistemplate = true WHERE datname = $1", name); err != nil {
		return "", err
	}
	return name, nil
}

// schemaHash is the hash of the embedded PostgreSQL schema history, so a
// new or changed migration makes a new template.
func schemaHash() (string, error) {
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
	name := "kc_test_" + randomHex(6)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		_ = admin.Close()
		t.Fatalf("postgres is required for the tests (start it, or set KEYCONSOLE_TEST_POSTGRES_URL): create database: %v", err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		_ = admin.Close()
	})
	return databaseURL(name)
}

// databaseURL is the administrative URL pointed at another database.
func databaseURL(name string) string {
	base := PostgresAdminURL()
	i := strings.LastIndex(base, "/")
	q := ""
	if j := strings.Index(base[i:], "?"); j >= 0 {
		q = base[i+j:]
		base = base[:i+j]
	}
	return fmt.Sprintf("%s/%s%s", base[:strings.LastIndex(base, "/")], name, q)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
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
