package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"keyconsole/kms"
	kmsaws "keyconsole/kms/aws"
	"keyconsole/kms/local"
	"keyconsole/models"
	"keyconsole/services/audit"
	"keyconsole/services/secrets"
	"keyconsole/web"
)

// newKeyring builds the configured KMS provider. It makes no network call,
// so the console starts (and serves pages that need no secret) while KMS is
// unreachable.
func newKeyring(ctx context.Context, cfg *config) (kms.Keyring, error) {
	switch cfg.KMSProvider {
	case "aws":
		kr, err := kmsaws.New(ctx, kmsaws.Options{KeyID: cfg.KMSKeyID, Region: cfg.KMSRegion, Endpoint: cfg.KMSEndpoint})
		if err != nil {
			return nil, fmt.Errorf("KEYCONSOLE_KMS_PROVIDER=aws: %w", err)
		}
		return kr, nil
	default:
		key, err := local.LoadOrCreateKeyFile(cfg.LocalMasterKey, !cfg.production())
		if err != nil {
			return nil, fmt.Errorf("KEYCONSOLE_LOCAL_MASTER_KEY_FILE %s: %w", cfg.LocalMasterKey, err)
		}
		return local.New(key, "")
	}
}

// resolveKeyring asks AWS KMS for the key's ARN when it can, so stored blobs
// name a stable key id; failure is not fatal (KMS may be briefly down).
func resolveKeyring(ctx context.Context, kr kms.Keyring, log *slog.Logger) {
	if a, ok := kr.(*kmsaws.Keyring); ok {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := a.Resolve(rctx); err != nil {
			log.Warn("kms key could not be resolved yet", "error", err)
		}
	}
}

// wireKMS builds the envelope and the secret service and reports encryption
// availability on /readyz and on pages that need a secret.
func wireKMS(ctx context.Context, rt *runtime) error {
	kr, err := newKeyring(ctx, rt.cfg)
	if err != nil {
		return err
	}
	resolveKeyring(ctx, kr, rt.log)
	rt.envelope = kms.NewEnvelope(kr, kms.Options{})
	rt.secrets = secrets.NewService(rt.db, rt.envelope, models.NewSealedStore(rt.db), rt.recorder, rt.clock)
	probe := &kmsProbe{env: rt.envelope, every: 30 * time.Second}
	rt.ready = append(rt.ready, web.ReadyCheck{Name: "kms", Check: probe.check})
	return nil
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

func cmdKMS(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "check" && args[0] != "rewrap") {
		return usageError{"usage: keyconsole kms check | kms rewrap [--batch N]"}
	}
	fs := flag.NewFlagSet("kms "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	batch := fs.Int("batch", 200, "records per batch")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error()}
	}
	cfg, err := loadToolConfig(lookupEnv)
	if err != nil {
		return err
	}
	kr, err := newKeyring(ctx, cfg)
	if err != nil {
		return err
	}
	log := slog.New(slog.DiscardHandler)
	resolveKeyring(ctx, kr, log)
	env := kms.NewEnvelope(kr, kms.Options{})
	if args[0] == "check" {
		start := time.Now()
		if err := env.Check(ctx); err != nil {
			fmt.Fprintf(stdout, "kms check: FAILED (%s, key %s): %v\n", kr.Provider(), kr.CurrentKeyID(), err)
			return errors.New("the KMS round trip failed")
		}
		fmt.Fprintf(stdout, "kms check: ok (provider %s, key %s): generated, wrapped and unwrapped a data key in %s\n",
			kr.Provider(), kr.CurrentKeyID(), time.Since(start).Round(time.Millisecond))
		return nil
	}
	a, err := openApp(ctx, cfg, log, true)
	if err != nil {
		return err
	}
	defer a.close()
	svc := secrets.NewService(a.db, env, models.NewSealedStore(a.db), a.recorder, a.clock)
	fmt.Fprintf(stdout, "re-wrapping stored data keys under %s\n", kr.CurrentKeyID())
	p, err := svc.Rewrap(ctx, cliActor(), audit.Origin{RequestID: "cli"}, *batch, func(p secrets.RewrapProgress) {
		fmt.Fprintf(stderr, "\r  %d of %d re-wrapped, %d skipped", p.Done, p.Total, p.Skipped)
	})
	fmt.Fprintln(stderr)
	if err != nil {
		fmt.Fprintf(stdout, "rewrap interrupted after %d of %d: %v\nrun it again to continue where it stopped\n", p.Done, p.Total, err)
		return errors.New("rewrap did not finish")
	}
	fmt.Fprintf(stdout, "rewrap complete: %d re-wrapped, %d already current\n", p.Done, p.Skipped)
	return nil
}
