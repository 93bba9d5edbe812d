package app

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
	// The write probe is one small committed write: kept for less time,
	// since a disk fills up while the console runs.
	writeProbeOK = 10 * time.Second
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

// storageWatchInterval is how often a storage-full episode is probed when
// no readiness probe does it.
const storageWatchInterval = 5 * time.Second

// watchStorage ends a storage-full episode (see models.DB.OnStorage) even
// when nothing polls /readyz: while one is under way it probes the
// database with a small write every storageWatchInterval.
func watchStorage(ctx context.Context, db interface {
	StorageFull() bool
	ProbeWrite(ctx context.Context) error
}) error {
	t := time.NewTicker(storageWatchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if db.StorageFull() {
			_ = db.ProbeWrite(ctx)
		}
	}
}
