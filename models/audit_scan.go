package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// auditColumns are audit_events' columns in AuditEvent's field order.
const auditColumns = "id, agency_id, seq, occurred_at, actor_type, actor_id, actor_name, action, target_type, target_id, target_name, " +
	"outcome, reason, source_ip, user_agent, request_id, details, prev_hash, hash"

// The two readers of audit_events in chain order: Ascending, which
// returns events, for pages and the JSON Lines and PDF exports, and
// AscendingText, which hands over each row as text, for the CSV export.

// Ascending returns up to limit events matching f in chain order (by id),
// after f.AfterID. Each row is scanned straight into its fields instead of
// through GORM's per-row reflection, which was a fifth of an export's time.
func (s *AuditStore) Ascending(ctx context.Context, f AuditFilter, limit int) ([]AuditEvent, error) {
	rows, err := s.filtered(ctx, f).Select(auditColumns).Order("id ASC").Limit(limit).Rows()
	if err != nil {
		return nil, fmt.Errorf("models: audit scan: %w", classify(err))
	}
	defer rows.Close()
	out := make([]AuditEvent, 0, min(limit, 1000))
	for rows.Next() {
		out = append(out, AuditEvent{})
		e := &out[len(out)-1]
		if err := rows.Scan(&e.ID, &e.AgencyID, &e.Seq, &e.OccurredAt, &e.ActorType, &e.ActorID, &e.ActorName, &e.Action, &e.TargetType,
			&e.TargetID, &e.TargetName, &e.Outcome, &e.Reason, &e.SourceIP, &e.UserAgent, &e.RequestID, &e.Details, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("models: audit scan: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("models: audit scan: %w", classify(err))
	}
	return out, nil
}

// AuditText is one audit event as AscendingText reads it: every exported
// column in its text form. Its fields are valid only until the callback
// that received it returns.
type AuditText struct {
	ID, Seq int64
	// OccurredAt is the time in UTC in RFC 3339 with as many fractional
	// digits as it has (time.RFC3339Nano), as time.Time would format it.
	OccurredAt []byte

	ActorType, ActorID, ActorName, Action, TargetType, TargetID string
	TargetName, Outcome, Reason, SourceIP, UserAgent, RequestID string
	Details, PrevHash, Hash                                     string
}

// texts are e's text fields in column order.
func (e *AuditText) texts() [15]*string {
	return [15]*string{&e.ActorType, &e.ActorID, &e.ActorName, &e.Action, &e.TargetType, &e.TargetID,
		&e.TargetName, &e.Outcome, &e.Reason, &e.SourceIP, &e.UserAgent, &e.RequestID, &e.Details, &e.PrevHash, &e.Hash}
}

// The columns AscendingText reads, in AuditText's field order.
//
// On SQLite occurred_at is read through a no-op expression (unary + keeps
// the value and its storage class): the driver parses a column declared
// DATETIME into a time.Time on every row (a seventh of an export's time,
// plus formatting it back), while appendTimeText rewrites the stored text.
//
// auditJoinedColumnsSQLite also reads the fifteen text columns as one
// value, joined by NUL bytes: the driver's cost is per column (three calls
// into SQLite, each taking the connection's mutex, a copy and two
// allocations), and it was most of an export's time. The text columns have
// TEXT affinity, so they hold text or (if written as such) a blob, whose
// bytes concat_ws keeps as they are; a row whose value does not split into
// exactly fifteen fields (a NUL in a value, a NULL) is read again column by
// column. The columns are NOT NULL, so concat_ws never drops one: a NUL in
// a value can only add fields, and such a row is always caught.
const (
	auditTextColumnsSQLite = "id, seq, +occurred_at, actor_type, actor_id, actor_name, action, target_type, target_id, target_name, " +
		"outcome, reason, source_ip, user_agent, request_id, details, prev_hash, hash"
	auditTextColumnsPostgres = "id, seq, occurred_at, actor_type, actor_id, actor_name, action, target_type, target_id, target_name, " +
		"outcome, reason, source_ip, user_agent, request_id, details, prev_hash, hash"
	auditJoinedColumnsSQLite = "id, seq, +occurred_at, concat_ws(char(0), actor_type, actor_id, actor_name, action, target_type, target_id, " +
		"target_name, outcome, reason, source_ip, user_agent, request_id, details, prev_hash, hash)"
	auditTextColumnCount = 18
)

// AscendingText reads up to limit events matching f in chain order (by id),
// after f.AfterID, and calls fn with each one as text, for exports that
// write text: the values are taken as the driver delivers them (no
// conversion to Go types and back), and no row outlives its callback.
// It returns how many rows it read and the id of the last one. fn runs
// while the query is open: it should not wait on anything but memory.
func (s *AuditStore) AscendingText(ctx context.Context, f AuditFilter, limit int, fn func(e *AuditText) error) (int, int64, error) {
	if s.db.Dialect != SQLite {
		return s.ascendingColumns(ctx, f, limit, auditTextColumnsPostgres, fn)
	}
	n, last, whole, err := s.ascendingJoined(ctx, f, limit, fn)
	if err != nil || whole {
		return n, last, err
	}
	// A row did not split: the rest of the batch, from that row on, is
	// read column by column.
	if n > 0 {
		f.AfterID = last
	}
	m, l, err := s.ascendingColumns(ctx, f, limit-n, auditTextColumnsSQLite, fn)
	if m > 0 {
		last = l
	}
	return n + m, last, err
}

// ascendingJoined is AscendingText over auditJoinedColumnsSQLite. It stops
// before the first row whose joined text does not split and then reports
// whole = false.
func (s *AuditStore) ascendingJoined(ctx context.Context, f AuditFilter, limit int, fn func(e *AuditText) error) (n int, last int64, whole bool, err error) {
	rows, err := s.filtered(ctx, f).Select(auditJoinedColumnsSQLite).Order("id ASC").Limit(limit).Rows()
	if err != nil {
		return 0, 0, false, fmt.Errorf("models: audit scan: %w", classify(err))
	}
	defer rows.Close()
	var vals [4]any
	dest := [4]any{&vals[0], &vals[1], &vals[2], &vals[3]}
	var e AuditText
	var at []byte
	for rows.Next() {
		if err := rows.Scan(dest[:]...); err != nil {
			return n, last, false, fmt.Errorf("models: audit scan: %w", err)
		}
		joined, ok := vals[3].(string)
		if !ok || !splitTexts(joined, e.texts()) {
			return n, last, false, nil
		}
		if e.ID, err = int64Value(vals[0]); err != nil {
			return n, last, false, fmt.Errorf("models: audit scan: column id: %w", err)
		}
		if e.Seq, err = int64Value(vals[1]); err != nil {
			return n, last, false, fmt.Errorf("models: audit scan: column seq: %w", err)
		}
		if at, err = appendTimeText(at[:0], vals[2]); err != nil {
			return n, last, false, fmt.Errorf("models: audit scan: column occurred_at: %w", err)
		}
		e.OccurredAt = at
		if err := fn(&e); err != nil {
			return n, last, false, err
		}
		n, last = n+1, e.ID
	}
	if err := rows.Err(); err != nil {
		return n, last, false, fmt.Errorf("models: audit scan: %w", classify(err))
	}
	return n, last, true, nil
}

// splitTexts splits s at NUL bytes into exactly len(out) fields, without
// copying, and reports whether it held that many.
func splitTexts(s string, out [15]*string) bool {
	for _, p := range out[:len(out)-1] {
		i := strings.IndexByte(s, 0)
		if i < 0 {
			return false
		}
		*p, s = s[:i], s[i+1:]
	}
	if strings.IndexByte(s, 0) >= 0 {
		return false
	}
	*out[len(out)-1] = s
	return true
}

// ascendingColumns is AscendingText reading each column as a value of its own.
func (s *AuditStore) ascendingColumns(ctx context.Context, f AuditFilter, limit int, cols string, fn func(e *AuditText) error) (int, int64, error) {
	rows, err := s.filtered(ctx, f).Select(cols).Order("id ASC").Limit(limit).Rows()
	if err != nil {
		return 0, 0, fmt.Errorf("models: audit scan: %w", classify(err))
	}
	defer rows.Close()
	// Scanning into *any hands over the driver's value as it is: no
	// reflection, no copy. Each value is then taken as database/sql would
	// store it into the field's type (see textValue and int64Value).
	var vals [auditTextColumnCount]any
	var dest [auditTextColumnCount]any
	for i := range vals {
		dest[i] = &vals[i]
	}
	var e AuditText
	var at []byte
	n := 0
	for rows.Next() {
		if err := rows.Scan(dest[:]...); err != nil {
			return n, e.ID, fmt.Errorf("models: audit scan: %w", err)
		}
		if e.ID, err = int64Value(vals[0]); err != nil {
			return n, e.ID, fmt.Errorf("models: audit scan: column id: %w", err)
		}
		if e.Seq, err = int64Value(vals[1]); err != nil {
			return n, e.ID, fmt.Errorf("models: audit scan: column seq: %w", err)
		}
		if at, err = appendTimeText(at[:0], vals[2]); err != nil {
			return n, e.ID, fmt.Errorf("models: audit scan: column occurred_at: %w", err)
		}
		e.OccurredAt = at
		for i, p := range e.texts() {
			if *p, err = textValue(vals[3+i]); err != nil {
				return n, e.ID, fmt.Errorf("models: audit scan: column %d: %w", 3+i, err)
			}
		}
		if err := fn(&e); err != nil {
			return n, e.ID, err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, e.ID, fmt.Errorf("models: audit scan: %w", classify(err))
	}
	return n, e.ID, nil
}

// textValue is v as database/sql's Scan would store it into a string.
func textValue(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case nil:
		return "", errors.New("converting NULL to string is unsupported")
	}
	var s sql.Null[string]
	if err := s.Scan(v); err != nil {
		return "", err
	}
	return s.V, nil
}

// int64Value is v as database/sql's Scan would store it into an int64.
func int64Value(v any) (int64, error) {
	switch v := v.(type) {
	case int64:
		return v, nil
	case nil:
		return 0, errors.New("converting NULL to int64 is unsupported")
	}
	var n sql.Null[int64]
	if err := n.Scan(v); err != nil {
		return 0, err
	}
	return n.V, nil
}
