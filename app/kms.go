package app

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"keyconsole/app/core"
	"keyconsole/kms"
	"keyconsole/services/secrets"
	"keyconsole/web"
)

// encryption is the envelope over the keyring, the secret service built on
// it, and what it reports: /readyz's kms check and the KMS counters.
type encryption struct {
	Envelope   *kms.Envelope
	Secrets    *secrets.Service
	Ready      web.ReadyCheck
	Collectors []prometheus.Collector
}

func newEncryption(c core.Core, kr kms.Keyring) encryption {
	env := kms.NewEnvelope(kr, kms.Options{})
	probe := &kmsProbe{env: env, every: 30 * time.Second}
	return encryption{
		Envelope:   env,
		Secrets:    core.NewSecrets(c, env),
		Ready:      web.ReadyCheck{Name: "kms", Check: probe.check},
		Collectors: kmsMetrics(env),
	}
}

// kmsProbe caches the result of a KMS round trip so frequent readiness polls
// do not become KMS traffic.
type kmsProbe struct {
	env   *kms.Envelope
	every time.Duration
	mu    sync.Mutex
	at    time.Time
	err   error
}

func (p *kmsProbe) check(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.at.IsZero() && time.Since(p.at) < p.every && p.err == nil {
		return nil
	}
	p.err = p.env.Check(ctx)
	p.at = time.Now()
	return p.err
}
