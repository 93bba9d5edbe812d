package models

import (
	"context"
	"fmt"
	"time"
)

// Roles an agency member can hold, from most to least privileged.
const (
	RoleAdmin    = "admin"
	RoleReviewer = "reviewer"
	RoleViewer   = "viewer"
)

// ValidRole reports whether r is one of the agency roles.
func ValidRole(r string) bool { return r == RoleAdmin || r == RoleReviewer || r == RoleViewer }

// RoleRank orders roles so the strongest of several can be chosen.
func RoleRank(r string) int {
	switch r {
	case RoleAdmin:
		return 3
	case RoleReviewer:
		return 2
	case RoleViewer:
		return 1
	}
	return 0
}

// Agency is one justice agency: the tenant every other record belongs to.
type Agency struct {
	ID        int64
	Slug      string
	Name      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// RoleMapping maps an IdP group (or Google domain/email) to an agency role.
type RoleMapping struct {
	ID         int64
	AgencyID   int64
	Provider   string
	GroupValue string
	Role       string
	CreatedAt  time.Time
}

// AgencyStore reads and writes agencies and their group mappings.
type AgencyStore struct{ db *DB }

// NewAgencyStore returns the agency store.
func NewAgencyStore(db *DB) *AgencyStore { return &AgencyStore{db: db} }

// Create inserts an agency.
func (s *AgencyStore) Create(ctx context.Context, a *Agency) error {
	if err := s.db.Conn(ctx).Create(a).Error; err != nil {
		return fmt.Errorf("models: create agency: %w", classify(err))
	}
	return nil
}

// BySlug finds an agency by its slug.
func (s *AgencyStore) BySlug(ctx context.Context, slug string) (Agency, error) {
	var a Agency
	if err := s.db.Conn(ctx).Where("slug = ?", slug).Take(&a).Error; err != nil {
		return Agency{}, fmt.Errorf("models: agency %q: %w", slug, classify(err))
	}
	return a, nil
}

// ByID finds an agency by id.
func (s *AgencyStore) ByID(ctx context.Context, id int64) (Agency, error) {
	var a Agency
	if err := s.db.Conn(ctx).Where("id = ?", id).Take(&a).Error; err != nil {
		return Agency{}, fmt.Errorf("models: agency %d: %w", id, classify(err))
	}
	return a, nil
}

// List returns every agency ordered by name.
func (s *AgencyStore) List(ctx context.Context) ([]Agency, error) {
	var out []Agency
	if err := s.db.Conn(ctx).Order("name, id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("models: list agencies: %w", classify(err))
	}
	return out, nil
}

// ByIDs returns the agencies with the given ids, ordered by name.
func (s *AgencyStore) ByIDs(ctx context.Context, ids []int64) ([]Agency, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var out []Agency
	if err := s.db.Conn(ctx).Where("id IN ?", ids).Order("name, id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("models: agencies by id: %w", classify(err))
	}
	return out, nil
}

// AddMapping inserts a group-to-role mapping.
func (s *AgencyStore) AddMapping(ctx context.Context, m *RoleMapping) error {
	if err := s.db.Conn(ctx).Create(m).Error; err != nil {
		return fmt.Errorf("models: add mapping: %w", classify(err))
	}
	return nil
}

// Mapping returns one mapping of an agency.
func (s *AgencyStore) Mapping(ctx context.Context, agencyID, id int64) (RoleMapping, error) {
	var m RoleMapping
	if err := s.db.Conn(ctx).Where("agency_id = ? AND id = ?", agencyID, id).Take(&m).Error; err != nil {
		return RoleMapping{}, fmt.Errorf("models: mapping %d: %w", id, classify(err))
	}
	return m, nil
}

// DeleteMapping removes one mapping of an agency.
func (s *AgencyStore) DeleteMapping(ctx context.Context, agencyID, id int64) error {
	res := s.db.Conn(ctx).Where("agency_id = ? AND id = ?", agencyID, id).Delete(&RoleMapping{})
	if res.Error != nil {
		return fmt.Errorf("models: delete mapping: %w", classify(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("models: delete mapping %d: %w", id, ErrNotFound)
	}
	return nil
}

// Mappings lists an agency's mappings.
func (s *AgencyStore) Mappings(ctx context.Context, agencyID int64) ([]RoleMapping, error) {
	var out []RoleMapping
	if err := s.db.Conn(ctx).Where("agency_id = ?", agencyID).Order("provider, group_value, role").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("models: list mappings: %w", classify(err))
	}
	return out, nil
}

// MappingsFor returns every mapping matching one of the groups of a provider.
func (s *AgencyStore) MappingsFor(ctx context.Context, provider string, groups []string) ([]RoleMapping, error) {
	if len(groups) == 0 {
		return nil, nil
	}
	var out []RoleMapping
	if err := s.db.Conn(ctx).Where("provider = ? AND group_value IN ?", provider, groups).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("models: mappings for groups: %w", classify(err))
	}
	return out, nil
}
