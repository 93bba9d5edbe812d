package oauth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// batchSink collects what a FailureAggregator flushes.
type batchSink struct {
	mu      sync.Mutex
	batches [][]FailureBatch
	flushed chan struct{}
}

func newBatchSink() *batchSink { return &batchSink{flushed: make(chan struct{}, 100)} }

func (s *batchSink) flush(_ context.Context, b []FailureBatch) {
	s.mu.Lock()
	s.batches = append(s.batches, b)
	s.mu.Unlock()
	s.flushed <- struct{}{}
}

func (s *batchSink) all() [][]FailureBatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]FailureBatch(nil), s.batches...)
}

func TestFailureAggregatorSummarises(t *testing.T) {
	sink := newBatchSink()
	a, err := NewFailureAggregator(FailureAggregatorConfig{Flush: sink.flush})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	attack := FailureKey{Agency: "", ClientID: "ecd_prd_unknownunknownunkn", Addr: "203.0.113.9", Reason: ReasonUnknownClient}
	for i := range 10000 {
		a.Record(attack, t0.Add(time.Duration(i)*time.Millisecond))
	}
	wrong := FailureKey{Agency: "cook-county", ClientID: testID, Addr: "198.51.100.4", Reason: ReasonInvalidSecret}
	a.Record(wrong, t0.Add(time.Second))
	a.Record(wrong, t0) // out of order: First must still be the earliest
	a.Record(FailureKey{Agency: "cook-county", ClientID: testID, Addr: "198.51.100.4", Reason: ReasonRevoked}, t0)

	if got := a.Pending(); got != 3 {
		t.Fatalf("Pending() = %d, want 3", got)
	}
	a.Flush(ctx)
	a.Flush(ctx) // nothing new: no second call
	batches := sink.all()
	if len(batches) != 1 {
		t.Fatalf("flush calls = %d, want 1", len(batches))
	}
	want := []FailureBatch{
		{FailureKey: attack, Count: 10000, First: t0, Last: t0.Add(9999 * time.Millisecond)},
		{FailureKey: wrong, Count: 2, First: t0, Last: t0.Add(time.Second)},
		{FailureKey: FailureKey{Agency: "cook-county", ClientID: testID, Addr: "198.51.100.4", Reason: ReasonRevoked}, Count: 1, First: t0, Last: t0},
	}
	got := batches[0]
	if len(got) != len(want) {
		t.Fatalf("batch = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].FailureKey != want[i].FailureKey || got[i].Count != want[i].Count ||
			!got[i].First.Equal(want[i].First) || !got[i].Last.Equal(want[i].Last) || got[i].Overflow {
			t.Fatalf("batch[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	if a.Pending() != 0 {
		t.Fatalf("Pending() after flush = %d", a.Pending())
	}
}

func TestFailureAggregatorIsBounded(t *testing.T) {
	sink := newBatchSink()
	a, err := NewFailureAggregator(FailureAggregatorConfig{Flush: sink.flush, MaxKeys: 50})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	for i := range 5000 {
		a.Record(FailureKey{ClientID: fmt.Sprintf("ecd_stg_%020d", i), Addr: fmt.Sprintf("10.0.%d.%d", i/256, i%256), Reason: ReasonUnknownClient}, t0)
	}
	for i := range 500 {
		a.Record(FailureKey{ClientID: "x", Addr: "10.9.9.9", Reason: fmt.Sprintf("reason-%d", i)}, t0)
	}
	if got := a.Pending(); got > 50+maxOverflowReasons+1 {
		t.Fatalf("Pending() = %d, want at most %d", got, 50+maxOverflowReasons+1)
	}
	a.Flush(context.Background())
	batch := sink.all()[0]
	total, overflow := 0, 0
	for _, b := range batch {
		total += b.Count
		if b.Overflow {
			overflow += b.Count
			if b.ClientID != "" || b.Addr != "" || b.Agency != "" {
				t.Fatalf("overflow batch carries a key: %+v", b)
			}
		}
	}
	if total != 5500 || overflow != 5450 {
		t.Fatalf("counted %d (overflow %d), want 5500 (overflow 5450)", total, overflow)
	}
	if !batch[len(batch)-1].Overflow || batch[0].Overflow {
		t.Fatal("overflow batches are not last")
	}
}

func TestFailureAggregatorSanitises(t *testing.T) {
	sink := newBatchSink()
	a, err := NewFailureAggregator(FailureAggregatorConfig{Flush: sink.flush})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := GenerateClientSecret(EnvProduction)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	tests := []struct {
		name   string
		id     string
		wantID string
	}{
		{"secret in the client_id field", secret.Reveal(), "[REDACTED]"},
		{"control characters", "ecd\n_stg\x00", "ecd?_stg?"},
		{"invalid UTF-8", "ecd\xff", "ecd?"},
		{"overlong", strings.Repeat("a", 1000), strings.Repeat("a", 128)},
	}
	for _, tt := range tests {
		if got := AuditClientID(tt.id); got != tt.wantID {
			t.Errorf("%s: AuditClientID() = %q, want %q", tt.name, got, tt.wantID)
		}
		a.Record(FailureKey{ClientID: tt.id, Addr: "192.0.2.1\n", Reason: ReasonUnknownClient}, t0)
	}
	a.Flush(context.Background())
	for _, b := range sink.all()[0] {
		if strings.Contains(b.ClientID, secret.Reveal()[9:]) || strings.ContainsAny(b.ClientID+b.Addr, "\n\x00") || len(b.ClientID) > 128 {
			t.Fatalf("unsafe batch key %+v", b.FailureKey)
		}
	}
}

func TestFailureAggregatorRunAndClose(t *testing.T) {
	sink := newBatchSink()
	a, err := NewFailureAggregator(FailureAggregatorConfig{Flush: sink.flush, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	done := make(chan struct{})
	go func() {
		a.Run(ctx)
		close(done)
	}()
	a.Record(FailureKey{ClientID: "a", Reason: ReasonInvalidSecret}, time.Now())
	select {
	case <-sink.flushed:
	case <-time.After(5 * time.Second):
		t.Fatal("no periodic flush within 5s")
	}
	a.Record(FailureKey{ClientID: "b", Reason: ReasonInvalidSecret}, time.Now())
	a.Close(ctx)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	a.Record(FailureKey{ClientID: "c", Reason: ReasonInvalidSecret}, time.Now())
	if a.Pending() != 0 {
		t.Fatal("Record after Close kept a key")
	}
	var ids []string
	for _, b := range sink.all() {
		for _, f := range b {
			ids = append(ids, f.ClientID)
		}
	}
	if strings.Join(ids, ",") != "a,b" {
		t.Fatalf("flushed client ids = %v, want a then b", ids)
	}
}

func TestNewFailureAggregatorConfig(t *testing.T) {
	noop := func(context.Context, []FailureBatch) {}
	tests := []struct {
		name    string
		cfg     FailureAggregatorConfig
		wantErr bool
	}{
		{"defaults", FailureAggregatorConfig{Flush: noop}, false},
		{"no callback", FailureAggregatorConfig{}, true},
		{"negative interval", FailureAggregatorConfig{Flush: noop, Interval: -time.Second}, true},
		{"negative max keys", FailureAggregatorConfig{Flush: noop, MaxKeys: -1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewFailureAggregator(tt.cfg); (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

// lastUseStore is the Flush target of a LastUseTracker: a map that keeps the
// latest time per id, failing on demand.
type lastUseStore struct {
	mu      sync.Mutex
	fail    bool
	calls   int
	stored  map[int64]time.Time
	flushed chan struct{}
}

func newLastUseStore() *lastUseStore {
	return &lastUseStore{stored: map[int64]time.Time{}, flushed: make(chan struct{}, 100)}
}

func (s *lastUseStore) flush(_ context.Context, m map[int64]time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.fail {
		return errors.New("database is locked")
	}
	for id, at := range m {
		if at.After(s.stored[id]) {
			s.stored[id] = at
		}
	}
	s.flushed <- struct{}{}
	return nil
}

func (s *lastUseStore) setFail(v bool) {
	s.mu.Lock()
	s.fail = v
	s.mu.Unlock()
}

func (s *lastUseStore) get(id int64) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stored[id]
}

func TestLastUseTrackerKeepsLatestAndRequeues(t *testing.T) {
	store := newLastUseStore()
	tr, err := NewLastUseTracker(LastUseConfig{Flush: store.flush})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	tr.Touch(1, t0.Add(2*time.Second))
	tr.Touch(1, t0) // older: ignored
	tr.Touch(2, t0)

	store.setFail(true)
	if err := tr.Flush(ctx); err == nil {
		t.Fatal("Flush() error = nil, want the store error")
	}
	if tr.Pending() != 2 {
		t.Fatalf("Pending() after a failed flush = %d, want 2", tr.Pending())
	}
	// Newer and older uses arrive while the store is down.
	tr.Touch(1, t0.Add(time.Second))
	tr.Touch(2, t0.Add(5*time.Second))
	tr.Touch(3, t0)

	store.setFail(false)
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[int64]time.Time{1: t0.Add(2 * time.Second), 2: t0.Add(5 * time.Second), 3: t0}
	for id, at := range want {
		if got := store.get(id); !got.Equal(at) {
			t.Fatalf("stored[%d] = %v, want %v", id, got, at)
		}
	}
	calls := store.calls
	if err := tr.Flush(ctx); err != nil || store.calls != calls {
		t.Fatalf("empty Flush() called the store (%d -> %d calls, err %v)", calls, store.calls, err)
	}
}

func TestLastUseTrackerRunAndClose(t *testing.T) {
	store := newLastUseStore()
	tr, err := NewLastUseTracker(LastUseConfig{Flush: store.flush, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	done := make(chan struct{})
	go func() {
		tr.Run(ctx)
		close(done)
	}()
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	tr.Touch(7, t0)
	select {
	case <-store.flushed:
	case <-time.After(5 * time.Second):
		t.Fatal("no periodic flush within 5s")
	}
	tr.Touch(8, t0)
	if err := tr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	if !store.get(7).Equal(t0) || !store.get(8).Equal(t0) {
		t.Fatalf("stored 7=%v 8=%v, want both %v", store.get(7), store.get(8), t0)
	}
	tr.Touch(9, t0)
	if tr.Pending() != 0 {
		t.Fatal("Touch after Close kept an id")
	}
}

func TestLastUseTrackerBoundedWithEarlyFlush(t *testing.T) {
	store := newLastUseStore()
	tr, err := NewLastUseTracker(LastUseConfig{Flush: store.flush, MaxIDs: 8})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for id := range int64(20) {
		tr.Touch(id, t0)
	}
	if tr.Pending() != 8 || tr.Dropped() != 12 {
		t.Fatalf("Pending() = %d, Dropped() = %d; want 8 and 12", tr.Pending(), tr.Dropped())
	}
	// Reaching three quarters of MaxIDs asks Run for an early flush, long
	// before the one-minute interval.
	ctx := t.Context()
	go tr.Run(ctx)
	select {
	case <-store.flushed:
	case <-time.After(5 * time.Second):
		t.Fatal("no early flush")
	}
	if err := tr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for id := range int64(8) {
		if !store.get(id).Equal(t0) {
			t.Fatalf("id %d not stored", id)
		}
	}
}

func TestNewLastUseTrackerConfig(t *testing.T) {
	noop := func(context.Context, map[int64]time.Time) error { return nil }
	tests := []struct {
		name    string
		cfg     LastUseConfig
		wantErr bool
	}{
		{"defaults", LastUseConfig{Flush: noop}, false},
		{"no callback", LastUseConfig{}, true},
		{"interval above a minute", LastUseConfig{Flush: noop, Interval: 2 * time.Minute}, true},
		{"negative interval", LastUseConfig{Flush: noop, Interval: -1}, true},
		{"negative max", LastUseConfig{Flush: noop, MaxIDs: -1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewLastUseTracker(tt.cfg); (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}
