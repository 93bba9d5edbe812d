// Package secrets keeps every secret the console must read back (webhook
// secrets, the token signing key, the API-secret pepper, the SFTP host key)
// envelope-encrypted through the kms package, bound to its agency and record.
// It is the only way services store or read such a secret.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"keyconsole/kms"
	"keyconsole/models"
	"keyconsole/services/audit"
)

// ErrUnavailable means encryption is unavailable (KMS unreachable or refusing).
var ErrUnavailable = kms.ErrUnavailable

// Ref names the record a secret belongs to.
type Ref struct {
	AgencyID   int64
	RecordType string
	RecordID   string
}

func (r Ref) context() kms.EncryptionContext {
	return kms.RecordContext(strconv.FormatInt(r.AgencyID, 10), r.RecordType, r.RecordID)
}

// Service seals and opens secrets.
type Service struct {
	env   *kms.Envelope
	store *models.SealedStore
	db    *models.DB
	audit *audit.Recorder
	now   func() time.Time
}

// NewService returns the secret service.
func NewService(db *models.DB, env *kms.Envelope, store *models.SealedStore, rec *audit.Recorder, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{env: env, store: store, db: db, audit: rec, now: now}
}

// Envelope returns the envelope in use (for metrics and checks).
func (s *Service) Envelope() *kms.Envelope { return s.env }

// Put seals plaintext for ref and writes it. It seals first, so a KMS failure
// writes nothing; called with a transaction's ctx it joins that transaction.
func (s *Service) Put(ctx context.Context, ref Ref, plaintext []byte) error {
	blob, err := s.env.Seal(ctx, ref.context(), plaintext)
	if err != nil {
		return fmt.Errorf("secrets: seal %s: %w", ref.RecordType, err)
	}
	info, err := kms.Describe(blob)
	if err != nil {
		return fmt.Errorf("secrets: seal %s: %w", ref.RecordType, err)
	}
	now := s.now().UTC()
	v := &models.SealedSecret{AgencyID: ref.AgencyID, RecordType: ref.RecordType, RecordID: ref.RecordID,
		Provider: info.Provider, KeyID: info.KeyID, Blob: blob, CreatedAt: now, UpdatedAt: now}
	if err := s.store.Upsert(ctx, v); err != nil {
		return fmt.Errorf("secrets: store %s: %w", ref.RecordType, err)
	}
	return nil
}

// Get reads and opens the secret of ref. The caller owns the returned bytes
// and should not keep them longer than needed.
func (s *Service) Get(ctx context.Context, ref Ref) ([]byte, error) {
	v, err := s.store.Get(ctx, ref.AgencyID, ref.RecordType, ref.RecordID)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	pt, err := s.env.Open(ctx, ref.context(), v.Blob)
	if err != nil {
		return nil, fmt.Errorf("secrets: open %s: %w", ref.RecordType, err)
	}
	return pt, nil
}

// Delete destroys the secret of ref.
func (s *Service) Delete(ctx context.Context, ref Ref) error {
	return s.store.Delete(ctx, ref.AgencyID, ref.RecordType, ref.RecordID)
}

// RewrapProgress reports a rewrap's advance.
type RewrapProgress struct {
	Done, Total, Skipped int64
}

// Rewrap re-wraps the data key of every stored secret that is not under the
// keyring's current key id, in batches. It is resumable: it selects by key id,
// so a rerun after an interruption picks up what is left. Each batch commits
// on its own; the run is audited on the platform chain.
func (s *Service) Rewrap(ctx context.Context, actor audit.Actor, origin audit.Origin, batch int, progress func(RewrapProgress)) (RewrapProgress, error) {
	if batch <= 0 {
		batch = 200
	}
	current := s.env.Keyring().CurrentKeyID()
	var p RewrapProgress
	total, err := s.store.CountNotUnderKey(ctx, current)
	if err != nil {
		return p, err
	}
	p.Total = total
	if err := s.audit.Record(ctx, audit.Event{AgencyID: models.PlatformAgencyID, Actor: actor, Action: ActionRewrapStart, TargetType: "kms_key",
		TargetID: current, Outcome: audit.OutcomeSuccess, Origin: origin, Details: map[string]string{"pending": strconv.FormatInt(total, 10)}}); err != nil {
		return p, err
	}
	var after int64
	var runErr error
	for runErr == nil {
		rows, err := s.store.NotUnderKey(ctx, current, after, batch)
		if err != nil {
			runErr = err
			break
		}
		if len(rows) == 0 {
			break
		}
		for _, r := range rows {
			after = r.ID
			ref := Ref{AgencyID: r.AgencyID, RecordType: r.RecordType, RecordID: r.RecordID}
			nb, changed, err := s.env.Rewrap(ctx, ref.context(), r.Blob)
			if err != nil {
				runErr = fmt.Errorf("secrets: rewrap %s/%s: %w", r.RecordType, r.RecordID, err)
				break
			}
			if !changed {
				p.Skipped++
				continue
			}
			info, err := kms.Describe(nb)
			if err != nil {
				runErr = err
				break
			}
			ok, err := s.store.ReplaceBlob(ctx, r.ID, r.Blob, info.KeyID, nb, s.now().UTC())
			if err != nil {
				runErr = err
				break
			}
			if ok {
				p.Done++
			} else {
				p.Skipped++
			}
		}
		if progress != nil {
			progress(p)
		}
	}
	outcome, reason := audit.OutcomeSuccess, ""
	if runErr != nil {
		outcome, reason = audit.OutcomeFailure, classify(runErr)
	}
	if err := s.audit.Record(context.WithoutCancel(ctx), audit.Event{AgencyID: models.PlatformAgencyID, Actor: actor, Action: ActionRewrapEnd, TargetType: "kms_key",
		TargetID: current, Outcome: outcome, Reason: reason, Origin: origin,
		Details: map[string]string{"rewrapped": strconv.FormatInt(p.Done, 10), "skipped": strconv.FormatInt(p.Skipped, 10), "total": strconv.FormatInt(p.Total, 10)}}); err != nil && runErr == nil {
		runErr = err
	}
	return p, runErr
}

func classify(err error) string {
	switch {
	case errors.Is(err, kms.ErrUnavailable):
		return "kms_unavailable"
	case errors.Is(err, kms.ErrIntegrity):
		return "integrity"
	case errors.Is(err, context.Canceled):
		return "interrupted"
	}
	return "error"
}

// Audit actions of the encryption layer.
const (
	ActionRewrapStart = "kms.rewrap_start"
	ActionRewrapEnd   = "kms.rewrap_end"
)
