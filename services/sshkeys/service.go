package sshkeys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"keyconsole/models"
	"keyconsole/services/audit"
	"keyconsole/services/policy"
	"keyconsole/services/validation"
)

// CodeDuplicate is the refusal of a key that is already active on an SFTP
// account of the same agency: a fingerprint is active on one account per
// agency at most. Another agency's use of the key is never a refusal, nor
// mentioned: that would tell the uploader the key is in use there.
const CodeDuplicate = "duplicate"

// Environments an SFTP account can serve, in display order.
func Environments() []string {
	return []string{models.EnvProd, models.EnvStg}
}

// EnvironmentLabel names an environment for people.
func EnvironmentLabel(env string) string {
	switch env {
	case models.EnvProd:
		return "Production"
	case models.EnvStg:
		return "Staging"
	}
	return env
}

// MaxExpiry is the furthest ahead an expiry date may be set.
const MaxExpiry = 10 * 366 * 24 * time.Hour

// ErrNotActive means a key is already revoked or expired.
var ErrNotActive = errors.New("sshkeys: key is not active")

// ValidationError carries field messages for a refused form; it is the one
// validation error every service returns.
type ValidationError = validation.Error

// Service manages SFTP accounts and their public keys; every change is
// audited in its own transaction.
type Service struct {
	db       *models.DB
	store    *models.SSHKeyStore
	audit    *audit.Recorder
	policies policy.Source
	now      func() time.Time
	log      *slog.Logger

	uploads        atomic.Uint64
	refusals       atomic.Uint64
	privateRefused atomic.Uint64
	revokes        atomic.Uint64
	expired        atomic.Uint64
}

// NewService returns the SSH key service. policies gives each agency's
// policy (minimum RSA size, maximum key age); now defaults to time.Now and
// log to a discarding logger.
func NewService(db *models.DB, store *models.SSHKeyStore, rec *audit.Recorder, policies policy.Source, now func() time.Time, log *slog.Logger) *Service {
	if now == nil {
		now = time.Now
	}
	if policies == nil {
		policies = policy.DefaultSource{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{db: db, store: store, audit: rec, policies: policies, now: now, log: log}
}

// Stats counts what the service did since it started.
type Stats struct {
	Uploads, Refusals, PrivateKeysRefused, Revokes, Expired uint64
}

// Stats returns the service's counters.
func (s *Service) Stats() Stats {
	return Stats{
		Uploads:            s.uploads.Load(),
		Refusals:           s.refusals.Load(),
		PrivateKeysRefused: s.privateRefused.Load(),
		Revokes:            s.revokes.Load(),
		Expired:            s.expired.Load(),
	}
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Policy returns the agency's rotation policy.
func (s *Service) Policy(ctx context.Context, agencyID int64) (policy.Policy, error) {
	pol, err := s.policies.Policy(ctx, agencyID)
	if err != nil {
		return policy.Policy{}, fmt.Errorf("sshkeys: policy: %w", err)
	}
	return pol, nil
}

// AccountName is the SSH user name of an agency's account for env.
func AccountName(agencySlug, env string) string { return agencySlug + "-" + env }

// CreateAccount creates the agency's SFTP account for an environment,
// named "<agency slug>-<environment>".
func (s *Service) CreateAccount(ctx context.Context, actor audit.Actor, origin audit.Origin, agency models.Agency, env string) (models.SFTPAccount, error) {
	if env != models.EnvProd && env != models.EnvStg {
		return models.SFTPAccount{}, &ValidationError{Fields: map[string]string{"environment": "Choose Production (prod) or Staging (stg)."}}
	}
	a := models.SFTPAccount{AgencyID: agency.ID, Name: AccountName(agency.Slug, env), Environment: env,
		CreatedByID: actorUserID(actor), CreatedByName: actor.Name, CreatedAt: s.clock()}
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateAccount(ctx, &a); err != nil {
			if errors.Is(err, models.ErrConflict) {
				return &ValidationError{Fields: map[string]string{"environment": fmt.Sprintf(
					"The SFTP account %s already exists.", a.Name)}}
			}
			return err
		}
		return s.audit.Record(ctx, audit.Event{AgencyID: agency.ID, Actor: actor, Action: audit.ActionSFTPAccountCreate,
			TargetType: audit.TargetSFTPAccount, TargetID: strconv.FormatInt(a.ID, 10), TargetName: a.Name,
			Outcome: audit.OutcomeSuccess, Origin: origin, Details: map[string]string{"environment": env}})
	})
	if err != nil {
		return models.SFTPAccount{}, fmt.Errorf("sshkeys: create account %s: %w", a.Name, err)
	}
	return a, nil
}

// Account returns one account of an agency.
func (s *Service) Account(ctx context.Context, agencyID, id int64) (models.SFTPAccount, error) {
	a, err := s.store.Account(ctx, agencyID, id)
	if err != nil {
		return models.SFTPAccount{}, fmt.Errorf("sshkeys: %w", err)
	}
	return a, nil
}

// Key returns one key of an agency with its account.
func (s *Service) Key(ctx context.Context, agencyID, id int64) (models.SSHKey, models.SFTPAccount, error) {
	k, err := s.store.Key(ctx, agencyID, id)
	if err != nil {
		return models.SSHKey{}, models.SFTPAccount{}, fmt.Errorf("sshkeys: %w", err)
	}
	a, err := s.store.Account(ctx, agencyID, k.AccountID)
	if err != nil {
		return models.SSHKey{}, models.SFTPAccount{}, fmt.Errorf("sshkeys: %w", err)
	}
	return k, a, nil
}

// Upload reads one public key from input and adds it to an account of the
// agency, expiring at expiresAt when that is set. A key the parser or the
// duplicate check refuses is a *RefusalError; an invalid expiry is a
// *ValidationError. A private key is refused before anything else, never
// stored and never logged, and the refusal is audited without any part of
// it. Another agency's account is models.ErrNotFound.
func (s *Service) Upload(ctx context.Context, actor audit.Actor, origin audit.Origin, agencyID, accountID int64, input []byte, expiresAt *time.Time) (models.SSHKey, error) {
	acc, err := s.store.Account(ctx, agencyID, accountID)
	if err != nil {
		return models.SSHKey{}, fmt.Errorf("sshkeys: upload: %w", err)
	}
	pol, err := s.policies.Policy(ctx, agencyID)
	if err != nil {
		return models.SSHKey{}, fmt.Errorf("sshkeys: upload: policy: %w", err)
	}
	parsed, err := Parse(input, ParsePolicy{MinRSABits: pol.MinRSABits})
	if err != nil {
		s.refusals.Add(1)
		var re *RefusalError
		if errors.As(err, &re) && re.PrivateKey {
			s.privateRefused.Add(1)
			// Only the account is named: no part of the upload, not even a
			// fingerprint of the key, goes into the record.
			if aerr := s.audit.Record(ctx, audit.Event{AgencyID: agencyID, Actor: actor, Action: audit.ActionSSHKeyPrivateRefused,
				TargetType: audit.TargetSFTPAccount, TargetID: strconv.FormatInt(acc.ID, 10), TargetName: acc.Name,
				Outcome: audit.OutcomeDenied, Reason: CodePrivateKey, Origin: origin}); aerr != nil {
				return models.SSHKey{}, fmt.Errorf("sshkeys: upload: %w", aerr)
			}
		}
		return models.SSHKey{}, err
	}
	now := s.clock()
	if expiresAt != nil {
		e := expiresAt.UTC().Truncate(time.Microsecond)
		switch {
		case !e.After(now):
			return models.SSHKey{}, &ValidationError{Fields: map[string]string{"expires_on": "The expiry date must be in the future."}}
		case e.After(now.Add(MaxExpiry)):
			return models.SSHKey{}, &ValidationError{Fields: map[string]string{"expires_on": "The expiry date must be within ten years."}}
		}
		expiresAt = &e
	}
	k := models.SSHKey{AgencyID: agencyID, AccountID: acc.ID, KeyType: parsed.Type, Bits: parsed.Bits,
		Fingerprint: parsed.FingerprintSHA256, PublicKey: keyLine(parsed), Comment: parsed.Comment,
		CreatedByID: actorUserID(actor), CreatedByName: actor.Name, CreatedAt: now, ExpiresAt: expiresAt}
	err = s.db.Tx(ctx, func(ctx context.Context) error {
		existing, err := s.store.ActiveByFingerprint(ctx, agencyID, k.Fingerprint)
		switch {
		case errors.Is(err, models.ErrNotFound):
		case err != nil:
			return err
		case existing.ExpiresAt != nil && !now.Before(*existing.ExpiresAt):
			// Its expiry passed before the sweep noticed: record that now.
			if _, err := s.expire(ctx, existing, now); err != nil {
				return err
			}
		default:
			return s.duplicate(ctx, existing, acc)
		}
		if err := s.store.CreateKey(ctx, &k); err != nil {
			if errors.Is(err, models.ErrConflict) {
				return duplicateElsewhere()
			}
			return err
		}
		details := map[string]string{"account": acc.Name, "key_type": k.KeyType, "bits": strconv.Itoa(k.Bits)}
		if k.ExpiresAt != nil {
			details["expires_at"] = k.ExpiresAt.Format(time.RFC3339)
		}
		return s.audit.Record(ctx, audit.Event{AgencyID: agencyID, Actor: actor, Action: audit.ActionSSHKeyUpload,
			TargetType: audit.TargetSSHKey, TargetID: strconv.FormatInt(k.ID, 10), TargetName: k.Fingerprint,
			Outcome: audit.OutcomeSuccess, Origin: origin, Details: details})
	})
	if err != nil {
		var re *RefusalError
		if errors.As(err, &re) {
			s.refusals.Add(1)
			return models.SSHKey{}, re
		}
		return models.SSHKey{}, fmt.Errorf("sshkeys: upload to %s: %w", acc.Name, err)
	}
	s.uploads.Add(1)
	return k, nil
}

// keyLine is the stored "type base64" form of a key, without its comment.
func keyLine(p ParsedKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(p.Key)))
}

// duplicate explains that a key is already active on an account of the
// target's agency, naming that account.
func (s *Service) duplicate(ctx context.Context, existing models.SSHKey, target models.SFTPAccount) error {
	if existing.AccountID == target.ID {
		return &RefusalError{Code: CodeDuplicate, Message: fmt.Sprintf(
			"This key is already active on the SFTP account %s (uploaded %s). Nothing was added. "+
				"To replace it, upload a new key first and then revoke this one.",
			target.Name, existing.CreatedAt.UTC().Format("2006-01-02"))}
	}
	other, err := s.store.Account(ctx, existing.AgencyID, existing.AccountID)
	if err != nil {
		return err
	}
	return &RefusalError{Code: CodeDuplicate, Message: fmt.Sprintf(
		"This key is already active on the SFTP account %s. A key may be active on one account only: "+
			"generate a separate key pair for %s and upload its public key.", other.Name, target.Name)}
}

// duplicateElsewhere answers an upload that lost a race with another upload
// of the same key in the same agency.
func duplicateElsewhere() *RefusalError {
	return &RefusalError{Code: CodeDuplicate, Message: "This key is already active on an SFTP account of this agency. Nothing was added. " +
		"A key may be active on one account only: generate a separate key pair for each account and upload its public key."}
}

// Revoke ends an agency's key at once. A key already revoked or expired is
// ErrNotActive; another agency's key is models.ErrNotFound.
func (s *Service) Revoke(ctx context.Context, actor audit.Actor, origin audit.Origin, agencyID, keyID int64, reason string) error {
	now := s.clock()
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		k, err := s.store.Key(ctx, agencyID, keyID)
		if err != nil {
			return err
		}
		if k.Status(now) != models.SSHKeyActive {
			return ErrNotActive
		}
		ok, err := s.store.Revoke(ctx, agencyID, keyID, now, actor.Name)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotActive
		}
		acc, err := s.store.Account(ctx, agencyID, k.AccountID)
		if err != nil {
			return err
		}
		return s.audit.Record(ctx, audit.Event{AgencyID: agencyID, Actor: actor, Action: audit.ActionSSHKeyRevoke,
			TargetType: audit.TargetSSHKey, TargetID: strconv.FormatInt(k.ID, 10), TargetName: k.Fingerprint,
			Outcome: audit.OutcomeSuccess, Reason: reason, Origin: origin,
			Details: map[string]string{"account": acc.Name, "key_type": k.KeyType}})
	})
	if err != nil {
		return fmt.Errorf("sshkeys: revoke key %d: %w", keyID, err)
	}
	s.revokes.Add(1)
	return nil
}

// expire records that a key's expiry passed and audits it, once per key:
// a key already marked (by another replica, say) is left alone.
func (s *Service) expire(ctx context.Context, k models.SSHKey, now time.Time) (bool, error) {
	marked := false
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		ok, err := s.store.MarkExpired(ctx, k.ID, now)
		if err != nil || !ok {
			return err
		}
		marked = true
		details := map[string]string{"key_type": k.KeyType}
		if k.ExpiresAt != nil {
			details["expires_at"] = k.ExpiresAt.UTC().Format(time.RFC3339)
		}
		if acc, err := s.store.Account(ctx, k.AgencyID, k.AccountID); err == nil {
			details["account"] = acc.Name
		}
		return s.audit.Record(ctx, audit.Event{AgencyID: k.AgencyID, Actor: audit.Actor{Type: audit.ActorSystem, ID: "expiry", Name: "expiry sweep"},
			Action: audit.ActionSSHKeyExpired, TargetType: audit.TargetSSHKey, TargetID: strconv.FormatInt(k.ID, 10), TargetName: k.Fingerprint,
			Outcome: audit.OutcomeSuccess, Reason: "expiry_date_passed", Details: details})
	})
	if err != nil || !marked {
		return false, err
	}
	s.expired.Add(1)
	return true, nil
}

// ExpireDue records every key whose expiry date has passed and audits
// ssh_key.expired once per key. It returns how many keys it marked.
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	now := s.clock()
	n := 0
	for {
		due, err := s.store.DueForExpiry(ctx, now, 200)
		if err != nil {
			return n, fmt.Errorf("sshkeys: expiry sweep: %w", err)
		}
		if len(due) == 0 {
			return n, nil
		}
		marked := 0
		for _, k := range due {
			ok, err := s.expire(ctx, k, now)
			if err != nil {
				return n, fmt.Errorf("sshkeys: expire key %d: %w", k.ID, err)
			}
			if ok {
				marked++
			}
		}
		n += marked
		if len(due) < 200 || marked == 0 {
			return n, nil
		}
	}
}

// RunExpirySweep runs ExpireDue at once and then every interval until ctx
// ends; errors are logged and the sweep goes on.
func (s *Service) RunExpirySweep(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.ExpireDue(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.ErrorContext(ctx, "ssh key expiry sweep failed", "error", err)
		} else if n > 0 {
			s.log.InfoContext(ctx, "ssh keys expired", "count", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// KeyRow is a key with its status and its age measured against the policy.
type KeyRow struct {
	Key    models.SSHKey
	Status string
	Eval   policy.Evaluation
}

// AccountRow is an account with its keys, newest first.
type AccountRow struct {
	Account models.SFTPAccount
	Keys    []KeyRow
	Active  int
}

// Overview is everything the SSH keys page shows for an agency.
type Overview struct {
	Now      time.Time
	Policy   policy.Policy
	Accounts []AccountRow
}

// Overview lists an agency's accounts and keys, each key measured against
// the agency's policy at the current time.
func (s *Service) Overview(ctx context.Context, agencyID int64) (Overview, error) {
	pol, err := s.policies.Policy(ctx, agencyID)
	if err != nil {
		return Overview{}, fmt.Errorf("sshkeys: overview: policy: %w", err)
	}
	accounts, err := s.store.Accounts(ctx, agencyID)
	if err != nil {
		return Overview{}, fmt.Errorf("sshkeys: overview: %w", err)
	}
	keys, err := s.store.Keys(ctx, agencyID)
	if err != nil {
		return Overview{}, fmt.Errorf("sshkeys: overview: %w", err)
	}
	now := s.clock()
	ov := Overview{Now: now, Policy: pol, Accounts: make([]AccountRow, 0, len(accounts))}
	index := make(map[int64]int, len(accounts))
	for i, a := range accounts {
		index[a.ID] = i
		ov.Accounts = append(ov.Accounts, AccountRow{Account: a})
	}
	for i := len(keys) - 1; i >= 0; i-- {
		k := keys[i]
		j, ok := index[k.AccountID]
		if !ok {
			continue
		}
		row := KeyRow{Key: k, Status: k.Status(now), Eval: pol.Evaluate(policy.TypeSSHKey, k.CreatedAt, time.Time{}, k.LastUsedAt, now)}
		if row.Status == models.SSHKeyActive {
			ov.Accounts[j].Active++
		}
		ov.Accounts[j].Keys = append(ov.Accounts[j].Keys, row)
	}
	return ov, nil
}

// Summary counts an agency's SFTP accounts and active keys for the
// dashboard, with how many of those keys are overdue or due soon.
type Summary struct {
	Accounts, Active, Overdue, DueSoon int
}

// Summarize counts what the dashboard shows of an agency's SFTP keys, in the
// database (models.SSHKeyStore.PolicyCounts); SummaryOf over Overview is the
// plain definition the counts are held to.
func (s *Service) Summarize(ctx context.Context, agencyID int64) (Summary, error) {
	pol, err := s.policies.Policy(ctx, agencyID)
	if err != nil {
		return Summary{}, fmt.Errorf("sshkeys: summarize: policy: %w", err)
	}
	accounts, err := s.store.AccountCount(ctx, agencyID)
	if err != nil {
		return Summary{}, fmt.Errorf("sshkeys: summarize: %w", err)
	}
	n, err := s.PolicyCounts(ctx, agencyID, pol.Cutoffs(policy.TypeSSHKey, s.clock()))
	if err != nil {
		return Summary{}, err
	}
	return Summary{Accounts: accounts, Active: n.Active, Overdue: n.Overdue, DueSoon: n.DueSoon}, nil
}

// PolicyCounts counts the agency's active keys in each state at the cutoffs
// of its policy (policy.Policy.Cutoffs).
func (s *Service) PolicyCounts(ctx context.Context, agencyID int64, c models.PolicyCutoffs) (models.PolicyCounts, error) {
	n, err := s.store.PolicyCounts(ctx, agencyID, c)
	if err != nil {
		return models.PolicyCounts{}, fmt.Errorf("sshkeys: %w", err)
	}
	return n, nil
}

// SummaryOf counts an overview as the dashboard shows it.
func SummaryOf(ov Overview) Summary {
	sum := Summary{Accounts: len(ov.Accounts)}
	for _, a := range ov.Accounts {
		for _, k := range a.Keys {
			if k.Status != models.SSHKeyActive {
				continue
			}
			sum.Active++
			switch k.Eval.AgeState {
			case policy.AgeOverdue:
				sum.Overdue++
			case policy.AgeDueSoon:
				sum.DueSoon++
			}
		}
	}
	return sum
}

// AuthorizedKeys returns the active, unexpired keys of the account named
// name, in authorized_keys form with the given options prefix (e.g.
// "restrict"), one line each. An unknown account has none.
func (s *Service) AuthorizedKeys(ctx context.Context, name, options string) ([]string, error) {
	return AuthorizedKeyLines(ctx, s.store, name, options, s.clock())
}

// AuthorizedKeyLines reads the active, unexpired keys of the account named
// name at now and formats them as authorized_keys lines with the options
// prefix, in one indexed query.
func AuthorizedKeyLines(ctx context.Context, store *models.SSHKeyStore, name, options string, now time.Time) ([]string, error) {
	keys, err := store.AuthorizedKeys(ctx, name, now)
	if err != nil {
		return nil, fmt.Errorf("sshkeys: authorized keys: %w", err)
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		line := k.PublicKey
		if options != "" {
			line = options + " " + line
		}
		if k.Comment != "" {
			line += " " + k.Comment
		}
		out = append(out, line)
	}
	return out, nil
}

// actorUserID is the user id of a user actor, nil for any other actor.
func actorUserID(a audit.Actor) *int64 {
	if a.Type != audit.ActorUser {
		return nil
	}
	id, err := strconv.ParseInt(a.ID, 10, 64)
	if err != nil {
		return nil
	}
	return &id
}
