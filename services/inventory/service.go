package inventory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"keyconsole/models"
	"keyconsole/services/audit"
	"keyconsole/services/policy"
)

// Config are the dependencies of the inventory service.
type Config struct {
	DB       *models.DB
	Audit    *audit.Recorder
	Policies policy.Source
	Store    *models.PolicyStore
	Users    *models.UserStore
	Sessions *models.SessionStore
	Clock    func() time.Time
}

// Service gathers the credentials of every registered source and runs the
// hygiene actions over them: bulk revocation and the personnel-change
// workflow, each audited as one linked operation.
type Service struct {
	cfg     Config
	sources []Source
}

// NewService returns the inventory service with no sources yet.
func NewService(cfg Config) *Service {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Service{cfg: cfg}
}

// Add registers a feature's source. Call it while wiring, before serving.
func (s *Service) Add(src Source) { s.sources = append(s.sources, src) }

// Types lists the registered item types in registration order.
func (s *Service) Types() []string {
	out := make([]string, 0, len(s.sources))
	for _, src := range s.sources {
		out = append(out, src.Type())
	}
	return out
}

// Has reports whether a source of the type is registered.
func (s *Service) Has(itemType string) bool { return s.source(itemType) != nil }

func (s *Service) source(itemType string) Source {
	for _, src := range s.sources {
		if src.Type() == itemType {
			return src
		}
	}
	return nil
}

func (s *Service) now() time.Time { return s.cfg.Clock().UTC().Truncate(time.Microsecond) }

// Now is the service's clock, for pages that measure ages.
func (s *Service) Now() time.Time { return s.now() }

// Items returns every credential of the agency from every source.
func (s *Service) Items(ctx context.Context, agencyID int64) ([]Item, error) {
	var out []Item
	for _, src := range s.sources {
		items, err := src.List(ctx, agencyID)
		if err != nil {
			return nil, fmt.Errorf("inventory: list %s: %w", src.Type(), err)
		}
		out = append(out, items...)
	}
	return out, nil
}

// Report measures the agency's credentials against its policy now.
func (s *Service) Report(ctx context.Context, agencyID int64) (Report, []Item, error) {
	p, err := s.cfg.Policies.Policy(ctx, agencyID)
	if err != nil {
		return Report{}, nil, fmt.Errorf("inventory: policy: %w", err)
	}
	items, err := s.Items(ctx, agencyID)
	if err != nil {
		return Report{}, nil, err
	}
	return Evaluate(items, p, s.now()), items, nil
}

// ParseKey splits an item key "type:id".
func ParseKey(k string) (string, int64, bool) {
	t, ids, ok := strings.Cut(k, ":")
	if !ok || t == "" {
		return "", 0, false
	}
	id, err := strconv.ParseInt(ids, 10, 64)
	if err != nil || id <= 0 {
		return "", 0, false
	}
	return t, id, true
}

// Find returns the agency's items named by keys, in the order given, and
// fails with models.ErrNotFound if any key names no item of the agency.
func (s *Service) Find(ctx context.Context, agencyID int64, keys []string) ([]Item, error) {
	items, err := s.Items(ctx, agencyID)
	if err != nil {
		return nil, err
	}
	byKey := make(map[string]Item, len(items))
	for _, it := range items {
		byKey[it.Key()] = it
	}
	seen := map[string]bool{}
	var out []Item
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		it, ok := byKey[k]
		if !ok {
			return nil, fmt.Errorf("inventory: %s: %w", k, models.ErrNotFound)
		}
		out = append(out, it)
	}
	return out, nil
}

// NewOperationID returns a random id linking the records of one operation.
func NewOperationID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Errors of hygiene actions.
var (
	// ErrNotRevocable means the console cannot revoke this kind of item
	// (an IdP client secret lives in the IdP).
	ErrNotRevocable = errors.New("inventory: this credential cannot be revoked from the console")
	// ErrInactive means the credential is already revoked or expired.
	ErrInactive = errors.New("inventory: the credential is no longer active")
)

// ItemResult is what happened to one item in an operation.
type ItemResult struct {
	Item     Item
	Action   string // "rotate" or "revoke"
	Outcome  string // audit.OutcomeSuccess or audit.OutcomeFailure
	Reason   string
	Rotation *Rotation
}

// failureReason describes a failed action without internal error text.
func failureReason(err error) string {
	switch {
	case errors.Is(err, models.ErrNotFound):
		return "not found"
	case errors.Is(err, ErrNotRevocable), errors.Is(err, ErrNotRotatable):
		return "not possible from the console"
	case errors.Is(err, ErrInactive):
		return "already revoked or expired"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "interrupted"
	}
	return "failed"
}

// act runs one action on one item through its source.
func (s *Service) act(ctx context.Context, actor audit.Actor, origin audit.Origin, agencyID int64, it Item, action, reason string) ItemResult {
	res := ItemResult{Item: it, Action: action, Outcome: audit.OutcomeSuccess}
	src := s.source(it.Type)
	var err error
	switch {
	case src == nil || it.Type == TypeIdPSecret:
		err = ErrNotRevocable
	case !it.Active():
		err = ErrInactive
	case action == "rotate":
		rot, ok := src.(Rotator)
		if !ok {
			err = ErrNotRotatable
			break
		}
		var r Rotation
		if r, err = rot.Rotate(ctx, actor, origin, agencyID, it.ID, reason); err == nil {
			res.Rotation = &r
		}
	default:
		res.Action = "revoke"
		err = src.Revoke(ctx, actor, origin, agencyID, it.ID, reason)
	}
	if err != nil {
		res.Outcome, res.Reason = audit.OutcomeFailure, failureReason(err)
	}
	return res
}

func (s *Service) record(ctx context.Context, agencyID int64, actor audit.Actor, origin audit.Origin, action, op string, it *Item, outcome, reason string, extra map[string]string) error {
	d := map[string]string{"operation": op}
	for k, v := range extra {
		d[k] = v
	}
	ev := audit.Event{AgencyID: agencyID, Actor: actor, Action: action, Outcome: outcome, Reason: reason, Origin: origin, Details: d,
		TargetType: "operation", TargetID: op}
	if it != nil {
		ev.TargetType, ev.TargetID, ev.TargetName = it.Type, it.AuditTargetID(), it.Name
		d["item"] = it.Key()
	}
	return s.cfg.Audit.Record(ctx, ev)
}

// BulkRevoke is an admin's revocation of several credentials at once.
type BulkRevoke struct {
	AgencyID int64
	Actor    audit.Actor
	Origin   audit.Origin
	Keys     []string
	Reason   string
}

// Operation is the outcome of a linked operation.
type Operation struct {
	ID      string
	Results []ItemResult
}

// Failed counts the items whose action failed.
func (o Operation) Failed() int {
	n := 0
	for _, r := range o.Results {
		if r.Outcome != audit.OutcomeSuccess {
			n++
		}
	}
	return n
}

// BulkRevoke revokes the named credentials of the agency, each through its
// feature (which records its own revocation), and links them in one
// audited operation: a start record, one record per item and an end record,
// all carrying the operation id. A key naming no item of the agency fails
// the whole request with models.ErrNotFound before anything changes.
func (s *Service) BulkRevoke(ctx context.Context, in BulkRevoke) (Operation, error) {
	items, err := s.Find(ctx, in.AgencyID, in.Keys)
	if err != nil {
		return Operation{}, err
	}
	if len(items) == 0 {
		return Operation{}, fmt.Errorf("inventory: bulk revoke: %w", models.ErrNotFound)
	}
	op := Operation{ID: NewOperationID()}
	reason := in.Reason
	if reason == "" {
		reason = "Bulk revocation from the hygiene review"
	}
	if err := s.record(ctx, in.AgencyID, in.Actor, in.Origin, audit.ActionHygieneRevokeStart, op.ID, nil, audit.OutcomeSuccess, reason,
		map[string]string{"items": strconv.Itoa(len(items))}); err != nil {
		return Operation{}, fmt.Errorf("inventory: bulk revoke: %w", err)
	}
	for _, it := range items {
		r := s.act(audit.WithDetails(ctx, map[string]string{"operation": op.ID}), in.Actor, in.Origin, in.AgencyID, it, "revoke", reason)
		op.Results = append(op.Results, r)
		if err := s.record(ctx, in.AgencyID, in.Actor, in.Origin, audit.ActionHygieneRevoke, op.ID, &it, r.Outcome, r.Reason, nil); err != nil {
			return op, fmt.Errorf("inventory: bulk revoke: %w", err)
		}
	}
	outcome := audit.OutcomeSuccess
	if op.Failed() > 0 {
		outcome = audit.OutcomeFailure
	}
	if err := s.record(ctx, in.AgencyID, in.Actor, in.Origin, audit.ActionHygieneRevokeEnd, op.ID, nil, outcome, "",
		map[string]string{"items": strconv.Itoa(len(items)), "failed": strconv.Itoa(op.Failed())}); err != nil {
		return op, fmt.Errorf("inventory: bulk revoke: %w", err)
	}
	return op, nil
}

// OperationRecord is one audit record of a linked operation.
type OperationRecord struct {
	When       time.Time
	Actor      string
	Action     string
	TargetType string
	TargetID   string
	TargetName string
	Outcome    string
	Reason     string
	Details    map[string]string
}

// OperationLog returns the audit records of one operation of the agency,
// oldest first; models.ErrNotFound when there are none.
func (s *Service) OperationLog(ctx context.Context, agencyID int64, op string) ([]OperationRecord, error) {
	for _, c := range op {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return nil, fmt.Errorf("inventory: operation: %w", models.ErrNotFound)
		}
	}
	evs, err := s.cfg.Store.OperationEvents(ctx, agencyID, op)
	if err != nil {
		return nil, fmt.Errorf("inventory: operation: %w", err)
	}
	out := make([]OperationRecord, 0, len(evs))
	for _, e := range evs {
		d := map[string]string{}
		for _, kv := range audit.DecodeDetails(e.Details) {
			d[kv[0]] = kv[1]
		}
		if d["operation"] != op {
			continue
		}
		name := e.ActorName
		if name == "" {
			name = e.ActorID
		}
		out = append(out, OperationRecord{When: e.OccurredAt, Actor: name, Action: e.Action, TargetType: e.TargetType, TargetID: e.TargetID,
			TargetName: e.TargetName, Outcome: e.Outcome, Reason: e.Reason, Details: d})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("inventory: operation: %w", models.ErrNotFound)
	}
	return out, nil
}
