package audit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"keyconsole/models"
)

// Purge errors.
var (
	// ErrWithinRetention means the cut-off date is inside the retention period.
	ErrWithinRetention = errors.New("audit: purge: the date is inside the retention period")
	// ErrNothingToPurge means no record is older than the cut-off date.
	ErrNothingToPurge = errors.New("audit: purge: no records older than the date")
	// ErrChainBroken means the chain does not verify; purging it would hide the break.
	ErrChainBroken = errors.New("audit: purge: the chain does not verify")
)

// Purger removes audit records older than the retention period, only when
// asked explicitly, and keeps the rest of the chain verifiable.
type Purger struct {
	db        TxRunner
	store     *models.AuditStore
	rec       *Recorder
	verifier  *Verifier
	retention time.Duration
	now       func() time.Time
}

// NewPurger returns a purger that refuses cut-off dates within retention.
func NewPurger(db TxRunner, store *models.AuditStore, rec *Recorder, retention time.Duration, now func() time.Time) *Purger {
	if now == nil {
		now = time.Now
	}
	return &Purger{db: db, store: store, rec: rec, verifier: NewVerifier(store), retention: retention, now: now}
}

// PurgePlan is what a purge removes: the start of the chain through
// ThroughSeq, every record of which occurred before Before.
type PurgePlan struct {
	AgencyID   int64
	Before     time.Time
	Records    int64
	FirstSeq   int64
	ThroughSeq int64
	// Oldest allowed cut-off: now minus the retention period.
	Limit time.Time
}

// PurgeResult is a completed purge.
type PurgeResult struct {
	PurgePlan
	Anchor models.AuditEvent
}

// Plan says what a purge before the date would remove, changing nothing.
func (p *Purger) Plan(ctx context.Context, agencyID int64, before time.Time) (PurgePlan, error) {
	return p.plan(ctx, agencyID, before)
}

func (p *Purger) plan(ctx context.Context, agencyID int64, before time.Time) (PurgePlan, error) {
	before = before.UTC()
	plan := PurgePlan{AgencyID: agencyID, Before: before, Limit: p.now().UTC().Add(-p.retention)}
	if before.After(plan.Limit) {
		return plan, fmt.Errorf("%w (records must be kept %s; the latest allowed date is %s)", ErrWithinRetention,
			retentionText(p.retention), plan.Limit.Format("2006-01-02 15:04:05 UTC"))
	}
	first, err := p.store.FirstInChain(ctx, agencyID)
	if isNotFound(err) {
		return plan, ErrNothingToPurge
	}
	if err != nil {
		return plan, fmt.Errorf("audit: purge: %w", err)
	}
	plan.FirstSeq = first.Seq
	// The purge removes a prefix of the chain: everything before the first
	// record that is not older than the date, so no record inside retention
	// is ever removed even if times are not strictly in sequence order.
	keep, err := p.store.FirstAtOrAfter(ctx, agencyID, before, ActionPurgeAnchor)
	switch {
	case isNotFound(err):
		head, herr := p.store.Head(ctx, agencyID)
		if herr != nil {
			return plan, fmt.Errorf("audit: purge: %w", herr)
		}
		plan.ThroughSeq = head.Seq
	case err != nil:
		return plan, fmt.Errorf("audit: purge: %w", err)
	default:
		plan.ThroughSeq = keep.Seq - 1
	}
	if plan.ThroughSeq < plan.FirstSeq {
		return plan, ErrNothingToPurge
	}
	plan.Records, err = p.store.CountThrough(ctx, agencyID, plan.ThroughSeq, ActionPurgeAnchor)
	if err != nil {
		return plan, fmt.Errorf("audit: purge: %w", err)
	}
	if plan.Records == 0 {
		// Only an earlier purge's anchor is older: nothing to remove.
		return plan, ErrNothingToPurge
	}
	return plan, nil
}

// Purge removes the records of an agency older than before, in one
// transaction that also
//
//   - verifies the chain first (a broken chain is not purged: the purge would
//     hide the break);
//   - writes a purge anchor as the new first link: it takes the sequence
//     number of the last removed record and carries, as its previous hash,
//     the hash the removed span ended with, which the first remaining record
//     links to (see Verifier.Verify);
//   - records the purge at the head of the chain, naming the anchor's
//     sequence and hash, which confirms the anchor.
func (p *Purger) Purge(ctx context.Context, agencyID int64, before time.Time, actor Actor, origin Origin) (PurgeResult, error) {
	var res PurgeResult
	err := p.db.Tx(ctx, func(ctx context.Context) error {
		now := p.now().UTC().Truncate(time.Microsecond)
		// Lock the chain so nothing is appended while it is cut.
		head, err := p.store.LockHead(ctx, agencyID, Genesis, now)
		if err != nil {
			return err
		}
		plan, err := p.plan(ctx, agencyID, before)
		if err != nil {
			return err
		}
		rep, err := p.verifier.Verify(ctx, agencyID)
		if err != nil {
			return err
		}
		if !rep.Intact {
			return fmt.Errorf("%w: broken at sequence %d: %s", ErrChainBroken, rep.Break.Seq, rep.Break.Problem)
		}
		// The hash the first remaining record links to.
		bridge := head.Hash
		if plan.ThroughSeq < head.Seq {
			next, err := p.store.BySeq(ctx, agencyID, plan.ThroughSeq+1)
			if err != nil {
				return err
			}
			bridge = next.PrevHash
		}
		removed, err := p.store.DeleteThrough(ctx, agencyID, plan.ThroughSeq)
		if err != nil {
			return err
		}
		anchor := models.AuditEvent{
			AgencyID: agencyID, Seq: plan.ThroughSeq, OccurredAt: now,
			ActorType: actor.Type, ActorID: clip(actor.ID, 200), ActorName: clip(actor.Name, 200),
			Action: ActionPurgeAnchor, TargetType: TargetAuditChain, TargetID: strconv.FormatInt(agencyID, 10),
			Outcome: OutcomeSuccess, SourceIP: clip(origin.SourceIP, 64), UserAgent: clip(origin.UserAgent, 400), RequestID: clip(origin.RequestID, 100),
			Details: encodeDetails(map[string]string{
				"purged_from_seq":    strconv.FormatInt(plan.FirstSeq, 10),
				"purged_through_seq": strconv.FormatInt(plan.ThroughSeq, 10),
				"purged_records":     strconv.FormatInt(plan.Records, 10),
				"before":             plan.Before.Format(time.RFC3339),
			}),
			PrevHash: bridge,
		}
		anchor.Hash = Hash(&anchor)
		if err := p.store.Insert(ctx, &anchor); err != nil {
			return err
		}
		if err := p.rec.Record(ctx, Event{AgencyID: agencyID, Actor: actor, Action: ActionAuditPurge, TargetType: TargetAuditChain,
			TargetID: strconv.FormatInt(agencyID, 10), Outcome: OutcomeSuccess, Origin: origin,
			Details: map[string]string{
				"before":             plan.Before.Format(time.RFC3339),
				"purged_records":     strconv.FormatInt(plan.Records, 10),
				"deleted_rows":       strconv.FormatInt(removed, 10),
				"purged_from_seq":    strconv.FormatInt(plan.FirstSeq, 10),
				"purged_through_seq": strconv.FormatInt(plan.ThroughSeq, 10),
				"anchor_seq":         strconv.FormatInt(anchor.Seq, 10),
				"anchor_hash":        anchor.Hash,
				"retention":          retentionText(p.retention),
			}}); err != nil {
			return err
		}
		res = PurgeResult{PurgePlan: plan, Anchor: anchor}
		return nil
	})
	switch {
	case err == nil:
		return res, nil
	case errors.Is(err, ErrWithinRetention), errors.Is(err, ErrNothingToPurge), errors.Is(err, ErrChainBroken):
		return PurgeResult{}, err
	}
	return PurgeResult{}, fmt.Errorf("audit: purge: %w", err)
}

func retentionText(d time.Duration) string {
	days := int64(d / (24 * time.Hour))
	if d%(24*time.Hour) == 0 {
		return strconv.FormatInt(days, 10) + " days"
	}
	return d.String()
}
