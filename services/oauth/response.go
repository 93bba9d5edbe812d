package oauth

import (
	"fmt"
	"log/slog"
	"net/http"
)

// TokenResponse is a successful access token response (RFC 6749 section
// 5.1).
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	// TokenType is always "Bearer".
	TokenType string `json:"token_type"`
	// ExpiresIn is the token lifetime in seconds.
	ExpiresIn int `json:"expires_in"`
	// Scope is the granted scope; omitted when empty.
	Scope string `json:"scope,omitempty"`
}

// String describes the response with the access token redacted.
func (r TokenResponse) String() string {
	return fmt.Sprintf("TokenResponse{AccessToken:%s TokenType:%s ExpiresIn:%d Scope:%s}", redacted, r.TokenType, r.ExpiresIn, r.Scope)
}

// GoString describes the response with the access token redacted.
func (r TokenResponse) GoString() string { return r.String() }

// Format describes the response with the access token redacted, for every
// verb. JSON marshalling (Body) is the response itself and keeps the token.
func (r TokenResponse) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(r.String())) }

// LogValue logs the response without the access token.
func (r TokenResponse) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("token_type", r.TokenType),
		slog.Int("expires_in", r.ExpiresIn),
		slog.String("scope", r.Scope),
	)
}

// NewTokenResponse returns the response for a token issued by Issuer.Issue.
func NewTokenResponse(accessToken string, expiresIn int, scope string) TokenResponse {
	return TokenResponse{AccessToken: accessToken, TokenType: "Bearer", ExpiresIn: expiresIn, Scope: scope}
}

// Body returns the JSON response body.
func (r TokenResponse) Body() []byte {
	b, err := jsonMarshal(r)
	if err != nil {
		// Marshalling strings and an int cannot fail.
		return []byte(`{}`)
	}
	return b
}

// Write sends the response on w with status 200 and the no-store caching
// headers RFC 6749 section 5.1 requires.
func (r TokenResponse) Write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(r.Body())
}
