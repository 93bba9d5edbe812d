package security

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// delivery is one webhook request a receiver got.
type delivery struct {
	ID, Timestamp string
	Signatures    []string
	Body          []byte
	At            time.Time
}

// signatureReceiver is a webhook receiver on 127.0.0.1 that keeps every
// delivery, to check Standard Webhooks signatures against a known secret.
type signatureReceiver struct {
	url string
	mu  sync.Mutex
	got []delivery
	// since is when the current expectation was set.
	since  time.Time
	secret string
}

func newSignatureReceiver(t *testing.T) *signatureReceiver {
	t.Helper()
	r := &signatureReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		d := delivery{ID: req.Header.Get("webhook-id"), Timestamp: req.Header.Get("webhook-timestamp"),
			Signatures: strings.Fields(req.Header.Get("webhook-signature")), Body: b, At: time.Now()}
		r.mu.Lock()
		r.got = append(r.got, d)
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/hook"
	return r
}

// signs reports whether sig ("v1,<base64>") is the signature of d with secret.
func signs(secret string, d delivery, sig string) bool {
	v, b64, ok := strings.Cut(sig, ",")
	if !ok || v != "v1" {
		return false
	}
	got, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(d.ID + "." + d.Timestamp + "."))
	m.Write(d.Body)
	return hmac.Equal(got, m.Sum(nil))
}

// expect makes wait look for a delivery, from now on, signed with secret alone.
func (r *signatureReceiver) expect(secret string) {
	r.mu.Lock()
	r.since, r.secret = time.Now(), secret
	r.mu.Unlock()
}

// wait waits for a delivery since expect carrying exactly one signature,
// made with the expected secret.
func (r *signatureReceiver) wait(t *testing.T, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, d := range r.got {
			if d.At.Before(r.since) {
				continue
			}
			if len(d.Signatures) == 1 && signs(r.secret, d, d.Signatures[0]) {
				r.mu.Unlock()
				return
			}
		}
		r.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t.Fatalf("%s: no delivery signed with the current secret alone (%d deliveries received)", what, len(r.got))
}

// all returns every delivery received so far.
func (r *signatureReceiver) all() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}
