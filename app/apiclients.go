package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"keyconsole/app/core"
	"keyconsole/services/apiclients"
	"keyconsole/services/guard"
	"keyconsole/services/oauth"
	"keyconsole/services/policy"
	"keyconsole/services/secrets"
	"keyconsole/web"
)

// startupLoadTimeout bounds the first load of key material at start; what
// does not load then is retried in the background.
const startupLoadTimeout = 10 * time.Second

// apiClients is the API credential service and the token endpoint with
// what they report and run in the background.
type apiClients struct {
	Service    *apiclients.Service
	Issuer     *oauth.Issuer
	Endpoint   *apiclients.TokenEndpoint
	Ready      []web.ReadyCheck
	Collectors []prometheus.Collector
	Background []func(ctx context.Context) error
	Shutdown   func(ctx context.Context)
}

// newAPIClients builds the API credential service, the token endpoint with
// its limiter and refusal aggregation, and their background work (key
// reloads and rotation, last-use and refusal flushing, expiry records).
func newAPIClients(ctx context.Context, c core.Core, sec *secrets.Service, pol policy.Source, cfg core.TokenConfig) (apiClients, error) {
	iss, err := core.TokenIssuer(cfg, c.Clock)
	if err != nil {
		return apiClients{}, err
	}
	svc := core.NewAPIClients(c, sec, pol)
	keys := core.TokenKeyManager(c, sec, iss)

	// KMS may be unreachable at start: pages work meanwhile, the token
	// endpoint answers 503 until the pepper and the keys are loaded.
	lctx, cancel := context.WithTimeout(ctx, startupLoadTimeout)
	if err := svc.LoadPepper(lctx); err != nil {
		c.Log.Warn("api credentials: secret pepper not loaded yet; the token endpoint answers 503 until it is", "error", err)
	}
	if err := keys.Ensure(lctx); err != nil {
		c.Log.Warn("api credentials: token signing keys not loaded yet; the token endpoint answers 503 until they are", "error", err)
	}
	cancel()

	limiter, err := guard.NewLimiter(core.TokenLimits(cfg))
	if err != nil {
		return apiClients{}, err
	}
	failures, err := guard.NewFailureAggregator(guard.FailureAggregatorConfig{Flush: svc.RecordRefusals, Name: "refused token requests", Logger: c.Log})
	if err != nil {
		return apiClients{}, err
	}
	lastUse, err := guard.NewLastUseTracker(guard.LastUseConfig{Flush: svc.FlushLastUse, Logger: c.Log})
	if err != nil {
		return apiClients{}, err
	}
	endpoint := apiclients.NewTokenEndpoint(apiclients.TokenConfig{
		Service: svc, Keys: keys, Issuer: iss, Limiter: limiter, Failures: failures, LastUse: lastUse,
		Audience: cfg.Audience, Clock: c.Clock, Logger: c.Log,
	})
	return apiClients{
		Service: svc, Issuer: iss, Endpoint: endpoint,
		// A replica that cannot open its pepper or signing key can only
		// answer token requests with 503: /readyz says so, naming which one.
		Ready: []web.ReadyCheck{
			{Name: "api_secret_pepper", Check: newCachedCheck(svc.CheckPepper).Check},
			{Name: "token_signing_key", Check: newCachedCheck(keys.Check).Check},
		},
		Collectors: tokenMetrics(endpoint, failures),
		Background: []func(ctx context.Context) error{
			keys.Run,
			func(ctx context.Context) error { return retryPepper(ctx, c, svc) },
			func(ctx context.Context) error { lastUse.Run(ctx); return nil },
			func(ctx context.Context) error { failures.Run(ctx); return nil },
			func(ctx context.Context) error { return recordExpiries(ctx, c, svc) },
		},
		Shutdown: func(ctx context.Context) {
			if err := lastUse.Close(ctx); err != nil {
				c.Log.Error("api credentials: last flush of last-use times", "error", err)
			}
			// Close logs what it could not write.
			_ = failures.Close(ctx)
		},
	}, nil
}

// retryPepper loads the pepper in the background when it could not be
// loaded at start.
func retryPepper(ctx context.Context, c core.Core, svc *apiclients.Service) error {
	wait := 5 * time.Second
	for !svc.Ready() {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		if err := svc.LoadPepper(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.Log.Warn("api credentials: secret pepper still not loaded", "error", err)
			wait = min(2*wait, time.Minute)
			continue
		}
		c.Log.Info("api credentials: secret pepper loaded")
	}
	return nil
}

// recordExpiries audits, once a minute, the credentials whose expiry date
// has passed.
func recordExpiries(ctx context.Context, c core.Core, svc *apiclients.Service) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if _, err := svc.ExpireDue(ctx); err != nil && ctx.Err() == nil {
			c.Log.Warn("api credentials: expiry records", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
