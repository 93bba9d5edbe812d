package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"keyconsole/kms"
	"keyconsole/models"
	"keyconsole/services/audit"
)

// TestResult is the outcome of a test event, as kept in the delivery log.
type TestResult struct {
	Attempt models.WebhookAttempt
	// Verified is true for a new-secret-only test the receiver accepted.
	Verified bool
}

// SendTest sends one signed test event to an endpoint now (no retry), keeps
// the outcome in its delivery log and audits it. With newOnly, the event is
// signed with the new secret of an open rotation window alone; a 2xx answer
// records that the receiver verified the new secret, so the window can be
// ended early and safely. Without a window, newOnly is ErrNoRotation. Over
// the endpoint's limit (TestEventBurst, then one per TestEventInterval) it is
// a *TestLimitError and nothing is sent, logged or audited.
func (s *Service) SendTest(ctx context.Context, by Caller, agencyID, id int64, newOnly bool) (TestResult, error) {
	e, err := s.store.Endpoint(ctx, agencyID, id)
	if err != nil {
		return TestResult{}, fmt.Errorf("webhooks: test %d: %w", id, err)
	}
	now := s.clock()
	if newOnly && !e.InOverlap(now) {
		return TestResult{}, fmt.Errorf("webhooks: test %d: %w", id, ErrNoRotation)
	}
	if wait, ok := s.tests.take(e.ID, now); !ok {
		return TestResult{}, fmt.Errorf("webhooks: test %d: %w", id, &TestLimitError{RetryAfter: wait})
	}
	secs, label, err := s.signingSecrets(ctx, e, now, newOnly)
	if err != nil {
		return TestResult{}, fmt.Errorf("webhooks: test %d: %w", id, err)
	}
	defer func() {
		for _, sec := range secs {
			sec.wipe()
		}
	}()
	kind := models.AttemptTest
	if newOnly {
		kind = models.AttemptTestNewSecret
	}
	data, _ := json.Marshal(map[string]string{
		"message":     "Test event from keyconsole",
		"endpoint":    e.Name,
		"environment": e.Environment,
		"signed_with": label,
	})
	body, err := decodePayload(EventTest, data, now)
	if err != nil {
		return TestResult{}, fmt.Errorf("webhooks: test %d: %w", id, err)
	}
	msgID := NewMessageID()
	res := s.deliverer.Deliver(ctx, Delivery{URL: e.URL, MsgID: msgID, Body: body, Secrets: secs})
	s.count(res)
	a := attemptOf(e, nil, msgID, EventTest, kind, 1, label, res, s.clock())
	verified := newOnly && res.OK()
	err = s.db.Tx(context.WithoutCancel(ctx), func(ctx context.Context) error {
		if err := s.store.AddAttempt(ctx, &a); err != nil {
			return err
		}
		cols := map[string]any{"last_delivery_at": a.AttemptedAt}
		if verified {
			cols["new_secret_verified_at"] = a.AttemptedAt
		}
		// The secret may have changed while the test ran: then nothing about
		// the endpoint is recorded, only the log entry and the audit record.
		if _, err := s.store.UpdateEndpointIf(ctx, agencyID, id, e.SecretVersion, e.PreviousVersion, cols); err != nil {
			return err
		}
		outcome, reason := audit.OutcomeSuccess, ""
		if !res.OK() {
			outcome, reason = audit.OutcomeFailure, res.Err
		}
		details := map[string]string{
			"msg_id": msgID, "signed_with": label, "kind": kind,
			"status": strconv.Itoa(res.StatusCode), "latency_ms": strconv.FormatInt(res.Latency.Milliseconds(), 10),
		}
		if res.Refused {
			details["refused"] = "true"
		}
		return s.record(ctx, by, e, audit.ActionWebhookTestEvent, outcome, reason, details)
	})
	if err != nil {
		return TestResult{}, fmt.Errorf("webhooks: test %d: %w", id, err)
	}
	return TestResult{Attempt: a, Verified: verified}, nil
}

func (s *Service) count(res Result) {
	switch {
	case res.OK():
		s.counters.succeeded.Add(1)
	case res.Refused:
		s.counters.refused.Add(1)
	default:
		s.counters.failed.Add(1)
	}
}

func attemptOf(e models.WebhookEndpoint, deliveryID *int64, msgID, eventType, kind string, n int, label string, res Result, at time.Time) models.WebhookAttempt {
	return models.WebhookAttempt{
		AgencyID: e.AgencyID, EndpointID: e.ID, DeliveryID: deliveryID, MsgID: msgID, EventType: eventType, Kind: kind,
		Attempt: n, SignedWith: label, StatusCode: res.StatusCode, LatencyMS: res.Latency.Milliseconds(),
		ResponseHead: res.ResponseHead, Error: res.Err, Refused: res.Refused, OK: res.OK(), AttemptedAt: at,
	}
}

// WorkerOptions configures a Worker; zero fields take the defaults.
type WorkerOptions struct {
	// ID names the worker in claim tokens (a replica's host name, say).
	ID string
	// Interval is the pause between polls when the queue is empty (1 s).
	Interval time.Duration
	// Batch is how many due deliveries one poll takes (50).
	Batch int
	// Concurrency is how many attempts run at once (8).
	Concurrency int
	// Lease is how long a claim holds before another worker may take the
	// delivery again (2 minutes; longer than an attempt's timeout).
	Lease time.Duration
	// SweepEvery is how often expired rotation windows are ended (30 s).
	SweepEvery time.Duration
	// Logger receives worker errors; nothing is logged when nil.
	Logger *slog.Logger
}

// Worker sends queued deliveries. Several workers, in one process or in
// several replicas on one database, may run at once: each delivery attempt is
// claimed by exactly one of them.
//
// Stopping is in two steps so that a clean stop sends nothing twice: the end
// of the context given to Run or RunOnce stops claiming, while attempts
// already claimed keep going (the receiver may be acting on them already);
// Shutdown then waits for those and cancels them only when its own deadline
// passes. A cancelled attempt is retried later with the same webhook-id.
type Worker struct {
	s *Service
	o WorkerOptions

	// hard ends the attempts still in flight when Shutdown's grace is over.
	hard  context.Context
	abort context.CancelFunc

	mu     sync.Mutex
	active int           // Run and RunOnce calls in progress
	idle   chan struct{} // closed when active drops to zero
}

// NewWorker returns a worker for the service's queue.
func (s *Service) NewWorker(o WorkerOptions) *Worker {
	if o.ID == "" {
		o.ID = "worker"
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Batch <= 0 {
		o.Batch = 50
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	hard, abort := context.WithCancel(context.Background())
	return &Worker{s: s, o: o, hard: hard, abort: abort}
}

func (w *Worker) enter() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.active == 0 {
		w.idle = make(chan struct{})
	}
	w.active++
}

func (w *Worker) leave() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.active--
	if w.active == 0 {
		close(w.idle)
	}
}

// Run delivers until ctx ends, polling the queue and ending expired rotation
// windows. Once ctx ends it claims nothing more and returns ctx's error when
// the attempts in flight have finished (see Shutdown).
func (w *Worker) Run(ctx context.Context) error {
	w.enter()
	defer w.leave()
	var lastSweep time.Time
	for ctx.Err() == nil {
		if time.Since(lastSweep) >= w.o.SweepEvery {
			if _, err := w.s.EndExpiredRotations(ctx); err != nil && ctx.Err() == nil {
				w.o.Logger.Error("webhook rotation sweep failed", "error", err)
			}
			lastSweep = time.Now()
		}
		n, err := w.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			w.o.Logger.Error("webhook delivery poll failed", "error", err)
		}
		if n > 0 && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(w.o.Interval):
		}
	}
	return ctx.Err()
}

// Shutdown waits, until ctx ends, for the attempts in flight of a worker
// whose Run context has ended; then it cancels those still running and waits
// for their outcome to be recorded. It returns ctx's error if it had to
// cancel any. The worker claims nothing after Shutdown.
func (w *Worker) Shutdown(ctx context.Context) error {
	w.mu.Lock()
	active, idle := w.active, w.idle
	w.mu.Unlock()
	if active == 0 {
		w.abort()
		return nil
	}
	w.o.Logger.Info("stopped claiming webhook deliveries; waiting for the attempts in flight")
	select {
	case <-idle:
		w.abort()
		return nil
	case <-ctx.Done():
	}
	w.o.Logger.Warn("webhook attempts still in flight at the end of the shutdown grace are cancelled and will be retried")
	w.abort()
	<-idle
	return ctx.Err()
}

// RunOnce takes one batch of due deliveries, makes one attempt of each it
// manages to claim, and returns how many it attempted. When ctx ends it
// claims no more but lets the attempts it started finish.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	w.enter()
	defer w.leave()
	now := w.s.clock()
	if _, err := w.s.store.ReleaseExpiredClaims(ctx, now); err != nil {
		return 0, err
	}
	due, err := w.s.store.DueDeliveries(ctx, now, w.o.Batch)
	if err != nil {
		return 0, err
	}
	// Attempts outlive ctx: they end only with the worker's hard stop.
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer context.AfterFunc(w.hard, cancel)()
	sem := make(chan struct{}, w.o.Concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	n := 0
	for _, d := range due {
		// A free slot first, then the claim, so that no claimed delivery
		// waits for a slot while its lease runs.
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		token := w.o.ID + ":" + rand.Text()
		var claimed bool
		err := w.s.db.Tx(actx, func(ctx context.Context) error {
			var err error
			claimed, err = w.s.store.ClaimDelivery(ctx, d.ID, token, w.s.clock().Add(w.o.Lease), w.s.clock())
			return err
		})
		if err != nil {
			<-sem
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			break
		}
		if !claimed {
			<-sem
			continue
		}
		n++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := w.attempt(actx, d, token); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return n, errors.Join(errs...)
}

// attempt makes one attempt of a claimed delivery and records its outcome.
func (w *Worker) attempt(ctx context.Context, d models.WebhookDelivery, token string) error {
	s := w.s
	e, err := s.store.Endpoint(ctx, d.AgencyID, d.EndpointID)
	if err != nil {
		return fmt.Errorf("webhooks: delivery %d: %w", d.ID, err)
	}
	fin := context.WithoutCancel(ctx)
	if !e.Enabled {
		// Disabled after it was queued: wait for it to be enabled again.
		return s.db.Tx(fin, func(ctx context.Context) error {
			_, err := s.store.FinishDelivery(ctx, d.ID, token, map[string]any{"status": models.DeliveryPending, "claim_token": "", "lease_until": nil, "updated_at": s.clock()})
			return err
		})
	}
	now := s.clock()
	secs, label, err := s.signingSecrets(ctx, e, now, false)
	if err != nil {
		// Nothing was sent; try again a minute later without using up an attempt.
		msg := "the endpoint's secret could not be opened"
		if errors.Is(err, kms.ErrUnavailable) {
			msg = "encryption is unavailable"
		}
		ferr := s.db.Tx(fin, func(ctx context.Context) error {
			_, err := s.store.FinishDelivery(ctx, d.ID, token, map[string]any{
				"status": models.DeliveryPending, "claim_token": "", "lease_until": nil, "next_attempt_at": now.Add(time.Minute),
				"last_error": msg, "updated_at": now,
			})
			return err
		})
		return errors.Join(fmt.Errorf("webhooks: delivery %d: %w", d.ID, err), ferr)
	}
	res := s.deliverer.Deliver(ctx, Delivery{URL: e.URL, MsgID: d.MsgID, Body: d.Payload, Secrets: secs})
	for _, sec := range secs {
		sec.wipe()
	}
	s.count(res)
	at := s.clock()
	n := d.Attempts + 1
	cols := map[string]any{"attempts": n, "claim_token": "", "lease_until": nil, "last_error": res.Err, "updated_at": at}
	switch wait, again := s.retry.NextAttempt(n); {
	case res.OK():
		cols["status"], cols["completed_at"] = models.DeliverySucceeded, at
	case res.Retryable() && again:
		cols["status"], cols["next_attempt_at"] = models.DeliveryPending, at.Add(wait)
		s.counters.retried.Add(1)
	default:
		cols["status"], cols["completed_at"] = models.DeliveryFailed, at
	}
	id := d.ID
	a := attemptOf(e, &id, d.MsgID, d.EventType, models.AttemptEvent, n, label, res, at)
	return s.db.Tx(fin, func(ctx context.Context) error {
		ok, err := s.store.FinishDelivery(ctx, d.ID, token, cols)
		if err != nil {
			return err
		}
		if !ok {
			// The lease ran out and another worker took the delivery over; the
			// attempt still happened, so it is logged.
			w.o.Logger.Warn("webhook delivery lease lost", "delivery_id", d.ID)
		}
		if err := s.store.AddAttempt(ctx, &a); err != nil {
			return err
		}
		_, err = s.store.UpdateEndpointIf(ctx, e.AgencyID, e.ID, e.SecretVersion, e.PreviousVersion, map[string]any{"last_delivery_at": at})
		return err
	})
}
