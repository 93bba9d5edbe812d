package handlers

import (
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"keyconsole/services/apiclients"
	"keyconsole/services/oauth"
)

// OAuthToken serves the OAuth 2.0 token endpoint and the documents resource
// servers read: the JWKS and the authorization server metadata. None of
// them uses cookies, sessions or CSRF tokens.
type OAuthToken struct {
	Endpoint *apiclients.TokenEndpoint
	Issuer   *oauth.Issuer
	// BaseURL is the public URL the metadata names endpoints under.
	BaseURL string
	Logger  *slog.Logger
}

// Token answers POST /oauth/token (and any other method with an RFC 6749
// error): a JSON token response or a JSON error, never an HTML page.
func (h *OAuthToken) Token(c echo.Context) error {
	r := c.Request()
	resp, e := h.Endpoint.Serve(r.Context(), apiclients.TokenRequest{
		Method:        r.Method,
		ContentType:   r.Header.Get(echo.HeaderContentType),
		Authorization: r.Header.Get(echo.HeaderAuthorization),
		RawQuery:      r.URL.RawQuery,
		Body:          r.Body,
		RemoteAddr:    c.RealIP(),
	})
	if e != nil {
		e.Write(c.Response())
		return nil
	}
	resp.Write(c.Response())
	return nil
}

// Oversized answers a token request whose declared body is larger than the
// endpoint accepts, before anything reads it.
func (h *OAuthToken) Oversized(c echo.Context) error {
	h.Endpoint.Oversized(c.RealIP()).Write(c.Response())
	if h.Logger != nil {
		h.Logger.Info("token request refused: body too large", "remote_ip", c.RealIP(), "content_length", c.Request().ContentLength)
	}
	return nil
}

// JWKS publishes the public keys that verify access tokens. It never
// answers 200 with an empty set: a replica without keys loaded (KMS down,
// the wrong master key) answers 503, uncached, so resource servers keep
// the set they have and retry, or ask another replica.
func (h *OAuthToken) JWKS(c echo.Context) error {
	doc, keys := h.Issuer.PublishedJWKS()
	if keys == 0 {
		apiclients.Unavailable().Write(c.Response())
		return nil
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=60")
	return c.Blob(http.StatusOK, "application/json", doc)
}

// Metadata publishes the RFC 8414 authorization server metadata.
func (h *OAuthToken) Metadata(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.Blob(http.StatusOK, "application/json", h.Issuer.Metadata(h.BaseURL))
}
