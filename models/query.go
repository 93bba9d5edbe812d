package models

import (
	"context"
	"database/sql"
)

// The hot reads (a page of credentials, the principal of every request,
// the token endpoint's credential lookup, the policy most pages read) and
// the bulk writes beside them do not go through GORM's statement builder
// and per-row reflection: each is one statement written out for both
// dialects (dialectSQL), run through DB.query, DB.queryRow or DB.exec and
// scanned into a row type of its own (CredentialListRow, AuthCredential,
// SessionPrincipal), whose timestamps go through the codec in timetext.go.
// Everything else is ordinary GORM.

// dialectSQL is one statement written for each dialect: SQLite with ?
// placeholders, PostgreSQL with $n. Keep the two next to each other, with
// the same columns in the same order.
type dialectSQL struct{ SQLite, Postgres string }

// in returns the statement for dialect d.
func (q dialectSQL) in(d Dialect) string {
	if d == Postgres {
		return q.Postgres
	}
	return q.SQLite
}

// query runs q in the transaction in ctx, or else on the pool (as prepared
// statements, with StatementContext), as every GORM call through Conn does.
func (db *DB) query(ctx context.Context, q dialectSQL, args ...any) (*sql.Rows, error) {
	conn := db.Conn(ctx)
	return conn.Statement.ConnPool.QueryContext(conn.Statement.Context, q.in(db.Dialect), args...)
}

// queryRow is query for a statement that returns at most one row.
func (db *DB) queryRow(ctx context.Context, q dialectSQL, args ...any) *sql.Row {
	conn := db.Conn(ctx)
	return conn.Statement.ConnPool.QueryRowContext(conn.Statement.Context, q.in(db.Dialect), args...)
}

// exec is query for a statement that returns no rows.
func (db *DB) exec(ctx context.Context, q dialectSQL, args ...any) (sql.Result, error) {
	conn := db.Conn(ctx)
	return conn.Statement.ConnPool.ExecContext(conn.Statement.Context, q.in(db.Dialect), args...)
}
