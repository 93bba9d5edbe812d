package models

import (
	"context"
	"fmt"
	"time"
)

// User is a person known through an identity provider. The identity is the
// (provider, subject) pair; the e-mail address is informative only.
type User struct {
	ID           int64
	Provider     string
	Subject      string
	Email        string
	Name         string
	IsOperator   bool
	DisabledAt   *time.Time
	LastSignInAt *time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Disabled reports whether the user was disabled in the console.
func (u User) Disabled() bool { return u.DisabledAt != nil }

// Display is the name to show for the user.
func (u User) Display() string {
	if u.Name != "" {
		return u.Name
	}
	if u.Email != "" {
		return u.Email
	}
	return u.Provider + ":" + u.Subject
}

// UserStore reads and writes users and the groups of their latest sign-in.
type UserStore struct{ db *DB }

// NewUserStore returns the user store.
func NewUserStore(db *DB) *UserStore { return &UserStore{db: db} }

// ByIdentity finds a user by provider and subject.
func (s *UserStore) ByIdentity(ctx context.Context, provider, subject string) (User, error) {
	var u User
	if err := s.db.Conn(ctx).Where("provider = ? AND subject = ?", provider, subject).Take(&u).Error; err != nil {
		return User{}, fmt.Errorf("models: user by identity: %w", classify(err))
	}
	return u, nil
}

// ByID finds a user by id.
func (s *UserStore) ByID(ctx context.Context, id int64) (User, error) {
	var u User
	if err := s.db.Conn(ctx).Where("id = ?", id).Take(&u).Error; err != nil {
		return User{}, fmt.Errorf("models: user %d: %w", id, classify(err))
	}
	return u, nil
}

// Create inserts a user.
func (s *UserStore) Create(ctx context.Context, u *User) error {
	if err := s.db.Conn(ctx).Create(u).Error; err != nil {
		return fmt.Errorf("models: create user: %w", classify(err))
	}
	return nil
}

// Provision returns the user of u's provider and subject into u, inserting
// u first when there is none. It is one statement (an upsert), so the first
// sign-ins of one person arriving together all get the same row: on
// PostgreSQL a concurrent insert waits for the first to commit and then
// reads its row; SQLite has one writer. A stored user is returned as
// stored (its disabled flag included); the caller writes any changes with
// Save. In a transaction the row stays locked until it ends (PostgreSQL).
func (s *UserStore) Provision(ctx context.Context, u *User) error {
	var got User
	// The no-op update makes the conflicting row come back through RETURNING.
	err := s.db.Conn(ctx).Raw("INSERT INTO users (provider, subject, email, name, is_operator, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) "+
		"ON CONFLICT (provider, subject) DO UPDATE SET updated_at = users.updated_at RETURNING "+userColumns,
		u.Provider, u.Subject, u.Email, u.Name, u.IsOperator, u.CreatedAt, u.UpdatedAt).Scan(&got).Error
	if err == nil && got.ID == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("models: provision user: %w", classify(err))
	}
	*u = got
	return nil
}

const userColumns = "id, provider, subject, email, name, is_operator, disabled_at, last_sign_in_at, created_at, updated_at"

// Save updates a user's mutable fields.
func (s *UserStore) Save(ctx context.Context, u *User) error {
	if err := s.db.Conn(ctx).Model(u).Select("email", "name", "is_operator", "disabled_at", "last_sign_in_at", "updated_at").Updates(u).Error; err != nil {
		return fmt.Errorf("models: save user: %w", classify(err))
	}
	return nil
}

// SetDisabled deactivates a user (at set) or re-enables one (at nil),
// writing only that flag and updated_at, so a sign-in saving the user's
// profile at the same moment is neither lost nor able to undo the change.
func (s *UserStore) SetDisabled(ctx context.Context, id int64, at *time.Time, now time.Time) error {
	res := s.db.Conn(ctx).Model(&User{}).Where("id = ?", id).Updates(map[string]any{"disabled_at": at, "updated_at": now})
	if res.Error != nil {
		return fmt.Errorf("models: set user disabled: %w", classify(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("models: set user disabled: %w", ErrNotFound)
	}
	return nil
}

// Disabled returns every user deactivated in the console, most recently
// deactivated first.
func (s *UserStore) Disabled(ctx context.Context) ([]User, error) {
	var out []User
	if err := s.db.Conn(ctx).Where("disabled_at IS NOT NULL").Order("disabled_at DESC, id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("models: disabled users: %w", classify(err))
	}
	return out, nil
}

// UserGroup is one group (or Google domain/email value) the user's
// provider sent at their latest sign-in. Roles are never stored: they are
// resolved from these and the role mappings as they are at each read (see
// liveRoles), so mapping changes take effect on the next request.
type UserGroup struct {
	UserID     int64  `gorm:"primaryKey"`
	GroupValue string `gorm:"primaryKey"`
}

// Limits on the groups kept per user. A group longer than a mapping may be
// can never match one; beyond MaxUserGroups the rest are not kept (Azure
// AD sends at most 200 before its overage claim, Okta at most 100).
const (
	MaxGroupValue = 300
	MaxUserGroups = 1000
)

// SetGroups replaces the user's groups with those of their latest sign-in
// (duplicates and values no mapping can hold are left out). It runs in a
// transaction (joining the caller's) that first locks the user's row
// (PostgreSQL; SQLite has one writer): two sign-ins storing their groups at
// once would otherwise both clear, then insert the same group twice or
// leave a mixture of both lists.
func (s *UserStore) SetGroups(ctx context.Context, userID int64, groups []string) error {
	return s.db.Tx(ctx, func(ctx context.Context) error { return s.setGroups(ctx, userID, groups) })
}

func (s *UserStore) setGroups(ctx context.Context, userID int64, groups []string) error {
	c := s.db.Conn(ctx)
	if s.db.Dialect == Postgres {
		if err := c.Exec("SELECT id FROM users WHERE id = ? FOR NO KEY UPDATE", userID).Error; err != nil {
			return fmt.Errorf("models: lock user groups: %w", classify(err))
		}
	}
	if err := c.Where("user_id = ?", userID).Delete(&UserGroup{}).Error; err != nil {
		return fmt.Errorf("models: clear groups: %w", classify(err))
	}
	rows := make([]UserGroup, 0, len(groups))
	seen := make(map[string]bool, len(groups))
	for _, g := range groups {
		if g == "" || len(g) > MaxGroupValue || seen[g] || len(rows) == MaxUserGroups {
			continue
		}
		seen[g] = true
		rows = append(rows, UserGroup{UserID: userID, GroupValue: g})
	}
	if len(rows) == 0 {
		return nil
	}
	if err := c.CreateInBatches(rows, 200).Error; err != nil {
		return fmt.Errorf("models: set groups: %w", classify(err))
	}
	return nil
}

// Groups returns the user's groups from their latest sign-in, sorted.
func (s *UserStore) Groups(ctx context.Context, userID int64) ([]string, error) {
	var out []string
	if err := s.db.Conn(ctx).Model(&UserGroup{}).Where("user_id = ?", userID).Order("group_value").Pluck("group_value", &out).Error; err != nil {
		return nil, fmt.Errorf("models: groups: %w", classify(err))
	}
	return out, nil
}

// liveRoles joins users to the roles their groups give now: each group
// matched to the mappings of the user's provider, in agencies that exist.
// A user has one row per matching mapping; the strongest role of an
// agency wins (RoleRank).
const liveRoles = "users JOIN user_groups g ON g.user_id = users.id " +
	"JOIN role_mappings m ON m.provider = users.provider AND m.group_value = g.group_value " +
	"JOIN agencies a ON a.id = m.agency_id"

// Roles returns the user's roles by agency id, resolved from their groups
// and the current mappings.
func (s *UserStore) Roles(ctx context.Context, userID int64) (map[int64]string, error) {
	var rows []struct {
		AgencyID int64
		Role     string
	}
	if err := s.db.Conn(ctx).Table(liveRoles).Select("m.agency_id AS agency_id, m.role AS role").Where("users.id = ?", userID).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("models: roles: %w", classify(err))
	}
	out := make(map[int64]string, len(rows))
	for _, r := range rows {
		if RoleRank(r.Role) > RoleRank(out[r.AgencyID]) {
			out[r.AgencyID] = r.Role
		}
	}
	return out, nil
}

// AgencyMember is a user with their role in one agency.
type AgencyMember struct {
	User
	Role string
}

// Members lists the users holding a role in an agency now, by name.
func (s *UserStore) Members(ctx context.Context, agencyID int64) ([]AgencyMember, error) {
	var rows []AgencyMember
	err := s.db.Conn(ctx).Table(liveRoles).
		Select("users.*, m.role AS role").
		Where("m.agency_id = ?", agencyID).
		Order("users.name, users.id").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("models: members: %w", classify(err))
	}
	// One row per matching mapping: keep each user once, with the strongest role.
	out := rows[:0]
	for _, r := range rows {
		if n := len(out); n > 0 && out[n-1].ID == r.ID {
			if RoleRank(r.Role) > RoleRank(out[n-1].Role) {
				out[n-1].Role = r.Role
			}
			continue
		}
		out = append(out, r)
	}
	return out, nil
}
