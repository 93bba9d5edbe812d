package webhooks

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"
)

func mustParseSecret(t testing.TB, s string) Secret {
	t.Helper()
	sec, err := ParseSecret(s)
	if err != nil {
		t.Fatalf("ParseSecret: %v", err)
	}
	return sec
}

func TestGenerateSecretShape(t *testing.T) {
	seen := make(map[string]bool)
	for range 200 {
		s, err := GenerateSecret()
		if err != nil {
			t.Fatalf("GenerateSecret: %v", err)
		}
		v := s.Reveal()
		if len(v) != GeneratedSecretLen {
			t.Fatalf("generated length %d, want %d", len(v), GeneratedSecretLen)
		}
		for _, c := range []byte(v) {
			if !strings.ContainsRune(secretAlphabet, rune(c)) {
				t.Fatalf("generated secret has %q outside [A-Za-z0-9]", c)
			}
		}
		if _, err := ParseSecret(v); err != nil {
			t.Fatalf("a generated secret is refused by ParseSecret: %v", err)
		}
		if seen[v] {
			t.Fatal("GenerateSecret repeated a value")
		}
		seen[v] = true
	}
}

// TestGenerateSecretUniform checks every character of the alphabet shows up with
// roughly equal frequency: a chi-squared statistic far above its 61 degrees of freedom
// would reveal a biased mapping such as a plain modulo of random bytes.
func TestGenerateSecretUniform(t *testing.T) {
	counts := make(map[byte]int)
	const secrets = 5000
	for range secrets {
		s, err := GenerateSecret()
		if err != nil {
			t.Fatalf("GenerateSecret: %v", err)
		}
		for _, c := range []byte(s.Reveal()) {
			counts[c]++
		}
	}
	if len(counts) != len(secretAlphabet) {
		t.Fatalf("saw %d distinct characters, want %d", len(counts), len(secretAlphabet))
	}
	expected := float64(secrets*GeneratedSecretLen) / float64(len(secretAlphabet))
	var chi2 float64
	for _, c := range []byte(secretAlphabet) {
		d := float64(counts[c]) - expected
		chi2 += d * d / expected
	}
	// For 61 degrees of freedom, P(chi2 > 120) is below 1e-5.
	if chi2 > 120 {
		t.Fatalf("chi-squared %.1f over 61 degrees of freedom: characters are not uniform", chi2)
	}
}

func TestParseSecret(t *testing.T) {
	tests := []struct {
		name  string
		input string
		code  SecretErrorCode
		want  string // substring of the message
	}{
		{"empty", "", SecretEmpty, "Enter a secret"},
		{"too short", "abcdefghijklmno", SecretTooShort, "at least 16"},
		{"too long", "abcdefghijklmnopqrstuvwxy", SecretTooLong, "at most 24"},
		{"space", "abcdefgh ijklmnopq", SecretWhitespace, "space"},
		{"tab", "abcdefgh\tijklmnopq", SecretWhitespace, "space"},
		{"newline", "abcdefghijklmnopq\n", SecretWhitespace, "space"},
		{"no-break space", "abcdefgh\u00a0ijklmnopq", SecretWhitespace, "space"},
		{"NUL", "abcdefgh\x00ijklmnopq", SecretControl, "control character"},
		{"DEL", "abcdefgh\x7fijklmnopq", SecretControl, "control character"},
		{"escape", "\x1babcdefghijklmnopq", SecretControl, "control character"},
		{"accented", "abcdefghijklmnopé", SecretNonASCII, "non-ASCII"},
		{"emoji", "abcdefghijklmnop🔑", SecretNonASCII, "non-ASCII"},
		{"invalid UTF-8", "abcdefghijklmnop\xff", SecretNonASCII, "non-ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSecret(tt.input)
			var se *SecretError
			if !errors.As(err, &se) {
				t.Fatalf("ParseSecret error = %v, want *SecretError", err)
			}
			if se.Code != tt.code {
				t.Errorf("Code = %q, want %q", se.Code, tt.code)
			}
			if !strings.Contains(se.Message, tt.want) {
				t.Errorf("Message = %q, want it to mention %q", se.Message, tt.want)
			}
			if tt.input != "" && strings.Contains(se.Message, tt.input) {
				t.Errorf("Message repeats the input: %q", se.Message)
			}
		})
	}
}

func TestParseSecretMessagesAreDistinct(t *testing.T) {
	inputs := []string{"", "short", strings.Repeat("a", 25), "abcdefgh ijklmnopq", "abcdefgh\x01ijklmnopq", "abcdefghijklmnopé"}
	seen := make(map[string]string)
	for _, in := range inputs {
		_, err := ParseSecret(in)
		var se *SecretError
		if !errors.As(err, &se) {
			t.Fatalf("ParseSecret(%q) error = %v, want *SecretError", in, err)
		}
		if prev, ok := seen[se.Message]; ok {
			t.Fatalf("inputs %q and %q got the same message %q", prev, in, se.Message)
		}
		seen[se.Message] = in
	}
}

func TestParseSecretAccepts(t *testing.T) {
	tests := []string{
		"abcdefghijklmnop",         // 16, the minimum
		"abcdefghijklmnopqrstuvwx", // 24, the maximum
		`!"#$%&'()*+,-./:;<=>?@[\]^_{|}~`[:24],
		"0123456789~~~~~~ABCDEF",
	}
	for _, in := range tests {
		s, err := ParseSecret(in)
		if err != nil {
			t.Errorf("ParseSecret(%q) = %v, want accepted", in, err)
			continue
		}
		if s.Reveal() != in {
			t.Errorf("Reveal() = %q, want %q", s.Reveal(), in)
		}
		if !bytes.Equal(s.Bytes(), []byte(in)) {
			t.Errorf("Bytes() = %q, want %q", s.Bytes(), in)
		}
	}
}

func TestSecretRedaction(t *testing.T) {
	const value = "Sup3rS3cretValue-1234"
	s := mustParseSecret(t, value)

	type holder struct {
		Exported Secret
		hidden   Secret
		Ptr      *Secret
	}
	h := holder{Exported: s, hidden: s, Ptr: &s}

	jsonOut, err := json.Marshal(h)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	textOut, err := s.MarshalText()
	if err != nil {
		t.Fatalf("MarshalText: %v", err)
	}
	var logBuf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logBuf, nil))
	logger.Info("secret", "secret", s, "holder", h)
	var textLog bytes.Buffer
	slog.New(slog.NewTextHandler(&textLog, nil)).Info("secret", "secret", s)

	outputs := map[string]string{
		"String":       s.String(),
		"GoString":     s.GoString(),
		"%v":           fmt.Sprintf("%v", s),
		"%s":           fmt.Sprintf("%s", s),
		"%q":           fmt.Sprintf("%q", s),
		"%x":           fmt.Sprintf("%x", s),
		"%X":           fmt.Sprintf("%X", s),
		"%d":           fmt.Sprintf("%d", s),
		"%#v":          fmt.Sprintf("%#v", s),
		"%+v holder":   fmt.Sprintf("%+v", h),
		"%#v holder":   fmt.Sprintf("%#v", h),
		"%v pointer":   fmt.Sprintf("%v", &s),
		"json":         string(jsonOut),
		"text":         string(textOut),
		"slog json":    logBuf.String(),
		"slog text":    textLog.String(),
		"error wrap":   fmt.Errorf("failed with %v", s).Error(),
		"Masked":       s.Masked(),
		"Sprint slice": fmt.Sprint([]Secret{s}),
	}
	hexValue := fmt.Sprintf("%x", value)
	b64Value := base64.StdEncoding.EncodeToString([]byte(value))
	for name, out := range outputs {
		if strings.Contains(out, value) || strings.Contains(out, value[2:10]) || strings.Contains(out, hexValue[:16]) || strings.Contains(out, b64Value[:12]) {
			t.Errorf("%s leaks the secret: %q", name, out)
		}
		// The byte values of the secret's first characters as fmt prints a []byte.
		if strings.Contains(out, "83 117 112") {
			t.Errorf("%s leaks the secret's bytes: %q", name, out)
		}
	}
	for _, name := range []string{"String", "%v", "%s", "json", "text", "slog json", "slog text", "%+v holder"} {
		if !strings.Contains(outputs[name], "[redacted]") {
			t.Errorf("%s = %q, want it to say [redacted]", name, outputs[name])
		}
	}
}

func TestSecretMasked(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"abcdefghijklmnop", "ab••••••••"},
		{"ZZcdefghijklmnopqrstuvwx", "ZZ••••••••"},
	}
	for _, tt := range tests {
		got := mustParseSecret(t, tt.in).Masked()
		if got != tt.want {
			t.Errorf("Masked(%q) = %q, want %q", tt.in, got, tt.want)
		}
		visible := strings.TrimRight(got, "•")
		if utf8.RuneCountInString(visible) > 2 {
			t.Errorf("Masked shows %d characters, want at most 2", len(visible))
		}
	}
	if got := (Secret{}).Masked(); got != "" {
		t.Errorf("zero Secret Masked() = %q, want empty", got)
	}
}

func TestSecretWhsecForm(t *testing.T) {
	s := mustParseSecret(t, "MfKQ9r8GKYqrTwjUPD8ILP")
	got := s.WhsecForm()
	if !strings.HasPrefix(got, "whsec_") {
		t.Fatalf("WhsecForm() = %q, want whsec_ prefix", got)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(got, "whsec_"))
	if err != nil {
		t.Fatalf("WhsecForm is not standard base64: %v", err)
	}
	if string(key) != "MfKQ9r8GKYqrTwjUPD8ILP" {
		t.Fatalf("WhsecForm decodes to %q, want the secret's bytes", key)
	}
}

func TestSecretBytesIsACopy(t *testing.T) {
	s := mustParseSecret(t, "abcdefghijklmnop")
	b := s.Bytes()
	b[0] = 'X'
	if s.Reveal() != "abcdefghijklmnop" {
		t.Fatalf("changing Bytes() changed the secret to %q", s.Reveal())
	}
}

func TestSecretEqual(t *testing.T) {
	a := mustParseSecret(t, "abcdefghijklmnop")
	b := mustParseSecret(t, "abcdefghijklmnop")
	c := mustParseSecret(t, "abcdefghijklmnoq")
	if !a.Equal(b) {
		t.Error("equal secrets compare unequal")
	}
	if a.Equal(c) {
		t.Error("different secrets compare equal")
	}
	if a.Equal(Secret{}) {
		t.Error("a secret equals the zero Secret")
	}
	if !(Secret{}).IsZero() || a.IsZero() {
		t.Error("IsZero is wrong")
	}
}
