// Package agencies manages agencies and their IdP group-to-role mappings, the
// platform operator's side of the console.
package agencies

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"keyconsole/models"
	"keyconsole/services/audit"
	"keyconsole/services/validation"
)

// ValidationError carries field messages for a refused form; it is the one
// validation error every service returns.
type ValidationError = validation.Error

var slugRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$`)

// Service creates agencies and mappings, each change audited in its transaction.
type Service struct {
	db       *models.DB
	agencies *models.AgencyStore
	audit    *audit.Recorder
	now      func() time.Time
}

// NewService returns the agency service.
func NewService(db *models.DB, agencies *models.AgencyStore, rec *audit.Recorder, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, agencies: agencies, audit: rec, now: now}
}

// Create adds an agency.
func (s *Service) Create(ctx context.Context, actor audit.Actor, origin audit.Origin, slug, name string) (models.Agency, error) {
	slug = strings.TrimSpace(strings.ToLower(slug))
	name = strings.TrimSpace(name)
	fields := map[string]string{}
	if !slugRE.MatchString(slug) {
		fields["slug"] = "Use 1 to 48 lowercase letters, digits or hyphens, starting and ending with a letter or digit (e.g. demo-county)."
	}
	if name == "" || len(name) > 200 {
		fields["name"] = "Give the agency's name (at most 200 characters)."
	}
	if len(fields) > 0 {
		return models.Agency{}, &ValidationError{Fields: fields}
	}
	now := s.now().UTC()
	a := models.Agency{Slug: slug, Name: name, CreatedAt: now, UpdatedAt: now}
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		if err := s.agencies.Create(ctx, &a); err != nil {
			if errors.Is(err, models.ErrConflict) {
				return &ValidationError{Fields: map[string]string{"slug": "An agency with this slug already exists."}}
			}
			return err
		}
		return s.audit.Record(ctx, audit.Event{AgencyID: a.ID, Actor: actor, Action: audit.ActionAgencyCreate, TargetType: "agency",
			TargetID: strconv.FormatInt(a.ID, 10), TargetName: a.Slug, Outcome: audit.OutcomeSuccess, Origin: origin,
			Details: map[string]string{"name": a.Name}})
	})
	if err != nil {
		return models.Agency{}, fmt.Errorf("agencies: create %s: %w", slug, err)
	}
	return a, nil
}

// Map adds a group-to-role mapping to an agency.
func (s *Service) Map(ctx context.Context, actor audit.Actor, origin audit.Origin, agencyID int64, provider, group, role string) (models.RoleMapping, error) {
	provider = strings.TrimSpace(strings.ToLower(provider))
	group = strings.TrimSpace(group)
	role = strings.TrimSpace(strings.ToLower(role))
	fields := map[string]string{}
	if provider == "" || len(provider) > 32 {
		fields["provider"] = "Choose the sign-in provider the group comes from."
	}
	if group == "" || len(group) > 300 {
		fields["group"] = "Give the group value exactly as the provider sends it (for Google: domain:example.gov or email:person@example.gov)."
	}
	if !models.ValidRole(role) {
		fields["role"] = "Choose admin, reviewer or viewer."
	}
	if len(fields) > 0 {
		return models.RoleMapping{}, &ValidationError{Fields: fields}
	}
	m := models.RoleMapping{AgencyID: agencyID, Provider: provider, GroupValue: group, Role: role, CreatedAt: s.now().UTC()}
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		a, err := s.agencies.ByID(ctx, agencyID)
		if err != nil {
			return err
		}
		if err := s.agencies.AddMapping(ctx, &m); err != nil {
			if errors.Is(err, models.ErrConflict) {
				return &ValidationError{Fields: map[string]string{"group": "This group already has this role in the agency."}}
			}
			return err
		}
		return s.audit.Record(ctx, audit.Event{AgencyID: agencyID, Actor: actor, Action: audit.ActionMappingCreate, TargetType: "role_mapping",
			TargetID: strconv.FormatInt(m.ID, 10), TargetName: a.Slug, Outcome: audit.OutcomeSuccess, Origin: origin,
			Details: map[string]string{"provider": provider, "group": group, "role": role}})
	})
	if err != nil {
		return models.RoleMapping{}, fmt.Errorf("agencies: map: %w", err)
	}
	return m, nil
}

// Unmap removes a mapping from an agency.
func (s *Service) Unmap(ctx context.Context, actor audit.Actor, origin audit.Origin, agencyID, mappingID int64) error {
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		m, err := s.agencies.Mapping(ctx, agencyID, mappingID)
		if err != nil {
			return err
		}
		if err := s.agencies.DeleteMapping(ctx, agencyID, mappingID); err != nil {
			return err
		}
		return s.audit.Record(ctx, audit.Event{AgencyID: agencyID, Actor: actor, Action: audit.ActionMappingDelete, TargetType: "role_mapping",
			TargetID: strconv.FormatInt(m.ID, 10), Outcome: audit.OutcomeSuccess, Origin: origin,
			Details: map[string]string{"provider": m.Provider, "group": m.GroupValue, "role": m.Role}})
	})
	if err != nil {
		return fmt.Errorf("agencies: unmap: %w", err)
	}
	return nil
}

// List returns every agency.
func (s *Service) List(ctx context.Context) ([]models.Agency, error) { return s.agencies.List(ctx) }

// BySlug returns one agency.
func (s *Service) BySlug(ctx context.Context, slug string) (models.Agency, error) {
	return s.agencies.BySlug(ctx, slug)
}

// ByID returns one agency.
func (s *Service) ByID(ctx context.Context, id int64) (models.Agency, error) {
	return s.agencies.ByID(ctx, id)
}

// Mappings lists an agency's mappings.
func (s *Service) Mappings(ctx context.Context, agencyID int64) ([]models.RoleMapping, error) {
	return s.agencies.Mappings(ctx, agencyID)
}

// ByIDs returns the agencies with the given ids.
func (s *Service) ByIDs(ctx context.Context, ids []int64) ([]models.Agency, error) {
	return s.agencies.ByIDs(ctx, ids)
}
