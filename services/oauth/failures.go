package oauth

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Reasons a token request is refused, for FailureKey.Reason.
const (
	ReasonMalformedRequest = "malformed_request"
	ReasonUnsupportedGrant = "unsupported_grant_type"
	ReasonUnknownClient    = "unknown_client"
	ReasonInvalidSecret    = "invalid_secret"
	ReasonRevoked          = "revoked"
	ReasonExpired          = "expired"
	ReasonInvalidScope     = "invalid_scope"
	ReasonRateLimited      = "rate_limited"
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
	if LooksLikeClientSecret(id) {
		return redacted
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

// FailureBatch summarises the refused requests of one key in one interval.
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

// FailureAggregatorConfig configures a FailureAggregator.
type FailureAggregatorConfig struct {
	// Interval between flushes (default 1 minute).
	Interval time.Duration
	// MaxKeys caps the distinct keys kept between flushes (default 10000);
	// further keys are counted in one overflow batch per reason.
	MaxKeys int
	// Flush receives each non-empty batch, sorted by agency, client_id,
	// address and reason, overflow batches last. Required. It must not keep
	// the slice. Calls never overlap.
	Flush func(ctx context.Context, batch []FailureBatch)
}

// FailureAggregator collects refused token requests in memory and hands a
// summary to its Flush callback every interval, so an attack produces one
// audit record per key and interval instead of one per request. It is safe
// for concurrent use.
type FailureAggregator struct {
	cfg FailureAggregatorConfig

	mu       sync.Mutex
	entries  map[FailureKey]*FailureBatch
	overflow map[string]*FailureBatch
	closed   bool

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
		cfg.Interval = time.Minute
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = 10000
	}
	if cfg.Interval < 0 || cfg.MaxKeys < 1 {
		return nil, errors.New("oauth: failure aggregator: Interval and MaxKeys must be positive")
	}
	return &FailureAggregator{
		cfg:      cfg,
		entries:  make(map[FailureKey]*FailureBatch),
		overflow: make(map[string]*FailureBatch),
		stop:     make(chan struct{}),
	}, nil
}

// Record counts one refused request of key at time at. The client_id is
// sanitised with AuditClientID and the other fields are bounded in length.
// After Close it does nothing.
func (a *FailureAggregator) Record(key FailureKey, at time.Time) {
	key.Agency = auditField(key.Agency, maxAuditFieldLen)
	key.ClientID = AuditClientID(key.ClientID)
	key.Addr = auditField(key.Addr, maxAuditFieldLen)
	key.Reason = auditField(key.Reason, maxAuditFieldLen)
	at = at.UTC()

	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	b, ok := a.entries[key]
	if !ok {
		if len(a.entries) >= a.cfg.MaxKeys {
			b = a.overflowBatch(key.Reason, at)
		} else {
			b = &FailureBatch{FailureKey: key, First: at, Last: at}
			a.entries[key] = b
		}
	}
	b.Count++
	if at.Before(b.First) {
		b.First = at
	}
	if at.After(b.Last) {
		b.Last = at
	}
}

func (a *FailureAggregator) overflowBatch(reason string, at time.Time) *FailureBatch {
	if b, ok := a.overflow[reason]; ok {
		return b
	}
	if len(a.overflow) >= maxOverflowReasons {
		reason = overflowOtherReason
		if b, ok := a.overflow[reason]; ok {
			return b
		}
	}
	b := &FailureBatch{FailureKey: FailureKey{Reason: reason}, First: at, Last: at, Overflow: true}
	a.overflow[reason] = b
	return b
}

// Pending returns the number of keys (overflow batches included) waiting
// for the next flush.
func (a *FailureAggregator) Pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.entries) + len(a.overflow)
}

// Flush hands everything collected so far to the Flush callback (when there
// is anything) and starts a new interval.
func (a *FailureAggregator) Flush(ctx context.Context) {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	a.mu.Lock()
	entries, overflow := a.entries, a.overflow
	a.entries = make(map[FailureKey]*FailureBatch)
	a.overflow = make(map[string]*FailureBatch)
	a.mu.Unlock()
	if len(entries) == 0 && len(overflow) == 0 {
		return
	}
	batch := make([]FailureBatch, 0, len(entries)+len(overflow))
	for _, b := range entries {
		batch = append(batch, *b)
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
	a.cfg.Flush(ctx, batch)
}

// Run flushes every Interval until ctx is done or Close is called. Call
// Close at shutdown, with a live context, for the last flush.
func (a *FailureAggregator) Run(ctx context.Context) {
	t := time.NewTicker(a.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.stop:
			return
		case <-t.C:
			a.Flush(ctx)
		}
	}
}

// Close stops Run, refuses further records and flushes what is left.
func (a *FailureAggregator) Close(ctx context.Context) {
	a.stopOnce.Do(func() { close(a.stop) })
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.Flush(ctx)
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
