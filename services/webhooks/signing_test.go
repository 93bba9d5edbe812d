package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"go/parser"
	"go/token"
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func officialReceiver(t *testing.T, s Secret) *standardwebhooks.Webhook {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(s.WhsecForm())
	if err != nil {
		t.Fatalf("standardwebhooks.NewWebhook: %v", err)
	}
	return wh
}

func TestSignKnownVector(t *testing.T) {
	s := mustParseSecret(t, "MfKQ9r8GKYqrTwjUPD8ILPZI")
	ts := time.Unix(1614265330, 0)
	body := []byte(`{"test": 2432232314}`)
	h := hmac.New(sha256.New, []byte("MfKQ9r8GKYqrTwjUPD8ILPZI"))
	h.Write([]byte("msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(h.Sum(nil))

	got := Sign([]Secret{s}, "msg_p5jXN8AQM9LWM0D4loKWxJek", ts, body)
	if got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}

	official, err := officialReceiver(t, s).Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", ts, body)
	if err != nil {
		t.Fatalf("official Sign: %v", err)
	}
	if got != official {
		t.Fatalf("Sign = %q, official library signs %q", got, official)
	}
}

func TestSignRotationOrderAndSkipsZero(t *testing.T) {
	newer := mustParseSecret(t, "newnewnewnewnewnew")
	older := mustParseSecret(t, "oldoldoldoldoldold")
	ts := time.Unix(1700000000, 0)
	body := []byte(`{}`)
	both := Sign([]Secret{newer, {}, older}, "msg_1", ts, body)
	parts := strings.Split(both, " ")
	if len(parts) != 2 {
		t.Fatalf("Sign gave %d signatures (%q), want 2", len(parts), both)
	}
	if parts[0] != Sign([]Secret{newer}, "msg_1", ts, body) {
		t.Error("first signature is not the newest secret's")
	}
	if parts[1] != Sign([]Secret{older}, "msg_1", ts, body) {
		t.Error("second signature is not the older secret's")
	}
	if got := Sign([]Secret{{}}, "msg_1", ts, body); got != "" {
		t.Errorf("Sign with only a zero Secret = %q, want empty", got)
	}
}

func TestHeaders(t *testing.T) {
	ts := time.Unix(1700000123, 999)
	h := Headers("msg_abc", ts, "v1,xyz")
	tests := map[string]string{
		"webhook-id":        "msg_abc",
		"webhook-timestamp": "1700000123",
		"webhook-signature": "v1,xyz",
	}
	for k, want := range tests {
		if got := h.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if len(h) != 3 {
		t.Errorf("Headers has %d entries, want 3", len(h))
	}
}

func TestNewMessageID(t *testing.T) {
	a, b := NewMessageID(), NewMessageID()
	if !strings.HasPrefix(a, "msg_") || len(a) != len("msg_")+26 {
		t.Fatalf("NewMessageID() = %q, want msg_ and 26 characters", a)
	}
	if a == b {
		t.Fatal("NewMessageID repeated a value")
	}
}

// TestRotationWithOfficialLibrary signs with two secrets, as during a rotation
// overlap, and checks what receivers built on the official Go library conclude.
func TestRotationWithOfficialLibrary(t *testing.T) {
	oldSecret := mustParseSecret(t, "0ld-secret-value-1234")
	newSecret, err := GenerateSecret()
	if err != nil {
		t.Fatalf("GenerateSecret: %v", err)
	}
	other := mustParseSecret(t, "an0ther-secret-value!")
	body := []byte(`{"type":"test.event","data":{"n":1}}`)
	now := time.Now()

	tests := []struct {
		name    string
		holds   Secret
		ts      time.Time
		wantErr error
	}{
		{"receiver with only the old secret", oldSecret, now, nil},
		{"receiver with only the new secret", newSecret, now, nil},
		{"receiver with another secret", other, now, standardwebhooks.ErrNoMatchingSignature},
		{"stale timestamp", newSecret, now.Add(-6 * time.Minute), standardwebhooks.ErrMessageTooOld},
		{"timestamp from the future", oldSecret, now.Add(6 * time.Minute), standardwebhooks.ErrMessageTooNew},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgID := NewMessageID()
			sig := Sign([]Secret{newSecret, oldSecret}, msgID, tt.ts, body)
			headers := Headers(msgID, tt.ts, sig)

			err := officialReceiver(t, tt.holds).Verify(body, headers)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("official Verify = %v, want accepted", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("official Verify = %v, want %v", err, tt.wantErr)
			}

			// Our own Verify must agree with the official library.
			ours := Verify(tt.holds, headers, body, time.Now())
			if (ours == nil) != (err == nil) {
				t.Fatalf("Verify = %v but the official library says %v", ours, err)
			}
		})
	}
}

func TestVerifyRejectsTamperingWithOfficialSigner(t *testing.T) {
	s := mustParseSecret(t, "tamper-check-secret-01")
	ts := time.Now()
	body := []byte(`{"amount":10}`)
	sig, err := officialReceiver(t, s).Sign("msg_x", ts, body)
	if err != nil {
		t.Fatalf("official Sign: %v", err)
	}
	good := Headers("msg_x", ts, sig)
	if err := Verify(s, good, body, ts); err != nil {
		t.Fatalf("Verify of an official signature = %v, want nil", err)
	}

	tests := []struct {
		name    string
		headers http.Header
		body    []byte
		now     time.Time
		want    error
	}{
		{"changed body", good, []byte(`{"amount":1000}`), ts, ErrNoMatchingSignature},
		{"changed id", Headers("msg_y", ts, sig), body, ts, ErrNoMatchingSignature},
		{"changed timestamp", Headers("msg_x", ts.Add(time.Second), sig), body, ts, ErrNoMatchingSignature},
		{"other version", Headers("msg_x", ts, "v2"+strings.TrimPrefix(sig, "v1")), body, ts, ErrNoMatchingSignature},
		{"garbage signature", Headers("msg_x", ts, "v1,!!!! v1 ,"), body, ts, ErrNoMatchingSignature},
		{"missing signature", Headers("msg_x", ts, ""), body, ts, ErrMissingHeaders},
		{"missing id", Headers("", ts, sig), body, ts, ErrMissingHeaders},
		{"bad timestamp", http.Header{"Webhook-Id": {"msg_x"}, "Webhook-Timestamp": {"soon"}, "Webhook-Signature": {sig}}, body, ts, ErrInvalidTimestamp},
		{"too old", good, body, ts.Add(SignatureTolerance + time.Second), ErrTimestampTooOld},
		{"too new", good, body, ts.Add(-SignatureTolerance - time.Second), ErrTimestampTooNew},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(s, tt.headers, tt.body, tt.now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	if err := Verify(Secret{}, good, body, ts); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("Verify with the zero Secret = %v, want ErrNoSecret", err)
	}
}

func TestVerifyAtToleranceEdge(t *testing.T) {
	s := mustParseSecret(t, "edge-of-tolerance-key")
	ts := time.Unix(1700000000, 0)
	body := []byte(`{}`)
	h := Headers("msg_e", ts, Sign([]Secret{s}, "msg_e", ts, body))
	for _, now := range []time.Time{ts.Add(SignatureTolerance), ts.Add(-SignatureTolerance)} {
		if err := Verify(s, h, body, now); err != nil {
			t.Errorf("Verify at exactly 5 minutes (now %v) = %v, want accepted", now.Sub(ts), err)
		}
	}
}

func TestSnippets(t *testing.T) {
	secret := mustParseSecret(t, "this-is-the-real-secret")
	snippets := Snippets("whsec_…")
	want := map[string]string{
		"Go":      "standardwebhooks.NewWebhook(",
		"Python":  "from standardwebhooks.webhooks import Webhook",
		"Node.js": `require("standardwebhooks")`,
		"C#":      "using StandardWebhooks;",
	}
	if len(snippets) != len(want) {
		t.Fatalf("got %d snippets, want %d", len(snippets), len(want))
	}
	for _, sn := range snippets {
		marker, ok := want[sn.Language]
		if !ok {
			t.Errorf("unexpected language %q", sn.Language)
			continue
		}
		if !strings.Contains(sn.Code, marker) {
			t.Errorf("%s snippet does not use the official library (%q)", sn.Language, marker)
		}
		if !strings.Contains(sn.Code, SecretEnvVar) {
			t.Errorf("%s snippet does not read %s", sn.Language, SecretEnvVar)
		}
		if !strings.Contains(sn.Code, "whsec_…") {
			t.Errorf("%s snippet does not show the placeholder", sn.Language)
		}
		if strings.Contains(sn.Code, secret.Reveal()) || strings.Contains(sn.Code, secret.WhsecForm()) {
			t.Errorf("%s snippet contains a secret", sn.Language)
		}
		if strings.Contains(sn.Code, "{{") || sn.Install == "" {
			t.Errorf("%s snippet is not filled in: %q", sn.Language, sn.Code)
		}
	}

	// The Go snippet must at least be valid Go.
	for _, sn := range snippets {
		if sn.Language != "Go" {
			continue
		}
		if _, err := parser.ParseFile(token.NewFileSet(), "main.go", sn.Code, parser.AllErrors); err != nil {
			t.Fatalf("Go snippet does not parse: %v", err)
		}
	}

	// A placeholder cannot break out of its comment line.
	for _, sn := range Snippets("x\nos.Exit(1) // */ \"") {
		for _, line := range strings.Split(sn.Code, "\n") {
			if strings.Contains(line, "os.Exit(1)") && !strings.Contains(line, "whsec_ form:") {
				t.Errorf("%s snippet: placeholder escaped its comment: %q", sn.Language, line)
			}
		}
	}
	for _, sn := range Snippets("") {
		if !strings.Contains(sn.Code, DefaultSecretPlaceholder) {
			t.Errorf("%s snippet: empty placeholder not replaced by the default", sn.Language)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	s1, err := GenerateSecret()
	if err != nil {
		b.Fatal(err)
	}
	s2, err := GenerateSecret()
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(strings.Repeat(`{"k":"v"},`, 100))
	ts := time.Unix(1700000000, 0)
	for _, bc := range []struct {
		name    string
		secrets []Secret
	}{
		{"one-secret-1KiB", []Secret{s1}},
		{"rotation-two-secrets-1KiB", []Secret{s1, s2}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if Sign(bc.secrets, "msg_bench", ts, body) == "" {
					b.Fatal("empty signature")
				}
			}
		})
	}
}
