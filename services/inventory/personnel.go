package inventory

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"keyconsole/models"
	"keyconsole/services/audit"
)

// Relations of a user to a credential in the personnel-change review.
const (
	RelCreated   = "created"
	RelRotated   = "rotated"
	RelRevealed  = "revealed"
	RelUploaded  = "uploaded"
	RelReachable = "reachable through the admin role"
)

// defaultLink is how a source without a Linker is matched: its type is the
// audit target type and the verb of each action names the relation.
func defaultLink(itemType string) Link {
	return Link{TargetType: itemType, Relations: map[string]string{
		itemType + ".create":     RelCreated,
		itemType + ".rotate":     RelRotated,
		itemType + ".regenerate": RelRotated,
		itemType + ".reveal":     RelRevealed,
		itemType + ".upload":     RelUploaded,
	}}
}

func (s *Service) link(src Source) Link {
	if l, ok := src.(Linker); ok {
		return l.AuditLink()
	}
	return defaultLink(src.Type())
}

// Touch is one relation of the user to a credential, from the audit log.
type Touch struct {
	Relation string
	Count    int64
	LastAt   time.Time
}

// Entry is one credential in a personnel-change review.
type Entry struct {
	Item
	Relations []string
	Touches   []Touch
	// Reachable is set when the user's role gave them access to it.
	Reachable bool
	// CanRotate says whether the console can rotate it itself.
	CanRotate bool
}

// Review is everything a user touched or could reach in one agency.
type Review struct {
	Member  models.AgencyMember
	Entries []Entry
	// OtherAgencies is how many other agencies the user holds a role in.
	OtherAgencies int
}

// Member returns a user of the agency; a user without a role in it is
// models.ErrNotFound.
func (s *Service) Member(ctx context.Context, agencyID, userID int64) (models.AgencyMember, error) {
	members, err := s.cfg.Users.Members(ctx, agencyID)
	if err != nil {
		return models.AgencyMember{}, fmt.Errorf("inventory: members: %w", err)
	}
	for _, m := range members {
		if m.ID == userID {
			return m, nil
		}
	}
	return models.AgencyMember{}, fmt.Errorf("inventory: member %d: %w", userID, models.ErrNotFound)
}

// Members lists the users holding a role in the agency.
func (s *Service) Members(ctx context.Context, agencyID int64) ([]models.AgencyMember, error) {
	m, err := s.cfg.Users.Members(ctx, agencyID)
	if err != nil {
		return nil, fmt.Errorf("inventory: members: %w", err)
	}
	return m, nil
}

// Review lists every credential of the agency the user created, rotated,
// revealed or uploaded (from the audit log: records whose actor is the user,
// matched to the inventory by target type and id, plus the creator recorded
// on the credential itself), and, when the user is an admin of the agency,
// every active credential, which their role let them reach. Reviewers and
// viewers reach no secret values.
func (s *Service) Review(ctx context.Context, agencyID, userID int64) (Review, error) {
	m, err := s.Member(ctx, agencyID, userID)
	if err != nil {
		return Review{}, err
	}
	rv := Review{Member: m}
	roles, err := s.cfg.Users.Roles(ctx, userID)
	if err != nil {
		return Review{}, fmt.Errorf("inventory: roles: %w", err)
	}
	for id := range roles {
		if id != agencyID {
			rv.OtherAgencies++
		}
	}
	links := map[string]Link{}
	var targetTypes []string
	for _, src := range s.sources {
		l := s.link(src)
		links[src.Type()] = l
		targetTypes = append(targetTypes, l.TargetType)
	}
	touches, err := s.cfg.Store.TouchesByUser(ctx, agencyID, userID, targetTypes)
	if err != nil {
		return Review{}, fmt.Errorf("inventory: review: %w", err)
	}
	type tk struct{ targetType, targetID string }
	byTarget := map[tk][]models.ActorTouch{}
	for _, t := range touches {
		byTarget[tk{t.TargetType, t.TargetID}] = append(byTarget[tk{t.TargetType, t.TargetID}], t)
	}
	items, err := s.Items(ctx, agencyID)
	if err != nil {
		return Review{}, err
	}
	for _, it := range items {
		l := links[it.Type]
		e := Entry{Item: it}
		if src := s.source(it.Type); src != nil {
			_, e.CanRotate = src.(Rotator)
		}
		rels := map[string]*Touch{}
		for _, t := range byTarget[tk{l.TargetType, it.AuditTargetID()}] {
			rel, ok := l.Relations[t.Action]
			if !ok {
				continue
			}
			if rels[rel] == nil {
				rels[rel] = &Touch{Relation: rel}
			}
			rels[rel].Count += t.Count
			if t.LastAt.After(rels[rel].LastAt) {
				rels[rel].LastAt = t.LastAt
			}
		}
		if it.CreatedByUserID == userID && rels[RelCreated] == nil && rels[RelUploaded] == nil {
			rels[RelCreated] = &Touch{Relation: RelCreated, Count: 1, LastAt: it.CreatedAt}
		}
		for _, t := range rels {
			e.Touches = append(e.Touches, *t)
			e.Relations = append(e.Relations, t.Relation)
		}
		sort.Strings(e.Relations)
		sort.Slice(e.Touches, func(i, j int) bool { return e.Touches[i].Relation < e.Touches[j].Relation })
		if m.Role == models.RoleAdmin && it.Active() && it.Type != TypeIdPSecret {
			e.Reachable = true
			e.Relations = append(e.Relations, RelReachable)
		}
		if len(e.Relations) > 0 {
			rv.Entries = append(rv.Entries, e)
		}
	}
	sort.SliceStable(rv.Entries, func(i, j int) bool {
		a, b := rv.Entries[i], rv.Entries[j]
		if a.Active() != b.Active() {
			return a.Active()
		}
		if len(a.Touches) != len(b.Touches) {
			return len(a.Touches) > len(b.Touches)
		}
		return a.Key() < b.Key()
	})
	return rv, nil
}

// PersonnelChange is the admin's plan for a departing or re-assigned user.
type PersonnelChange struct {
	AgencyID   int64
	AgencyName string
	Actor      audit.Actor
	ActorID    int64
	Origin     audit.Origin
	UserID     int64
	// Actions maps item keys to "rotate" or "revoke".
	Actions map[string]string
	// Deactivate disables the user in the console and ends their sessions.
	Deactivate bool
	Reason     string
}

// PersonnelResult is the outcome of a personnel change.
type PersonnelResult struct {
	Operation
	Member          models.AgencyMember
	Deactivated     bool
	SessionsEnded   int64
	DeactivateError string
}

// Refusals of a personnel change.
var (
	// ErrSelf means an admin tried to deactivate themself.
	ErrSelf = errors.New("inventory: you cannot deactivate yourself")
	// ErrOperator means the user is a platform operator.
	ErrOperator = errors.New("inventory: platform operators are deactivated by a platform operator")
	// ErrOtherAgencies means the user holds a role in another agency too.
	ErrOtherAgencies = errors.New("inventory: the user holds a role in another agency")
	// ErrNothingToDo means no action and no deactivation were chosen.
	ErrNothingToDo = errors.New("inventory: nothing was chosen")
)

// Personnel runs a personnel change as one linked, audited operation: a
// start record; the user's deactivation (users.disabled_at set, every open
// session ended at once) when asked; each rotation or revocation through the
// credential's feature followed by a record linking it; and an end record.
// Refusals (self, operator, other agencies, unknown keys) change nothing.
func (s *Service) Personnel(ctx context.Context, in PersonnelChange) (PersonnelResult, error) {
	m, err := s.Member(ctx, in.AgencyID, in.UserID)
	if err != nil {
		return PersonnelResult{}, err
	}
	res := PersonnelResult{Member: m}
	if in.Deactivate {
		switch {
		case in.UserID == in.ActorID:
			return res, ErrSelf
		case m.IsOperator:
			return res, ErrOperator
		}
		roles, err := s.cfg.Users.Roles(ctx, in.UserID)
		if err != nil {
			return res, fmt.Errorf("inventory: roles: %w", err)
		}
		for id := range roles {
			if id != in.AgencyID {
				return res, ErrOtherAgencies
			}
		}
	}
	keys := make([]string, 0, len(in.Actions))
	for k, a := range in.Actions {
		if a != "rotate" && a != "revoke" {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	items, err := s.Find(ctx, in.AgencyID, keys)
	if err != nil {
		return res, err
	}
	if len(items) == 0 && !in.Deactivate {
		return res, ErrNothingToDo
	}
	res.ID = NewOperationID()
	reason := in.Reason
	if reason == "" {
		reason = "Personnel change for " + m.Display()
	}
	subject := m.Display()
	uid := strconv.FormatInt(in.UserID, 10)
	startDetails := map[string]string{"user_id": uid, "user": subject, "items": strconv.Itoa(len(items)), "deactivate": strconv.FormatBool(in.Deactivate)}
	if err := s.cfg.Audit.Record(ctx, audit.Event{AgencyID: in.AgencyID, Actor: in.Actor, Action: audit.ActionPersonnelStart, TargetType: "user", TargetID: uid,
		TargetName: subject, Outcome: audit.OutcomeSuccess, Reason: reason, Origin: in.Origin, Details: withOp(res.ID, startDetails)}); err != nil {
		return res, fmt.Errorf("inventory: personnel: %w", err)
	}
	if in.Deactivate {
		n, err := s.deactivate(ctx, in, m, res.ID, reason)
		if err != nil {
			res.DeactivateError = failureReason(err)
			if rerr := s.cfg.Audit.Record(ctx, audit.Event{AgencyID: in.AgencyID, Actor: in.Actor, Action: audit.ActionUserDisable, TargetType: "user", TargetID: uid,
				TargetName: subject, Outcome: audit.OutcomeFailure, Reason: res.DeactivateError, Origin: in.Origin, Details: withOp(res.ID, nil)}); rerr != nil {
				return res, fmt.Errorf("inventory: personnel: %w", rerr)
			}
		} else {
			res.Deactivated, res.SessionsEnded = true, n
		}
	}
	for _, it := range items {
		r := s.act(audit.WithDetails(ctx, map[string]string{"operation": res.ID}), in.Actor, in.Origin, in.AgencyID, it, in.Actions[it.Key()], reason)
		res.Results = append(res.Results, r)
		action := audit.ActionPersonnelRevoke
		if r.Action == "rotate" {
			action = audit.ActionPersonnelRotate
		}
		if err := s.record(ctx, in.AgencyID, in.Actor, in.Origin, action, res.ID, &it, r.Outcome, r.Reason, map[string]string{"user_id": uid}); err != nil {
			return res, fmt.Errorf("inventory: personnel: %w", err)
		}
	}
	outcome := audit.OutcomeSuccess
	if res.Failed() > 0 || res.DeactivateError != "" {
		outcome = audit.OutcomeFailure
	}
	endDetails := map[string]string{"user_id": uid, "items": strconv.Itoa(len(items)), "failed": strconv.Itoa(res.Failed()),
		"deactivated": strconv.FormatBool(res.Deactivated), "sessions_ended": strconv.FormatInt(res.SessionsEnded, 10)}
	if err := s.cfg.Audit.Record(ctx, audit.Event{AgencyID: in.AgencyID, Actor: in.Actor, Action: audit.ActionPersonnelEnd, TargetType: "user", TargetID: uid,
		TargetName: subject, Outcome: outcome, Origin: in.Origin, Details: withOp(res.ID, endDetails)}); err != nil {
		return res, fmt.Errorf("inventory: personnel: %w", err)
	}
	return res, nil
}

// deactivate disables the user and ends their sessions in one transaction
// with its audit records.
func (s *Service) deactivate(ctx context.Context, in PersonnelChange, m models.AgencyMember, op, reason string) (int64, error) {
	var ended int64
	uid := strconv.FormatInt(in.UserID, 10)
	err := s.cfg.DB.Tx(ctx, func(ctx context.Context) error {
		u, err := s.cfg.Users.ByID(ctx, in.UserID)
		if err != nil {
			return err
		}
		now := s.now()
		already := u.DisabledAt != nil
		if !already {
			if err := s.cfg.Users.SetDisabled(ctx, u.ID, &now, now); err != nil {
				return err
			}
		}
		if ended, err = s.cfg.Sessions.RevokeUser(ctx, in.UserID, "user_disabled", now); err != nil {
			return err
		}
		if err := s.cfg.Audit.Record(ctx, audit.Event{AgencyID: in.AgencyID, Actor: in.Actor, Action: audit.ActionUserDisable, TargetType: "user", TargetID: uid,
			TargetName: m.Display(), Outcome: audit.OutcomeSuccess, Reason: reason, Origin: in.Origin,
			Details: withOp(op, map[string]string{"already_disabled": strconv.FormatBool(already)})}); err != nil {
			return err
		}
		return s.cfg.Audit.Record(ctx, audit.Event{AgencyID: in.AgencyID, Actor: in.Actor, Action: audit.ActionPersonnelSessionsEnd, TargetType: "user", TargetID: uid,
			TargetName: m.Display(), Outcome: audit.OutcomeSuccess, Origin: in.Origin,
			Details: withOp(op, map[string]string{"sessions_ended": strconv.FormatInt(ended, 10)})})
	})
	if err != nil {
		return 0, fmt.Errorf("inventory: deactivate user %d: %w", in.UserID, err)
	}
	return ended, nil
}

func withOp(op string, d map[string]string) map[string]string {
	out := map[string]string{"operation": op}
	for k, v := range d {
		out[k] = v
	}
	return out
}

// RelationsText joins an entry's relations for display.
func (e Entry) RelationsText() string { return strings.Join(e.Relations, ", ") }
