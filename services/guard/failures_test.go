package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"keyconsole/services/oauth"
)

// batchSink collects what a FailureAggregator flushes; with fail set it
// writes the first accept batches of each call and then fails.
type batchSink struct {
	mu      sync.Mutex
	batches [][]FailureBatch
	fail    bool
	accept  int
	flushed chan struct{}
}

// testID is a client_id of the shape the console generates.
const testID = "ecd_stg_abcdefghijklmnopqrst"

func newBatchSink() *batchSink { return &batchSink{flushed: make(chan struct{}, 1000)} }

func (s *batchSink) flush(_ context.Context, b []FailureBatch) (int, error) {
	s.mu.Lock()
	n := len(b)
	var err error
	if s.fail {
		n, err = min(s.accept, len(b)), errors.New("database or disk is full")
	}
	if n > 0 {
		s.batches = append(s.batches, append([]FailureBatch(nil), b[:n]...))
	}
	s.mu.Unlock()
	if err == nil {
		s.flushed <- struct{}{}
	}
	return n, err
}

func (s *batchSink) setFail(fail bool, accept int) {
	s.mu.Lock()
	s.fail, s.accept = fail, accept
	s.mu.Unlock()
}

// counts sums the written counts per client_id.
func (s *batchSink) counts() map[string]int {
	out := map[string]int{}
	for _, b := range s.all() {
		for _, f := range b {
			out[f.ClientID] += f.Count
		}
	}
	return out
}

func (s *batchSink) all() [][]FailureBatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]FailureBatch(nil), s.batches...)
}

func TestFailureAggregatorSummarises(t *testing.T) {
	sink := newBatchSink()
	a, err := NewFailureAggregator(FailureAggregatorConfig{Flush: sink.flush, Immediate: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	attack := FailureKey{Agency: "", ClientID: "ecd_prd_unknownunknownunkn", Addr: "203.0.113.9", Reason: oauth.ReasonUnknownClient}
	for i := range 10000 {
		a.Record(attack, t0.Add(time.Duration(i)*time.Millisecond))
	}
	wrong := FailureKey{Agency: "cook-county", ClientID: testID, Addr: "198.51.100.4", Reason: oauth.ReasonInvalidSecret}
	a.Record(wrong, t0.Add(time.Second))
	a.Record(wrong, t0) // out of order: First must still be the earliest
	a.Record(FailureKey{Agency: "cook-county", ClientID: testID, Addr: "198.51.100.4", Reason: oauth.ReasonRevoked}, t0)

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
		{FailureKey: FailureKey{Agency: "cook-county", ClientID: testID, Addr: "198.51.100.4", Reason: oauth.ReasonRevoked}, Count: 1, First: t0, Last: t0},
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
	a, err := NewFailureAggregator(FailureAggregatorConfig{Flush: sink.flush, MaxKeys: 50, Immediate: -1})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	for i := range 5000 {
		a.Record(FailureKey{ClientID: fmt.Sprintf("ecd_stg_%020d", i), Addr: fmt.Sprintf("10.0.%d.%d", i/256, i%256), Reason: oauth.ReasonUnknownClient}, t0)
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
	secret, err := oauth.GenerateClientSecret(oauth.EnvProduction)
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
		a.Record(FailureKey{ClientID: tt.id, Addr: "192.0.2.1\n", Reason: oauth.ReasonUnknownClient}, t0)
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
	a, err := NewFailureAggregator(FailureAggregatorConfig{Flush: sink.flush, Interval: 20 * time.Millisecond, Immediate: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	done := make(chan struct{})
	go func() {
		a.Run(ctx)
		close(done)
	}()
	a.Record(FailureKey{ClientID: "a", Reason: oauth.ReasonInvalidSecret}, time.Now())
	select {
	case <-sink.flushed:
	case <-time.After(5 * time.Second):
		t.Fatal("no periodic flush within 5s")
	}
	a.Record(FailureKey{ClientID: "b", Reason: oauth.ReasonInvalidSecret}, time.Now())
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	// A refusal answered after Close (a request finishing during the
	// shutdown) is written at once.
	a.Record(FailureKey{ClientID: "c", Reason: oauth.ReasonInvalidSecret}, time.Now())
	if a.Pending() != 0 {
		t.Fatal("Record after Close kept a key")
	}
	var ids []string
	for _, b := range sink.all() {
		for _, f := range b {
			ids = append(ids, f.ClientID)
		}
	}
	if strings.Join(ids, ",") != "a,b,c" {
		t.Fatalf("flushed client ids = %v, want a, b, c in that order", ids)
	}
}

func TestFailureAggregatorWritesFirstRefusalAtOnce(t *testing.T) {
	sink := newBatchSink()
	a, err := NewFailureAggregator(FailureAggregatorConfig{Flush: sink.flush, Immediate: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	k := FailureKey{ClientID: "k", Addr: "192.0.2.1", Reason: oauth.ReasonInvalidSecret}
	a.Record(k, t0)
	if got := sink.all(); len(got) != 1 || len(got[0]) != 1 || got[0][0].Count != 1 || !got[0][0].First.Equal(t0) || got[0][0].ClientID != "k" {
		t.Fatalf("after the first refusal the sink holds %+v, want one record of count 1", got)
	}
	a.Record(k, t0.Add(time.Second))
	a.Record(k, t0.Add(2*time.Second))
	if len(sink.all()) != 1 || a.Pending() != 1 {
		t.Fatalf("repeats were written at once (%d writes) or are not pending (%d)", len(sink.all()), a.Pending())
	}
	// The cap of writes at once: the third new key of the interval waits.
	a.Record(FailureKey{ClientID: "l", Reason: oauth.ReasonInvalidSecret}, t0)
	a.Record(FailureKey{ClientID: "m", Reason: oauth.ReasonInvalidSecret}, t0)
	if len(sink.all()) != 2 {
		t.Fatalf("writes at once: %d, want 2 (the cap)", len(sink.all()))
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	last := sink.all()[2]
	if len(last) != 2 || last[0].ClientID != "k" || last[0].Count != 2 || !last[0].First.Equal(t0.Add(time.Second)) || last[1].ClientID != "m" {
		t.Fatalf("summary %+v, want the 2 repeats of k and the capped m", last)
	}
	// A new interval: the first refusal is written at once again.
	a.Record(k, t0.Add(time.Minute))
	if n := len(sink.all()); n != 4 {
		t.Fatalf("writes after a new interval began: %d, want 4", n)
	}
	if c := sink.counts(); c["k"] != 4 || c["l"] != 1 || c["m"] != 1 {
		t.Fatalf("counts %v", c)
	}
	if st := a.Stats(); st.WrittenAtOnce != 3 || st.WriteErrors != 0 || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFailureAggregatorKeepsWhatFailsToBeWritten(t *testing.T) {
	sink := newBatchSink()
	a, err := NewFailureAggregator(FailureAggregatorConfig{Flush: sink.flush})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	key := func(id string) FailureKey { return FailureKey{ClientID: id, Reason: oauth.ReasonUnknownClient} }
	for _, id := range []string{"a", "a", "a", "b", "b", "c"} {
		a.Record(key(id), t0)
	}
	sink.setFail(true, 0)
	a.Record(key("d"), t0) // its write at once fails: kept
	a.Record(key("d"), t0.Add(time.Second))
	sink.setFail(true, 1)
	if err := a.Flush(ctx); err == nil || !strings.Contains(err.Error(), "kept for the next attempt") {
		t.Fatalf("Flush() error = %v, want the records kept", err)
	}
	// a, b and c were written at once; the flush held the repeats of a
	// and b and both refusals of d, and wrote only a's.
	if p := a.Pending(); p != 2 {
		t.Fatalf("Pending() after a partly failed flush = %d, want 2", p)
	}
	a.Record(key("b"), t0.Add(2*time.Second))
	sink.setFail(false, 0)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"a": 3, "b": 3, "c": 1, "d": 2}
	if c := sink.counts(); fmt.Sprint(c) != fmt.Sprint(want) {
		t.Fatalf("written counts %v, want %v", c, want)
	}
	if st := a.Stats(); st.WriteErrors != 2 || st.Pending != 0 || st.Lost != 0 {
		t.Fatalf("stats %+v, want 2 write errors (one at once, one flush) and nothing pending", st)
	}
}

// lockedLog is a log destination safe for concurrent writers.
type lockedLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func TestFailureAggregatorBoundedWhileTheDatabaseFails(t *testing.T) {
	sink := newBatchSink()
	var log lockedLog
	a, err := NewFailureAggregator(FailureAggregatorConfig{Flush: sink.flush, MaxKeys: 3, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	sink.setFail(true, 0)
	for round := range 3 {
		for i := range 10 {
			a.Record(FailureKey{ClientID: fmt.Sprintf("id-%d", i), Reason: oauth.ReasonUnknownClient}, t0)
		}
		if err := a.Flush(ctx); err == nil {
			t.Fatalf("round %d: Flush() succeeded against a failing database", round)
		}
		if p := a.Pending(); p > 3+maxOverflowReasons+1 {
			t.Fatalf("round %d: Pending() = %d, beyond the bound", round, p)
		}
	}
	if n := strings.Count(log.String(), "audit aggregation is full"); n != 1 {
		t.Fatalf("bound log lines: %d, want 1 until a flush succeeds:\n%s", n, log.String())
	}
	if st := a.Stats(); st.Overflowed != 21 {
		t.Fatalf("overflowed %d, want 21 (7 keys beyond the bound, three times)", st.Overflowed)
	}
	sink.setFail(false, 0)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range sink.counts() {
		total += n
	}
	if total != 30 {
		t.Fatalf("written %d refusals, want all 30", total)
	}
}

func TestFailureAggregatorCloseRetriesThenCountsTheLoss(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	t.Run("recovers", func(t *testing.T) {
		sink := newBatchSink()
		a, err := NewFailureAggregator(FailureAggregatorConfig{Flush: sink.flush, Immediate: -1, RetryInterval: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		a.Record(FailureKey{ClientID: "a", Reason: oauth.ReasonInvalidSecret}, t0)
		sink.setFail(true, 0)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- a.Close(ctx) }()
		go func() {
			for a.Stats().WriteErrors < 2 {
				time.Sleep(time.Millisecond)
			}
			sink.setFail(false, 0)
		}()
		if err := <-done; err != nil {
			t.Fatalf("Close() = %v after the database recovered", err)
		}
		if c := sink.counts(); c["a"] != 1 {
			t.Fatalf("counts %v", c)
		}
	})
	t.Run("gives up at the deadline", func(t *testing.T) {
		sink := newBatchSink()
		var log lockedLog
		a, err := NewFailureAggregator(FailureAggregatorConfig{Flush: sink.flush, Immediate: -1, RetryInterval: 10 * time.Millisecond,
			Name: "refused token requests", Logger: slog.New(slog.NewTextHandler(&log, nil))})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			a.Record(FailureKey{ClientID: "a", Reason: oauth.ReasonInvalidSecret}, t0)
		}
		sink.setFail(true, 0)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := a.Close(ctx); err == nil {
			t.Fatal("Close() = nil against a failing database")
		}
		if st := a.Stats(); st.Lost != 3 || st.Pending != 0 {
			t.Fatalf("stats %+v, want 3 lost", st)
		}
		if !strings.Contains(log.String(), "audit records lost") || !strings.Contains(log.String(), "count=3") {
			t.Fatalf("the loss is not logged:\n%s", log.String())
		}
	})
}

func TestNewFailureAggregatorConfig(t *testing.T) {
	noop := func(_ context.Context, b []FailureBatch) (int, error) { return len(b), nil }
	tests := []struct {
		name    string
		cfg     FailureAggregatorConfig
		wantErr bool
	}{
		{"defaults", FailureAggregatorConfig{Flush: noop}, false},
		{"no callback", FailureAggregatorConfig{}, true},
		{"negative interval", FailureAggregatorConfig{Flush: noop, Interval: -time.Second}, true},
		{"negative max keys", FailureAggregatorConfig{Flush: noop, MaxKeys: -1}, true},
		{"negative retry", FailureAggregatorConfig{Flush: noop, RetryInterval: -time.Second}, true},
		{"no writes at once", FailureAggregatorConfig{Flush: noop, Immediate: -1}, false},
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
