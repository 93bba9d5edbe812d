package app

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestFinding06_ReadinessChecksAreCachedBriefly: a check that opens key
// material runs at most once per 30 s while it passes and once per 5 s
// while it fails, and a run cut short by the prober is not kept.
func TestFinding06_ReadinessChecksAreCachedBriefly(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	calls := 0
	var result error
	c := newCachedCheck(func(ctx context.Context) error { calls++; return result })
	c.now = func() time.Time { return now }
	ctx := context.Background()

	if err := c.Check(ctx); err != nil || calls != 1 {
		t.Fatalf("first check: %v after %d calls", err, calls)
	}
	result = errors.New("cannot open")
	now = now.Add(readyCacheOK - time.Second)
	if err := c.Check(ctx); err != nil || calls != 1 {
		t.Fatalf("within the cache time: %v after %d calls", err, calls)
	}
	now = now.Add(time.Second)
	if err := c.Check(ctx); err == nil || calls != 2 {
		t.Fatalf("after the cache time: %v after %d calls", err, calls)
	}
	result = nil
	now = now.Add(readyCacheFailed - time.Second)
	if err := c.Check(ctx); err == nil || calls != 2 {
		t.Fatalf("a failure is kept a while: %v after %d calls", err, calls)
	}
	now = now.Add(time.Second)
	if err := c.Check(ctx); err != nil || calls != 3 {
		t.Fatalf("a recovery shows after the failure's cache time: %v after %d calls", err, calls)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	result = context.Canceled
	now = now.Add(readyCacheOK)
	if err := c.Check(cancelled); !errors.Is(err, context.Canceled) || calls != 4 {
		t.Fatalf("cancelled check: %v after %d calls", err, calls)
	}
	result = nil
	if err := c.Check(ctx); err != nil || calls != 5 {
		t.Fatalf("the cancelled run was kept: %v after %d calls", err, calls)
	}
}
