package inventory

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"keyconsole/models"
	"keyconsole/services/audit"
)

// ErrNotDisabled means the user to re-enable is not deactivated.
var ErrNotDisabled = errors.New("inventory: the user is not deactivated")

// ReenableChange lifts a user's deactivation.
type ReenableChange struct {
	// AgencyID is the acting admin's agency; models.PlatformAgencyID when a
	// platform operator acts from the operator pages.
	AgencyID int64
	Actor    audit.Actor
	ActorID  int64
	Origin   audit.Origin
	UserID   int64
	Reason   string
}

// ReenableCheck says whether an agency's admin may re-enable the user: the
// same people they may deactivate (a member of their agency only, not a
// platform operator, not themself). Anyone else is re-enabled by a
// platform operator. A user without a role in the agency is
// models.ErrNotFound.
func (s *Service) ReenableCheck(ctx context.Context, agencyID, actorID int64, u models.User) error {
	roles, err := s.cfg.Users.Roles(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("inventory: roles: %w", err)
	}
	if roles[agencyID] == "" {
		return fmt.Errorf("inventory: member %d: %w", u.ID, models.ErrNotFound)
	}
	switch {
	case u.ID == actorID:
		return ErrSelf
	case u.IsOperator:
		return ErrOperator
	}
	for id := range roles {
		if id != agencyID {
			return ErrOtherAgencies
		}
	}
	return nil
}

// Disabled lists every deactivated user, most recently deactivated first,
// with the agencies they hold a role in, for the platform operator.
func (s *Service) Disabled(ctx context.Context) ([]DisabledUser, error) {
	users, err := s.cfg.Users.Disabled(ctx)
	if err != nil {
		return nil, fmt.Errorf("inventory: disabled users: %w", err)
	}
	out := make([]DisabledUser, 0, len(users))
	for _, u := range users {
		roles, err := s.cfg.Users.Roles(ctx, u.ID)
		if err != nil {
			return nil, fmt.Errorf("inventory: roles: %w", err)
		}
		out = append(out, DisabledUser{User: u, Roles: roles})
	}
	return out, nil
}

// DisabledUser is a deactivated user with their roles.
type DisabledUser struct {
	models.User
	Roles map[int64]string
}

// Reenable lets a deactivated user sign in again, with the roles their
// groups give them then. An agency admin (in.AgencyID) is held to
// ReenableCheck; a platform operator (models.PlatformAgencyID) may
// re-enable anyone. The user's paused sign-ins are cleared, and the change
// is audited in the acting agency's chain, or for an operator in the
// platform chain and in every agency the user holds a role in.
func (s *Service) Reenable(ctx context.Context, in ReenableChange) (models.User, error) {
	u, err := s.cfg.Users.ByID(ctx, in.UserID)
	if err != nil {
		return models.User{}, fmt.Errorf("inventory: re-enable: %w", err)
	}
	chains := []int64{in.AgencyID}
	if in.AgencyID != models.PlatformAgencyID {
		if err := s.ReenableCheck(ctx, in.AgencyID, in.ActorID, u); err != nil {
			return u, err
		}
	} else {
		roles, err := s.cfg.Users.Roles(ctx, u.ID)
		if err != nil {
			return u, fmt.Errorf("inventory: roles: %w", err)
		}
		for id := range roles {
			chains = append(chains, id)
		}
		sort.Slice(chains, func(i, j int) bool { return chains[i] < chains[j] })
	}
	err = s.cfg.DB.Tx(ctx, func(ctx context.Context) error {
		cur, err := s.cfg.Users.ByID(ctx, in.UserID)
		if err != nil {
			return err
		}
		if !cur.Disabled() {
			return ErrNotDisabled
		}
		since := cur.DisabledAt.UTC().Format(time.RFC3339)
		now := s.now()
		if err := s.cfg.Users.SetDisabled(ctx, cur.ID, nil, now); err != nil {
			return err
		}
		// Sign-ins refused while deactivated must not keep the account paused.
		if err := models.NewSignInFailureStore(s.cfg.DB).Clear(ctx, cur.Provider, cur.Subject); err != nil {
			return err
		}
		by := "agency_admin"
		if in.AgencyID == models.PlatformAgencyID {
			by = "platform_operator"
		}
		for _, agencyID := range chains {
			if err := s.cfg.Audit.Record(ctx, audit.Event{AgencyID: agencyID, Actor: in.Actor, Action: audit.ActionUserEnable, TargetType: "user",
				TargetID: strconv.FormatInt(cur.ID, 10), TargetName: cur.Display(), Outcome: audit.OutcomeSuccess, Reason: in.Reason, Origin: in.Origin,
				Details: map[string]string{"disabled_since": since, "by": by}}); err != nil {
				return err
			}
		}
		u = cur
		return nil
	})
	if errors.Is(err, ErrNotDisabled) {
		return u, err
	}
	if err != nil {
		return u, fmt.Errorf("inventory: re-enable user %d: %w", in.UserID, err)
	}
	return u, nil
}
