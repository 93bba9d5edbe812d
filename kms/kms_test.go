package kms_test

import (
	"bytes"
	"testing"

	"keyconsole/kms"
)

func TestCanonicalIsUnambiguous(t *testing.T) {
	contexts := []kms.EncryptionContext{
		{"a": "bc"},
		{"ab": "c"},
		{"a": "b", "c": "d"},
		{"a": "b\x00\x00\x00\x01c\x00\x00\x00\x01d"},
		{"a": "b", "cd": ""},
		{"a": "bc", "d": "e"},
		{"agency": "1", "record_type": "webhook_secret", "record_id": "42"},
		{"agency": "1", "record_type": "webhook_secret", "record_id": "43"},
		{"agency": "14", "record_type": "webhook_secret", "record_id": "2"},
		{},
	}
	seen := map[string]int{}
	for i, ec := range contexts {
		enc := string(ec.Canonical())
		if j, dup := seen[enc]; dup {
			t.Errorf("contexts %d and %d encode the same way", j, i)
		}
		seen[enc] = i
	}
}

func TestCanonicalIgnoresOrder(t *testing.T) {
	a := kms.EncryptionContext{"agency": "1", "record_type": "t", "record_id": "9"}
	for range 20 {
		b := kms.EncryptionContext{}
		for k, v := range a {
			b[k] = v
		}
		if !bytes.Equal(a.Canonical(), b.Canonical()) {
			t.Fatal("equal contexts encode differently")
		}
	}
	want := []byte("\x00\x00\x00\x01\x00\x00\x00\x01a\x00\x00\x00\x02bc")
	if got := (kms.EncryptionContext{"a": "bc"}).Canonical(); !bytes.Equal(got, want) {
		t.Errorf("Canonical = %q, want %q", got, want)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		ec   kms.EncryptionContext
		ok   bool
	}{
		{"record", kms.RecordContext("a", "b", "c"), true},
		{"single entry", kms.EncryptionContext{"purpose": "x"}, true},
		{"nil", nil, false},
		{"empty", kms.EncryptionContext{}, false},
		{"empty key", kms.EncryptionContext{"": "x"}, false},
		{"empty value", kms.RecordContext("a", "b", ""), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.ec.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tc.ok)
			}
		})
	}
}
