package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"keyconsole/models"
)

// Break describes where a chain stops being intact: the first record that
// does not verify (EventID is 0 when the break is a missing tail).
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
	// Anchored is set when the chain starts at a purge anchor.
	Anchored bool
}

// Verifier walks chains and checks every link.
type Verifier struct {
	store *models.AuditStore
	batch int
}

// NewVerifier returns a verifier reading through store.
func NewVerifier(store *models.AuditStore) *Verifier { return &Verifier{store: store, batch: 2000} }

// Verify checks one agency's chain from its first record to its head, in
// sequence order:
//
//   - every record's hash must match its content (a modified record);
//   - every record must carry the next sequence number and the previous
//     record's hash (a deleted, inserted or reordered record);
//   - the last record must be the head (a removed or appended tail).
//
// A chain may start at a purge anchor instead of sequence 1. The anchor takes
// the sequence number of the last removed record and carries as its previous
// hash the hash the removed span ended with, which is the hash the first
// remaining record links to. The anchor's own hash covers that value, so the
// anchor is verified like any record, and the record after it must link to
// the anchor's previous hash. An anchor must also be confirmed by a later
// audit.purge record of the same chain naming its sequence and hash; an
// anchor anywhere but at the start of the chain is a break.
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
		afterSeq  int64
		prevHash  string
		expect    int64
		first     = true
		anchor    *models.AuditEvent
		confirmed bool
		lastID    int64
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
				first = false
				expect = e.Seq
				prevHash = e.PrevHash
				switch {
				case e.Action == ActionPurgeAnchor:
					a := *e
					anchor = &a
					rep.Anchored = true
				case e.Seq != 1:
					return fail(rep, e, fmt.Sprintf("the chain starts at sequence %d without a purge anchor: earlier records are missing", e.Seq)), nil
				case e.PrevHash != Genesis:
					return fail(rep, e, "the first record does not start from the genesis hash"), nil
				}
			} else if e.Action == ActionPurgeAnchor {
				return fail(rep, e, "a purge anchor is only valid at the start of the chain: a record was inserted"), nil
			}
			switch {
			case e.Seq != expect:
				return fail(rep, e, fmt.Sprintf("sequence %d found where %d was expected: a record was deleted, inserted or reordered", e.Seq, expect)), nil
			case e.PrevHash != prevHash:
				return fail(rep, e, "does not link to the record before it: a record was deleted, inserted or reordered"), nil
			case Hash(e) != e.Hash:
				return fail(rep, e, "content does not match its hash: the record was modified"), nil
			}
			if anchor != nil && !confirmed && e.Action == ActionAuditPurge {
				confirmed = confirmsAnchor(e, anchor)
			}
			prevHash = e.Hash
			if e.Action == ActionPurgeAnchor {
				// The next record links to the span the anchor stands for.
				prevHash = e.PrevHash
			}
			expect++
			afterSeq = e.Seq
			lastID = e.ID
		}
		if len(events) < v.batch {
			break
		}
	}
	switch {
	case rep.Records == 0 && head.Seq != 0:
		rep.Intact = false
		rep.Break = &Break{Seq: 1, Problem: fmt.Sprintf("the head says %d records but none are present", head.Seq)}
	case rep.Records > 0 && afterSeq < head.Seq:
		rep.Intact = false
		rep.Break = &Break{Seq: afterSeq + 1, Problem: fmt.Sprintf("the chain ends at sequence %d but its head says %d: records at the end were removed", afterSeq, head.Seq)}
	case rep.Records > 0 && afterSeq > head.Seq:
		e, err := v.store.BySeq(ctx, agencyID, head.Seq+1)
		if err != nil {
			return rep, fmt.Errorf("audit: verify: %w", err)
		}
		return fail(rep, &e, fmt.Sprintf("the head says %d but the chain goes on: a record was appended outside the recorder", head.Seq)), nil
	case rep.Records > 0 && prevHash != head.Hash:
		rep.Intact = false
		rep.Break = &Break{EventID: lastID, Seq: afterSeq, Problem: "the last record's hash is not the head's: the end of the chain was replaced"}
	case anchor != nil && !confirmed:
		return fail(rep, anchor, "the purge anchor is not confirmed by an audit.purge record naming it"), nil
	}
	return rep, nil
}

// confirmsAnchor reports whether an audit.purge record names the anchor.
func confirmsAnchor(purge, anchor *models.AuditEvent) bool {
	var d map[string]string
	if json.Unmarshal([]byte(purge.Details), &d) != nil {
		return false
	}
	return d["anchor_seq"] == strconv.FormatInt(anchor.Seq, 10) && d["anchor_hash"] == anchor.Hash
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

// ChainStatus is a verification report and when it was made.
type ChainStatus struct {
	Report
	CheckedAt time.Time
}

// ChainMonitor serves chain verification results to pages, verifying a chain
// again only once its last result is older than maxAge, and one verification
// per agency at a time.
type ChainMonitor struct {
	verifier *Verifier
	maxAge   time.Duration
	now      func() time.Time

	mu    sync.Mutex
	locks map[int64]*sync.Mutex
	last  map[int64]ChainStatus
}

// NewChainMonitor returns a monitor over verifier.
func NewChainMonitor(verifier *Verifier, maxAge time.Duration, now func() time.Time) *ChainMonitor {
	if now == nil {
		now = time.Now
	}
	return &ChainMonitor{verifier: verifier, maxAge: maxAge, now: now, locks: map[int64]*sync.Mutex{}, last: map[int64]ChainStatus{}}
}

// Status returns the agency's chain status, verifying the chain when the last
// result is missing or older than the monitor's maximum age.
func (m *ChainMonitor) Status(ctx context.Context, agencyID int64) (ChainStatus, error) {
	m.mu.Lock()
	l, ok := m.locks[agencyID]
	if !ok {
		l = &sync.Mutex{}
		m.locks[agencyID] = l
	}
	m.mu.Unlock()
	l.Lock()
	defer l.Unlock()
	m.mu.Lock()
	st, ok := m.last[agencyID]
	m.mu.Unlock()
	if ok && m.now().Sub(st.CheckedAt) < m.maxAge {
		return st, nil
	}
	rep, err := m.verifier.Verify(ctx, agencyID)
	if err != nil {
		return ChainStatus{}, err
	}
	st = ChainStatus{Report: rep, CheckedAt: m.now().UTC()}
	m.mu.Lock()
	m.last[agencyID] = st
	m.mu.Unlock()
	return st, nil
}

// Forget drops an agency's remembered result (after a purge).
func (m *ChainMonitor) Forget(agencyID int64) {
	m.mu.Lock()
	delete(m.last, agencyID)
	m.mu.Unlock()
}
