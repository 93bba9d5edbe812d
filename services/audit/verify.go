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
	rep, _, err := v.verifyFrom(ctx, agencyID, walk{first: true})
	return rep, err
}

// walk is how far a verification has come: enough to resume it later over
// the records appended since.
type walk struct {
	first     bool
	afterSeq  int64
	expect    int64
	prevHash  string
	lastID    int64
	records   int64
	anchor    *models.AuditEvent
	confirmed bool
}

// verifyFrom continues a verification from w (a fresh walk starts at the
// first record) to the current head.
func (v *Verifier) verifyFrom(ctx context.Context, agencyID int64, w walk) (Report, walk, error) {
	rep := Report{AgencyID: agencyID, Intact: true, Records: w.records}
	head, err := v.store.Head(ctx, agencyID)
	if err != nil {
		if isNotFound(err) {
			return rep, w, nil
		}
		return rep, w, fmt.Errorf("audit: verify: %w", err)
	}
	rep.HeadSeq, rep.HeadHash = head.Seq, head.Hash
	for {
		events, err := v.store.ChainOrder(ctx, agencyID, w.afterSeq, v.batch)
		if err != nil {
			return rep, w, fmt.Errorf("audit: verify: %w", err)
		}
		for i := range events {
			e := &events[i]
			rep.Records++
			if w.first {
				w.first = false
				w.expect = e.Seq
				w.prevHash = e.PrevHash
				switch {
				case e.Action == ActionPurgeAnchor:
					a := *e
					w.anchor = &a
				case e.Seq != 1:
					return fail(rep, e, fmt.Sprintf("the chain starts at sequence %d without a purge anchor: earlier records are missing", e.Seq)), w, nil
				case e.PrevHash != Genesis:
					return fail(rep, e, "the first record does not start from the genesis hash"), w, nil
				}
			} else if e.Action == ActionPurgeAnchor {
				return fail(rep, e, "a purge anchor is only valid at the start of the chain: a record was inserted"), w, nil
			}
			switch {
			case e.Seq != w.expect:
				return fail(rep, e, fmt.Sprintf("sequence %d found where %d was expected: a record was deleted, inserted or reordered", e.Seq, w.expect)), w, nil
			case e.PrevHash != w.prevHash:
				return fail(rep, e, "does not link to the record before it: a record was deleted, inserted or reordered"), w, nil
			case Hash(e) != e.Hash:
				return fail(rep, e, "content does not match its hash: the record was modified"), w, nil
			}
			if w.anchor != nil && !w.confirmed && e.Action == ActionAuditPurge {
				w.confirmed = confirmsAnchor(e, w.anchor)
			}
			w.prevHash = e.Hash
			if e.Action == ActionPurgeAnchor {
				// The next record links to the span the anchor stands for.
				w.prevHash = e.PrevHash
			}
			w.expect++
			w.afterSeq = e.Seq
			w.lastID = e.ID
		}
		if len(events) < v.batch {
			break
		}
	}
	w.records = rep.Records
	rep.Anchored = w.anchor != nil
	switch {
	case rep.Records == 0 && head.Seq != 0:
		rep.Intact = false
		rep.Break = &Break{Seq: 1, Problem: fmt.Sprintf("the head says %d records but none are present", head.Seq)}
	case rep.Records > 0 && w.afterSeq < head.Seq:
		rep.Intact = false
		rep.Break = &Break{Seq: w.afterSeq + 1, Problem: fmt.Sprintf("the chain ends at sequence %d but its head says %d: records at the end were removed", w.afterSeq, head.Seq)}
	case rep.Records > 0 && w.afterSeq > head.Seq:
		e, err := v.store.BySeq(ctx, agencyID, head.Seq+1)
		if err != nil {
			return rep, w, fmt.Errorf("audit: verify: %w", err)
		}
		return fail(rep, &e, fmt.Sprintf("the head says %d but the chain goes on: a record was appended outside the recorder", head.Seq)), w, nil
	case rep.Records > 0 && w.prevHash != head.Hash:
		rep.Intact = false
		rep.Break = &Break{EventID: w.lastID, Seq: w.afterSeq, Problem: "the last record's hash is not the head's: the end of the chain was replaced"}
	case w.anchor != nil && !w.confirmed:
		return fail(rep, w.anchor, "the purge anchor is not confirmed by an audit.purge record naming it"), w, nil
	}
	return rep, w, nil
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
	// Pending is set when no verification of the chain has finished yet;
	// the report is then empty.
	Pending bool
	// Verifying is set when a newer verification than this report is
	// running.
	Verifying bool
}

// DefaultChainWait is how long ChainMonitor.Status waits for a
// verification before it answers with what it has.
const DefaultChainWait = 2 * time.Second

// chainVerifyTimeout bounds one background verification.
const chainVerifyTimeout = 30 * time.Minute

// ChainMonitor serves chain verification results to pages. A result is
// reused while it is younger than maxAge; after that an intact chain is
// brought up to date by verifying only the records appended since, and the
// whole chain is verified again once the last full verification is older
// than fullEvery (or the chain was not intact). Verifications run in the
// background, one per agency at a time, so a page never waits longer than
// Wait for one: a chain of millions of records takes many seconds to
// verify in full.
type ChainMonitor struct {
	verifier  *Verifier
	maxAge    time.Duration
	fullEvery time.Duration
	now       func() time.Time
	// Wait is how long Status waits for a verification it needs before it
	// returns the last result (Verifying) or a Pending status;
	// DefaultChainWait unless changed before the first Status.
	Wait time.Duration

	mu     sync.Mutex
	chains map[int64]*monitored
	// started, when set, is called as a background verification starts.
	started func()
}

type monitored struct {
	mu     sync.Mutex
	status ChainStatus
	walk   walk
	full   time.Time
	known  bool
	// running is closed when the verification in flight ends; nil when
	// none runs. err is the last finished verification's error.
	running chan struct{}
	err     error
}

// NewChainMonitor returns a monitor over verifier that reuses a result for
// maxAge and verifies whole chains at least every fullEvery.
func NewChainMonitor(verifier *Verifier, maxAge, fullEvery time.Duration, now func() time.Time) *ChainMonitor {
	if now == nil {
		now = time.Now
	}
	return &ChainMonitor{verifier: verifier, maxAge: maxAge, fullEvery: fullEvery, now: now, Wait: DefaultChainWait, chains: map[int64]*monitored{}}
}

// Status returns the agency's chain status. A result younger than maxAge
// comes back at once; otherwise Status starts a verification (unless one
// runs) and waits for it up to Wait or until ctx ends. When it has not
// finished by then, Status returns the last result marked Verifying, or a
// Pending status before the first result. A verification that failed to
// run is returned as the error.
func (m *ChainMonitor) Status(ctx context.Context, agencyID int64) (ChainStatus, error) {
	m.mu.Lock()
	c, ok := m.chains[agencyID]
	if !ok {
		c = &monitored{}
		m.chains[agencyID] = c
	}
	m.mu.Unlock()
	c.mu.Lock()
	now := m.now().UTC()
	if c.known && c.running == nil && now.Sub(c.status.CheckedAt) < m.maxAge {
		st := c.status
		c.mu.Unlock()
		return st, nil
	}
	done := c.running
	if done == nil {
		done = make(chan struct{})
		c.running = done
		from := walk{first: true}
		full := !c.known || !c.status.Intact || now.Sub(c.full) >= m.fullEvery
		if !full {
			from = c.walk
		}
		go m.verify(c, agencyID, from, full, now, done)
	}
	c.mu.Unlock()

	timer := time.NewTimer(m.Wait)
	defer timer.Stop()
	finished := false
	select {
	case <-done:
		finished = true
	case <-timer.C:
	case <-ctx.Done():
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if finished && c.err != nil {
		return ChainStatus{}, c.err
	}
	if !c.known {
		return ChainStatus{Pending: true, Verifying: true}, nil
	}
	st := c.status
	st.Verifying = c.running != nil
	return st, nil
}

// verify runs one verification of the agency's chain from w, not tied to
// any request, and records its result as of started.
func (m *ChainMonitor) verify(c *monitored, agencyID int64, from walk, full bool, started time.Time, done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), chainVerifyTimeout)
	defer cancel()
	if m.started != nil {
		m.started()
	}
	rep, w, err := m.verifier.verifyFrom(ctx, agencyID, from)
	c.mu.Lock()
	c.err = err
	if err == nil {
		if full {
			c.full = started
		}
		c.status, c.walk, c.known = ChainStatus{Report: rep, CheckedAt: started}, w, true
	}
	c.running = nil
	c.mu.Unlock()
	close(done)
}

// Forget drops an agency's remembered result, so the next status verifies
// the whole chain.
func (m *ChainMonitor) Forget(agencyID int64) {
	m.mu.Lock()
	delete(m.chains, agencyID)
	m.mu.Unlock()
}
