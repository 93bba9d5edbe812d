package oauth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Error codes of RFC 6749 section 5.2.
const (
	ErrCodeInvalidRequest       = "invalid_request"
	ErrCodeInvalidClient        = "invalid_client"
	ErrCodeInvalidGrant         = "invalid_grant"
	ErrCodeUnauthorizedClient   = "unauthorized_client"
	ErrCodeUnsupportedGrantType = "unsupported_grant_type"
	ErrCodeInvalidScope         = "invalid_scope"
)

// Client authentication methods (RFC 6749 section 2.3.1, names from the
// IANA OAuth registry).
const (
	AuthMethodBasic = "client_secret_basic"
	AuthMethodPost  = "client_secret_post"
)

// GrantTypeClientCredentials is the only grant type the endpoint supports.
const GrantTypeClientCredentials = "client_credentials"

// BasicChallenge is the WWW-Authenticate value sent with 401 answers.
const BasicChallenge = `Basic realm="keyconsole"`

// DefaultMaxBody is the request body limit ParseTokenRequest applies when it
// is given a limit of zero or less.
const DefaultMaxBody int64 = 8 << 10

const (
	// MaxClientIDLen and maxClientSecretLen bound credential fields: real
	// ones are 28 and 52 bytes long.
	MaxClientIDLen     = 256
	maxClientSecretLen = 512
	// maxAuthorizationLen bounds the Authorization header that is decoded.
	maxAuthorizationLen = 2048
	formContentType     = "application/x-www-form-urlencoded"
)

// Error is an OAuth 2.0 error response (RFC 6749 section 5.2). Descriptions
// are fixed texts of this package or its callers: they never echo a secret
// or other request input, and they stay within the character set RFC 6749
// allows for error_description.
type Error struct {
	// Code is one of the ErrCode constants.
	Code string
	// Description is a human-readable explanation (error_description).
	Description string
	// Status is the HTTP status code: 400, or 401 for invalid_client; 429
	// for RateLimited.
	Status int
	// WWWAuthenticate asks for a `WWW-Authenticate: Basic realm="keyconsole"`
	// header on the response.
	WWWAuthenticate bool
	// RetryAfter, when positive, asks for a Retry-After header (seconds,
	// rounded up).
	RetryAfter time.Duration
}

// NewError returns an Error for code with the status RFC 6749 gives it:
// invalid_client answers 401 with a Basic challenge, everything else 400.
func NewError(code, description string) *Error {
	e := &Error{Code: code, Description: description, Status: http.StatusBadRequest}
	if code == ErrCodeInvalidClient {
		e.Status = http.StatusUnauthorized
		e.WWWAuthenticate = true
	}
	return e
}

// InvalidClient returns a 401 invalid_client error with a Basic challenge,
// the answer for unknown clients, wrong secrets, and revoked or expired
// credentials alike (so the answer does not tell them apart).
func InvalidClient() *Error {
	return NewError(ErrCodeInvalidClient, "client authentication failed")
}

// RateLimited returns the answer for a request refused by the Limiter:
// HTTP 429 with Retry-After and an invalid_request body, since RFC 6749
// defines no error code of its own for it.
func RateLimited(retryAfter time.Duration) *Error {
	return &Error{
		Code:        ErrCodeInvalidRequest,
		Description: "too many requests; retry later",
		Status:      http.StatusTooManyRequests,
		RetryAfter:  retryAfter,
	}
}

// Error returns "code: description".
func (e *Error) Error() string { return e.Code + ": " + e.Description }

// Body returns the JSON error response: {"error":..., "error_description":...}.
func (e *Error) Body() []byte {
	b, err := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{e.Code, e.Description})
	if err != nil {
		// Marshalling two strings cannot fail.
		return []byte(`{"error":"invalid_request"}`)
	}
	return b
}

// RetryAfterSeconds returns RetryAfter rounded up to whole seconds, or 0.
func (e *Error) RetryAfterSeconds() int {
	if e.RetryAfter <= 0 {
		return 0
	}
	return int((e.RetryAfter + time.Second - 1) / time.Second)
}

// Write sends the error response on w: status, JSON body, no-store caching
// headers, and WWW-Authenticate and Retry-After when asked for.
func (e *Error) Write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if e.WWWAuthenticate {
		h.Set("WWW-Authenticate", BasicChallenge)
	}
	if s := e.RetryAfterSeconds(); s > 0 {
		h.Set("Retry-After", strconv.Itoa(s))
	}
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	w.WriteHeader(status)
	_, _ = w.Write(e.Body())
}

// TokenRequest is a syntactically valid client-credentials token request.
// The client is not authenticated yet: the credential service checks
// ClientID and ClientSecret.
type TokenRequest struct {
	// GrantType is always "client_credentials".
	GrantType string
	// ClientID is the presented client_id (not validated against the store).
	ClientID string
	// ClientSecret is the presented secret; it redacts when printed.
	ClientSecret ClientSecret
	// Scope is the requested scope, its tokens joined by single spaces, or "".
	Scope string
	// AuthMethod is AuthMethodBasic or AuthMethodPost.
	AuthMethod string
	// Environment and Resource are the request's "environment" and
	// "resource" parameters (RFC 8707), each value as sent, for the caller
	// to check against the credential and the audience.
	Environment, Resource []string
}

// Scopes returns the requested scope tokens, or nil.
func (r TokenRequest) Scopes() []string {
	if r.Scope == "" {
		return nil
	}
	return strings.Split(r.Scope, " ")
}

// LogValue logs the request without its secret.
func (r TokenRequest) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("grant_type", r.GrantType),
		slog.String("client_id", r.ClientID),
		slog.String("auth_method", r.AuthMethod),
		slog.String("scope", r.Scope),
	)
}

// Fixed error descriptions: they never include request input.
var (
	errMethod          = NewError(ErrCodeInvalidRequest, "the token endpoint accepts only POST")
	errContentType     = NewError(ErrCodeInvalidRequest, "content type must be application/x-www-form-urlencoded")
	errBodyTooLarge    = NewError(ErrCodeInvalidRequest, "request body is too large")
	errBodyRead        = NewError(ErrCodeInvalidRequest, "request body could not be read")
	errMalformedForm   = NewError(ErrCodeInvalidRequest, "request body is not a valid form")
	errMissingGrant    = NewError(ErrCodeInvalidRequest, "missing grant_type parameter")
	errUnsupported     = NewError(ErrCodeUnsupportedGrantType, "only the client_credentials grant type is supported")
	errBothMethods     = NewError(ErrCodeInvalidRequest, "use only one client authentication method")
	errClientIDDiffers = NewError(ErrCodeInvalidRequest, "client_id in the body does not match the Authorization header")
	errSecretNoID      = NewError(ErrCodeInvalidRequest, "client_secret requires client_id")
	errMalformedBasic  = NewError(ErrCodeInvalidClient, "malformed Basic authorization header")
	errOtherScheme     = NewError(ErrCodeInvalidClient, "unsupported authorization scheme; use Basic")
	errNoClientAuth    = NewError(ErrCodeInvalidClient, "client authentication required")
	errMalformedClient = NewError(ErrCodeInvalidClient, "malformed client credentials")
	errMalformedScope  = NewError(ErrCodeInvalidScope, "the requested scope is malformed")
)

// repeatedErrors answers a known parameter sent more than once (RFC 6749
// section 3.2); the parameter name in the text is ours, not the client's.
var repeatedErrors = map[string]*Error{
	"grant_type":    NewError(ErrCodeInvalidRequest, "parameter grant_type is repeated"),
	"client_id":     NewError(ErrCodeInvalidRequest, "parameter client_id is repeated"),
	"client_secret": NewError(ErrCodeInvalidRequest, "parameter client_secret is repeated"),
	"scope":         NewError(ErrCodeInvalidRequest, "parameter scope is repeated"),
}

// knownParams lists the parameters checked for repetition, in a fixed order.
var knownParams = []string{"grant_type", "client_id", "client_secret", "scope"}

func fail(e *Error) *Error {
	c := *e
	return &c
}

// ParseTokenRequest parses a token request (RFC 6749 section 4.4) from the
// request method, Content-Type and Authorization headers and body, reading
// at most maxBody bytes (DefaultMaxBody when maxBody <= 0).
//
// Checks, in order: POST only; Content-Type application/x-www-form-urlencoded
// (parameters such as charset allowed); body within the limit (a larger body
// is invalid_request, 400); a well-formed form; grant_type, client_id,
// client_secret and scope each at most once (other parameters are ignored,
// as RFC 6749 requires); grant_type present (invalid_request) and equal to
// client_credentials (unsupported_grant_type); exactly one client
// authentication method: Basic with the body carrying client_secret too is
// invalid_request, a body client_id differing from the Basic one is
// invalid_request, a malformed Basic header or another scheme is
// invalid_client (401), no credentials at all is invalid_client (401);
// scope syntax (RFC 6749 section 3.3, invalid_scope).
//
// The Basic credentials are decoded per RFC 6749 section 2.3.1: base64, then
// split at the first colon, then form-url-decoding of both halves. Empty
// parameters count as absent. Whether the client exists and the secret is
// right is for the caller to decide.
func ParseTokenRequest(method, contentType, authorizationHeader string, body io.Reader, maxBody int64) (TokenRequest, *Error) {
	if method != http.MethodPost {
		return TokenRequest{}, fail(errMethod)
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil || mediaType != formContentType {
		return TokenRequest{}, fail(errContentType)
	}
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	if body == nil {
		body = strings.NewReader("")
	}
	raw, err := io.ReadAll(io.LimitReader(body, maxBody+1))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return TokenRequest{}, fail(errBodyTooLarge)
		}
		return TokenRequest{}, fail(errBodyRead)
	}
	if int64(len(raw)) > maxBody {
		return TokenRequest{}, fail(errBodyTooLarge)
	}
	form, err := url.ParseQuery(string(raw))
	if err != nil {
		return TokenRequest{}, fail(errMalformedForm)
	}
	for _, name := range knownParams {
		if len(form[name]) > 1 {
			return TokenRequest{}, fail(repeatedErrors[name])
		}
	}

	grantType := form.Get("grant_type")
	if grantType == "" {
		return TokenRequest{}, fail(errMissingGrant)
	}
	if grantType != GrantTypeClientCredentials {
		return TokenRequest{}, fail(errUnsupported)
	}

	req := TokenRequest{GrantType: GrantTypeClientCredentials}
	bodyID := form.Get("client_id")
	bodySecret := form.Get("client_secret")
	authorizationHeader = strings.TrimSpace(authorizationHeader)

	if authorizationHeader != "" {
		scheme, credentials, _ := strings.Cut(authorizationHeader, " ")
		if !strings.EqualFold(scheme, "Basic") {
			return TokenRequest{}, fail(errOtherScheme)
		}
		if bodySecret != "" {
			return TokenRequest{}, fail(errBothMethods)
		}
		id, secret, ok := decodeBasic(strings.TrimSpace(credentials))
		if !ok {
			return TokenRequest{}, fail(errMalformedBasic)
		}
		if bodyID != "" && bodyID != id {
			return TokenRequest{}, fail(errClientIDDiffers)
		}
		req.ClientID, req.ClientSecret, req.AuthMethod = id, NewClientSecret(secret), AuthMethodBasic
	} else {
		switch {
		case bodySecret != "" && bodyID == "":
			return TokenRequest{}, fail(errSecretNoID)
		case bodySecret == "":
			return TokenRequest{}, fail(errNoClientAuth)
		}
		if !validCredentialField(bodyID, MaxClientIDLen) || !validCredentialField(bodySecret, maxClientSecretLen) {
			return TokenRequest{}, fail(errMalformedClient)
		}
		req.ClientID, req.ClientSecret, req.AuthMethod = bodyID, NewClientSecret(bodySecret), AuthMethodPost
	}

	scope, ok := normalizeScope(form.Get("scope"))
	if !ok {
		return TokenRequest{}, fail(errMalformedScope)
	}
	req.Scope = scope
	req.Environment, req.Resource = form["environment"], form["resource"]
	return req, nil
}

var errQueryCredentials = NewError(ErrCodeInvalidRequest, "client credentials must not be sent in the URL")

// CheckQuery returns an invalid_request error when the request URL's raw
// query carries a client_secret (RFC 6749 section 2.3.1 allows credentials
// only in the Authorization header or the body), nil otherwise. A secret
// sent that way has reached access logs and proxies, so the caller should
// also treat the credential as exposed. An unparsable query is checked
// leniently, parameter by parameter.
func CheckQuery(rawQuery string) *Error {
	if rawQuery == "" {
		return nil
	}
	for _, part := range strings.FieldsFunc(rawQuery, func(r rune) bool { return r == '&' || r == ';' }) {
		name, _, _ := strings.Cut(part, "=")
		if decoded, err := url.QueryUnescape(name); err == nil {
			name = decoded
		}
		if name == "client_secret" {
			return fail(errQueryCredentials)
		}
	}
	return nil
}

// decodeBasic decodes the credentials of a Basic Authorization header per
// RFC 6749 section 2.3.1.
func decodeBasic(credentials string) (id, secret string, ok bool) {
	if credentials == "" || len(credentials) > maxAuthorizationLen {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(credentials)
	if err != nil {
		// Some clients omit the padding.
		raw, err = base64.RawStdEncoding.DecodeString(credentials)
		if err != nil {
			return "", "", false
		}
	}
	encID, encSecret, found := strings.Cut(string(raw), ":")
	if !found {
		return "", "", false
	}
	if id, err = url.QueryUnescape(encID); err != nil {
		return "", "", false
	}
	if secret, err = url.QueryUnescape(encSecret); err != nil {
		return "", "", false
	}
	if !validCredentialField(id, MaxClientIDLen) || !validCredentialField(secret, maxClientSecretLen) {
		return "", "", false
	}
	return id, secret, true
}

// validCredentialField reports whether s is non-empty, at most max bytes,
// valid UTF-8 and free of control characters.
func validCredentialField(s string, max int) bool {
	if s == "" || len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// normalizeScope checks scope syntax (RFC 6749 section 3.3: tokens of
// %x21 / %x23-5B / %x5D-7E separated by spaces) and joins the tokens by
// single spaces. Runs of spaces are tolerated.
func normalizeScope(scope string) (string, bool) {
	if scope == "" {
		return "", true
	}
	var tokens []string
	for _, tok := range strings.Split(scope, " ") {
		if tok == "" {
			continue
		}
		for i := 0; i < len(tok); i++ {
			c := tok[i]
			if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
				return "", false
			}
		}
		tokens = append(tokens, tok)
	}
	if len(tokens) == 0 {
		return "", false
	}
	return strings.Join(tokens, " "), true
}
