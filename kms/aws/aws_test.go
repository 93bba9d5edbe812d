package aws_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"keyconsole/kms"
	"keyconsole/kms/aws"
	"keyconsole/kms/kmstest"
)

var recordA = kms.RecordContext("agency-1", "webhook_secret", "42")

func newKeyring(t *testing.T, endpoint, keyID string) *aws.Keyring {
	t.Helper()
	kr, err := aws.New(context.Background(), aws.Options{KeyID: keyID, Region: kmstest.Region, Endpoint: endpoint, MaxAttempts: 1})
	if err != nil {
		t.Fatalf("aws.New: %v", err)
	}
	return kr
}

func TestGenerateDecryptWrap(t *testing.T) {
	srv := kmstest.Start(t)
	ctx := context.Background()
	for _, configured := range []string{kmstest.AliasA, kmstest.KeyA, srv.KeyARN(kmstest.KeyA)} {
		t.Run(configured, func(t *testing.T) {
			kr := newKeyring(t, srv.Endpoint, configured)
			if kr.Provider() != "aws" {
				t.Errorf("Provider() = %q", kr.Provider())
			}
			if got := kr.CurrentKeyID(); got != configured {
				t.Errorf("CurrentKeyID() before any call = %q, want the configured %q", got, configured)
			}
			dk, err := kr.GenerateDataKey(ctx, recordA)
			if err != nil {
				t.Fatalf("GenerateDataKey: %v", err)
			}
			wantARN := srv.KeyARN(kmstest.KeyA)
			if len(dk.Plaintext) != kms.DataKeySize || len(dk.Wrapped) == 0 || dk.KeyID != wantARN {
				t.Fatalf("data key: %d plaintext bytes, %d wrapped bytes, key id %q (want %q)",
					len(dk.Plaintext), len(dk.Wrapped), dk.KeyID, wantARN)
			}
			if got := kr.CurrentKeyID(); got != wantARN {
				t.Errorf("CurrentKeyID() after a call = %q, want %q", got, wantARN)
			}
			key, err := kr.Decrypt(ctx, dk.KeyID, dk.Wrapped, recordA)
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			if !bytes.Equal(key, dk.Plaintext) {
				t.Fatal("Decrypt returned another key")
			}
			wrapped, keyID, err := kr.WrapKey(ctx, dk.Plaintext, recordA)
			if err != nil {
				t.Fatalf("WrapKey: %v", err)
			}
			if keyID != wantARN {
				t.Errorf("WrapKey key id %q, want %q", keyID, wantARN)
			}
			key, err = kr.Decrypt(ctx, keyID, wrapped, recordA)
			if err != nil {
				t.Fatalf("Decrypt of WrapKey output: %v", err)
			}
			if !bytes.Equal(key, dk.Plaintext) {
				t.Fatal("Decrypt of WrapKey output returned another key")
			}
		})
	}
}

func TestResolve(t *testing.T) {
	srv := kmstest.Start(t)
	ctx := context.Background()

	kr := newKeyring(t, srv.Endpoint, kmstest.AliasB)
	if err := kr.Resolve(ctx); err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if got, want := kr.CurrentKeyID(), srv.KeyARN(kmstest.KeyB); got != want {
		t.Errorf("CurrentKeyID() = %q, want %q", got, want)
	}

	missing := newKeyring(t, srv.Endpoint, "alias/does-not-exist")
	if err := missing.Resolve(ctx); !errors.Is(err, kms.ErrUnavailable) {
		t.Errorf("Resolve of a missing alias: %v, want ErrUnavailable", err)
	}

	srv.DisableKey(t, kmstest.KeyB)
	disabled := newKeyring(t, srv.Endpoint, kmstest.AliasB)
	if err := disabled.Resolve(ctx); !errors.Is(err, kms.ErrUnavailable) {
		t.Errorf("Resolve of a disabled key: %v, want ErrUnavailable", err)
	}
}

func TestErrorKinds(t *testing.T) {
	srv := kmstest.Start(t)
	ctx := context.Background()
	kr := newKeyring(t, srv.Endpoint, kmstest.AliasA)
	dk, err := kr.GenerateDataKey(ctx, recordA)
	if err != nil {
		t.Fatalf("GenerateDataKey: %v", err)
	}
	// The end of the wrapped key is authenticated ciphertext; local-kms, unlike
	// AWS KMS, ignores the key reference at its start when KeyId is given.
	flipped := bytes.Clone(dk.Wrapped)
	flipped[len(flipped)-1] ^= 0x01

	closed := newKeyring(t, kmstest.ClosedEndpoint(t), kmstest.AliasA)
	missing := newKeyring(t, srv.Endpoint, "alias/does-not-exist")

	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"another record's context", func() error {
			_, err := kr.Decrypt(ctx, dk.KeyID, dk.Wrapped, kms.RecordContext("agency-1", "webhook_secret", "43"))
			return err
		}, kms.ErrIntegrity},
		{"another agency's context", func() error {
			_, err := kr.Decrypt(ctx, dk.KeyID, dk.Wrapped, kms.RecordContext("agency-2", "webhook_secret", "42"))
			return err
		}, kms.ErrIntegrity},
		{"flipped bit in wrapped key", func() error {
			_, err := kr.Decrypt(ctx, dk.KeyID, flipped, recordA)
			return err
		}, kms.ErrIntegrity},
		{"other master key", func() error {
			_, err := kr.Decrypt(ctx, srv.KeyARN(kmstest.KeyB), dk.Wrapped, recordA)
			return err
		}, kms.ErrIntegrity},
		{"unknown key", func() error {
			_, err := missing.GenerateDataKey(ctx, recordA)
			return err
		}, kms.ErrUnavailable},
		{"unreachable generate", func() error {
			_, err := closed.GenerateDataKey(ctx, recordA)
			return err
		}, kms.ErrUnavailable},
		{"unreachable decrypt", func() error {
			_, err := closed.Decrypt(ctx, dk.KeyID, dk.Wrapped, recordA)
			return err
		}, kms.ErrUnavailable},
		{"unreachable encrypt", func() error {
			_, _, err := closed.WrapKey(ctx, dk.Plaintext, recordA)
			return err
		}, kms.ErrUnavailable},
		{"cancelled context", func() error {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			_, err := kr.Decrypt(cctx, dk.KeyID, dk.Wrapped, recordA)
			return err
		}, kms.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			other := kms.ErrIntegrity
			if tc.want == kms.ErrIntegrity {
				other = kms.ErrUnavailable
			}
			if errors.Is(err, other) {
				t.Fatalf("error %v matches both kinds", err)
			}
			if !strings.HasPrefix(err.Error(), "kms/aws: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}

	// Disabled key: nothing wrong with the ciphertext, the service refuses.
	srv.DisableKey(t, kmstest.KeyA)
	if _, err := kr.Decrypt(ctx, dk.KeyID, dk.Wrapped, recordA); !errors.Is(err, kms.ErrUnavailable) {
		t.Errorf("decrypt under a disabled key: %v, want ErrUnavailable", err)
	}
	if _, err := kr.GenerateDataKey(ctx, recordA); !errors.Is(err, kms.ErrUnavailable) {
		t.Errorf("generate under a disabled key: %v, want ErrUnavailable", err)
	}
	srv.EnableKey(t, kmstest.KeyA)
	if _, err := kr.Decrypt(ctx, dk.KeyID, dk.Wrapped, recordA); err != nil {
		t.Errorf("decrypt after re-enabling the key: %v", err)
	}
}

func TestNewValidation(t *testing.T) {
	kmstest.SetAWSEnv(t)
	ctx := context.Background()
	if _, err := aws.New(ctx, aws.Options{Region: kmstest.Region}); err == nil {
		t.Error("New without a key id succeeded")
	}
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	if _, err := aws.New(ctx, aws.Options{KeyID: kmstest.AliasA}); err == nil {
		t.Error("New without any region succeeded")
	}
	kr, err := aws.New(ctx, aws.Options{KeyID: kmstest.AliasA, Region: kmstest.Region})
	if err != nil {
		t.Fatalf("New with an explicit region: %v", err)
	}
	if kr.CurrentKeyID() != kmstest.AliasA {
		t.Errorf("CurrentKeyID() = %q", kr.CurrentKeyID())
	}
}

func TestInvalidContextRefusedBeforeCalling(t *testing.T) {
	kmstest.SetAWSEnv(t)
	// Nothing listens here: an attempted call would fail as unavailable.
	kr := newKeyring(t, kmstest.ClosedEndpoint(t), kmstest.AliasA)
	for _, ec := range []kms.EncryptionContext{nil, {}, {"agency": ""}, {"": "x"}} {
		_, err := kr.GenerateDataKey(context.Background(), ec)
		if err == nil || errors.Is(err, kms.ErrUnavailable) {
			t.Errorf("GenerateDataKey(%v): %v, want a validation error", ec, err)
		}
	}
}
