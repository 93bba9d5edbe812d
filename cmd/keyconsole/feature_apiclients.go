package main

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"keyconsole/handlers"
	"keyconsole/models"
	"keyconsole/services/apiclients"
	"keyconsole/services/oauth"
	"keyconsole/services/secrets"
	"keyconsole/web"
)

// startupLoadTimeout bounds the first load of key material at start; what
// does not load then is retried in the background.
const startupLoadTimeout = 10 * time.Second

// tokenIssuer builds the access-token issuer: iss is the base URL, aud the
// configured audience, tokens live 15 minutes, and a repeat request within
// KEYCONSOLE_TOKEN_REUSE of an issuance gets the same token.
func tokenIssuer(cfg *config, clock func() time.Time) (*oauth.Issuer, error) {
	iss, err := oauth.NewIssuer(oauth.IssuerConfig{Issuer: cfg.BaseURL, Audience: cfg.TokenAudience, Lifetime: oauth.DefaultLifetime, Reuse: cfg.TokenReuse, Clock: clock})
	if err != nil {
		return nil, errors.New("KEYCONSOLE_BASE_URL / KEYCONSOLE_TOKEN_AUDIENCE: " + err.Error())
	}
	return iss, nil
}

// tokenKeyManager builds the manager of the token signing keys.
func tokenKeyManager(a *app, sec *secrets.Service, iss *oauth.Issuer) *apiclients.KeyManager {
	return apiclients.NewKeyManager(apiclients.KeyConfig{
		DB: a.db, Store: models.NewTokenKeyStore(a.db), Locker: models.NewAPIClientStore(a.db),
		Secrets: sec, Audit: a.recorder, Issuer: iss, Clock: a.clock, Logger: a.log,
	})
}

// wireAPIClients adds the API credential pages, the token endpoint with its
// JWKS and metadata, and their background work (key reloads and rotation,
// last-use and refusal flushing, expiry records).
func wireAPIClients(ctx context.Context, rt *runtime) error {
	if rt.secrets == nil {
		return errors.New("api credentials: the secret service is not wired")
	}
	iss, err := tokenIssuer(rt.cfg, rt.clock)
	if err != nil {
		return err
	}
	svc := apiclients.NewService(apiclients.Config{
		DB: rt.db, Store: models.NewAPIClientStore(rt.db), Agencies: rt.agencies, Audit: rt.recorder,
		Secrets: rt.secrets, Policies: rt.policies, Clock: rt.clock, Logger: rt.log,
	})
	rt.apiclients = svc
	keys := tokenKeyManager(rt.app, rt.secrets, iss)

	// KMS may be unreachable at start: pages work meanwhile, the token
	// endpoint answers 503 until the pepper and the keys are loaded.
	lctx, cancel := context.WithTimeout(ctx, startupLoadTimeout)
	if err := svc.LoadPepper(lctx); err != nil {
		rt.log.Warn("api credentials: secret pepper not loaded yet; the token endpoint answers 503 until it is", "error", err)
	}
	if err := keys.Ensure(lctx); err != nil {
		rt.log.Warn("api credentials: token signing keys not loaded yet; the token endpoint answers 503 until they are", "error", err)
	}
	cancel()

	// A replica that cannot open its pepper or signing key can only answer
	// token requests with 503: /readyz says so, naming which one.
	rt.ready = append(rt.ready,
		web.ReadyCheck{Name: "api_secret_pepper", Check: newCachedCheck(svc.CheckPepper).Check},
		web.ReadyCheck{Name: "token_signing_key", Check: newCachedCheck(keys.Check).Check},
	)

	limiter, err := oauth.NewLimiter(tokenLimits(rt.cfg))
	if err != nil {
		return err
	}
	failures, err := oauth.NewFailureAggregator(oauth.FailureAggregatorConfig{Flush: svc.RecordRefusals, Name: "refused token requests", Logger: rt.log})
	if err != nil {
		return err
	}
	lastUse, err := oauth.NewLastUseTracker(oauth.LastUseConfig{Flush: svc.FlushLastUse, Logger: rt.log})
	if err != nil {
		return err
	}
	endpoint := apiclients.NewTokenEndpoint(apiclients.TokenConfig{
		Service: svc, Keys: keys, Issuer: iss, Limiter: limiter, Failures: failures, LastUse: lastUse,
		Audience: rt.cfg.TokenAudience, Clock: rt.clock, Logger: rt.log,
	})
	pages := handlers.NewAPICredentials(rt.handler, svc, rt.cfg.BaseURL+oauth.TokenPath)
	token := &handlers.OAuthToken{Endpoint: endpoint, Issuer: iss, BaseURL: rt.cfg.BaseURL, Logger: rt.log}
	rt.mounts = append(rt.mounts, web.APICredentialsRoutes(pages, token))
	rt.tiles = append(rt.tiles, pages.Tiles)

	rt.background = append(rt.background,
		keys.Run,
		func(ctx context.Context) error { return retryPepper(ctx, rt, svc) },
		func(ctx context.Context) error { lastUse.Run(ctx); return nil },
		func(ctx context.Context) error { failures.Run(ctx); return nil },
		func(ctx context.Context) error { return recordExpiries(ctx, rt, svc) },
	)
	rt.shutdown = append(rt.shutdown, func(ctx context.Context) {
		if err := lastUse.Close(ctx); err != nil {
			rt.log.Error("api credentials: last flush of last-use times", "error", err)
		}
		// Close logs what it could not write.
		_ = failures.Close(ctx)
	})
	if rt.metrics != nil {
		for result, f := range map[string]func(apiclients.TokenStats) uint64{
			"issued":       func(s apiclients.TokenStats) uint64 { return s.Issued },
			"refused":      func(s apiclients.TokenStats) uint64 { return s.Refused },
			"rate_limited": func(s apiclients.TokenStats) uint64 { return s.RateLimited },
			"unavailable":  func(s apiclients.TokenStats) uint64 { return s.Unavailable },
		} {
			rt.metrics.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "keyconsole_token_requests_total", Help: "Token endpoint answers, by result.", ConstLabels: prometheus.Labels{"result": result},
			}, func() float64 { return float64(f(endpoint.Stats())) }))
		}
		rt.metrics.Registry.MustRegister(aggregatorMetrics("token_refusals", failures.Stats)...)
		rt.metrics.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyconsole_token_reused_total", Help: "Issued token answers that repeated a token signed within the reuse window (KEYCONSOLE_TOKEN_REUSE).",
		}, func() float64 { return float64(endpoint.Stats().Reused) }))
	}
	return nil
}

// tokenLimits is the token endpoint's limiter configuration: the defaults,
// with KEYCONSOLE_TOKEN_ADDR_RATE (and a burst of five seconds of it) for
// deployments where many clients share one address (a NAT). Clients behind
// the console's own load balancer are told apart by
// KEYCONSOLE_TRUSTED_PROXIES instead.
func tokenLimits(cfg *config) oauth.LimiterConfig {
	var lc oauth.LimiterConfig
	if r := cfg.TokenAddrRate; r > 0 {
		lc.AddrRate, lc.AddrBurst = rate.Limit(r), int(min(r*5, math.MaxInt32))
		if math.IsInf(r, 1) {
			lc.AddrRate = rate.Inf
		}
	}
	return lc
}

// retryPepper loads the pepper in the background when it could not be
// loaded at start.
func retryPepper(ctx context.Context, rt *runtime, svc *apiclients.Service) error {
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
			rt.log.Warn("api credentials: secret pepper still not loaded", "error", err)
			wait = min(2*wait, time.Minute)
			continue
		}
		rt.log.Info("api credentials: secret pepper loaded")
	}
	return nil
}

// recordExpiries audits, once a minute, the credentials whose expiry date
// has passed.
func recordExpiries(ctx context.Context, rt *runtime, svc *apiclients.Service) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if _, err := svc.ExpireDue(ctx); err != nil && ctx.Err() == nil {
			rt.log.Warn("api credentials: expiry records", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
