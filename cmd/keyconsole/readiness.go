package main

import (
	"context"
	"sync"
	"time"
)

// Readiness checks that open key material through KMS keep their answer a
// short while, so frequent load-balancer probes do not become KMS traffic;
// a failure is kept for less time, so a replica that recovers is back in
// service soon.
const (
	readyCacheOK     = 30 * time.Second
	readyCacheFailed = 5 * time.Second
)

// cachedCheck runs a readiness check at most once per okFor after a
// success and once per failedFor after a failure; concurrent probes wait
// for the one running. A check cut short by its caller's context is not
// kept.
type cachedCheck struct {
	check     func(ctx context.Context) error
	okFor     time.Duration
	failedFor time.Duration
	now       func() time.Time

	mu  sync.Mutex
	at  time.Time
	err error
}

func newCachedCheck(check func(ctx context.Context) error) *cachedCheck {
	return &cachedCheck{check: check, okFor: readyCacheOK, failedFor: readyCacheFailed, now: time.Now}
}

// Check returns the kept answer while it is fresh, or runs the check.
func (c *cachedCheck) Check(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	ttl := c.okFor
	if c.err != nil {
		ttl = c.failedFor
	}
	if !c.at.IsZero() && now.Sub(c.at) < ttl {
		return c.err
	}
	err := c.check(ctx)
	if ctx.Err() != nil {
		return err
	}
	c.at, c.err = now, err
	return err
}
