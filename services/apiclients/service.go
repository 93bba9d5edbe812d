// Package apiclients manages an agency's API credentials (OAuth 2.0 clients
// of the client-credentials grant) and serves the token endpoint that
// accepts them: creation, regeneration and revocation with their audit
// records, the keyed hashing of secrets under a KMS-sealed pepper, client
// authentication, the signing keys of access tokens and their rotation, and
// the aggregated recording of last use and refused requests.
//
// A client secret exists in plain text only in the response that shows it
// once: the database holds HMAC-SHA256(pepper, secret), and no log line,
// error or audit record ever carries it.
package apiclients

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"keyconsole/kms"
	"keyconsole/models"
	"keyconsole/services/audit"
	"keyconsole/services/guard"
	"keyconsole/services/oauth"
	"keyconsole/services/policy"
	"keyconsole/services/secrets"
	"keyconsole/services/validation"
)

// Platform secrets this package keeps through the secret service.
const (
	// PepperRecordType is the sealed-secret record type of the pepper.
	PepperRecordType = "api_secret_pepper"
	// PepperID is the record id of the current pepper; credentials store the
	// id of the pepper their hash was made with.
	PepperID = "v1"
	// pepperLen is the pepper length in bytes (256 bits).
	pepperLen = 32
)

// Credential statuses.
const (
	StatusActive  = "active"
	StatusRevoked = "revoked"
	StatusExpired = "expired"
)

// Field limits of the create form.
const (
	MaxNameLen        = 80
	MaxDescriptionLen = 500
	// MaxExpiry is how far in the future an expiry date may lie.
	MaxExpiry = 5 * 366 * 24 * time.Hour
)

// Errors of the credential service.
var (
	// ErrRevoked refuses a change to a revoked credential.
	ErrRevoked = errors.New("apiclients: the credential is revoked")
	// ErrExpired refuses regenerating a credential past its expiry date.
	ErrExpired = errors.New("apiclients: the credential has expired")
	// ErrStale refuses a regeneration confirmed for a secret that has been
	// replaced since (a resubmitted or concurrent form).
	ErrStale = errors.New("apiclients: the secret was already regenerated")
	// ErrNotReady means the pepper or the signing keys are not loaded yet
	// (KMS unavailable at start); the token endpoint answers 503.
	ErrNotReady = errors.New("apiclients: key material not loaded")
)

// AlreadySubmittedError refuses a create form submitted a second time: the
// credential it created is named, its secret is never shown again.
type AlreadySubmittedError struct {
	Credential models.APICredential
}

func (e *AlreadySubmittedError) Error() string {
	return "apiclients: this form was already submitted"
}

// ValidationError is a refused form: field name to message; it is the one
// validation error every service returns.
type ValidationError = validation.Error

// SecretStore keeps platform secrets sealed (the secrets service).
type SecretStore interface {
	Put(ctx context.Context, ref secrets.Ref, plaintext []byte) error
	Get(ctx context.Context, ref secrets.Ref) ([]byte, error)
	Delete(ctx context.Context, ref secrets.Ref) error
}

// Config holds the dependencies of a Service.
type Config struct {
	DB       *models.DB
	Store    *models.APIClientStore
	Agencies *models.AgencyStore
	Audit    *audit.Recorder
	Secrets  SecretStore
	Policies policy.Source
	// Clock returns the current time; time.Now when nil.
	Clock func() time.Time
	// Logger receives background errors; discarded when nil.
	Logger *slog.Logger
}

// Service manages API credentials and authenticates their clients. It is
// safe for concurrent use.
type Service struct {
	db       *models.DB
	store    *models.APIClientStore
	agencies *models.AgencyStore
	audit    *audit.Recorder
	secrets  SecretStore
	policies policy.Source
	now      func() time.Time
	log      *slog.Logger

	hasher atomic.Pointer[oauth.Hasher]
	loadMu sync.Mutex
	// dummyHash is verified against for unknown clients, so an unknown
	// client_id costs the same HMAC as a known one.
	dummyHash []byte
	// authStep, when set (by tests), is called at each costly step of
	// Authenticate: "lookup" and "verify".
	authStep func(step string)
}

// NewService returns the credential service.
func NewService(cfg Config) *Service {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Policies == nil {
		cfg.Policies = policy.DefaultSource{}
	}
	dummy := make([]byte, 32)
	_, _ = rand.Read(dummy)
	return &Service{
		db: cfg.DB, store: cfg.Store, agencies: cfg.Agencies, audit: cfg.Audit, secrets: cfg.Secrets,
		policies: cfg.Policies, now: cfg.Clock, log: cfg.Logger, dummyHash: dummy,
	}
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

func systemActor() audit.Actor {
	return audit.Actor{Type: audit.ActorSystem, ID: "keyconsole", Name: "keyconsole"}
}

// Ready reports whether the pepper is loaded, so clients can authenticate.
func (s *Service) Ready() bool { return s.hasher.Load() != nil }

// LoadPepper loads the API-secret pepper from the secret service, creating
// it (256 random bits, sealed through KMS, audited) on first use. Replicas
// that start together agree on one pepper: creation runs under the platform
// key lock and re-reads first. KMS being unavailable is returned as an
// error wrapping kms.ErrUnavailable; the caller retries.
func (s *Service) LoadPepper(ctx context.Context) error {
	if s.Ready() {
		return nil
	}
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	if s.Ready() {
		return nil
	}
	ref := secrets.Ref{AgencyID: models.PlatformAgencyID, RecordType: PepperRecordType, RecordID: PepperID}
	pepper, err := s.secrets.Get(ctx, ref)
	if errors.Is(err, models.ErrNotFound) {
		err = s.db.Tx(ctx, func(ctx context.Context) error {
			if err := s.store.LockPlatformKeys(ctx); err != nil {
				return err
			}
			p, err := s.secrets.Get(ctx, ref)
			if err == nil {
				pepper = p
				return nil
			}
			if !errors.Is(err, models.ErrNotFound) {
				return err
			}
			p = make([]byte, pepperLen)
			if _, err := rand.Read(p); err != nil {
				return err
			}
			if err := s.secrets.Put(ctx, ref, p); err != nil {
				return err
			}
			pepper = p
			return s.audit.Record(ctx, audit.Event{
				AgencyID: models.PlatformAgencyID, Actor: systemActor(), Action: audit.ActionAPISecretPepperCreate,
				TargetType: audit.TargetPlatformSecret, TargetID: PepperRecordType + "/" + PepperID,
				Outcome: audit.OutcomeSuccess,
			})
		})
	}
	if err != nil {
		return fmt.Errorf("apiclients: load pepper: %w", err)
	}
	h, err := oauth.NewHasher(pepper)
	clear(pepper)
	if err != nil {
		return fmt.Errorf("apiclients: load pepper: %w", err)
	}
	s.hasher.Store(h)
	return nil
}

// CheckPepper reports whether this replica can authenticate clients now:
// the pepper is loaded, and the stored pepper still opens through KMS and
// is the one loaded. /readyz calls it (through a short cache): a replica
// that cannot open the pepper, say with the wrong master key, must not be
// sent token requests it can only answer with 503.
func (s *Service) CheckPepper(ctx context.Context) error {
	h := s.hasher.Load()
	if h == nil {
		return ErrNotReady
	}
	pepper, err := s.secrets.Get(ctx, secrets.Ref{AgencyID: models.PlatformAgencyID, RecordType: PepperRecordType, RecordID: PepperID})
	if err != nil {
		return fmt.Errorf("apiclients: open pepper: %w", err)
	}
	stored, err := oauth.NewHasher(pepper)
	clear(pepper)
	if err != nil {
		return fmt.Errorf("apiclients: open pepper: %w", err)
	}
	const probe = "keyconsole readiness probe"
	if !h.Verify(probe, stored.Hash(probe)) {
		return errors.New("apiclients: the stored pepper is not the one loaded")
	}
	return nil
}

// hasherForPage returns the hasher, loading the pepper if needed (a page
// action, at human rate, may try KMS again).
func (s *Service) hasherForPage(ctx context.Context) (*oauth.Hasher, error) {
	if h := s.hasher.Load(); h != nil {
		return h, nil
	}
	if err := s.LoadPepper(ctx); err != nil {
		return nil, err
	}
	return s.hasher.Load(), nil
}

// Credential is a stored credential as pages show it: its status and its
// age against the agency's rotation policy at the time it was read.
type Credential struct {
	models.APICredential
	// Status is StatusActive, StatusRevoked or StatusExpired.
	Status string
	// Policy is the credential measured against the agency's policy.
	Policy policy.Evaluation
}

// StatusAt returns the status of c at now: revoked wins over expired.
func StatusAt(c models.APICredential, now time.Time) string {
	switch {
	case c.Revoked():
		return StatusRevoked
	case c.Expired(now):
		return StatusExpired
	}
	return StatusActive
}

func (s *Service) view(c models.APICredential, p policy.Policy, now time.Time) Credential {
	out := Credential{APICredential: c}
	measure(&out, p, now)
	return out
}

// measure sets the status and the policy evaluation of a credential.
func measure(c *Credential, p policy.Policy, now time.Time) {
	rotated := c.CreatedAt
	if c.RotatedAt != nil {
		rotated = *c.RotatedAt
	}
	c.Status = StatusAt(c.APICredential, now)
	c.Policy = p.Evaluate(policy.TypeAPICredential, c.CreatedAt, rotated, c.LastUsedAt, now)
}

// List returns every credential of an agency with its status and policy
// evaluation, by environment then name.
func (s *Service) List(ctx context.Context, agencyID int64) ([]Credential, error) {
	rows, err := s.store.List(ctx, agencyID)
	if err != nil {
		return nil, fmt.Errorf("apiclients: list: %w", err)
	}
	p, err := s.policies.Policy(ctx, agencyID)
	if err != nil {
		return nil, fmt.Errorf("apiclients: list: policy: %w", err)
	}
	now := s.clock()
	out := make([]Credential, 0, len(rows))
	for _, r := range rows {
		out = append(out, s.view(r, p, now))
	}
	return out, nil
}

// Policy returns the agency's policy, which credentials are measured
// against.
func (s *Service) Policy(ctx context.Context, agencyID int64) (policy.Policy, error) {
	p, err := s.policies.Policy(ctx, agencyID)
	if err != nil {
		return policy.Policy{}, fmt.Errorf("apiclients: policy: %w", err)
	}
	return p, nil
}

// Page returns up to limit credentials of an agency in one environment,
// newest first, older than beforeID when it is positive, and whether older
// ones follow, measured against p, the agency's policy as Policy returns
// it (so a page of several tables reads the policy once). The credentials
// carry what a list shows (models.CredentialListRow); the secret's hash,
// its version and the other fields stay zero.
func (s *Service) Page(ctx context.Context, agencyID int64, p policy.Policy, environment string, beforeID int64, limit int) ([]Credential, bool, error) {
	rows, err := s.store.Page(ctx, agencyID, environment, beforeID, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("apiclients: page: %w", err)
	}
	more := len(rows) > limit
	rows = rows[:min(len(rows), limit)]
	now := s.clock()
	out := make([]Credential, len(rows))
	for i, r := range rows {
		out[i].APICredential = models.APICredential{ID: r.ID, AgencyID: r.AgencyID, Environment: r.Environment, Name: r.Name,
			ClientID: r.ClientID, CreatedByName: r.CreatedByName, CreatedAt: r.CreatedAt, RotatedAt: r.RotatedAt,
			ExpiresAt: r.ExpiresAt, RevokedAt: r.RevokedAt, LastUsedAt: r.LastUsedAt}
		measure(&out[i], p, now)
	}
	return out, more, nil
}

// Get returns one credential of an agency; another agency's id is
// models.ErrNotFound exactly like a missing one.
func (s *Service) Get(ctx context.Context, agencyID, id int64) (Credential, error) {
	c, err := s.store.Get(ctx, agencyID, id)
	if err != nil {
		return Credential{}, fmt.Errorf("apiclients: get: %w", err)
	}
	p, err := s.policies.Policy(ctx, agencyID)
	if err != nil {
		return Credential{}, fmt.Errorf("apiclients: get: policy: %w", err)
	}
	return s.view(c, p, s.clock()), nil
}

// History returns up to limit audit events about one credential of an
// agency, newest first.
func (s *Service) History(ctx context.Context, agencyID, id int64, limit int) ([]models.AuditEvent, error) {
	c, err := s.store.Get(ctx, agencyID, id)
	if err != nil {
		return nil, fmt.Errorf("apiclients: history: %w", err)
	}
	evs, err := s.store.History(ctx, agencyID, audit.TargetAPICredential, c.ClientID, 0, limit)
	if err != nil {
		return nil, fmt.Errorf("apiclients: history: %w", err)
	}
	return evs, nil
}

// CreateInput is the create form as submitted.
type CreateInput struct {
	Name        string
	Description string
	Environment string
	// Expires is an optional date, YYYY-MM-DD: the credential stops working
	// at 00:00 UTC that day.
	Expires string
	// Nonce is the one-time token of the form; a second submission of the
	// same form is refused with AlreadySubmittedError.
	Nonce string
}

// NewNonce returns a one-time token for a create form.
func NewNonce() string { return rand.Text() }

func validNonce(n string) bool {
	if len(n) < 16 || len(n) > 64 {
		return false
	}
	for _, r := range n {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// validText reports whether s is valid UTF-8 without control characters
// (newlines and tabs allowed when multiline).
func validText(s string, multiline bool) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if multiline && (r == '\n' || r == '\r' || r == '\t') {
			continue
		}
		if unicode.IsControl(r) || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// validate checks a create form and returns the normalised input and the
// expiry time.
func (in CreateInput) validate(now time.Time) (CreateInput, *time.Time, *ValidationError) {
	errs := map[string]string{}
	in.Name = strings.TrimSpace(in.Name)
	in.Description = strings.TrimSpace(in.Description)
	in.Expires = strings.TrimSpace(in.Expires)
	switch {
	case in.Name == "":
		errs["name"] = "Enter a name for the credential."
	case utf8.RuneCountInString(in.Name) > MaxNameLen:
		errs["name"] = fmt.Sprintf("The name can be at most %d characters.", MaxNameLen)
	case !validText(in.Name, false):
		errs["name"] = "The name cannot contain control characters."
	}
	switch {
	case utf8.RuneCountInString(in.Description) > MaxDescriptionLen:
		errs["description"] = fmt.Sprintf("The description can be at most %d characters.", MaxDescriptionLen)
	case !validText(in.Description, true):
		errs["description"] = "The description cannot contain control characters."
	}
	if !oauth.ValidEnvironment(in.Environment) {
		errs["environment"] = "Choose staging or production."
	}
	var expires *time.Time
	if in.Expires != "" {
		d, err := time.Parse("2006-01-02", in.Expires)
		switch {
		case err != nil:
			errs["expires"] = "Enter the expiry date as YYYY-MM-DD."
		case !d.After(now):
			errs["expires"] = "The expiry date must be in the future."
		case d.Sub(now) > MaxExpiry:
			errs["expires"] = "The expiry date can be at most five years away."
		default:
			d = d.UTC()
			expires = &d
		}
	}
	if !validNonce(in.Nonce) {
		errs["form"] = "This form has expired. Review the values and submit it again."
	}
	if len(errs) > 0 {
		return in, nil, &ValidationError{Fields: errs}
	}
	return in, expires, nil
}

// Create makes a new credential in an agency and returns it with its
// secret, which the caller shows once and then forgets. Invalid input is a
// *ValidationError and a resubmitted form an *AlreadySubmittedError;
// nothing is written in either case.
func (s *Service) Create(ctx context.Context, actor audit.Actor, origin audit.Origin, agencyID int64, in CreateInput) (models.APICredential, oauth.ClientSecret, error) {
	now := s.clock()
	in, expires, verr := in.validate(now)
	if verr != nil {
		return models.APICredential{}, oauth.ClientSecret{}, verr
	}
	if prev, err := s.store.ByNonce(ctx, agencyID, in.Nonce); err == nil {
		return models.APICredential{}, oauth.ClientSecret{}, &AlreadySubmittedError{Credential: prev}
	} else if !errors.Is(err, models.ErrNotFound) {
		return models.APICredential{}, oauth.ClientSecret{}, fmt.Errorf("apiclients: create: %w", err)
	}
	h, err := s.hasherForPage(ctx)
	if err != nil {
		err = s.auditKMSRefusal(ctx, actor, origin, agencyID, audit.ActionAPICredentialCreate, "", in.Name, in.Environment, err)
		return models.APICredential{}, oauth.ClientSecret{}, fmt.Errorf("apiclients: create: %w", err)
	}
	clientID, err := oauth.GenerateClientID(in.Environment)
	if err != nil {
		return models.APICredential{}, oauth.ClientSecret{}, fmt.Errorf("apiclients: create: %w", err)
	}
	secret, err := oauth.GenerateClientSecret(in.Environment)
	if err != nil {
		return models.APICredential{}, oauth.ClientSecret{}, fmt.Errorf("apiclients: create: %w", err)
	}
	nonce := in.Nonce
	c := models.APICredential{
		AgencyID: agencyID, Name: in.Name, Description: in.Description, Environment: in.Environment,
		ClientID: clientID, SecretHash: h.Hash(secret.Reveal()), PepperID: PepperID, SecretVersion: 1,
		CreateNonce: &nonce, CreatedByName: actor.Name, CreatedAt: now, ExpiresAt: expires, UpdatedAt: now,
	}
	if actor.Type == audit.ActorUser {
		if uid, err := strconv.ParseInt(actor.ID, 10, 64); err == nil {
			c.CreatedByID = &uid
		}
	}
	conflict := false
	err = s.db.Tx(ctx, func(ctx context.Context) error {
		if prev, err := s.store.ByNonce(ctx, agencyID, nonce); err == nil {
			return &AlreadySubmittedError{Credential: prev}
		}
		if err := s.store.Create(ctx, &c); err != nil {
			if errors.Is(err, models.ErrConflict) {
				conflict = true
			}
			return err
		}
		details := map[string]string{"environment": c.Environment}
		if expires != nil {
			details["expires_at"] = expires.Format(time.RFC3339)
		}
		return s.audit.Record(ctx, audit.Event{
			AgencyID: agencyID, Actor: actor, Action: audit.ActionAPICredentialCreate,
			TargetType: audit.TargetAPICredential, TargetID: c.ClientID, TargetName: c.Name,
			Outcome: audit.OutcomeSuccess, Origin: origin, Details: details,
		})
	})
	if conflict {
		// The same form submitted twice at once: the other submission
		// committed between the nonce check and the insert. Read again
		// (outside the failed transaction) to tell that from a taken name.
		prev, perr := s.store.ByNonce(ctx, agencyID, nonce)
		switch {
		case perr == nil:
			return models.APICredential{}, oauth.ClientSecret{}, &AlreadySubmittedError{Credential: prev}
		case !errors.Is(perr, models.ErrNotFound):
			return models.APICredential{}, oauth.ClientSecret{}, fmt.Errorf("apiclients: create: %w", perr)
		}
		return models.APICredential{}, oauth.ClientSecret{}, &ValidationError{Fields: map[string]string{
			"name": "A credential with this name is already active in " + in.Environment + ". Choose another name.",
		}}
	}
	if err != nil {
		var ve *ValidationError
		var ae *AlreadySubmittedError
		if errors.As(err, &ve) || errors.As(err, &ae) {
			return models.APICredential{}, oauth.ClientSecret{}, err
		}
		return models.APICredential{}, oauth.ClientSecret{}, fmt.Errorf("apiclients: create: %w", err)
	}
	return c, secret, nil
}

// RegenerateInput is the typed confirmation of a regeneration.
type RegenerateInput struct {
	// ConfirmName must equal the credential's name.
	ConfirmName string
	// Version is the secret version the confirmation page was shown for.
	Version int64
}

// Regenerate replaces the secret of a live credential and returns the new
// one, which the caller shows once. The old secret stops working at once:
// the token endpoint reads the hash from the database on every request.
// A wrong confirmation is a *ValidationError; a revoked or expired
// credential is ErrRevoked or ErrExpired; a confirmation for a secret
// already replaced (a resubmitted form, or a concurrent regeneration that
// won) is ErrStale. Nothing changes in any of these cases; the refusals of
// a well-formed attempt are audited, since every attempt at a sensitive
// action is.
func (s *Service) Regenerate(ctx context.Context, actor audit.Actor, origin audit.Origin, agencyID, id int64, in RegenerateInput) (models.APICredential, oauth.ClientSecret, error) {
	cur, err := s.store.Get(ctx, agencyID, id)
	if err != nil {
		return models.APICredential{}, oauth.ClientSecret{}, fmt.Errorf("apiclients: regenerate: %w", err)
	}
	now := s.clock()
	switch {
	case cur.Revoked():
		return models.APICredential{}, oauth.ClientSecret{}, s.refuseRegenerate(ctx, actor, origin, cur, ErrRevoked, "revoked")
	case cur.Expired(now):
		return models.APICredential{}, oauth.ClientSecret{}, s.refuseRegenerate(ctx, actor, origin, cur, ErrExpired, "expired")
	case in.Version != cur.SecretVersion:
		return models.APICredential{}, oauth.ClientSecret{}, s.refuseRegenerate(ctx, actor, origin, cur, ErrStale, "stale")
	case strings.TrimSpace(in.ConfirmName) != cur.Name:
		return models.APICredential{}, oauth.ClientSecret{}, &ValidationError{Fields: map[string]string{
			"confirm_name": "Type the credential's name exactly as shown to confirm.",
		}}
	}
	h, err := s.hasherForPage(ctx)
	if err != nil {
		err = s.auditKMSRefusal(ctx, actor, origin, agencyID, audit.ActionAPICredentialRegenerate, cur.ClientID, cur.Name, cur.Environment, err)
		return models.APICredential{}, oauth.ClientSecret{}, fmt.Errorf("apiclients: regenerate: %w", err)
	}
	secret, err := oauth.GenerateClientSecret(cur.Environment)
	if err != nil {
		return models.APICredential{}, oauth.ClientSecret{}, fmt.Errorf("apiclients: regenerate: %w", err)
	}
	var out models.APICredential
	err = s.db.Tx(ctx, func(ctx context.Context) error {
		ok, err := s.store.ReplaceSecret(ctx, agencyID, id, in.Version, h.Hash(secret.Reveal()), PepperID, actor.Name, now)
		if err != nil {
			return err
		}
		if !ok {
			return ErrStale
		}
		if out, err = s.store.Get(ctx, agencyID, id); err != nil {
			return err
		}
		return s.audit.Record(ctx, audit.Event{
			AgencyID: agencyID, Actor: actor, Action: audit.ActionAPICredentialRegenerate,
			TargetType: audit.TargetAPICredential, TargetID: out.ClientID, TargetName: out.Name,
			Outcome: audit.OutcomeSuccess, Origin: origin,
			Details: map[string]string{"environment": out.Environment, "secret_version": strconv.FormatInt(out.SecretVersion, 10)},
		})
	})
	if err != nil {
		if errors.Is(err, ErrStale) {
			return models.APICredential{}, oauth.ClientSecret{}, s.refuseRegenerate(ctx, actor, origin, cur, ErrStale, "stale")
		}
		return models.APICredential{}, oauth.ClientSecret{}, fmt.Errorf("apiclients: regenerate: %w", err)
	}
	return out, secret, nil
}

// refuseRegenerate audits a refused regeneration (in its own transaction:
// the attempt changed nothing) and returns the refusal, or the audit
// failure if the record could not be written.
func (s *Service) refuseRegenerate(ctx context.Context, actor audit.Actor, origin audit.Origin, cur models.APICredential, refusal error, reason string) error {
	err := s.audit.Record(ctx, audit.Event{
		AgencyID: cur.AgencyID, Actor: actor, Action: audit.ActionAPICredentialRegenerate,
		TargetType: audit.TargetAPICredential, TargetID: cur.ClientID, TargetName: cur.Name,
		Outcome: audit.OutcomeDenied, Reason: reason, Origin: origin,
		Details: map[string]string{"environment": cur.Environment},
	})
	if err != nil {
		return fmt.Errorf("apiclients: regenerate: %w", err)
	}
	return refusal
}

// auditKMSRefusal records an attempt that failed because the secret pepper
// could not be opened through KMS (nothing was changed): every attempt at
// a sensitive action is audited, refused ones too. It returns err, joined
// with the audit failure if the record could not be written; other
// failures (the database) are returned as they are.
func (s *Service) auditKMSRefusal(ctx context.Context, actor audit.Actor, origin audit.Origin, agencyID int64, action, targetID, targetName, environment string, err error) error {
	reason := ""
	switch {
	case errors.Is(err, kms.ErrUnavailable):
		reason = "kms_unavailable"
	case errors.Is(err, kms.ErrIntegrity):
		reason = "integrity"
	default:
		return err
	}
	aerr := s.audit.Record(context.WithoutCancel(ctx), audit.Event{
		AgencyID: agencyID, Actor: actor, Action: action,
		TargetType: audit.TargetAPICredential, TargetID: targetID, TargetName: targetName,
		Outcome: audit.OutcomeFailure, Reason: reason, Origin: origin,
		Details: map[string]string{"environment": environment},
	})
	if aerr != nil {
		return errors.Join(err, aerr)
	}
	return err
}

// Revoke revokes a credential of an agency at once; an already revoked one
// is ErrRevoked.
func (s *Service) Revoke(ctx context.Context, actor audit.Actor, origin audit.Origin, agencyID, id int64) (models.APICredential, error) {
	now := s.clock()
	var out models.APICredential
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		cur, err := s.store.GetForUpdate(ctx, agencyID, id)
		if err != nil {
			return err
		}
		ok, err := s.store.Revoke(ctx, agencyID, id, actor.Name, now)
		if err != nil {
			return err
		}
		if !ok {
			return ErrRevoked
		}
		out = cur
		out.RevokedAt, out.RevokedByName, out.UpdatedAt = &now, actor.Name, now
		return s.audit.Record(ctx, audit.Event{
			AgencyID: agencyID, Actor: actor, Action: audit.ActionAPICredentialRevoke,
			TargetType: audit.TargetAPICredential, TargetID: cur.ClientID, TargetName: cur.Name,
			Outcome: audit.OutcomeSuccess, Origin: origin,
			Details: map[string]string{"environment": cur.Environment},
		})
	})
	if err != nil {
		if errors.Is(err, ErrRevoked) {
			return models.APICredential{}, ErrRevoked
		}
		return models.APICredential{}, fmt.Errorf("apiclients: revoke: %w", err)
	}
	return out, nil
}

// ExpireDue records, once per credential and across replicas, that live
// credentials passed their expiry date; it returns how many it recorded.
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	now := s.clock()
	due, err := s.store.DueForExpiry(ctx, now, 100)
	if err != nil {
		return 0, fmt.Errorf("apiclients: expire: %w", err)
	}
	n := 0
	for _, c := range due {
		err := s.db.Tx(ctx, func(ctx context.Context) error {
			ok, err := s.store.MarkExpired(ctx, c.ID, now)
			if err != nil || !ok {
				return err
			}
			n++
			return s.audit.Record(ctx, audit.Event{
				AgencyID: c.AgencyID, Actor: systemActor(), Action: audit.ActionAPICredentialExpire,
				TargetType: audit.TargetAPICredential, TargetID: c.ClientID, TargetName: c.Name,
				Outcome: audit.OutcomeSuccess,
				Details: map[string]string{"environment": c.Environment, "expires_at": c.ExpiresAt.UTC().Format(time.RFC3339)},
			})
		})
		if err != nil {
			return n, fmt.Errorf("apiclients: expire %s: %w", c.ClientID, err)
		}
	}
	return n, nil
}

// Client is an authenticated API client.
type Client struct {
	ID          int64
	AgencyID    int64
	AgencySlug  string
	ClientID    string
	Name        string
	Environment string
	// SecretVersion counts the credential's secrets: a regenerated secret
	// has a new version.
	SecretVersion int64
}

// Authenticate checks a client_id and secret as presented to the token
// endpoint at now. It reads the credential from the database (one indexed
// query), so a regenerated or revoked secret fails at once on every
// replica, and compares the keyed hash in constant time. A refusal returns
// an oauth Reason constant and, when the client_id is known, the agency's
// slug; err is reserved for failures of the database (or ErrNotReady before
// the pepper is loaded).
func (s *Service) Authenticate(ctx context.Context, clientID string, secret oauth.ClientSecret, now time.Time) (c Client, agencySlug, reason string, err error) {
	h := s.hasher.Load()
	if h == nil {
		return Client{}, "", "", ErrNotReady
	}
	// Every client_id costs what a real one with a wrong secret costs: one
	// look-up and one HMAC comparison, so the time of a refusal tells
	// nothing about which ids exist. An id of a shape never generated looks
	// up one that cannot exist (the database is never handed odd input);
	// an unknown id, or a hash under another pepper, is compared with a
	// dummy hash.
	lookup := clientID
	if _, ok := oauth.ClientIDEnvironment(clientID); !ok {
		lookup = impossibleClientID
	}
	s.step("lookup")
	row, err := s.store.AuthByClientID(ctx, lookup)
	found := err == nil
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		return Client{}, "", "", fmt.Errorf("apiclients: authenticate: %w", err)
	}
	stored := s.dummyHash
	if found && row.PepperID == PepperID {
		stored = row.SecretHash
	}
	s.step("verify")
	match := h.Verify(secret.Reveal(), stored)
	if !found {
		return Client{}, "", oauth.ReasonUnknownClient, nil
	}
	if row.PepperID != PepperID || !match {
		return Client{}, row.AgencySlug, oauth.ReasonInvalidSecret, nil
	}
	switch {
	case row.Revoked():
		return Client{}, row.AgencySlug, oauth.ReasonRevoked, nil
	case row.Expired(now):
		return Client{}, row.AgencySlug, oauth.ReasonExpired, nil
	}
	return Client{
		ID: row.ID, AgencyID: row.AgencyID, AgencySlug: row.AgencySlug,
		ClientID: row.ClientID, Name: row.Name, Environment: row.Environment, SecretVersion: row.SecretVersion,
	}, row.AgencySlug, "", nil
}

// impossibleClientID has the length of a client_id but characters outside
// the generated alphabet ('0' and '1' are not base32): no credential has it.
const impossibleClientID = oauth.ClientIDPrefixStaging + "00000000000000000000"

func (s *Service) step(name string) {
	if s.authStep != nil {
		s.authStep(name)
	}
}

// FlushLastUse stores aggregated last-use times (the LastUseTracker's flush).
func (s *Service) FlushLastUse(ctx context.Context, lastUse map[int64]time.Time) error {
	if err := s.store.TouchLastUsed(ctx, lastUse); err != nil {
		return fmt.Errorf("apiclients: flush last use: %w", err)
	}
	return nil
}

// RecordRefusals writes one audit record per batch of refused token
// requests (the FailureAggregator's Flush), in order: into the owning
// agency's chain when the client_id is known, otherwise into the platform
// chain. It returns how many it wrote before a failure stopped it; the
// aggregator keeps the rest.
func (s *Service) RecordRefusals(ctx context.Context, batch []guard.FailureBatch) (int, error) {
	ids := map[string]int64{}
	for i, b := range batch {
		// An unknown client's record costs the same agency look-up (of a
		// slug no agency has) as a known one's: the first refusal of a key
		// is written before the answer, whose time must not tell which
		// client_ids exist.
		agencyID, ok := ids[b.Agency]
		if !ok {
			a, err := s.agencies.BySlug(ctx, b.Agency)
			switch {
			case err == nil && b.Agency != "":
				agencyID = a.ID
			case err != nil && !errors.Is(err, models.ErrNotFound):
				return i, fmt.Errorf("apiclients: record refused token requests: %w", err)
			default:
				agencyID = models.PlatformAgencyID
			}
			ids[b.Agency] = agencyID
		}
		actor := audit.Actor{Type: audit.ActorAnonymous, ID: b.ClientID}
		if agencyID != models.PlatformAgencyID {
			actor.Type = audit.ActorAPIClient
		}
		details := map[string]string{
			"count":          strconv.Itoa(b.Count),
			"reason":         b.Reason,
			"client_id":      b.ClientID,
			"source_address": b.Addr,
			"first":          b.First.UTC().Format(time.RFC3339Nano),
			"last":           b.Last.UTC().Format(time.RFC3339Nano),
		}
		if b.Overflow {
			details["overflow"] = "true"
		}
		err := s.audit.Record(ctx, audit.Event{
			AgencyID: agencyID, Actor: actor, Action: audit.ActionAPICredentialTokenRefused,
			TargetType: audit.TargetAPICredential, TargetID: b.ClientID,
			Outcome: audit.OutcomeDenied, Reason: b.Reason,
			Origin:  audit.Origin{SourceIP: b.Addr},
			Details: details,
		})
		if err != nil {
			return i, fmt.Errorf("apiclients: record refused token requests: %w", err)
		}
	}
	return len(batch), nil
}

// Summary counts an agency's credentials for the dashboard.
type Summary struct {
	Active, DueSoon, Overdue int
}

// Summarize counts the active credentials of an agency and how many of
// them are due soon or overdue for rotation. The database counts them
// (models.APIClientStore.PolicyCounts); SummaryOf over List is the plain
// definition the counts are held to.
func (s *Service) Summarize(ctx context.Context, agencyID int64) (Summary, error) {
	p, err := s.policies.Policy(ctx, agencyID)
	if err != nil {
		return Summary{}, fmt.Errorf("apiclients: summarize: policy: %w", err)
	}
	n, err := s.PolicyCounts(ctx, agencyID, p.Cutoffs(policy.TypeAPICredential, s.clock()))
	if err != nil {
		return Summary{}, err
	}
	return Summary{Active: n.Active, DueSoon: n.DueSoon, Overdue: n.Overdue}, nil
}

// PolicyCounts counts the agency's active credentials in each state at the
// cutoffs of its policy (policy.Policy.Cutoffs).
func (s *Service) PolicyCounts(ctx context.Context, agencyID int64, c models.PolicyCutoffs) (models.PolicyCounts, error) {
	n, err := s.store.PolicyCounts(ctx, agencyID, c)
	if err != nil {
		return models.PolicyCounts{}, fmt.Errorf("apiclients: %w", err)
	}
	return n, nil
}

// SummaryOf counts credentials as List returns them: the active ones, and
// how many of those are due soon or overdue.
func SummaryOf(list []Credential) Summary {
	var sum Summary
	for _, c := range list {
		if c.Status != StatusActive {
			continue
		}
		sum.Active++
		switch c.Policy.AgeState {
		case policy.AgeDueSoon:
			sum.DueSoon++
		case policy.AgeOverdue:
			sum.Overdue++
		}
	}
	return sum
}
