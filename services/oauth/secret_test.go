package oauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
)

// sprintAll formats v with every common verb.
func sprintAll(v any) string {
	return fmt.Sprintf("%v %+v %#v %s %q %x %d", v, v, v, v, v, v, v) + fmt.Sprint(v) + fmt.Sprintln(v)
}

// slogAll logs v as an attribute, a group member and a message argument
// through the JSON and text handlers and returns everything written.
func slogAll(t *testing.T, v any) string {
	t.Helper()
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("value", "v", v)
		l.Info("group", slog.Group("g", "v", v))
		l.Info(fmt.Sprint(v))
		l.Info("any", slog.Any("v", v))
	}
	return buf.String()
}

func TestValidEnvironment(t *testing.T) {
	tests := []struct {
		env  string
		want bool
	}{
		{"staging", true}, {"production", true}, {"", false}, {"Production", false}, {"development", false}, {"prd", false},
	}
	for _, tt := range tests {
		if got := ValidEnvironment(tt.env); got != tt.want {
			t.Errorf("ValidEnvironment(%q) = %v, want %v", tt.env, got, tt.want)
		}
	}
}

func TestGenerateClientID(t *testing.T) {
	tests := []struct {
		env     string
		pattern string
		wantErr bool
	}{
		{env: "staging", pattern: `^ecd_stg_[a-z2-7]{20}$`},
		{env: "production", pattern: `^ecd_prd_[a-z2-7]{20}$`},
		{env: "dev", wantErr: true},
		{env: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			seen := map[string]bool{}
			for range 200 {
				id, err := GenerateClientID(tt.env)
				if tt.wantErr {
					if err == nil {
						t.Fatalf("GenerateClientID(%q) = %q, want error", tt.env, id)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if !regexp.MustCompile(tt.pattern).MatchString(id) {
					t.Fatalf("client id %q does not match %s", id, tt.pattern)
				}
				if env, ok := ClientIDEnvironment(id); !ok || env != tt.env {
					t.Fatalf("ClientIDEnvironment(%q) = %q, %v", id, env, ok)
				}
				if seen[id] {
					t.Fatalf("duplicate client id %q", id)
				}
				seen[id] = true
			}
		})
	}
}

func TestClientIDEnvironment(t *testing.T) {
	tests := []struct {
		id      string
		wantEnv string
		wantOK  bool
	}{
		{"ecd_stg_abcdefghijklmnopqrst", "staging", true},
		{"ecd_prd_234567abcdefghijklmn", "production", true},
		{"ecd_prd_234567abcdefghijklm", "", false},   // too short
		{"ecd_prd_234567abcdefghijklmno", "", false}, // too long
		{"ecd_prd_ABCDEFGHIJKLMNOPQRST", "", false},  // upper case
		{"ecd_prd_0000000000000000001", "", false},   // 0 and 1 are not base32
		{"ecd_dev_abcdefghijklmnopqrst", "", false},
		{"ecds_stg_abcdefghijklmnopqrst", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		env, ok := ClientIDEnvironment(tt.id)
		if env != tt.wantEnv || ok != tt.wantOK {
			t.Errorf("ClientIDEnvironment(%q) = %q, %v; want %q, %v", tt.id, env, ok, tt.wantEnv, tt.wantOK)
		}
	}
}

func TestGenerateClientSecret(t *testing.T) {
	tests := []struct {
		env     string
		prefix  string
		wantErr bool
	}{
		{env: "staging", prefix: "ecds_stg_"},
		{env: "production", prefix: "ecds_prd_"},
		{env: "test", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			s, err := GenerateClientSecret(tt.env)
			if tt.wantErr {
				if err == nil || !s.IsZero() {
					t.Fatalf("GenerateClientSecret(%q) succeeded, want error", tt.env)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			v := s.Reveal()
			if !strings.HasPrefix(v, tt.prefix) {
				t.Fatalf("secret prefix: got %q, want %q", v[:len(tt.prefix)], tt.prefix)
			}
			raw, err := base64.RawURLEncoding.DecodeString(v[len(tt.prefix):])
			if err != nil || len(v)-len(tt.prefix) != 43 || len(raw) != 32 {
				t.Fatalf("secret body is not 43 base64url chars of 32 bytes: %d chars, %d bytes, %v", len(v)-len(tt.prefix), len(raw), err)
			}
			if !LooksLikeClientSecret(v) {
				t.Fatal("LooksLikeClientSecret(generated secret) = false")
			}
			other, err := GenerateClientSecret(tt.env)
			if err != nil || other.Reveal() == v {
				t.Fatalf("two generated secrets are equal (err %v)", err)
			}
		})
	}
}

func TestClientSecretRedaction(t *testing.T) {
	s, err := GenerateClientSecret(EnvProduction)
	if err != nil {
		t.Fatal(err)
	}
	plain := s.Reveal()
	body := plain[len(ClientSecretPrefixProduction):]
	req := TokenRequest{GrantType: "client_credentials", ClientID: testID, ClientSecret: s, AuthMethod: AuthMethodPost}
	holder := struct {
		Secret  ClientSecret
		Pointer *ClientSecret
		Request TokenRequest
		Nested  *TokenRequest
	}{s, &s, req, &req}

	tests := []struct {
		name string
		v    any
	}{
		{"value", s},
		{"pointer", &s},
		{"token request", req},
		{"token request pointer", &req},
		{"struct holding all", holder},
		{"slice", []ClientSecret{s}},
		{"map", map[string]ClientSecret{"k": s}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outputs := map[string]string{"fmt": sprintAll(tt.v), "slog": slogAll(t, tt.v)}
			j, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			outputs["json"] = string(j)
			for where, out := range outputs {
				if strings.Contains(out, body) {
					t.Fatalf("%s output contains the secret: %s", where, out)
				}
				if hexBody := fmt.Sprintf("%x", plain); strings.Contains(out, hexBody) {
					t.Fatalf("%s output contains the secret in hex: %s", where, out)
				}
			}
			if !strings.Contains(outputs["json"], "[REDACTED]") {
				t.Fatalf("json output has no redaction marker: %s", outputs["json"])
			}
		})
	}
	text, err := s.MarshalText()
	if err != nil || string(text) != "[REDACTED]" {
		t.Fatalf("MarshalText() = %q, %v", text, err)
	}
	if s.String() != "[REDACTED]" || s.GoString() != "[REDACTED]" || s.LogValue().String() != "[REDACTED]" {
		t.Fatal("String/GoString/LogValue do not redact")
	}
	if s.Reveal() != plain {
		t.Fatal("Reveal() changed")
	}
}

func TestNewHasher(t *testing.T) {
	tests := []struct {
		name    string
		pepper  []byte
		wantErr bool
	}{
		{"nil", nil, true},
		{"16 bytes", make([]byte, 16), true},
		{"31 bytes", make([]byte, 31), true},
		{"32 bytes", make([]byte, 32), false},
		{"64 bytes", make([]byte, 64), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewHasher(tt.pepper)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewHasher(%d bytes) error = %v, wantErr %v", len(tt.pepper), err, tt.wantErr)
			}
			if tt.wantErr && (h != nil || err != ErrShortPepper) {
				t.Fatalf("NewHasher(%d bytes) = %v, %v; want nil, ErrShortPepper", len(tt.pepper), h, err)
			}
		})
	}
}

func testPepper(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestHasher(t *testing.T) {
	pepper := testPepper(7)
	h, err := NewHasher(pepper)
	if err != nil {
		t.Fatal(err)
	}
	// The pepper is copied: changing the caller's slice changes nothing.
	pepper[0] = 8
	secret := testSecret
	stored := h.Hash(secret)

	ref := hmac.New(sha256.New, testPepper(7))
	ref.Write([]byte(secret))
	if !bytes.Equal(stored, ref.Sum(nil)) {
		t.Fatalf("Hash() = %x, want HMAC-SHA256(pepper, secret)", stored)
	}
	if bytes.Contains(stored, []byte(secret)) || len(stored) != 32 {
		t.Fatalf("Hash() = %x, want a 32-byte MAC", stored)
	}

	other, err := NewHasher(testPepper(9))
	if err != nil {
		t.Fatal(err)
	}
	flipFirst := bytes.Clone(stored)
	flipFirst[0] ^= 1
	flipLast := bytes.Clone(stored)
	flipLast[31] ^= 0x80

	tests := []struct {
		name   string
		h      *Hasher
		secret string
		stored []byte
		want   bool
	}{
		{"right secret", h, secret, stored, true},
		{"wrong secret", h, secret + "x", stored, false},
		{"empty secret", h, "", stored, false},
		{"one character changed", h, secret[:len(secret)-1] + "1", stored, false},
		{"first byte differs", h, secret, flipFirst, false},
		{"last byte differs", h, secret, flipLast, false},
		{"truncated stored value", h, secret, stored[:31], false},
		{"extended stored value", h, secret, append(bytes.Clone(stored), 0), false},
		{"nil stored value", h, secret, nil, false},
		{"other pepper", other, secret, stored, false},
		{"plain secret as stored value", h, secret, []byte(secret), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.h.Verify(tt.secret, tt.stored); got != tt.want {
				t.Fatalf("Verify() = %v, want %v", got, tt.want)
			}
		})
	}
	holder := struct{ H *Hasher }{h}
	for _, v := range []any{h, *h, holder, &holder} {
		out := sprintAll(v) + slogAll(t, v)
		if strings.Contains(out, "\x07\x07\x07\x07") || strings.Contains(out, "7 7 7 7") || strings.Contains(out, "07070707") {
			t.Fatalf("formatted Hasher shows the pepper: %s", out)
		}
	}
}

func BenchmarkHasherVerify(b *testing.B) {
	h, err := NewHasher(testPepper(3))
	if err != nil {
		b.Fatal(err)
	}
	s, err := GenerateClientSecret(EnvProduction)
	if err != nil {
		b.Fatal(err)
	}
	stored := h.Hash(s.Reveal())
	b.ReportAllocs()
	for b.Loop() {
		if !h.Verify(s.Reveal(), stored) {
			b.Fatal("Verify() = false")
		}
	}
}
