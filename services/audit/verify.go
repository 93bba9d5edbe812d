package audit

import (
	"context"
	"fmt"

	"keyconsole/models"
)

// Break describes where a chain stops being intact.
type Break struct {
	EventID int64
	Seq     int64
	Problem string
}

// Report is the result of verifying one agency's chain.
type Report struct {
	AgencyID int64
	Records  int64
	HeadSeq  int64
	HeadHash string
	Intact   bool
	Break    *Break
}

// Verifier walks chains and checks every link.
type Verifier struct {
	store *models.AuditStore
	batch int
}

// NewVerifier returns a verifier reading through store.
func NewVerifier(store *models.AuditStore) *Verifier { return &Verifier{store: store, batch: 2000} }

// Verify checks one agency's chain from its first record to its head. A
// modified record breaks its own hash; a deleted, inserted or reordered record
// breaks the sequence or the link to its predecessor; a truncated tail
// disagrees with the head.
func (v *Verifier) Verify(ctx context.Context, agencyID int64) (Report, error) {
	rep := Report{AgencyID: agencyID, Intact: true}
	head, err := v.store.Head(ctx, agencyID)
	if err != nil {
		if isNotFound(err) {
			return rep, nil
		}
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	rep.HeadSeq, rep.HeadHash = head.Seq, head.Hash
	var (
		afterSeq int64
		prevHash = ""
		expect   int64
		first    = true
	)
	for {
		events, err := v.store.ChainOrder(ctx, agencyID, afterSeq, v.batch)
		if err != nil {
			return rep, fmt.Errorf("audit: verify: %w", err)
		}
		for i := range events {
			e := &events[i]
			rep.Records++
			if first {
				// The chain may start after a purge: the anchor's previous hash is
				// whatever the removed span ended with, and its seq continues it.
				first = false
				expect = e.Seq
				prevHash = e.PrevHash
				if e.Seq != 1 && e.Action != ActionPurgeAnchor {
					return fail(rep, e, fmt.Sprintf("chain starts at sequence %d: earlier records are missing", e.Seq)), nil
				}
			}
			switch {
			case e.Seq != expect:
				return fail(rep, e, fmt.Sprintf("sequence %d found where %d was expected: a record was deleted, inserted or reordered", e.Seq, expect)), nil
			case e.PrevHash != prevHash:
				return fail(rep, e, "does not link to the record before it: a record was deleted, inserted or reordered"), nil
			case Hash(e) != e.Hash:
				return fail(rep, e, "content does not match its hash: the record was modified"), nil
			}
			prevHash = e.Hash
			expect++
			afterSeq = e.Seq
		}
		if len(events) < v.batch {
			break
		}
	}
	if rep.Records > 0 && (afterSeq != head.Seq || prevHash != head.Hash) {
		rep.Intact = false
		rep.Break = &Break{Seq: afterSeq, Problem: fmt.Sprintf("the chain ends at sequence %d but its head says %d: records at the end were removed or replaced", afterSeq, head.Seq)}
	}
	if rep.Records == 0 && head.Seq != 0 {
		rep.Intact = false
		rep.Break = &Break{Problem: fmt.Sprintf("the head says %d records but none are present", head.Seq)}
	}
	return rep, nil
}

func fail(rep Report, e *models.AuditEvent, problem string) Report {
	rep.Intact = false
	rep.Break = &Break{EventID: e.ID, Seq: e.Seq, Problem: problem}
	return rep
}

// VerifyAll checks every chain that has a head.
func (v *Verifier) VerifyAll(ctx context.Context) ([]Report, error) {
	heads, err := v.store.Heads(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: verify all: %w", err)
	}
	out := make([]Report, 0, len(heads))
	for _, h := range heads {
		r, err := v.Verify(ctx, h.AgencyID)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
