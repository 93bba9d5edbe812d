// Package oauth holds the pure core of the OAuth 2.0 client-credentials token
// endpoint: API client identifiers and secrets, keyed secret hashing, token
// request parsing (RFC 6749 section 4.4, errors per section 5.2), ES256 access
// tokens (RFC 9068) with their JWKS (RFC 7517) and authorization server
// metadata (RFC 8414), rate limiting with failure slowdown, and in-memory
// aggregation of authentication failures and last-use timestamps.
//
// Nothing in this package touches a database, the network or KMS: the
// credential service and the HTTP handler build on it.
package oauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Environments a credential can belong to.
const (
	EnvStaging    = "staging"
	EnvProduction = "production"
)

// Prefixes of generated client identifiers and secrets. Secrets carry a
// distinct, recognisable prefix so that secret scanners and people can tell a
// leaked secret from a public client_id at a glance.
const (
	ClientIDPrefixStaging        = "ecd_stg_"
	ClientIDPrefixProduction     = "ecd_prd_"
	ClientSecretPrefixStaging    = "ecds_stg_"
	ClientSecretPrefixProduction = "ecds_prd_"
)

const (
	// clientIDRandomLen is the number of random characters after the prefix
	// of a client_id (lowercase base32: 100 bits).
	clientIDRandomLen = 20
	// clientSecretRandomBytes is the entropy of a client secret (256 bits),
	// encoded as 43 unpadded base64url characters.
	clientSecretRandomBytes = 32
	clientSecretRandomLen   = 43
	// MinPepperLen is the shortest pepper a Hasher accepts, in bytes.
	MinPepperLen = 32
	// redacted replaces a secret value wherever one would be printed.
	redacted = "[REDACTED]"
	// Redacted is redacted, for the packages that record what clients sent.
	Redacted = redacted
)

// clientIDAlphabet is the lowercase RFC 4648 base32 alphabet: no ambiguous
// case, safe in URLs, file names and environment variables.
const clientIDAlphabet = "abcdefghijklmnopqrstuvwxyz234567"

// ErrInvalidEnvironment is returned for an environment other than staging or
// production.
var ErrInvalidEnvironment = errors.New("oauth: environment must be staging or production")

// ErrShortPepper is returned by NewHasher for a pepper shorter than MinPepperLen.
var ErrShortPepper = fmt.Errorf("oauth: pepper must be at least %d bytes", MinPepperLen)

// ValidEnvironment reports whether env is one of the environments a
// credential can belong to ("staging" or "production").
func ValidEnvironment(env string) bool {
	return env == EnvStaging || env == EnvProduction
}

func clientIDPrefix(env string) (string, error) {
	switch env {
	case EnvStaging:
		return ClientIDPrefixStaging, nil
	case EnvProduction:
		return ClientIDPrefixProduction, nil
	}
	return "", ErrInvalidEnvironment
}

func clientSecretPrefix(env string) (string, error) {
	switch env {
	case EnvStaging:
		return ClientSecretPrefixStaging, nil
	case EnvProduction:
		return ClientSecretPrefixProduction, nil
	}
	return "", ErrInvalidEnvironment
}

// GenerateClientID returns a new public client identifier for env:
// "ecd_stg_" or "ecd_prd_" followed by 20 random lowercase base32 characters.
func GenerateClientID(env string) (string, error) {
	prefix, err := clientIDPrefix(env)
	if err != nil {
		return "", err
	}
	// 32 divides 256, so taking the low 5 bits of each random byte is unbiased.
	buf := make([]byte, clientIDRandomLen)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("oauth: generate client id: %w", err)
	}
	for i, b := range buf {
		buf[i] = clientIDAlphabet[b&31]
	}
	return prefix + string(buf), nil
}

// ClientIDEnvironment returns the environment encoded in a well-formed
// client_id and true, or "" and false when id does not have the shape that
// GenerateClientID produces. A false answer means no such client can exist
// (the credential service still spends a look-up on it, so that refusals
// take the same time whatever the id).
func ClientIDEnvironment(id string) (string, bool) {
	var env, rest string
	switch {
	case strings.HasPrefix(id, ClientIDPrefixStaging):
		env, rest = EnvStaging, id[len(ClientIDPrefixStaging):]
	case strings.HasPrefix(id, ClientIDPrefixProduction):
		env, rest = EnvProduction, id[len(ClientIDPrefixProduction):]
	default:
		return "", false
	}
	if len(rest) != clientIDRandomLen {
		return "", false
	}
	for i := 0; i < len(rest); i++ {
		if strings.IndexByte(clientIDAlphabet, rest[i]) < 0 {
			return "", false
		}
	}
	return env, true
}

// LooksLikeClientSecret reports whether s starts like a secret produced by
// GenerateClientSecret. It lets audit and log paths refuse to record a value
// that a client sent in the wrong field.
func LooksLikeClientSecret(s string) bool {
	return strings.HasPrefix(s, "ecds_")
}

// ClientSecret holds a client secret in plain text. Every way of printing or
// serialising it (fmt verbs, JSON, text, slog) yields "[REDACTED]"; only
// Reveal returns the value. The zero value is an empty secret.
//
// The value sits behind a pointer: when fmt cannot call Format (a bad verb
// on an enclosing pointer, where it prints fields by reflection), it then
// shows an address, not the secret.
type ClientSecret struct {
	value *secretValue
}

type secretValue struct{ s string }

// NewClientSecret wraps a secret value, for example one presented by a client.
func NewClientSecret(value string) ClientSecret {
	if value == "" {
		return ClientSecret{}
	}
	return ClientSecret{value: &secretValue{s: value}}
}

// GenerateClientSecret returns a new client secret for env: "ecds_stg_" or
// "ecds_prd_" followed by 43 base64url characters encoding 32 random bytes
// (256 bits).
func GenerateClientSecret(env string) (ClientSecret, error) {
	prefix, err := clientSecretPrefix(env)
	if err != nil {
		return ClientSecret{}, err
	}
	buf := make([]byte, clientSecretRandomBytes)
	if _, err := rand.Read(buf); err != nil {
		return ClientSecret{}, fmt.Errorf("oauth: generate client secret: %w", err)
	}
	return NewClientSecret(prefix + base64.RawURLEncoding.EncodeToString(buf)), nil
}

// Reveal returns the secret in plain text. Call it only to show the secret
// once to its owner or to hash it.
func (s ClientSecret) Reveal() string {
	if s.value == nil {
		return ""
	}
	return s.value.s
}

// IsZero reports whether the secret is empty.
func (s ClientSecret) IsZero() bool { return s.value == nil || s.value.s == "" }

// String returns "[REDACTED]".
func (s ClientSecret) String() string { return redacted }

// GoString returns "[REDACTED]", so %#v does not print the value.
func (s ClientSecret) GoString() string { return redacted }

// Format writes "[REDACTED]" for every verb and flag.
func (s ClientSecret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalJSON returns the JSON string "[REDACTED]".
func (s ClientSecret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns "[REDACTED]".
func (s ClientSecret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue returns "[REDACTED]" for log/slog.
func (s ClientSecret) LogValue() slog.Value { return slog.StringValue(redacted) }

// Hasher computes and checks keyed hashes of client secrets:
// HMAC-SHA256 with a server-side pepper. Secrets are 256-bit random values,
// so a fast keyed hash is enough; a slow password hash would only cost the
// token endpoint. A Hasher is safe for concurrent use.
type Hasher struct {
	// The pepper sits behind a pointer so that no fmt path prints it.
	key *pepperKey
}

type pepperKey struct{ pepper []byte }

// NewHasher returns a Hasher keyed with pepper. It refuses a pepper shorter
// than MinPepperLen (32) bytes. The pepper is copied.
func NewHasher(pepper []byte) (*Hasher, error) {
	if len(pepper) < MinPepperLen {
		return nil, ErrShortPepper
	}
	return &Hasher{key: &pepperKey{pepper: append([]byte(nil), pepper...)}}, nil
}

// String returns a description without the pepper.
func (h Hasher) String() string { return "oauth.Hasher{pepper:" + redacted + "}" }

// GoString returns a description without the pepper.
func (h Hasher) GoString() string { return h.String() }

// Format writes a description without the pepper, for every verb.
func (h Hasher) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(h.String())) }

// LogValue logs the Hasher without the pepper.
func (h Hasher) LogValue() slog.Value { return slog.StringValue(h.String()) }

// Hash returns HMAC-SHA256(pepper, secret), 32 bytes, the value to store.
func (h *Hasher) Hash(secret string) []byte {
	m := hmac.New(sha256.New, h.key.pepper)
	m.Write([]byte(secret))
	return m.Sum(nil)
}

// Verify reports whether secret hashes to stored. The comparison takes the
// same time wherever the values differ (hmac.Equal); a stored value of the
// wrong length never matches.
func (h *Hasher) Verify(secret string, stored []byte) bool {
	return hmac.Equal(h.Hash(secret), stored)
}
