package apiclients

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"keyconsole/models"
	"keyconsole/services/guard"
	"keyconsole/services/oauth"
)

// Reasons a token request is refused beyond those of package oauth, for the
// aggregated audit records.
const (
	ReasonEnvironmentMismatch = "environment_mismatch"
	ReasonInvalidTarget       = "invalid_target"
)

// Error codes the endpoint uses beyond RFC 6749 section 5.2.
const (
	// ErrCodeInvalidTarget is RFC 8707's answer to a resource the server
	// does not issue tokens for.
	ErrCodeInvalidTarget = "invalid_target"
	// ErrCodeTemporarilyUnavailable answers while the endpoint cannot serve
	// (key material not loaded, database unreachable), with HTTP 503.
	ErrCodeTemporarilyUnavailable = "temporarily_unavailable"
)

// unavailableRetry is the Retry-After of a 503 answer.
const unavailableRetry = 30 * time.Second

// Fixed answers: descriptions never echo request input.
var (
	errUnavailable = &oauth.Error{
		Code:        ErrCodeTemporarilyUnavailable,
		Description: "the token service cannot issue tokens right now; retry later",
		Status:      http.StatusServiceUnavailable,
		RetryAfter:  unavailableRetry,
	}
	errStorageFull = &oauth.Error{
		Code:        ErrCodeTemporarilyUnavailable,
		Description: "storage is full; nothing was changed",
		Status:      http.StatusServiceUnavailable,
		RetryAfter:  unavailableRetry,
	}
	errEnvironmentRepeated = oauth.NewError(oauth.ErrCodeInvalidRequest, "parameter environment is repeated")
	errEnvironmentMismatch = oauth.NewError(oauth.ErrCodeInvalidRequest, "the credential does not belong to the requested environment")
	errInvalidTarget       = oauth.NewError(ErrCodeInvalidTarget, "tokens of this server are not issued for the requested resource")
	errNoScopes            = oauth.NewError(oauth.ErrCodeInvalidScope, "no scopes are defined for API credentials; omit the scope parameter")
	errBodyTooLarge        = oauth.NewError(oauth.ErrCodeInvalidRequest, "request body is too large")
)

// Unavailable returns the 503 answer (temporarily_unavailable, Retry-After)
// given while this server cannot issue tokens, for the documents that
// depend on the same key material (the JWKS).
func Unavailable() *oauth.Error { return answer(errUnavailable) }

func answer(e *oauth.Error) *oauth.Error {
	c := *e
	return &c
}

// TokenConfig holds the parts of a TokenEndpoint.
type TokenConfig struct {
	Service  *Service
	Keys     *KeyManager
	Issuer   *oauth.Issuer
	Limiter  *guard.Limiter
	Failures *guard.FailureAggregator
	LastUse  *guard.LastUseTracker
	// Audience is the "aud" of issued tokens; a resource parameter (RFC
	// 8707) naming anything else is refused with invalid_target.
	Audience string
	// MaxBody bounds the request body; oauth.DefaultMaxBody when zero.
	MaxBody int64
	Clock   func() time.Time
	Logger  *slog.Logger
}

// TokenEndpoint answers client-credentials token requests (RFC 6749
// section 4.4): request parsing, rate limiting and failure slowdown,
// client authentication, the environment and resource checks, token
// issuance, and the aggregated recording of last use and refusals. It
// knows no HTTP framework: the handler hands it the request's parts.
type TokenEndpoint struct {
	cfg TokenConfig

	issued, refused, limited, unavailable, reused atomic.Uint64
}

// TokenStats counts the endpoint's answers since start.
type TokenStats struct {
	Issued, Refused, RateLimited, Unavailable uint64
	// Reused counts the issued answers that repeated a token signed
	// within the reuse window.
	Reused uint64
}

// NewTokenEndpoint returns the endpoint for cfg.
func NewTokenEndpoint(cfg TokenConfig) *TokenEndpoint {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = oauth.DefaultMaxBody
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &TokenEndpoint{cfg: cfg}
}

// MaxBody returns the request body limit.
func (t *TokenEndpoint) MaxBody() int64 { return t.cfg.MaxBody }

// Stats returns the endpoint's counters.
func (t *TokenEndpoint) Stats() TokenStats {
	return TokenStats{Issued: t.issued.Load(), Refused: t.refused.Load(), RateLimited: t.limited.Load(), Unavailable: t.unavailable.Load(), Reused: t.reused.Load()}
}

// TokenRequest is the part of an HTTP request the endpoint reads.
type TokenRequest struct {
	Method        string
	ContentType   string
	Authorization string
	// RawQuery is the URL's query, checked for misplaced credentials.
	RawQuery string
	Body     io.Reader
	// RemoteAddr is the client's address (IP, with or without port).
	RemoteAddr string
}

// Serve answers one token request: a token response, or an RFC 6749
// error to write as it is.
func (t *TokenEndpoint) Serve(ctx context.Context, r TokenRequest) (oauth.TokenResponse, *oauth.Error) {
	now := t.cfg.Clock()
	addr := r.RemoteAddr

	req, perr := oauth.TokenRequest{}, oauth.CheckQuery(r.RawQuery)
	if perr == nil {
		req, perr = oauth.ParseTokenRequest(r.Method, r.ContentType, r.Authorization, r.Body, t.cfg.MaxBody)
	}
	if perr != nil {
		if ok, retry := t.cfg.Limiter.Allow("", addr, now); !ok {
			return oauth.TokenResponse{}, t.rateLimited("", addr, retry, now)
		}
		return oauth.TokenResponse{}, t.refuse("", "", addr, parseReason(perr), perr, now, true)
	}
	if ok, retry := t.cfg.Limiter.Allow(req.ClientID, addr, now); !ok {
		return oauth.TokenResponse{}, t.rateLimited(req.ClientID, addr, retry, now)
	}
	if !t.cfg.Service.Ready() || !t.cfg.Keys.Ready() {
		t.unavailable.Add(1)
		return oauth.TokenResponse{}, answer(errUnavailable)
	}

	client, slug, reason, err := t.cfg.Service.Authenticate(ctx, req.ClientID, req.ClientSecret, now)
	if err != nil {
		t.unavailable.Add(1)
		if errors.Is(err, models.ErrStorageFull) {
			// Logged once per episode by the database's storage hook.
			return oauth.TokenResponse{}, answer(errStorageFull)
		}
		t.cfg.Logger.ErrorContext(ctx, "token request: authentication failed to run", "client_id", guard.AuditClientID(req.ClientID), "error", err)
		return oauth.TokenResponse{}, answer(errUnavailable)
	}
	if reason != "" {
		return oauth.TokenResponse{}, t.refuse(req.ClientID, slug, addr, reason, oauth.InvalidClient(), now, true)
	}
	// The client proved it holds the secret: count it against its own
	// bucket and clear its failures from this address, whatever follows.
	t.cfg.Limiter.RecordSuccess(req.ClientID, addr, now)

	if e, reason := t.checkHints(req, client); e != nil {
		return oauth.TokenResponse{}, t.refuse(req.ClientID, slug, addr, reason, e, now, false)
	}
	if req.Scope != "" {
		return oauth.TokenResponse{}, t.refuse(req.ClientID, slug, addr, oauth.ReasonInvalidScope, answer(errNoScopes), now, false)
	}

	t.cfg.Keys.Current(now)
	// A repeat request soon after an issuance may get the same token back:
	// keyed by the credential and its secret version, so a regenerated
	// secret never receives a token issued to the old one (a revoked or
	// expired credential never gets here).
	token, expiresIn, _, reused, err := t.cfg.Issuer.IssueReusable(strconv.FormatInt(client.ID, 10)+"/"+strconv.FormatInt(client.SecretVersion, 10), oauth.Claims{
		ClientID: client.ClientID, Agency: client.AgencySlug, Environment: client.Environment,
	})
	if err != nil {
		t.unavailable.Add(1)
		t.cfg.Logger.ErrorContext(ctx, "token request: issue failed", "client_id", client.ClientID, "error", err)
		return oauth.TokenResponse{}, answer(errUnavailable)
	}
	t.cfg.LastUse.Touch(client.ID, now)
	t.issued.Add(1)
	if reused {
		t.reused.Add(1)
	}
	return oauth.NewTokenResponse(token, expiresIn, ""), nil
}

// checkHints refuses an environment or resource parameter that disagrees
// with the credential: a token's environment is always the credential's
// own, and its audience is always the configured one.
func (t *TokenEndpoint) checkHints(req oauth.TokenRequest, c Client) (*oauth.Error, string) {
	if envs := req.Environment; len(envs) > 1 {
		return answer(errEnvironmentRepeated), oauth.ReasonMalformedRequest
	} else if len(envs) == 1 && envs[0] != "" && envs[0] != c.Environment {
		return answer(errEnvironmentMismatch), ReasonEnvironmentMismatch
	}
	for _, res := range req.Resource {
		if res != t.cfg.Audience {
			return answer(errInvalidTarget), ReasonInvalidTarget
		}
	}
	return nil, ""
}

// Oversized answers a request whose declared body exceeds MaxBody before
// it is read, counting it like any malformed request.
func (t *TokenEndpoint) Oversized(addr string) *oauth.Error {
	now := t.cfg.Clock()
	if ok, retry := t.cfg.Limiter.Allow("", addr, now); !ok {
		return t.rateLimited("", addr, retry, now)
	}
	return t.refuse("", "", addr, oauth.ReasonMalformedRequest, answer(errBodyTooLarge), now, true)
}

func (t *TokenEndpoint) refuse(clientID, agency, addr, reason string, e *oauth.Error, now time.Time, failure bool) *oauth.Error {
	t.refused.Add(1)
	if failure {
		t.cfg.Limiter.RecordFailure(clientID, addr, now)
	}
	t.cfg.Failures.Record(guard.FailureKey{Agency: agency, ClientID: clientID, Addr: addr, Reason: reason}, now)
	return e
}

func (t *TokenEndpoint) rateLimited(clientID, addr string, retry time.Duration, now time.Time) *oauth.Error {
	t.limited.Add(1)
	t.cfg.Failures.Record(guard.FailureKey{ClientID: clientID, Addr: addr, Reason: oauth.ReasonRateLimited}, now)
	return oauth.RateLimited(retry)
}

func parseReason(e *oauth.Error) string {
	switch e.Code {
	case oauth.ErrCodeUnsupportedGrantType:
		return oauth.ReasonUnsupportedGrant
	case oauth.ErrCodeInvalidScope:
		return oauth.ReasonInvalidScope
	}
	return oauth.ReasonMalformedRequest
}
