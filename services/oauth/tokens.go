package oauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Access token parameters.
const (
	// TokenType is the JOSE "typ" header of access tokens (RFC 9068 section 2.1).
	TokenType = "at+jwt"
	// DefaultLifetime is the access token lifetime when none is configured.
	DefaultLifetime = 15 * time.Minute
	// MaxLifetime is the longest access token lifetime NewIssuer accepts.
	MaxLifetime = 24 * time.Hour
	// DefaultClockSkew is the clock skew tolerated between this server and
	// resource servers when none is configured.
	DefaultClockSkew = time.Minute
	// MaxClockSkew is the largest clock skew NewIssuer accepts.
	MaxClockSkew = 10 * time.Minute
)

// Errors of the token issuer.
var (
	// ErrNoSigningKey is returned by Issue before SetKeys installed a key, or
	// when the active key is past its NotAfter.
	ErrNoSigningKey = errors.New("oauth: no usable signing key")
	// ErrInvalidSigningKey is returned for a key that is not a P-256 key
	// with a matching KID.
	ErrInvalidSigningKey = errors.New("oauth: invalid signing key")
	// ErrInvalidToken is returned by Verify for any token it does not accept.
	ErrInvalidToken = errors.New("oauth: invalid access token")
)

// SigningKey is an ES256 (P-256) key that signs access tokens. It never
// prints its private part: String, Format, GoString, MarshalJSON and
// LogValue show only the KID and the dates.
type SigningKey struct {
	// KID is the base64url RFC 7638 JWK thumbprint (SHA-256) of the public key.
	KID string
	// Private is the P-256 private key.
	Private *ecdsa.PrivateKey
	// CreatedAt is when the key was generated (zero when unknown).
	CreatedAt time.Time
	// NotAfter is when the key stops signing; zero while it is the current
	// key with no end planned.
	NotAfter time.Time
	// PublishUntil is when the key leaves the JWKS; zero means published
	// with no end planned. It must not be earlier than NotAfter plus the
	// token lifetime plus clock skew, or tokens it signed stop verifying.
	PublishUntil time.Time
}

// GenerateSigningKey returns a new P-256 signing key with its KID, created
// at now; it has no NotAfter or PublishUntil yet.
func GenerateSigningKey(now time.Time) (SigningKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return SigningKey{}, fmt.Errorf("oauth: generate signing key: %w", err)
	}
	k, err := newSigningKey(priv)
	if err != nil {
		return SigningKey{}, err
	}
	k.CreatedAt = now.UTC()
	return k, nil
}

func newSigningKey(priv *ecdsa.PrivateKey) (SigningKey, error) {
	if priv == nil || priv.Curve != elliptic.P256() {
		return SigningKey{}, ErrInvalidSigningKey
	}
	kid, err := KeyID(&priv.PublicKey)
	if err != nil {
		return SigningKey{}, err
	}
	return SigningKey{KID: kid, Private: priv}, nil
}

// MarshalPrivate returns the private key as PKCS#8 DER. The caller seals it
// (through KMS) before it is stored.
func (k SigningKey) MarshalPrivate() ([]byte, error) {
	if k.Private == nil {
		return nil, ErrInvalidSigningKey
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("oauth: marshal signing key: %w", err)
	}
	return der, nil
}

// UnmarshalPrivate parses a PKCS#8 DER P-256 private key as written by
// MarshalPrivate and returns it as a SigningKey with its KID computed. The
// caller sets CreatedAt, NotAfter and PublishUntil from its own records.
func UnmarshalPrivate(der []byte) (SigningKey, error) {
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return SigningKey{}, fmt.Errorf("oauth: parse signing key: %w", err)
	}
	priv, ok := parsed.(*ecdsa.PrivateKey)
	if !ok {
		return SigningKey{}, ErrInvalidSigningKey
	}
	return newSigningKey(priv)
}

// String describes the key without its private part.
func (k SigningKey) String() string {
	var b strings.Builder
	b.WriteString("SigningKey{KID:")
	b.WriteString(k.KID)
	if !k.NotAfter.IsZero() {
		b.WriteString(" NotAfter:")
		b.WriteString(k.NotAfter.UTC().Format(time.RFC3339))
	}
	if !k.PublishUntil.IsZero() {
		b.WriteString(" PublishUntil:")
		b.WriteString(k.PublishUntil.UTC().Format(time.RFC3339))
	}
	b.WriteString(" Private:[REDACTED]}")
	return b.String()
}

// GoString describes the key without its private part.
func (k SigningKey) GoString() string { return k.String() }

// Format describes the key without its private part, for every verb.
func (k SigningKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// MarshalJSON returns the KID and dates only.
func (k SigningKey) MarshalJSON() ([]byte, error) {
	return jsonMarshal(struct {
		KID          string     `json:"kid"`
		NotAfter     *time.Time `json:"not_after,omitempty"`
		PublishUntil *time.Time `json:"publish_until,omitempty"`
	}{k.KID, timePtr(k.NotAfter), timePtr(k.PublishUntil)})
}

// LogValue logs the KID and dates only.
func (k SigningKey) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("kid", k.KID),
		slog.Time("not_after", k.NotAfter),
		slog.Time("publish_until", k.PublishUntil),
	)
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// signs reports whether the key may sign at now.
func (k SigningKey) signs(now time.Time) bool {
	return k.NotAfter.IsZero() || now.Before(k.NotAfter)
}

// published reports whether the key belongs in the JWKS at now.
func (k SigningKey) published(now time.Time) bool {
	return k.PublishUntil.IsZero() || now.Before(k.PublishUntil)
}

func (k SigningKey) valid() bool {
	if k.Private == nil || k.Private.Curve != elliptic.P256() {
		return false
	}
	kid, err := KeyID(&k.Private.PublicKey)
	return err == nil && kid == k.KID
}

// RetireKey returns old as it must be kept after a rotation at now: it stops
// signing at now (NotAfter) and stays published until now + lifetime + skew
// (PublishUntil), when the last token it signed has expired everywhere.
// An earlier NotAfter or a later PublishUntil already set on old is kept.
func RetireKey(old SigningKey, now time.Time, lifetime, skew time.Duration) SigningKey {
	if old.NotAfter.IsZero() || old.NotAfter.After(now) {
		old.NotAfter = now
	}
	until := old.NotAfter.Add(lifetime + skew)
	if old.PublishUntil.IsZero() || old.PublishUntil.Before(until) {
		old.PublishUntil = until
	}
	return old
}

// PruneKeys returns the keys still to be published at now, dropping those
// whose PublishUntil has passed, in their original order.
func PruneKeys(keys []SigningKey, now time.Time) []SigningKey {
	out := make([]SigningKey, 0, len(keys))
	for _, k := range keys {
		if k.published(now) {
			out = append(out, k)
		}
	}
	return out
}

// IssuerConfig configures an Issuer.
type IssuerConfig struct {
	// Issuer is the "iss" claim and the RFC 8414 issuer identifier, an https
	// URL (http on loopback in development) without query or fragment.
	// Required.
	Issuer string
	// Audience is the "aud" claim: the resource server the tokens are for.
	// Required.
	Audience string
	// Lifetime of access tokens; DefaultLifetime (15 minutes) when zero; at
	// most MaxLifetime.
	Lifetime time.Duration
	// ClockSkew tolerated by Verify and added to the publication of retired
	// keys; DefaultClockSkew when zero; at most MaxClockSkew.
	ClockSkew time.Duration
	// Clock returns the current time; time.Now when nil.
	Clock func() time.Time
	// Reuse is how long after issuing a token IssueReusable answers a repeat
	// request for the same claims and reuse key with that same token (and
	// the lifetime it has left) instead of signing a new one. Zero turns
	// reuse off; at most a tenth of Lifetime, so a reused token always has
	// at least 90% of its lifetime left.
	Reuse time.Duration
}

// MaxReusedTokens bounds the tokens an Issuer keeps for reuse; when it is
// full, tokens past their reuse window are dropped, and if none are, new
// tokens are not kept until some are.
const MaxReusedTokens = 200_000

// Claims are the facts an access token states about an authenticated client.
type Claims struct {
	// Subject is the "sub" claim; the client_id when empty (RFC 9068
	// section 2.2 for the client-credentials grant).
	Subject string
	// ClientID is the "client_id" claim. Required.
	ClientID string
	// Agency is the slug of the agency owning the client ("agency" claim).
	Agency string
	// Environment is "staging" or "production" ("environment" claim).
	Environment string
	// Scope is the granted scope, space-separated; omitted when empty.
	Scope string
}

// AccessTokenClaims is the JWT claim set of an access token, as issued and
// as returned by Verify.
type AccessTokenClaims struct {
	jwt.RegisteredClaims
	ClientID    string `json:"client_id"`
	Scope       string `json:"scope,omitempty"`
	Agency      string `json:"agency,omitempty"`
	Environment string `json:"environment,omitempty"`
}

// Issuer signs access tokens and publishes the keys to verify them. Its key
// set is replaced with SetKeys or Rotate; all methods are safe for
// concurrent use.
type Issuer struct {
	issuer   string
	audience string
	lifetime time.Duration
	skew     time.Duration
	clock    func() time.Time

	mu        sync.RWMutex
	active    SigningKey
	published []SigningKey

	reuse     time.Duration
	maxReused int
	reuseMu   sync.Mutex
	reused    map[string]reusable
	// inserts counts tokens kept since the last sweep of stale ones.
	inserts int
}

// reusable is a signed token kept for repeat requests within the reuse
// window: the claims it states and the key that signed it.
type reusable struct {
	claims    Claims
	kid       string
	token     string
	jti       string
	issuedAt  time.Time
	expiresAt time.Time
}

// String describes the issuer by its identifier and active key's KID; it
// never prints the keys' private parts or the tokens kept for reuse.
func (i *Issuer) String() string {
	i.mu.RLock()
	kid := i.active.KID
	i.mu.RUnlock()
	return "oauth.Issuer{iss:" + i.issuer + " kid:" + kid + " tokens:" + redacted + "}"
}

// GoString is String.
func (i *Issuer) GoString() string { return i.String() }

// Format writes String for every verb.
func (i *Issuer) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(i.String())) }

// LogValue logs String.
func (i *Issuer) LogValue() slog.Value { return slog.StringValue(i.String()) }

// NewIssuer returns an Issuer for cfg, with no keys yet.
func NewIssuer(cfg IssuerConfig) (*Issuer, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("oauth: issuer: Issuer is required")
	}
	if strings.ContainsAny(cfg.Issuer, "?#") {
		return nil, errors.New("oauth: issuer: Issuer must not have a query or fragment")
	}
	if cfg.Audience == "" {
		return nil, errors.New("oauth: issuer: Audience is required")
	}
	if cfg.Lifetime == 0 {
		cfg.Lifetime = DefaultLifetime
	}
	if cfg.Lifetime < time.Second || cfg.Lifetime > MaxLifetime {
		return nil, fmt.Errorf("oauth: issuer: Lifetime must be between 1s and %s", MaxLifetime)
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.ClockSkew < 0 || cfg.ClockSkew > MaxClockSkew {
		return nil, fmt.Errorf("oauth: issuer: ClockSkew must be between 0 and %s", MaxClockSkew)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Reuse < 0 || cfg.Reuse > cfg.Lifetime/10 {
		return nil, fmt.Errorf("oauth: issuer: Reuse must be between 0 and a tenth of Lifetime (%s)", cfg.Lifetime/10)
	}
	return &Issuer{
		issuer:    strings.TrimSuffix(cfg.Issuer, "/"),
		audience:  cfg.Audience,
		lifetime:  cfg.Lifetime,
		skew:      cfg.ClockSkew,
		clock:     cfg.Clock,
		reuse:     cfg.Reuse,
		maxReused: MaxReusedTokens,
		reused:    map[string]reusable{},
	}, nil
}

// Lifetime returns the access token lifetime.
func (i *Issuer) Lifetime() time.Duration { return i.lifetime }

// ClockSkew returns the tolerated clock skew.
func (i *Issuer) ClockSkew() time.Duration { return i.skew }

// IssuerID returns the issuer identifier ("iss").
func (i *Issuer) IssuerID() string { return i.issuer }

// SetKeys installs the key that signs from now on and the keys published in
// the JWKS. The active key is always published, whether or not it is in
// published; duplicates (by KID) are dropped. Every key must be a P-256 key
// whose KID matches its public key.
func (i *Issuer) SetKeys(active SigningKey, published []SigningKey) error {
	if !active.valid() {
		return fmt.Errorf("oauth: set keys: active key: %w", ErrInvalidSigningKey)
	}
	seen := map[string]bool{active.KID: true}
	keys := []SigningKey{active}
	for _, k := range published {
		if !k.valid() {
			return fmt.Errorf("oauth: set keys: published key %s: %w", k.KID, ErrInvalidSigningKey)
		}
		if seen[k.KID] {
			continue
		}
		seen[k.KID] = true
		keys = append(keys, k)
	}
	i.mu.Lock()
	i.active, i.published = active, keys
	i.mu.Unlock()
	return nil
}

// Keys returns the active key and every key in the key set (the active key
// first), including keys past their PublishUntil that SetKeys or Rotate
// have not dropped yet.
func (i *Issuer) Keys() (SigningKey, []SigningKey) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.active, append([]SigningKey(nil), i.published...)
}

// Rotate generates a new key and makes it the active key at now. The
// previous active key is retired with RetireKey: it stops signing at now and
// stays published until now + Lifetime + ClockSkew, so every token it signed
// can still be verified until that token has expired. Keys whose
// PublishUntil has passed are dropped. It returns the new key and the full
// published set (new key first) for the caller to persist; replicas that
// load the same set with SetKeys publish the same JWKS.
//
// With several replicas, a resource server may fetch the JWKS from a replica
// that has not loaded the new key yet; replicas should reload the key set
// often (well under the token lifetime) and resource servers refetch the
// JWKS on an unknown kid.
func (i *Issuer) Rotate(now time.Time) (SigningKey, []SigningKey, error) {
	next, err := GenerateSigningKey(now)
	if err != nil {
		return SigningKey{}, nil, err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	keys := []SigningKey{next}
	for _, k := range i.published {
		if k.KID == i.active.KID {
			k = RetireKey(k, now, i.lifetime, i.skew)
		}
		if k.published(now) {
			keys = append(keys, k)
		}
	}
	i.active, i.published = next, keys
	return next, append([]SigningKey(nil), keys...), nil
}

// IssueReusable answers a token request for c from a client that key
// names (its credential and the version of its secret, so a regenerated
// secret never gets a token issued to the old one). Within the reuse window
// after a token was issued for the same key and claims, by the key that
// still signs, it returns that token again with the whole seconds it has
// left (reused true); otherwise it signs a new one with Issue and keeps it.
// A token is a bearer credential either way: reuse hands an authenticated
// client nothing it could not get by asking again, and saves an ES256
// signature for clients that ask for a token before every API call.
func (i *Issuer) IssueReusable(key string, c Claims) (token string, expiresIn int, jti string, reused bool, err error) {
	if i.reuse <= 0 || key == "" {
		token, expiresIn, jti, err = i.Issue(c)
		return token, expiresIn, jti, false, err
	}
	now := i.clock()
	i.mu.RLock()
	kid := i.active.KID
	i.mu.RUnlock()
	i.reuseMu.Lock()
	e, ok := i.reused[key]
	i.reuseMu.Unlock()
	if ok && e.claims == c && e.kid == kid && !now.Before(e.issuedAt) && now.Sub(e.issuedAt) < i.reuse {
		if left := int(e.expiresAt.Sub(now) / time.Second); left > 0 {
			return e.token, left, e.jti, true, nil
		}
	}
	token, expiresIn, jti, signedBy, issuedAt, expiresAt, err := i.issue(c)
	if err != nil {
		return "", 0, "", false, err
	}
	i.keep(key, reusable{claims: c, kid: signedBy, token: token, jti: jti, issuedAt: issuedAt, expiresAt: expiresAt}, now)
	return token, expiresIn, jti, false, nil
}

// keep stores e for reuse under key, sweeping tokens past their reuse
// window every so often and whenever the store is full.
func (i *Issuer) keep(key string, e reusable, now time.Time) {
	i.reuseMu.Lock()
	defer i.reuseMu.Unlock()
	i.inserts++
	if i.inserts >= max(i.maxReused/4, 1) || len(i.reused) >= i.maxReused {
		for k, old := range i.reused {
			if now.Sub(old.issuedAt) >= i.reuse || now.Before(old.issuedAt) {
				delete(i.reused, k)
			}
		}
		i.inserts = 0
	}
	if _, ok := i.reused[key]; ok || len(i.reused) < i.maxReused {
		i.reused[key] = e
	}
}

// Forget drops the token kept for reuse under key, if any.
func (i *Issuer) Forget(key string) {
	i.reuseMu.Lock()
	delete(i.reused, key)
	i.reuseMu.Unlock()
}

// Issue signs an access token for c (RFC 9068): header alg ES256, typ
// at+jwt and kid; claims iss, sub, aud, exp, iat, nbf, jti (128 random
// bits), client_id, scope (when not empty), agency and environment. It
// returns the compact JWT, its lifetime in seconds (expires_in) and its jti.
func (i *Issuer) Issue(c Claims) (token string, expiresIn int, jti string, err error) {
	token, expiresIn, jti, _, _, _, err = i.issue(c)
	return token, expiresIn, jti, err
}

// issue signs a token for c and also returns the signing key's KID and
// the iat and exp it states.
func (i *Issuer) issue(c Claims) (token string, expiresIn int, jti, kid string, issuedAt, expiresAt time.Time, err error) {
	fail := func(err error) (string, int, string, string, time.Time, time.Time, error) {
		return "", 0, "", "", time.Time{}, time.Time{}, err
	}
	if c.ClientID == "" {
		return fail(errors.New("oauth: issue: ClientID is required"))
	}
	now := i.clock()
	i.mu.RLock()
	key := i.active
	i.mu.RUnlock()
	if key.Private == nil || !key.signs(now) {
		return fail(ErrNoSigningKey)
	}
	sub := c.Subject
	if sub == "" {
		sub = c.ClientID
	}
	jti = rand.Text()
	iat, exp := jwt.NewNumericDate(now), jwt.NewNumericDate(now.Add(i.lifetime))
	claims := AccessTokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.issuer,
			Subject:   sub,
			Audience:  jwt.ClaimStrings{i.audience},
			ExpiresAt: exp,
			NotBefore: iat,
			IssuedAt:  iat,
			ID:        jti,
		},
		ClientID:    c.ClientID,
		Scope:       c.Scope,
		Agency:      c.Agency,
		Environment: c.Environment,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	t.Header["typ"] = TokenType
	t.Header["kid"] = key.KID
	token, err = t.SignedString(key.Private)
	if err != nil {
		return fail(fmt.Errorf("oauth: issue: sign: %w", err))
	}
	return token, int(i.lifetime / time.Second), jti, key.KID, iat.Time, exp.Time, nil
}

// Verify checks an access token the way a resource server does: ES256
// signature by a currently published key named by kid, typ at+jwt, iss, aud,
// exp (required), nbf and iat, with ClockSkew leeway. Any failure wraps
// ErrInvalidToken.
func (i *Issuer) Verify(token string) (*AccessTokenClaims, error) {
	now := i.clock()
	i.mu.RLock()
	keys := i.published
	i.mu.RUnlock()
	claims := &AccessTokenClaims{}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithIssuer(i.issuer),
		jwt.WithAudience(i.audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(i.skew),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	_, err := parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, TokenType) && !strings.EqualFold(typ, "application/"+TokenType) {
			return nil, errors.New("typ is not at+jwt")
		}
		kid, _ := t.Header["kid"].(string)
		for _, k := range keys {
			if k.KID == kid && k.published(now) {
				return &k.Private.PublicKey, nil
			}
		}
		return nil, errors.New("unknown kid")
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return claims, nil
}
