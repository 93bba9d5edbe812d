package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"
	"time"

	"keyconsole/models"
	"keyconsole/services/audit"
)

// scanFloor reads the export's rows through the product's SQLite driver
// (database/sql, no GORM, no CSV, no HTTP) and prints rows per second: the
// most any export through that driver can reach.
func scanFloor(ctx context.Context, path string, agencyID, maxID int64, out io.Writer) error {
	db, err := models.Open(ctx, models.DBConfig{URL: path, MaxOpenConns: 1})
	if err != nil {
		return err
	}
	defer db.Close()
	q := "SELECT " + strings.Join(audit.Columns(), ", ") + " FROM audit_events WHERE agency_id = ? AND id <= ? ORDER BY id"
	start := time.Now()
	rows, err := db.SQL().QueryContext(ctx, q, agencyID, maxID)
	if err != nil {
		return err
	}
	defer rows.Close()
	vals := make([]sql.RawBytes, len(audit.Columns()))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	fmt.Fprintf(out, "%d %.6f\n", n, time.Since(start).Seconds())
	return nil
}
