package guard

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"keyconsole/services/oauth"
)

const (
	maxAuditClientIDLen = 128
	maxAuditFieldLen    = 64
	maxOverflowReasons  = 64
	overflowOtherReason = "other"
)

// AuditClientID returns a client_id as presented by a client, made safe to
// record: at most 128 bytes, valid UTF-8, control characters replaced by
// '?', and "[REDACTED]" when the value looks like a client secret sent in
// the wrong field.
func AuditClientID(id string) string {
	if oauth.LooksLikeClientSecret(id) {
		return oauth.Redacted
	}
	return auditField(id, maxAuditClientIDLen)
}

func auditField(s string, max int) string {
	if len(s) > max {
		s = s[:max]
	}
	s = strings.ToValidUTF8(s, "?")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
}

// FailureKey identifies one kind of refused token request.
type FailureKey struct {
	// Agency is the slug of the agency owning the client, "" when unknown.
	Agency string
	// ClientID is the client_id as presented (sanitised with AuditClientID).
	ClientID string
	// Addr is the source address.
	Addr string
	// Reason is one of the Reason constants.
	Reason string
}

// FailureBatch counts the refused requests of one key: one refusal
// written at once, or the repeats summarised over an interval.
type FailureBatch struct {
	FailureKey
	// Count is the number of refused requests.
	Count int
	// First and Last are the times of the first and last of them.
	First, Last time.Time
	// Overflow marks the summary of requests whose keys did not fit in
	// memory (MaxKeys): only Reason is set in FailureKey.
	Overflow bool
}

// Defaults of FailureAggregatorConfig.
const (
	DefaultFailureInterval  = time.Minute
	DefaultFailureMaxKeys   = 10000
	DefaultFailureImmediate = 600
	DefaultFailureRetry     = 5 * time.Second
	DefaultFailureWrite     = 5 * time.Second
)

// FailureAggregatorConfig configures a FailureAggregator.
type FailureAggregatorConfig struct {
	// Interval between flushes of the summaries (DefaultFailureInterval).
	Interval time.Duration
	// MaxKeys caps the distinct keys kept between flushes
	// (DefaultFailureMaxKeys); further keys are counted in one overflow
	// batch per reason.
	MaxKeys int
	// Immediate caps how many first refusals of new keys are written at
	// once per interval (DefaultFailureImmediate); beyond it new keys are
	// summarised like repeats. A negative value writes none at once.
	Immediate int
	// RetryInterval is the wait after a failed flush
	// (DefaultFailureRetry), doubling per further failure up to Interval.
	RetryInterval time.Duration
	// WriteTimeout bounds a write made at once by Record
	// (DefaultFailureWrite).
	WriteTimeout time.Duration
	// Flush writes the batches in order, one audit record each, and
	// returns how many it wrote before an error stopped it; the batches it
	// did not write are kept for the next flush. Record calls it with one
	// batch for a first refusal, concurrently with other calls, so it must
	// be safe for concurrent use. Required. It must not keep the slice.
	Flush func(ctx context.Context, batch []FailureBatch) (written int, err error)
	// Name says what is aggregated, in log lines ("refused token requests").
	Name string
	// Logger receives failed flushes, the overflow of MaxKeys and losses;
	// nil discards them.
	Logger *slog.Logger
}

// FailureStats counts what a FailureAggregator did since it was made.
type FailureStats struct {
	// Pending is the number of keys (overflow batches included) whose
	// refusals wait for the next flush.
	Pending int
	// WrittenAtOnce counts first refusals written at once by Record.
	WrittenAtOnce uint64
	// WriteErrors counts failed writes (at once or by a flush); what they
	// held is kept for the next flush.
	WriteErrors uint64
	// Overflowed counts refusals kept only in the per-reason overflow
	// count because MaxKeys keys were pending.
	Overflowed uint64
	// Lost counts refusals never written: the database refused them until
	// the end of Close.
	Lost uint64
}

// FailureAggregator records refused requests without flooding the audit
// log: the first refusal of a key (agency, client, address, reason) in an
// interval is written at once, before Record returns, and its repeats are
// summarised into one record per key and interval. It is safe for
// concurrent use.
//
// Nothing is dropped while the process lives: a write that fails is kept
// in memory and retried (after RetryInterval, doubling up to Interval),
// memory stays bounded by MaxKeys keys plus one count per reason, and
// Close writes what is left, retrying until its context ends. What a
// crash (SIGKILL) can lose is therefore bounded by what is in memory: the
// repeats since the last successful flush, first refusals beyond
// Immediate in the interval, and writes that failed since.
type FailureAggregator struct {
	cfg FailureAggregatorConfig

	mu       sync.Mutex
	entries  map[FailureKey]*FailureBatch
	overflow map[string]*FailureBatch
	// immediate counts the writes at once of the current interval.
	immediate int
	// boundLogged is set once the MaxKeys overflow was logged, until a
	// flush succeeds.
	boundLogged bool
	closed      bool
	stats       FailureStats

	flushMu  sync.Mutex
	stop     chan struct{}
	stopOnce sync.Once
}

// NewFailureAggregator returns a FailureAggregator for cfg. Start its
// periodic flushing with Run and end it with Close.
func NewFailureAggregator(cfg FailureAggregatorConfig) (*FailureAggregator, error) {
	if cfg.Flush == nil {
		return nil, errors.New("oauth: failure aggregator: Flush is required")
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultFailureInterval
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultFailureMaxKeys
	}
	if cfg.Immediate == 0 {
		cfg.Immediate = DefaultFailureImmediate
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = DefaultFailureRetry
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultFailureWrite
	}
	if cfg.Interval < 0 || cfg.MaxKeys < 1 || cfg.RetryInterval < 0 || cfg.WriteTimeout < 0 {
		return nil, errors.New("oauth: failure aggregator: Interval, MaxKeys, RetryInterval and WriteTimeout must be positive")
	}
	cfg.RetryInterval = min(cfg.RetryInterval, cfg.Interval)
	if cfg.Name == "" {
		cfg.Name = "refused requests"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &FailureAggregator{
		cfg:      cfg,
		entries:  make(map[FailureKey]*FailureBatch),
		overflow: make(map[string]*FailureBatch),
		stop:     make(chan struct{}),
	}, nil
}

// Record counts one refused request of key at time at. The first refusal
// of a key in the interval is written at once (up to Immediate per
// interval); if that write fails, or after the cap, it waits for the next
// flush with the repeats. After Close every refusal is written at once.
// The client_id is sanitised with AuditClientID and the other fields are
// bounded in length.
func (a *FailureAggregator) Record(key FailureKey, at time.Time) {
	key.Agency = auditField(key.Agency, maxAuditFieldLen)
	key.ClientID = AuditClientID(key.ClientID)
	key.Addr = auditField(key.Addr, maxAuditFieldLen)
	key.Reason = auditField(key.Reason, maxAuditFieldLen)
	at = at.UTC()
	one := FailureBatch{FailureKey: key, Count: 1, First: at, Last: at}

	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		a.writeOrLose(one)
		return
	}
	b, ok := a.entries[key]
	switch {
	case ok:
		merge(b, one)
	case len(a.entries) >= a.cfg.MaxKeys:
		a.addOverflow(one)
	case a.cfg.Immediate < 0 || a.immediate >= a.cfg.Immediate:
		a.entries[key] = &one
	default:
		// A zero count marks the key as seen in this interval while its
		// first refusal is written at once: what follows is a repeat.
		a.immediate++
		a.entries[key] = &FailureBatch{FailureKey: key}
		a.mu.Unlock()
		if err := a.write(one); err != nil {
			a.mu.Lock()
			if a.closed {
				a.mu.Unlock()
				a.lose(one, err)
				return
			}
			a.keep(one)
			logBound := a.takeBoundLog()
			a.mu.Unlock()
			if logBound {
				a.logBound()
			}
		}
		return
	}
	logBound := a.takeBoundLog()
	a.mu.Unlock()
	if logBound {
		a.logBound()
	}
}

// merge adds src to dst.
func merge(dst *FailureBatch, src FailureBatch) {
	if dst.Count == 0 {
		dst.First, dst.Last = src.First, src.Last
	} else {
		if src.First.Before(dst.First) {
			dst.First = src.First
		}
		if src.Last.After(dst.Last) {
			dst.Last = src.Last
		}
	}
	dst.Count += src.Count
}

// keep puts b back among the pending batches (a.mu held): into its key's
// entry, or the overflow of its reason when MaxKeys keys are pending.
func (a *FailureAggregator) keep(b FailureBatch) {
	if b.Overflow {
		merge(a.overflowBatch(b.Reason), b)
		return
	}
	if e, ok := a.entries[b.FailureKey]; ok {
		merge(e, b)
		return
	}
	if len(a.entries) < a.cfg.MaxKeys {
		a.entries[b.FailureKey] = &b
		return
	}
	a.addOverflow(b)
}

// addOverflow counts b in the overflow batch of its reason (a.mu held).
func (a *FailureAggregator) addOverflow(b FailureBatch) {
	a.stats.Overflowed += uint64(b.Count)
	merge(a.overflowBatch(b.Reason), FailureBatch{FailureKey: FailureKey{Reason: b.Reason}, Count: b.Count, First: b.First, Last: b.Last, Overflow: true})
}

// takeBoundLog reports, once until the next successful flush, that the
// overflow began (a.mu held).
func (a *FailureAggregator) takeBoundLog() bool {
	if a.stats.Overflowed == 0 || a.boundLogged || len(a.overflow) == 0 {
		return false
	}
	a.boundLogged = true
	return true
}

func (a *FailureAggregator) logBound() {
	a.cfg.Logger.Warn("audit aggregation is full: further keys are counted per reason only until the next flush",
		"records", a.cfg.Name, "max_keys", a.cfg.MaxKeys)
}

func (a *FailureAggregator) overflowBatch(reason string) *FailureBatch {
	if b, ok := a.overflow[reason]; ok {
		return b
	}
	if len(a.overflow) >= maxOverflowReasons {
		reason = overflowOtherReason
		if b, ok := a.overflow[reason]; ok {
			return b
		}
	}
	b := &FailureBatch{FailureKey: FailureKey{Reason: reason}, Overflow: true}
	a.overflow[reason] = b
	return b
}

// write hands one batch to the Flush callback, bounded by WriteTimeout.
func (a *FailureAggregator) write(b FailureBatch) error {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.WriteTimeout)
	defer cancel()
	n, err := a.cfg.Flush(ctx, []FailureBatch{b})
	if n == 1 {
		a.mu.Lock()
		a.stats.WrittenAtOnce++
		a.mu.Unlock()
		return nil
	}
	if err == nil {
		err = errors.New("oauth: failure aggregator: the record was not written")
	}
	a.mu.Lock()
	a.stats.WriteErrors++
	a.mu.Unlock()
	return err
}

// writeOrLose writes b at once, after Close; what fails is lost.
func (a *FailureAggregator) writeOrLose(b FailureBatch) {
	if err := a.write(b); err != nil {
		a.lose(b, err)
	}
}

func (a *FailureAggregator) lose(b FailureBatch, err error) {
	a.mu.Lock()
	a.stats.Lost += uint64(b.Count)
	a.mu.Unlock()
	a.cfg.Logger.Error("audit records lost: the database did not take them before shutdown",
		"records", a.cfg.Name, "count", b.Count, "reason", b.Reason, "error", err)
}

// Pending returns the number of keys (overflow batches included) whose
// refusals wait for the next flush.
func (a *FailureAggregator) Pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pendingLocked()
}

func (a *FailureAggregator) pendingLocked() int {
	n := len(a.overflow)
	for _, b := range a.entries {
		if b.Count > 0 {
			n++
		}
	}
	return n
}

// Stats returns the aggregator's counters.
func (a *FailureAggregator) Stats() FailureStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.stats
	st.Pending = a.pendingLocked()
	return st
}

// Flush hands everything pending to the Flush callback (when there is
// anything) and starts a new interval. What the callback did not write is
// kept for the next flush, and the error says how much.
func (a *FailureAggregator) Flush(ctx context.Context) error {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	a.mu.Lock()
	entries, overflow := a.entries, a.overflow
	a.entries = make(map[FailureKey]*FailureBatch)
	a.overflow = make(map[string]*FailureBatch)
	a.immediate = 0
	a.mu.Unlock()
	batch := make([]FailureBatch, 0, len(entries)+len(overflow))
	for _, b := range entries {
		if b.Count > 0 {
			batch = append(batch, *b)
		}
	}
	slices.SortFunc(batch, func(x, y FailureBatch) int {
		return cmp.Or(
			cmp.Compare(x.Agency, y.Agency),
			cmp.Compare(x.ClientID, y.ClientID),
			cmp.Compare(x.Addr, y.Addr),
			cmp.Compare(x.Reason, y.Reason),
		)
	})
	n := len(batch)
	for _, b := range overflow {
		batch = append(batch, *b)
	}
	slices.SortFunc(batch[n:], func(x, y FailureBatch) int { return cmp.Compare(x.Reason, y.Reason) })
	if len(batch) == 0 {
		return nil
	}
	written, err := a.cfg.Flush(ctx, batch)
	written = max(0, min(written, len(batch)))
	if written == len(batch) {
		a.mu.Lock()
		a.boundLogged = false
		a.mu.Unlock()
		return nil
	}
	if err == nil {
		err = errors.New("stopped early")
	}
	a.mu.Lock()
	a.stats.WriteErrors++
	for _, b := range batch[written:] {
		a.keep(b)
	}
	logBound := a.takeBoundLog()
	a.mu.Unlock()
	if logBound {
		a.logBound()
	}
	return fmt.Errorf("oauth: flush %s: %d of %d records kept for the next attempt: %w", a.cfg.Name, len(batch)-written, len(batch), err)
}

// Run flushes every Interval, and sooner after a failed flush, until ctx
// is done or Close is called; failed flushes are logged. Call Close at
// shutdown, with a live context, for the last flush.
func (a *FailureAggregator) Run(ctx context.Context) {
	retry := a.cfg.RetryInterval
	t := time.NewTimer(a.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.stop:
			return
		case <-t.C:
		}
		wait := a.cfg.Interval
		if err := a.Flush(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			a.cfg.Logger.ErrorContext(ctx, "audit records could not be written; they are kept and retried", "records", a.cfg.Name, "retry_in", retry.String(), "error", err)
			wait, retry = retry, min(2*retry, a.cfg.Interval)
		} else {
			retry = a.cfg.RetryInterval
		}
		t.Reset(wait)
	}
}

// Close stops Run, makes further records be written at once, and writes
// what is pending, retrying until ctx ends; what the database still
// refused then is counted as lost, logged, and the error returned.
func (a *FailureAggregator) Close(ctx context.Context) error {
	a.stopOnce.Do(func() { close(a.stop) })
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	wait := min(time.Second, a.cfg.RetryInterval)
	for {
		err := a.Flush(ctx)
		if err == nil {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
			continue
		case <-ctx.Done():
			t.Stop()
		}
		a.mu.Lock()
		lost := 0
		for _, b := range a.entries {
			lost += b.Count
		}
		for _, b := range a.overflow {
			lost += b.Count
		}
		a.stats.Lost += uint64(lost)
		a.entries = make(map[FailureKey]*FailureBatch)
		a.overflow = make(map[string]*FailureBatch)
		a.mu.Unlock()
		a.cfg.Logger.Error("audit records lost: the database did not take them before shutdown", "records", a.cfg.Name, "count", lost, "error", err)
		return err
	}
}

// LastUseConfig configures a LastUseTracker.
type LastUseConfig struct {
	// Interval between flushes: default and maximum 1 minute.
	Interval time.Duration
	// MaxIDs caps the credential ids kept between flushes (default
	// 100000); reaching three quarters of it triggers an early flush, and
	// ids beyond it are dropped until the next flush (see Dropped).
	MaxIDs int
	// Flush stores the last-use times, one per credential id, each the
	// latest seen. Required. On error the times are kept for the next
	// flush. It must not keep the map. Calls never overlap.
	Flush func(ctx context.Context, lastUse map[int64]time.Time) error
	// Logger receives flush errors from Run; nil discards them.
	Logger *slog.Logger
}

// LastUseTracker aggregates last-use timestamps per credential id in memory
// and writes them through its Flush callback at least once per interval, so
// the token endpoint records last use without a database write per
// request. It is safe for concurrent use.
type LastUseTracker struct {
	cfg LastUseConfig

	mu      sync.Mutex
	pending map[int64]time.Time
	dropped uint64
	closed  bool

	flushMu  sync.Mutex
	early    chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
}

// NewLastUseTracker returns a LastUseTracker for cfg. Start its periodic
// flushing with Run and end it with Close.
func NewLastUseTracker(cfg LastUseConfig) (*LastUseTracker, error) {
	if cfg.Flush == nil {
		return nil, errors.New("oauth: last-use tracker: Flush is required")
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Minute
	}
	if cfg.Interval < 0 || cfg.Interval > time.Minute {
		return nil, errors.New("oauth: last-use tracker: Interval must be between 0 and 1 minute")
	}
	if cfg.MaxIDs == 0 {
		cfg.MaxIDs = 100000
	}
	if cfg.MaxIDs < 1 {
		return nil, errors.New("oauth: last-use tracker: MaxIDs must be positive")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &LastUseTracker{
		cfg:     cfg,
		pending: make(map[int64]time.Time),
		early:   make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}, nil
}

// Touch records that credential id was used at at, keeping the latest time
// per id. After Close it does nothing.
func (t *LastUseTracker) Touch(id int64, at time.Time) {
	at = at.UTC()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.merge(id, at)
	if len(t.pending) >= t.cfg.MaxIDs*3/4 {
		select {
		case t.early <- struct{}{}:
		default:
		}
	}
}

// merge keeps the later of at and the pending time of id; t.mu is held.
func (t *LastUseTracker) merge(id int64, at time.Time) {
	prev, ok := t.pending[id]
	switch {
	case ok:
		if at.After(prev) {
			t.pending[id] = at
		}
	case len(t.pending) >= t.cfg.MaxIDs:
		t.dropped++
	default:
		t.pending[id] = at
	}
}

// Pending returns the number of ids waiting for the next flush.
func (t *LastUseTracker) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// Dropped returns how many touches of new ids were dropped because MaxIDs
// ids were already pending.
func (t *LastUseTracker) Dropped() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dropped
}

// Flush writes the pending times through the Flush callback. On error they
// are merged back (keeping the latest per id) and the error is returned.
func (t *LastUseTracker) Flush(ctx context.Context) error {
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	t.mu.Lock()
	batch := t.pending
	t.pending = make(map[int64]time.Time)
	t.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	requeue := make(map[int64]time.Time, len(batch))
	for id, at := range batch {
		requeue[id] = at
	}
	if err := t.cfg.Flush(ctx, batch); err != nil {
		t.mu.Lock()
		for id, at := range requeue {
			t.merge(id, at)
		}
		t.mu.Unlock()
		return err
	}
	return nil
}

// Run flushes every Interval, and early when many ids are pending, until
// ctx is done or Close is called; flush errors are logged. Call Close at
// shutdown, with a live context, for the last flush.
func (t *LastUseTracker) Run(ctx context.Context) {
	ticker := time.NewTicker(t.cfg.Interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.stop:
			return
		case <-ticker.C:
		case <-t.early:
		}
		if err := t.Flush(ctx); err != nil {
			t.cfg.Logger.ErrorContext(ctx, "oauth: flush last use", "error", err)
		}
	}
}

// Close stops Run, refuses further touches and flushes what is left,
// returning the flush error (the times then stay pending in memory).
func (t *LastUseTracker) Close(ctx context.Context) error {
	t.stopOnce.Do(func() { close(t.stop) })
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	return t.Flush(ctx)
}
