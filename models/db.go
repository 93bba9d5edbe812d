// Package models holds keyconsole's persistent records and the stores that read
// and write them. It knows GORM and the standard library, nothing else.
package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	sqlite "github.com/libtnb/sqlite"
	"github.com/pressly/goose/v3"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Dialect names the database engine behind a DB.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DBConfig says which database to open.
type DBConfig struct {
	// URL is "postgres://..." for PostgreSQL, or "sqlite://PATH" / a plain file path for SQLite.
	URL string
	// MaxOpenConns caps the pool (PostgreSQL); 0 keeps the default of 20.
	MaxOpenConns int
}

// DB is an open database with its dialect and the write discipline it needs.
type DB struct {
	Gorm    *gorm.DB
	Dialect Dialect
	// writeMu serialises write transactions on SQLite, which has one writer.
	writeMu *sync.Mutex
	storage *storageState
}

// ParseDatabaseURL returns the dialect and driver DSN for a database URL.
func ParseDatabaseURL(raw string) (Dialect, string, error) {
	switch {
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		if _, err := url.Parse(raw); err != nil {
			return "", "", fmt.Errorf("not a valid postgres URL")
		}
		return Postgres, raw, nil
	case strings.HasPrefix(raw, "sqlite://"):
		p := strings.TrimPrefix(raw, "sqlite://")
		if p == "" {
			return "", "", fmt.Errorf("sqlite:// needs a file path")
		}
		return SQLite, p, nil
	case strings.Contains(raw, "://"):
		return "", "", fmt.Errorf("unsupported database scheme (use postgres://, sqlite:// or a file path)")
	case raw == "":
		return "", "", fmt.Errorf("empty database URL")
	default:
		return SQLite, raw, nil
	}
}

// Open connects to the database named by cfg. It does not migrate.
//
// SQLite is pure Go: modernc.org/sqlite through the libtnb/sqlite GORM
// dialector, in WAL mode with a busy timeout and one writer at a time.
// The glebarez/sqlite dialector runs on glebarez/go-sqlite, a fork of the
// same engine that compiles every statement again on each execution (up to
// v1.23) and cannot be loaded beside modernc.org/sqlite (both register the
// "sqlite" driver); this one keeps statements compiled, which the token
// endpoint and every page measurably need (bench/changes.md).
func Open(ctx context.Context, cfg DBConfig) (*DB, error) {
	dialect, dsn, err := ParseDatabaseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("models: open: %w", err)
	}
	gcfg := &gorm.Config{
		Logger:                 logger.Discard,
		NowFunc:                func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		SkipDefaultTransaction: true,
		TranslateError:         true,
	}
	var g *gorm.DB
	switch dialect {
	case SQLite:
		if dir := filepath.Dir(dsn); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("models: open: create database directory: %w", err)
			}
		}
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_pragma", "synchronous(NORMAL)")
		// BEGIN IMMEDIATE takes the write lock up front, so concurrent writers
		// (another process on the same file) wait on busy_timeout instead of
		// failing to upgrade a read lock.
		q.Set("_txlock", "immediate")
		// Times are written in SQLite's sortable text format and read back
		// only from columns declared DATETIME: an expression or an integer
		// column is never turned into a time behind a Scan's back.
		q.Set("_time_format", "sqlite")
		q.Set("_texttotime", "0")
		q.Set("_inttotime", "0")
		// The driver keeps a prepared statement compiled for as long as
		// database/sql keeps it; without PrepareStmt every query would be
		// compiled again (a third of a token request's lookup). The cache is
		// bounded: queries with a variable number of placeholders come and go.
		gcfg.PrepareStmt = true
		gcfg.PrepareStmtMaxSize = 512
		gcfg.PrepareStmtTTL = time.Hour
		g, err = gorm.Open(sqlite.Open("file:"+dsn+"?"+q.Encode()), gcfg)
	case Postgres:
		g, err = gorm.Open(postgres.Open(dsn), gcfg)
	}
	if err != nil {
		return nil, fmt.Errorf("models: open %s: %w", dialect, err)
	}
	sqlDB, err := g.DB()
	if err != nil {
		return nil, fmt.Errorf("models: open: %w", err)
	}
	max := cfg.MaxOpenConns
	if max == 0 {
		max = 20
	}
	sqlDB.SetMaxOpenConns(max)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("models: connect %s: %w", dialect, err)
	}
	return &DB{Gorm: g, Dialect: dialect, writeMu: &sync.Mutex{}, storage: &storageState{}}, nil
}

// SQL returns the underlying database handle.
func (db *DB) SQL() *sql.DB {
	s, _ := db.Gorm.DB()
	return s
}

// Close closes the connection pool.
func (db *DB) Close() error { return db.SQL().Close() }

// Ping checks the database answers, for readiness probes.
func (db *DB) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := db.SQL().PingContext(ctx); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

type txKey struct{}

// Tx runs fn in one write transaction: every store call made with the context
// fn receives joins it, so a change and its audit record commit together or not
// at all. Nested calls join the outer transaction.
func (db *DB) Tx(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return fn(ctx)
	}
	if db.Dialect == SQLite {
		db.writeMu.Lock()
		defer db.writeMu.Unlock()
	}
	var fnErr error
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		fnErr = fn(context.WithValue(ctx, txKey{}, tx))
		return fnErr
	})
	if fnErr != nil {
		// fn's own error (the stores it called classified theirs): a
		// failure of another service, such as KMS, is not the database's.
		err = classifyStatement(err)
	} else {
		err = classify(err)
	}
	if errors.Is(err, ErrStorageFull) {
		db.storage.failed(err)
	}
	return err
}

// Conn returns the transaction carried by ctx, or the pool bound to
// StatementContext(ctx).
func (db *DB) Conn(ctx context.Context) *gorm.DB {
	if tx, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return tx
	}
	return db.Gorm.WithContext(db.StatementContext(ctx))
}

// StatementContext returns the context a statement outside a transaction
// runs with. On SQLite it is ctx without its cancellation (values kept):
// a statement there is local work of microseconds to milliseconds, and a
// context that can end makes database/sql and the driver each start a
// goroutine per query to watch it. At a few thousand queries a second on
// one core those goroutines kept the scheduler's local run queue from ever
// emptying, so connections whose next request had arrived waited for the
// runtime's 10 ms network poll and then behind the queue: execution traces
// of the list page under load showed p99.9 scheduling delays of 700 ms.
// A request whose client has gone still ends at its next write.
// PostgreSQL statements keep ctx: a query there waits on the network.
func (db *DB) StatementContext(ctx context.Context) context.Context {
	if db.Dialect == SQLite && ctx.Done() != nil {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// InTx reports whether ctx carries a write transaction.
func InTx(ctx context.Context) bool {
	_, ok := ctx.Value(txKey{}).(*gorm.DB)
	return ok
}

// Classify maps driver errors to the package's sentinel errors.
func Classify(err error) error { return classify(err) }

func classify(err error) error {
	err = classifyStatement(err)
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrConflict) && !errors.Is(err, ErrStorageFull) && connectionFailure(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// classifyStatement maps the outcomes of a statement the database answered.
func classifyStatement(err error) error {
	if err == nil {
		return nil
	}
	if !errors.Is(err, ErrStorageFull) && storageFull(err) {
		return fmt.Errorf("%w: %w", ErrStorageFull, err)
	}
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return fmt.Errorf("%w", ErrNotFound)
	}
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return fmt.Errorf("%w: %v", ErrConflict, err)
	}
	return err
}

// SQLite's primary result codes for a database that cannot store more.
const (
	sqliteReadOnly = 8
	sqliteFull     = 13
)

// storageFull reports whether err means the database cannot store more:
// its disk is full or its file (system) read-only. SQLite's errors carry
// their result code (extended codes keep the primary one in the low
// byte); PostgreSQL's their SQLSTATE, 53100 being disk_full.
func storageFull(err error) bool {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EROFS) {
		return true
	}
	var st interface{ SQLState() string }
	if errors.As(err, &st) && st.SQLState() == "53100" {
		return true
	}
	var lite interface{ Code() int }
	if errors.As(err, &lite) {
		switch lite.Code() & 0xff {
		case sqliteFull, sqliteReadOnly:
			return true
		}
	}
	return false
}

// storageQuiet is how long no write may have failed for storage before a
// successful write probe ends a storage-full episode: on a nearly full
// disk a one-row probe can succeed while larger writes still fail.
const storageQuiet = 5 * time.Second

// storageState follows storage-full episodes: from the first write that
// fails with ErrStorageFull until a write probe succeeds after storageQuiet
// without such a failure.
type storageState struct {
	mu          sync.Mutex
	full        bool
	lastFailure time.Time
	lastErr     error
	onFull      func(err error)
	onRecovered func()
}

func (s *storageState) failed(err error) {
	s.mu.Lock()
	start := !s.full
	s.full, s.lastFailure, s.lastErr = true, time.Now(), err
	hook := s.onFull
	s.mu.Unlock()
	if start && hook != nil {
		hook(err)
	}
}

func (s *storageState) wrote() {
	s.mu.Lock()
	end := s.full && time.Since(s.lastFailure) >= storageQuiet
	if end {
		s.full, s.lastErr = false, nil
	}
	hook := s.onRecovered
	s.mu.Unlock()
	if end && hook != nil {
		hook()
	}
}

// OnStorage sets what is called when a storage-full episode begins (with
// the first write's error) and when it ends: once per episode each, so a
// full disk is logged once, not on every refused request.
func (db *DB) OnStorage(full func(err error), recovered func()) {
	db.storage.mu.Lock()
	defer db.storage.mu.Unlock()
	db.storage.onFull, db.storage.onRecovered = full, recovered
}

// StorageFull reports whether a storage-full episode is under way.
func (db *DB) StorageFull() bool {
	db.storage.mu.Lock()
	defer db.storage.mu.Unlock()
	return db.storage.full
}

// ProbeWrite commits one small write (the single row of write_probe), for
// readiness probes: it fails with ErrStorageFull while the database cannot
// store more, and then also while a storage-full episode is under way
// (a write failed within storageQuiet), even if the probe's own row still
// fits.
func (db *DB) ProbeWrite(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err := db.Tx(ctx, func(ctx context.Context) error {
		return classify(db.Conn(ctx).Exec("UPDATE write_probe SET probed_at = ? WHERE id = 1", time.Now().UTC()).Error)
	})
	if err != nil {
		return fmt.Errorf("models: write probe: %w", err)
	}
	db.storage.wrote()
	db.storage.mu.Lock()
	defer db.storage.mu.Unlock()
	if db.storage.full {
		return fmt.Errorf("models: write probe: %w: a write failed %s ago: %w", ErrStorageFull,
			time.Since(db.storage.lastFailure).Round(time.Second), db.storage.lastErr)
	}
	return nil
}

// connectionFailure reports whether err means the database could not be
// reached or dropped the connection (rather than refusing a statement), so
// callers answer "unavailable, try again" instead of an internal error.
func connectionFailure(err error) bool {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	// PostgreSQL errors carry their SQLSTATE: class 08 is a connection
	// exception, 57P01-57P03 a server shutting down or starting, 53300 too
	// many connections.
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		code := st.SQLState()
		if strings.HasPrefix(code, "08") || code == "57P01" || code == "57P02" || code == "57P03" || code == "53300" {
			return true
		}
	}
	// A refused connection attempt (whatever the server said, such as a
	// database not accepting connections) or a connection already closed.
	msg := err.Error()
	return strings.Contains(msg, "failed to connect to") || strings.Contains(msg, "conn closed") || strings.Contains(msg, "connection refused")
}

func (db *DB) migrationFS() (fs.FS, goose.Dialect, error) {
	switch db.Dialect {
	case SQLite:
		sub, err := fs.Sub(migrationsSQLite, "sqlite")
		return sub, goose.DialectSQLite3, err
	default:
		sub, err := fs.Sub(migrationsPostgres, "postgres")
		return sub, goose.DialectPostgres, err
	}
}

func (db *DB) provider() (*goose.Provider, error) {
	fsys, dialect, err := db.migrationFS()
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(dialect, db.SQL(), fsys, goose.WithDisableGlobalRegistry(true))
}

// MigrationStatus is one migration and whether it has been applied.
type MigrationStatus struct {
	Version   int64
	Name      string
	Applied   bool
	AppliedAt time.Time
}

// Migrate applies every pending migration and returns the versions applied.
func (db *DB) Migrate(ctx context.Context) ([]int64, error) {
	p, err := db.provider()
	if err != nil {
		return nil, fmt.Errorf("models: migrate: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("models: migrate: %w", err)
	}
	var applied []int64
	for _, r := range res {
		applied = append(applied, r.Source.Version)
	}
	return applied, nil
}

// MigrationStatuses lists every known migration and whether it is applied.
func (db *DB) MigrationStatuses(ctx context.Context) ([]MigrationStatus, error) {
	p, err := db.provider()
	if err != nil {
		return nil, fmt.Errorf("models: migration status: %w", err)
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("models: migration status: %w", err)
	}
	out := make([]MigrationStatus, 0, len(st))
	for _, s := range st {
		out = append(out, MigrationStatus{
			Version:   s.Source.Version,
			Name:      filepath.Base(s.Source.Path),
			Applied:   s.State == goose.StateApplied,
			AppliedAt: s.AppliedAt,
		})
	}
	return out, nil
}
