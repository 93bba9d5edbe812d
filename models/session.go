package models

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Session is a signed-in browser session, kept on the server so that sign-out,
// timeouts and disabling a user take effect at once on every replica. ID is the
// SHA-256 of the token in the cookie, never the token itself.
type Session struct {
	ID              string
	UserID          int64
	Provider        string
	CurrentAgencyID *int64
	CreatedAt       time.Time
	LastSeenAt      time.Time
	AuthTime        time.Time
	RevokedAt       *time.Time
	RevokeReason    string
	SourceIP        string
	UserAgent       string
}

// LoginAttempt records an authorization request so its callback is accepted once.
type LoginAttempt struct {
	StateHash  string `gorm:"primaryKey"`
	Provider   string
	CreatedAt  time.Time
	ConsumedAt *time.Time
}

// SessionStore reads and writes sessions and login attempts.
type SessionStore struct{ db *DB }

// NewSessionStore returns the session store.
func NewSessionStore(db *DB) *SessionStore { return &SessionStore{db: db} }

// Create inserts a session.
func (s *SessionStore) Create(ctx context.Context, sess *Session) error {
	if err := s.db.Conn(ctx).Create(sess).Error; err != nil {
		return fmt.Errorf("models: create session: %w", classify(err))
	}
	return nil
}

// ByID finds a session by the hash of its token.
func (s *SessionStore) ByID(ctx context.Context, id string) (Session, error) {
	var sess Session
	if err := s.db.Conn(ctx).Where("id = ?", id).Take(&sess).Error; err != nil {
		return Session{}, fmt.Errorf("models: session: %w", classify(err))
	}
	return sess, nil
}

// SessionPrincipal is a session with its user, the user's resolved agency
// roles and those agencies, as Principal reads them.
type SessionPrincipal struct {
	// Session leaves RevokeReason, SourceIP and UserAgent empty.
	Session Session
	User    User
	// Roles maps agency ids to the user's role there; never nil.
	Roles map[int64]string
	// Agencies are the agencies of Roles ordered by name then id, as
	// AgencyStore.ByIDs returns them; never nil.
	Agencies []Agency
}

// The statement of Principal: the session by id, its user, and one row per
// mapping that one of the user's groups matches now, with its agency (a
// single row of NULLs when there is none). Roles are resolved here, on
// every request, never copied at sign-in: a removed or changed mapping or
// a deleted agency counts from the next request on every replica. The
// parenthesised inner joins keep groups that match no mapping out of the
// result. On SQLite the timestamps are read as their text (see parseDBTime).
var principalSQL = dialectSQL{
	SQLite: `
		SELECT s.user_id, s.provider, s.current_agency_id, CAST(s.created_at AS TEXT), CAST(s.last_seen_at AS TEXT),
		       CAST(s.auth_time AS TEXT), CAST(s.revoked_at AS TEXT),
		       u.id, u.provider, u.subject, u.email, u.name, u.is_operator, CAST(u.disabled_at AS TEXT),
		       CAST(u.last_sign_in_at AS TEXT), CAST(u.created_at AS TEXT), CAST(u.updated_at AS TEXT),
		       r.agency_id, r.role, a.slug, a.name, CAST(a.created_at AS TEXT), CAST(a.updated_at AS TEXT)
		FROM sessions s
		JOIN users u ON u.id = s.user_id
		LEFT JOIN (user_groups g
		           JOIN role_mappings r ON r.group_value = g.group_value
		           JOIN agencies a ON a.id = r.agency_id)
		       ON g.user_id = u.id AND r.provider = u.provider
		WHERE s.id = ?
		ORDER BY a.name, a.id`,
	Postgres: `
		SELECT s.user_id, s.provider, s.current_agency_id, s.created_at, s.last_seen_at,
		       s.auth_time, s.revoked_at,
		       u.id, u.provider, u.subject, u.email, u.name, u.is_operator, u.disabled_at,
		       u.last_sign_in_at, u.created_at, u.updated_at,
		       r.agency_id, r.role, a.slug, a.name, a.created_at, a.updated_at
		FROM sessions s
		JOIN users u ON u.id = s.user_id
		LEFT JOIN (user_groups g
		           JOIN role_mappings r ON r.group_value = g.group_value
		           JOIN agencies a ON a.id = r.agency_id)
		       ON g.user_id = u.id AND r.provider = u.provider
		WHERE s.id = $1
		ORDER BY a.name, a.id`,
}

// Principal reads a session by the hash of its token together with its
// user, the user's roles and their agencies, in one query: what every
// signed-in request needs, read fresh each time so that revocation,
// timeouts and disabling a user take effect at once. A session whose user
// is gone is ErrNotFound like a missing one.
func (s *SessionStore) Principal(ctx context.Context, id string) (SessionPrincipal, error) {
	rows, err := s.db.query(ctx, principalSQL, id)
	if err != nil {
		return SessionPrincipal{}, fmt.Errorf("models: session: %w", classify(err))
	}
	defer rows.Close()
	out := SessionPrincipal{Session: Session{ID: id}, Roles: make(map[int64]string, 1), Agencies: make([]Agency, 0, 1)}
	sess, u := &out.Session, &out.User
	var (
		agencyID         sql.Null[int64]
		role, slug, name sql.Null[string]
		created, updated *time.Time
	)
	cols := []any{&sess.UserID, &sess.Provider, &sess.CurrentAgencyID, scanTime(&sess.CreatedAt), scanTime(&sess.LastSeenAt), scanTime(&sess.AuthTime), scanNullTime(&sess.RevokedAt),
		&u.ID, &u.Provider, &u.Subject, &u.Email, &u.Name, &u.IsOperator, scanNullTime(&u.DisabledAt), scanNullTime(&u.LastSignInAt), scanTime(&u.CreatedAt), scanTime(&u.UpdatedAt),
		&agencyID, &role, &slug, &name, scanNullTime(&created), scanNullTime(&updated)}
	// sessionUserCols are the leading columns of the session and the user.
	const sessionUserCols = 17
	n := 0
	for rows.Next() {
		if err := rows.Scan(cols...); err != nil {
			return SessionPrincipal{}, fmt.Errorf("models: session: %w", err)
		}
		if n == 0 {
			// Further rows repeat the session and the user: only the role and
			// its agency are read from them.
			for i := range sessionUserCols {
				cols[i] = discard{}
			}
		}
		n++
		if !agencyID.Valid {
			continue
		}
		// Rows of one agency are adjacent (ordered by name, id): its
		// strongest role wins and it is listed once.
		if RoleRank(role.V) > RoleRank(out.Roles[agencyID.V]) {
			out.Roles[agencyID.V] = role.V
		}
		if k := len(out.Agencies); k > 0 && out.Agencies[k-1].ID == agencyID.V {
			continue
		}
		if slug.Valid && created != nil && updated != nil {
			out.Agencies = append(out.Agencies, Agency{ID: agencyID.V, Slug: slug.V, Name: name.V, CreatedAt: *created, UpdatedAt: *updated})
		}
	}
	if err := rows.Err(); err != nil {
		return SessionPrincipal{}, fmt.Errorf("models: session: %w", classify(err))
	}
	if n == 0 {
		return SessionPrincipal{}, fmt.Errorf("models: session: %w", ErrNotFound)
	}
	return out, nil
}

// discard is a Scan destination that ignores its column.
type discard struct{}

func (discard) Scan(any) error { return nil }

// Touch records activity on a session.
func (s *SessionStore) Touch(ctx context.Context, id string, at time.Time) error {
	if err := s.db.Conn(ctx).Model(&Session{}).Where("id = ? AND revoked_at IS NULL", id).Update("last_seen_at", at).Error; err != nil {
		return fmt.Errorf("models: touch session: %w", classify(err))
	}
	return nil
}

// SetAgency changes the agency a session is looking at.
func (s *SessionStore) SetAgency(ctx context.Context, id string, agencyID int64) error {
	if err := s.db.Conn(ctx).Model(&Session{}).Where("id = ?", id).Update("current_agency_id", agencyID).Error; err != nil {
		return fmt.Errorf("models: session agency: %w", classify(err))
	}
	return nil
}

// SetAuthTime records a fresh sign-in on an existing session.
func (s *SessionStore) SetAuthTime(ctx context.Context, id string, at time.Time) error {
	if err := s.db.Conn(ctx).Model(&Session{}).Where("id = ?", id).Updates(map[string]any{"auth_time": at, "last_seen_at": at}).Error; err != nil {
		return fmt.Errorf("models: session auth time: %w", classify(err))
	}
	return nil
}

// Revoke ends a session; it reports whether a live session was ended.
func (s *SessionStore) Revoke(ctx context.Context, id, reason string, at time.Time) (bool, error) {
	res := s.db.Conn(ctx).Model(&Session{}).Where("id = ? AND revoked_at IS NULL", id).
		Updates(map[string]any{"revoked_at": at, "revoke_reason": reason})
	if res.Error != nil {
		return false, fmt.Errorf("models: revoke session: %w", classify(res.Error))
	}
	return res.RowsAffected > 0, nil
}

// RevokeUser ends every live session of a user and returns how many.
func (s *SessionStore) RevokeUser(ctx context.Context, userID int64, reason string, at time.Time) (int64, error) {
	res := s.db.Conn(ctx).Model(&Session{}).Where("user_id = ? AND revoked_at IS NULL", userID).
		Updates(map[string]any{"revoked_at": at, "revoke_reason": reason})
	if res.Error != nil {
		return 0, fmt.Errorf("models: revoke user sessions: %w", classify(res.Error))
	}
	return res.RowsAffected, nil
}

// CreateAttempt records a started authorization request.
func (s *SessionStore) CreateAttempt(ctx context.Context, a *LoginAttempt) error {
	if err := s.db.Conn(ctx).Create(a).Error; err != nil {
		return fmt.Errorf("models: create login attempt: %w", classify(err))
	}
	return nil
}

// ConsumeAttempt marks a login attempt used. It returns ErrNotFound if the
// attempt is unknown, already used or older than maxAge.
func (s *SessionStore) ConsumeAttempt(ctx context.Context, stateHash string, now time.Time, maxAge time.Duration) (LoginAttempt, error) {
	var a LoginAttempt
	c := s.db.Conn(ctx)
	res := c.Model(&LoginAttempt{}).
		Where("state_hash = ? AND consumed_at IS NULL AND created_at > ?", stateHash, now.Add(-maxAge)).
		Update("consumed_at", now)
	if res.Error != nil {
		return a, fmt.Errorf("models: consume login attempt: %w", classify(res.Error))
	}
	if res.RowsAffected != 1 {
		return a, fmt.Errorf("models: consume login attempt: %w", ErrNotFound)
	}
	if err := c.Where("state_hash = ?", stateHash).Take(&a).Error; err != nil {
		return a, fmt.Errorf("models: consume login attempt: %w", classify(err))
	}
	return a, nil
}

// PruneAttempts deletes login attempts older than the cutoff.
func (s *SessionStore) PruneAttempts(ctx context.Context, before time.Time) error {
	if err := s.db.Conn(ctx).Where("created_at < ?", before).Delete(&LoginAttempt{}).Error; err != nil {
		return fmt.Errorf("models: prune login attempts: %w", classify(err))
	}
	return nil
}
