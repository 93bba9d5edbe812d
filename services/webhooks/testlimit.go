package webhooks

import (
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"keyconsole/models"
)

// Test events are limited per endpoint: TestEventBurst may be sent at once,
// then one more every TestEventInterval. Without a limit an administrator
// (or whoever holds their session) could use "Send test event" to make the
// platform send signed requests to a receiver as fast as they can click or
// script. Each replica keeps its own buckets, so N replicas allow N times the
// rate; that still bounds the traffic, and needs no shared state.
const (
	TestEventBurst    = 5
	TestEventInterval = 12 * time.Second
)

// ErrTestLimited matches a *TestLimitError with errors.Is; it is of the
// kind models.ErrLimited.
var ErrTestLimited = models.NewRefusal(models.ErrLimited, "webhooks: too many test events for this endpoint", "Too many test events", fmt.Sprintf(
	"This endpoint was sent %d test events in a short time, the most the console sends at once; it sends one more every %d seconds. "+
		"Nothing was sent this time. Wait a little and try again.", TestEventBurst, int(TestEventInterval.Seconds())))

// TestLimitError refuses a test event over the endpoint's limit; nothing was
// sent or logged.
type TestLimitError struct {
	// RetryAfter is how long until the endpoint may be tested again.
	RetryAfter time.Duration
}

// Error says when to try again.
func (e *TestLimitError) Error() string {
	return fmt.Sprintf("%v; try again in %d s", ErrTestLimited, RetryAfterSeconds(e.RetryAfter))
}

// Unwrap makes errors.Is(err, ErrTestLimited) true.
func (e *TestLimitError) Unwrap() error { return ErrTestLimited }

// RetryAfterSeconds rounds a wait up to whole seconds (at least 1), for a
// Retry-After header or a message.
func RetryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// testLimiter holds one token bucket per endpoint id. A bucket left alone
// for TestEventBurst intervals is full again, the same as a new one, so the
// sweep drops it: the map holds only endpoints tested recently.
type testLimiter struct {
	mu        sync.Mutex
	buckets   map[int64]*rate.Limiter
	lastSweep time.Time
}

func newTestLimiter() *testLimiter { return &testLimiter{buckets: make(map[int64]*rate.Limiter)} }

// take takes a token of the endpoint's bucket at now, or reports how long
// until one is there.
func (l *testLimiter) take(endpointID int64, now time.Time) (wait time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= TestEventInterval {
		for id, b := range l.buckets {
			if b.TokensAt(now) >= TestEventBurst {
				delete(l.buckets, id)
			}
		}
		l.lastSweep = now
	}
	b, found := l.buckets[endpointID]
	if !found {
		b = rate.NewLimiter(rate.Every(TestEventInterval), TestEventBurst)
		l.buckets[endpointID] = b
	}
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}
