package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"keyconsole/models"
)

// Standard Webhooks header names and the timestamp tolerance receivers apply.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"

	// SignatureTolerance is how far a webhook-timestamp may be from the receiver's
	// clock, in either direction.
	SignatureTolerance = 5 * time.Minute

	signatureVersion = "v1"
)

// Errors returned by Verify, matched with errors.Is.
var (
	ErrMissingHeaders      = errors.New("missing webhook-id, webhook-timestamp or webhook-signature header")
	ErrInvalidTimestamp    = errors.New("webhook-timestamp is not a Unix time in seconds")
	ErrTimestampTooOld     = errors.New("webhook-timestamp is more than 5 minutes old")
	ErrTimestampTooNew     = errors.New("webhook-timestamp is more than 5 minutes in the future")
	ErrNoMatchingSignature = errors.New("no matching signature")
	// ErrNoSecret is a conflict: the endpoint has no secret to sign or show yet.
	ErrNoSecret = models.NewRefusal(models.ErrConflict, "no usable signing secret",
		"No secret", "This endpoint has no signing secret yet. Set one first.")
)

// Sign returns the webhook-signature header value for one message: one
// "v1,<base64 HMAC-SHA256>" entry per secret over "msgID.unixSeconds.body", separated
// by spaces, in the order given (newest secret first during a rotation overlap).
// Secrets shorter than SecretMinLen, such as the zero Secret, are skipped; the result
// is empty when no secret is usable.
func Sign(secrets []Secret, msgID string, ts time.Time, body []byte) string {
	var b strings.Builder
	for _, s := range secrets {
		key := s.raw()
		if len(key) < SecretMinLen {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(signatureVersion)
		b.WriteByte(',')
		b.WriteString(base64.StdEncoding.EncodeToString(mac(key, msgID, ts.Unix(), body)))
	}
	return b.String()
}

func mac(key []byte, msgID string, unix int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msgID))
	h.Write([]byte{'.'})
	h.Write(strconv.AppendInt(nil, unix, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Headers returns the three Standard Webhooks headers for a signed message.
func Headers(msgID string, ts time.Time, signature string) http.Header {
	h := make(http.Header, 3)
	h.Set(HeaderID, msgID)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, signature)
	return h
}

// NewMessageID returns a new random message id, "msg_" followed by 26 base32
// characters (128 bits).
func NewMessageID() string {
	return "msg_" + rand.Text()
}

// Verify checks a received message the way a Standard Webhooks receiver does: the
// timestamp must be within SignatureTolerance of now and at least one v1 signature
// must match the secret (compared in constant time).
func Verify(secret Secret, headers http.Header, body []byte, now time.Time) error {
	key := secret.raw()
	if len(key) < SecretMinLen {
		return fmt.Errorf("webhooks: verify: %w", ErrNoSecret)
	}
	msgID := headers.Get(HeaderID)
	tsHeader := headers.Get(HeaderTimestamp)
	sigHeader := headers.Get(HeaderSignature)
	if msgID == "" || tsHeader == "" || sigHeader == "" {
		return fmt.Errorf("webhooks: verify: %w", ErrMissingHeaders)
	}
	unix, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return fmt.Errorf("webhooks: verify: %w", ErrInvalidTimestamp)
	}
	ts := time.Unix(unix, 0)
	switch {
	case now.Sub(ts) > SignatureTolerance:
		return fmt.Errorf("webhooks: verify: %w", ErrTimestampTooOld)
	case ts.Sub(now) > SignatureTolerance:
		return fmt.Errorf("webhooks: verify: %w", ErrTimestampTooNew)
	}
	expected := mac(key, msgID, unix, body)
	for _, entry := range strings.Split(sigHeader, " ") {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != signatureVersion {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			continue
		}
		if hmac.Equal(got, expected) {
			return nil
		}
	}
	return fmt.Errorf("webhooks: verify: %w", ErrNoMatchingSignature)
}
