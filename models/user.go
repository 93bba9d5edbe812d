package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm/clause"
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

// UserAgencyRole is a user's role in one agency as resolved at their last sign-in.
type UserAgencyRole struct {
	UserID    int64 `gorm:"primaryKey"`
	AgencyID  int64 `gorm:"primaryKey"`
	Role      string
	UpdatedAt time.Time
}

// UserStore reads and writes users and their resolved roles.
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

// Save updates a user's mutable fields.
func (s *UserStore) Save(ctx context.Context, u *User) error {
	if err := s.db.Conn(ctx).Model(u).Select("email", "name", "is_operator", "disabled_at", "last_sign_in_at", "updated_at").Updates(u).Error; err != nil {
		return fmt.Errorf("models: save user: %w", classify(err))
	}
	return nil
}

// SetRoles replaces the user's resolved agency roles.
func (s *UserStore) SetRoles(ctx context.Context, userID int64, roles map[int64]string, now time.Time) error {
	c := s.db.Conn(ctx)
	if err := c.Where("user_id = ?", userID).Delete(&UserAgencyRole{}).Error; err != nil {
		return fmt.Errorf("models: clear roles: %w", classify(err))
	}
	for agencyID, role := range roles {
		r := UserAgencyRole{UserID: userID, AgencyID: agencyID, Role: role, UpdatedAt: now}
		if err := c.Clauses(clause.OnConflict{UpdateAll: true}).Create(&r).Error; err != nil {
			return fmt.Errorf("models: set role: %w", classify(err))
		}
	}
	return nil
}

// Roles returns the user's resolved roles by agency id.
func (s *UserStore) Roles(ctx context.Context, userID int64) (map[int64]string, error) {
	var rows []UserAgencyRole
	if err := s.db.Conn(ctx).Where("user_id = ?", userID).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("models: roles: %w", classify(err))
	}
	out := make(map[int64]string, len(rows))
	for _, r := range rows {
		out[r.AgencyID] = r.Role
	}
	return out, nil
}

// AgencyMember is a user with their role in one agency.
type AgencyMember struct {
	User
	Role string
}

// Members lists the users holding a role in an agency.
func (s *UserStore) Members(ctx context.Context, agencyID int64) ([]AgencyMember, error) {
	var out []AgencyMember
	err := s.db.Conn(ctx).Table("users").
		Select("users.*, user_agency_roles.role AS role").
		Joins("JOIN user_agency_roles ON user_agency_roles.user_id = users.id").
		Where("user_agency_roles.agency_id = ?", agencyID).
		Order("users.name, users.id").Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: members: %w", classify(err))
	}
	return out, nil
}
