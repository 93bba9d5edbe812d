// Package webhooks holds webhook endpoint secrets, Standard Webhooks signing and the
// egress-checked delivery of signed events to receivers.
package webhooks

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Secret length limits and the alphabet used for generated secrets.
const (
	// SecretMinLen is the shortest secret accepted (16 characters, 128 bits of key).
	SecretMinLen = 16
	// SecretMaxLen is the longest secret accepted, the platform's limit.
	SecretMaxLen = 24
	// GeneratedSecretLen is the length of a secret made by GenerateSecret.
	GeneratedSecretLen = 24
	// WhsecPrefix prefixes the base64 form of a secret used by Standard Webhooks libraries.
	WhsecPrefix = "whsec_"

	secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	redacted       = "[redacted]"
)

// Secret is a webhook signing secret. Every printing, logging and serialising path
// redacts it; only Reveal, Bytes, Masked and WhsecForm give access to its value.
// The zero value holds no secret.
type Secret struct {
	// v is a pointer so that reflection-based printing of a struct holding a Secret
	// in an unexported field shows an address, never the bytes.
	v *secretValue
}

type secretValue struct {
	b []byte
}

// SecretErrorCode names why a typed secret was refused.
type SecretErrorCode string

// Codes carried by SecretError.
const (
	SecretEmpty      SecretErrorCode = "empty"
	SecretTooShort   SecretErrorCode = "too_short"
	SecretTooLong    SecretErrorCode = "too_long"
	SecretWhitespace SecretErrorCode = "whitespace"
	SecretNonASCII   SecretErrorCode = "non_ascii"
	SecretControl    SecretErrorCode = "control"
)

// SecretError reports why ParseSecret refused its input. Message is written for the
// person typing the secret and never contains the input.
type SecretError struct {
	Code    SecretErrorCode
	Message string
}

// Error returns the message shown next to the secret field.
func (e *SecretError) Error() string { return e.Message }

// GenerateSecret returns a new secret of 24 characters drawn uniformly from
// [A-Za-z0-9] with crypto/rand, using rejection sampling so no character is favoured.
func GenerateSecret() (Secret, error) {
	const (
		n = len(secretAlphabet)
		// limit is the largest multiple of n not above 256; bytes at or over it are
		// rejected so that b % n is uniform.
		limit = 256 - 256%n
	)
	out := make([]byte, 0, GeneratedSecretLen)
	buf := make([]byte, 2*GeneratedSecretLen)
	for len(out) < GeneratedSecretLen {
		if _, err := rand.Read(buf); err != nil {
			return Secret{}, fmt.Errorf("webhooks: generate secret: %w", err)
		}
		for _, b := range buf {
			if int(b) >= limit {
				continue
			}
			out = append(out, secretAlphabet[int(b)%n])
			if len(out) == GeneratedSecretLen {
				break
			}
		}
	}
	clear(buf)
	return Secret{v: &secretValue{b: out}}, nil
}

// ParseSecret checks a secret typed by an administrator: 16 to 24 printable ASCII
// characters (0x21 to 0x7E), no spaces. A refusal is a *SecretError.
func ParseSecret(s string) (Secret, error) {
	if s == "" {
		return Secret{}, &SecretError{Code: SecretEmpty, Message: "Enter a secret of 16 to 24 characters."}
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == ' ' || unicode.IsSpace(r):
			return Secret{}, &SecretError{Code: SecretWhitespace, Message: "The secret contains a space or other whitespace; spaces are not allowed."}
		case r < 0x20 || r == 0x7F || (r >= 0x80 && r <= 0x9F):
			return Secret{}, &SecretError{Code: SecretControl, Message: "The secret contains a control character; use printable ASCII characters only."}
		case r >= 0x80 || r == utf8.RuneError:
			return Secret{}, &SecretError{Code: SecretNonASCII, Message: "The secret contains a non-ASCII character; use printable ASCII characters only."}
		}
	}
	switch {
	case len(s) < SecretMinLen:
		return Secret{}, &SecretError{Code: SecretTooShort, Message: fmt.Sprintf("The secret is too short; use at least %d characters.", SecretMinLen)}
	case len(s) > SecretMaxLen:
		return Secret{}, &SecretError{Code: SecretTooLong, Message: fmt.Sprintf("The secret is too long; use at most %d characters, the platform's limit.", SecretMaxLen)}
	}
	return Secret{v: &secretValue{b: []byte(s)}}, nil
}

// IsZero reports whether the Secret holds no value.
func (s Secret) IsZero() bool { return s.v == nil || len(s.v.b) == 0 }

func (s Secret) raw() []byte {
	if s.v == nil {
		return nil
	}
	return s.v.b
}

// Reveal returns the secret's characters. Call it only to show the secret to an
// administrator who is allowed to see it.
func (s Secret) Reveal() string { return string(s.raw()) }

// Bytes returns a copy of the secret's bytes, the HMAC key.
func (s Secret) Bytes() []byte { return append([]byte(nil), s.raw()...) }

// Masked returns at most the first two characters followed by bullets; the number of
// bullets does not depend on the secret's length.
func (s Secret) Masked() string {
	b := s.raw()
	if len(b) == 0 {
		return ""
	}
	shown := 2
	if len(b) < 2 {
		shown = len(b)
	}
	return string(b[:shown]) + strings.Repeat("•", 8)
}

// WhsecForm returns "whsec_" followed by the standard base64 of the secret's bytes,
// the form that Standard Webhooks libraries take.
func (s Secret) WhsecForm() string {
	return WhsecPrefix + base64.StdEncoding.EncodeToString(s.raw())
}

// Equal reports in constant time whether two secrets hold the same bytes.
func (s Secret) Equal(o Secret) bool {
	return subtle.ConstantTimeCompare(s.raw(), o.raw()) == 1
}

// String redacts the secret.
func (s Secret) String() string { return redacted }

// GoString redacts the secret for %#v.
func (s Secret) GoString() string { return "webhooks.Secret(" + redacted + ")" }

// Format redacts the secret for every fmt verb.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	_, _ = f.Write([]byte(redacted))
}

// MarshalJSON redacts the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText redacts the secret.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue redacts the secret in slog records.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }
