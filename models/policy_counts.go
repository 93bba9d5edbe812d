package models

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// PolicyCutoffs are the instants at which a credential's states against a
// rotation policy change, at one moment Now (services/policy derives them
// from the rules of Policy.Evaluate). Every comparison is "at or before":
//
//   - expired: its expiry is at or before Now;
//   - overdue: rotated (or, never rotated, created) at or before Overdue;
//   - due soon: rotated at or before DueSoon, and not overdue;
//   - never used: no last use, and created at or before Unused;
//   - unused: last used at or before Unused.
//
// A time the stores leave NULL means "never"; they never write a zero time.
type PolicyCutoffs struct {
	Now, Overdue, DueSoon, Unused time.Time
}

// PolicyCounts are how many active credentials of an agency are in each
// state (an overdue credential is not also due soon; one can be overdue and
// unused).
type PolicyCounts struct {
	Active, Overdue, DueSoon, NeverUsed, Unused int
}

// policyQuery builds a counting statement and its arguments in step: each
// comparison with a cutoff binds its own parameters.
type policyQuery struct {
	d    Dialect
	args []any
}

// arg binds v and returns its placeholder.
func (q *policyQuery) arg(v any) string {
	q.args = append(q.args, v)
	if q.d == Postgres {
		return "$" + strconv.Itoa(len(q.args))
	}
	return "?"
}

// atOrBefore is the SQL condition "expr is at or before t"; on SQLite, jd
// is a column holding julianday(expr), or "" to call it here.
//
// On PostgreSQL the columns are timestamptz and compare exactly. On SQLite
// they are text, written by the driver as "2006-01-02 15:04:05.999999999-07:00"
// in the zone of the time stored, so the text does not sort by time: both
// sides go through julianday(), which reads any of SQLite's time formats
// and zones but rounds to the millisecond. Only when the rounded values are
// equal is the exact comparison needed (sqliteUnixNano against t's Unix
// nanoseconds); CASE evaluates it for those rows alone. A NULL expr is never
// at or before anything.
func (q *policyQuery) atOrBefore(expr, jd string, t time.Time) string {
	if q.d == Postgres {
		return "(" + expr + " <= " + q.arg(t) + ")"
	}
	if jd == "" {
		jd = "julianday(" + expr + ")"
	}
	text := t.UTC().Format("2006-01-02 15:04:05.000000000")
	return "(CASE WHEN " + jd + " < julianday(" + q.arg(text) + ") THEN 1 WHEN " + jd + " > julianday(" + q.arg(text) + ") THEN 0 ELSE " +
		sqliteUnixNano(expr) + " <= " + q.arg(t.UnixNano()) + " END)"
}

// sqliteUnixNano is the exact Unix time in nanoseconds of a time stored as
// SQLite text "YYYY-MM-DD HH:MM:SS[.fraction][zone]" (a T for the space
// works too): the whole seconds with the zone go through unixepoch(), which
// is exact without a fraction, and the fraction's digits are read as they
// are, whatever the zone.
func sqliteUnixNano(expr string) string {
	zone := "ltrim(substr(" + expr + ", 20), '.0123456789')"
	fraction := "CASE WHEN substr(" + expr + ", 20, 1) = '.' THEN substr(" + expr + ", 21, length(" + expr + ") - 20 - length(" + zone + ")) ELSE '' END"
	return "(unixepoch(substr(" + expr + ", 1, 19) || " + zone + ") * 1000000000 + CAST(substr(" + fraction + " || '000000000', 1, 9) AS INTEGER))"
}

// policyTable is what a counting statement measures: the rows of one
// agency in a table and the columns holding their times.
type policyTable struct {
	// from is the FROM clause; agency the column of the agency id; active
	// the condition (besides expiry) of a row still granting access.
	from, agency, active string
	// expires is the expiry column, "" when there is none.
	expires string
	// rotated, created and lastUsed are SQL expressions of the rotation
	// (or creation) time, the creation time and the last use.
	rotated, created, lastUsed string
}

// policyCounts counts the active rows of t in each state of c, in one pass.
func (db *DB) policyCounts(ctx context.Context, what string, t policyTable, agencyID int64, c PolicyCutoffs) (PolicyCounts, error) {
	q := &policyQuery{d: db.Dialect}
	// The inner query selects each active row's times once, on SQLite with
	// their julianday(), for every comparison of the outer one (LIMIT keeps
	// SQLite from flattening it back into a julianday() call per comparison).
	jd := func(col string) string {
		if db.Dialect == SQLite {
			return col + "_jd"
		}
		return ""
	}
	var b strings.Builder
	b.WriteString("SELECT COUNT(*), COALESCE(SUM(CASE WHEN " + q.atOrBefore("r", jd("r"), c.Overdue) + " THEN 1 ELSE 0 END), 0), ")
	b.WriteString("COALESCE(SUM(CASE WHEN " + q.atOrBefore("r", jd("r"), c.Overdue) + " THEN 0 WHEN " + q.atOrBefore("r", jd("r"), c.DueSoon) + " THEN 1 ELSE 0 END), 0), ")
	b.WriteString("COALESCE(SUM(CASE WHEN u IS NULL AND " + q.atOrBefore("c", jd("c"), c.Unused) + " THEN 1 ELSE 0 END), 0), ")
	b.WriteString("COALESCE(SUM(CASE WHEN u IS NOT NULL AND " + q.atOrBefore("u", jd("u"), c.Unused) + " THEN 1 ELSE 0 END), 0)")
	b.WriteString(" FROM (SELECT " + t.rotated + " AS r, " + t.created + " AS c, " + t.lastUsed + " AS u")
	if db.Dialect == SQLite {
		b.WriteString(", julianday(" + t.rotated + ") AS r_jd, julianday(" + t.created + ") AS c_jd, julianday(" + t.lastUsed + ") AS u_jd")
	}
	b.WriteString(" FROM " + t.from + " WHERE " + t.agency + " = " + q.arg(agencyID) + " AND " + t.active)
	if t.expires != "" {
		b.WriteString(" AND (" + t.expires + " IS NULL OR NOT " + q.atOrBefore(t.expires, "", c.Now) + ")")
	}
	if db.Dialect == SQLite {
		b.WriteString(" LIMIT -1")
	}
	b.WriteString(") AS counted")
	var out PolicyCounts
	// The text is built for db.Dialect only (q.arg numbers its placeholders).
	text := b.String()
	err := db.queryRow(ctx, dialectSQL{SQLite: text, Postgres: text}, q.args...).
		Scan(&out.Active, &out.Overdue, &out.DueSoon, &out.NeverUsed, &out.Unused)
	if err != nil {
		return PolicyCounts{}, fmt.Errorf("models: count %s against the policy: %w", what, classify(err))
	}
	return out, nil
}

// PolicyCounts counts an agency's active credentials (neither revoked nor
// expired at c.Now) in each state against the policy, in the database: the
// dashboard's figures without reading every row.
func (s *APIClientStore) PolicyCounts(ctx context.Context, agencyID int64, c PolicyCutoffs) (PolicyCounts, error) {
	return s.db.policyCounts(ctx, "api credentials", policyTable{
		from: "api_credentials", agency: "agency_id", active: "revoked_at IS NULL", expires: "expires_at",
		rotated: "COALESCE(rotated_at, created_at)", created: "created_at", lastUsed: "last_used_at",
	}, agencyID, c)
}

// PolicyCounts counts an agency's active SSH keys (of its own accounts;
// neither revoked nor expired, recorded or at c.Now) in each state against
// the policy; a key's age is counted from its upload.
func (s *SSHKeyStore) PolicyCounts(ctx context.Context, agencyID int64, c PolicyCutoffs) (PolicyCounts, error) {
	return s.db.policyCounts(ctx, "ssh keys", policyTable{
		from:   "ssh_keys JOIN sftp_accounts ON sftp_accounts.id = ssh_keys.account_id AND sftp_accounts.agency_id = ssh_keys.agency_id",
		agency: "ssh_keys.agency_id", active: "ssh_keys.revoked_at IS NULL AND ssh_keys.expired_at IS NULL", expires: "ssh_keys.expires_at",
		rotated: "ssh_keys.created_at", created: "ssh_keys.created_at", lastUsed: "ssh_keys.last_used_at",
	}, agencyID, c)
}

// AccountCount returns how many SFTP accounts an agency has.
func (s *SSHKeyStore) AccountCount(ctx context.Context, agencyID int64) (int, error) {
	var n int64
	if err := s.db.Conn(ctx).Model(&SFTPAccount{}).Where("agency_id = ?", agencyID).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("models: count sftp accounts: %w", classify(err))
	}
	return int(n), nil
}

// PolicyCounts counts the secrets of an agency's enabled webhook endpoints
// that have one, in each state against the policy: a secret's age runs from
// when it was set, and its last use is the endpoint's last delivery.
func (s *WebhookStore) PolicyCounts(ctx context.Context, agencyID int64, c PolicyCutoffs) (PolicyCounts, error) {
	enabled := "enabled"
	if s.db.Dialect == SQLite {
		enabled = "enabled <> 0"
	}
	return s.db.policyCounts(ctx, "webhook secrets", policyTable{
		from: "webhook_endpoints", agency: "agency_id", active: "secret_version <> 0 AND " + enabled,
		rotated: "COALESCE(secret_set_at, created_at)", created: "created_at", lastUsed: "last_delivery_at",
	}, agencyID, c)
}
