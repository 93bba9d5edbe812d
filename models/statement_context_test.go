package models_test

import (
	"context"
	"testing"

	"keyconsole/models"
	"keyconsole/models/modelstest"
)

type ctxKey struct{}

func TestStatementContextDropsCancellationOnlyOnSQLite(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		parent, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "request-7"))
		defer cancel()
		got := db.StatementContext(parent)
		if got.Value(ctxKey{}) != "request-7" {
			t.Fatal("the statement context lost the request's values")
		}
		switch db.Dialect {
		case models.SQLite:
			if got.Done() != nil {
				t.Fatal("a SQLite statement context can still end: every query would start watcher goroutines")
			}
			// A statement whose request has gone still runs to completion
			// rather than failing half-way.
			cancel()
			var n int
			if err := db.Conn(parent).Raw("SELECT 1").Scan(&n).Error; err != nil || n != 1 {
				t.Fatalf("statement after the request ended: %d %v", n, err)
			}
		case models.Postgres:
			if got != parent {
				t.Fatal("a PostgreSQL statement must keep the request's cancellation")
			}
		}
		// Inside a transaction the transaction's own handle is used.
		if err := db.Tx(context.Background(), func(ctx context.Context) error {
			if !models.InTx(ctx) {
				t.Fatal("no transaction")
			}
			return db.Conn(ctx).Exec("SELECT 1").Error
		}); err != nil {
			t.Fatal(err)
		}
	})
}
