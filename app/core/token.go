package core

import (
	"errors"
	"math"
	"time"

	"golang.org/x/time/rate"

	"keyconsole/models"
	"keyconsole/services/apiclients"
	"keyconsole/services/guard"
	"keyconsole/services/oauth"
	"keyconsole/services/secrets"
)

// TokenConfig is the token endpoint's configuration.
type TokenConfig struct {
	// BaseURL is the console's base URL, the tokens' issuer.
	BaseURL string
	// Audience is the tokens' aud.
	Audience string
	// AddrRate is the sustained requests per second per source address
	// (0: the limiter's default).
	AddrRate float64
	// Reuse is how long after an issuance a repeat request gets the same
	// token (0: never).
	Reuse time.Duration
}

// TokenIssuer builds the access-token issuer: iss is the base URL, aud the
// configured audience, tokens live 15 minutes, and a repeat request within
// KEYCONSOLE_TOKEN_REUSE of an issuance gets the same token.
func TokenIssuer(cfg TokenConfig, clock func() time.Time) (*oauth.Issuer, error) {
	iss, err := oauth.NewIssuer(oauth.IssuerConfig{Issuer: cfg.BaseURL, Audience: cfg.Audience, Lifetime: oauth.DefaultLifetime, Reuse: cfg.Reuse, Clock: clock})
	if err != nil {
		return nil, errors.New("KEYCONSOLE_BASE_URL / KEYCONSOLE_TOKEN_AUDIENCE: " + err.Error())
	}
	return iss, nil
}

// TokenLimits is the token endpoint's limiter configuration: the defaults,
// with KEYCONSOLE_TOKEN_ADDR_RATE (and a burst of five seconds of it) for
// deployments where many clients share one address (a NAT). Clients behind
// the console's own load balancer are told apart by
// KEYCONSOLE_TRUSTED_PROXIES instead.
func TokenLimits(cfg TokenConfig) guard.LimiterConfig {
	var lc guard.LimiterConfig
	if r := cfg.AddrRate; r > 0 {
		lc.AddrRate, lc.AddrBurst = rate.Limit(r), int(min(r*5, math.MaxInt32))
		if math.IsInf(r, 1) {
			lc.AddrRate = rate.Inf
		}
	}
	return lc
}

// TokenKeyManager builds the manager of the token signing keys.
func TokenKeyManager(c Core, sec *secrets.Service, iss *oauth.Issuer) *apiclients.KeyManager {
	return apiclients.NewKeyManager(apiclients.KeyConfig{
		DB: c.DB, Store: models.NewTokenKeyStore(c.DB), Locker: models.NewAPIClientStore(c.DB),
		Secrets: sec, Audit: c.Recorder, Issuer: iss, Clock: c.Clock, Logger: c.Log,
	})
}
