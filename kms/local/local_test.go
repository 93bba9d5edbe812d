package local_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"keyconsole/kms"
	"keyconsole/kms/local"
)

var recordA = kms.RecordContext("agency-1", "webhook_secret", "42")

func newKey() []byte {
	k := make([]byte, local.MasterKeySize)
	rand.Read(k)
	return k
}

func TestKeyID(t *testing.T) {
	k1, k2 := newKey(), newKey()
	id := local.KeyID(k1)
	if !strings.HasPrefix(id, "local:") || len(id) != len("local:")+16 {
		t.Fatalf("KeyID = %q, want local: and 16 hex digits", id)
	}
	if _, err := hex.DecodeString(strings.TrimPrefix(id, "local:")); err != nil {
		t.Fatalf("KeyID %q is not hex: %v", id, err)
	}
	if local.KeyID(k1) != id {
		t.Error("KeyID is not deterministic")
	}
	if local.KeyID(k2) == id {
		t.Error("two keys share an id")
	}
	if strings.Contains(id, hex.EncodeToString(k1)[:16]) {
		t.Error("key id reveals the key's leading bytes")
	}
}

func TestNew(t *testing.T) {
	key := newKey()
	tests := []struct {
		name    string
		key     []byte
		keyID   string
		prev    [][]byte
		wantErr bool
	}{
		{"derived id", key, "", nil, false},
		{"matching id", key, local.KeyID(key), nil, false},
		{"id of another key", key, local.KeyID(newKey()), nil, true},
		{"short key", key[:16], "", nil, true},
		{"long key", append(bytes.Clone(key), 0), "", nil, true},
		{"with previous keys", key, "", [][]byte{newKey(), newKey()}, false},
		{"bad previous key", key, "", [][]byte{newKey()[:31]}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kr, err := local.New(tc.key, tc.keyID, tc.prev...)
			if tc.wantErr {
				if err == nil {
					t.Fatal("New succeeded")
				}
				if strings.Contains(err.Error(), hex.EncodeToString(key)) {
					t.Fatalf("error names the key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if kr.Provider() != "local" || kr.CurrentKeyID() != local.KeyID(tc.key) {
				t.Fatalf("Provider %q, CurrentKeyID %q", kr.Provider(), kr.CurrentKeyID())
			}
		})
	}
}

func TestWrapUnwrap(t *testing.T) {
	ctx := context.Background()
	oldKey, key := newKey(), newKey()
	old, err := local.New(oldKey, "")
	if err != nil {
		t.Fatal(err)
	}
	kr, err := local.New(key, "", oldKey)
	if err != nil {
		t.Fatal(err)
	}
	dk, err := kr.GenerateDataKey(ctx, recordA)
	if err != nil {
		t.Fatalf("GenerateDataKey: %v", err)
	}
	if len(dk.Plaintext) != kms.DataKeySize || dk.KeyID != kr.CurrentKeyID() {
		t.Fatalf("data key of %d bytes under %q", len(dk.Plaintext), dk.KeyID)
	}
	got, err := kr.Decrypt(ctx, dk.KeyID, dk.Wrapped, recordA)
	if err != nil || !bytes.Equal(got, dk.Plaintext) {
		t.Fatalf("Decrypt: %v (equal %v)", err, bytes.Equal(got, dk.Plaintext))
	}

	// A key wrapped under the previous master key still unwraps.
	odk, err := old.GenerateDataKey(ctx, recordA)
	if err != nil {
		t.Fatal(err)
	}
	got, err = kr.Decrypt(ctx, odk.KeyID, odk.Wrapped, recordA)
	if err != nil || !bytes.Equal(got, odk.Plaintext) {
		t.Fatalf("Decrypt under the previous key: %v", err)
	}

	flipped := bytes.Clone(dk.Wrapped)
	flipped[len(flipped)-1] ^= 0x80
	badVersion := bytes.Clone(dk.Wrapped)
	badVersion[0] = 9
	cancelled, cancel := context.WithCancel(ctx)
	cancel()

	tests := []struct {
		name    string
		kr      *local.Keyring
		ctx     context.Context
		keyID   string
		wrapped []byte
		ec      kms.EncryptionContext
		want    error
		msg     string
	}{
		{"another record", kr, ctx, dk.KeyID, dk.Wrapped, kms.RecordContext("agency-1", "webhook_secret", "43"), kms.ErrIntegrity, "does not authenticate"},
		{"flipped bit", kr, ctx, dk.KeyID, flipped, recordA, kms.ErrIntegrity, "does not authenticate"},
		{"unknown wrap version", kr, ctx, dk.KeyID, badVersion, recordA, kms.ErrIntegrity, "format"},
		{"wrong master key", old, ctx, dk.KeyID, dk.Wrapped, recordA, kms.ErrIntegrity, "wrong master key"},
		{"relabelled under another key id", kr, ctx, odk.KeyID, dk.Wrapped, recordA, kms.ErrIntegrity, "does not authenticate"},
		{"cancelled", kr, cancelled, dk.KeyID, dk.Wrapped, recordA, kms.ErrUnavailable, "canceled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.kr.Decrypt(tc.ctx, tc.keyID, tc.wrapped, tc.ec)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decrypt: %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			for _, secret := range [][]byte{key, oldKey, dk.Plaintext} {
				if strings.Contains(err.Error(), hex.EncodeToString(secret)) || strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(secret)) {
					t.Fatalf("error names key material: %v", err)
				}
			}
		})
	}
}

func writeFile(t *testing.T, dir, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	dir := t.TempDir()
	key := newKey()
	tests := []struct {
		name    string
		path    string
		create  bool
		want    []byte
		errText string
	}{
		{"existing key", writeFile(t, dir, "ok", key, 0o600), false, key, ""},
		{"read-only owner", writeFile(t, dir, "ro", key, 0o400), false, key, ""},
		{"group readable", writeFile(t, dir, "group", key, 0o640), true, nil, "group and others"},
		{"world readable", writeFile(t, dir, "world", key, 0o604), true, nil, "group and others"},
		{"short", writeFile(t, dir, "short", key[:31], 0o600), true, nil, "exactly 32 bytes"},
		{"long", writeFile(t, dir, "long", append(bytes.Clone(key), '\n'), 0o600), true, nil, "exactly 32 bytes"},
		{"directory", dir, true, nil, "not a regular file"},
		{"missing, no create", filepath.Join(dir, "missing"), false, nil, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := local.LoadOrCreateKeyFile(tc.path, tc.create)
			if tc.errText != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("error %v, want one saying %q", err, tc.errText)
				}
				if strings.Contains(err.Error(), hex.EncodeToString(key)) {
					t.Fatalf("error names the key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadOrCreateKeyFile: %v", err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatal("loaded another key")
			}
		})
	}
	if _, err := local.LoadOrCreateKeyFile(filepath.Join(dir, "missing"), false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file without create: %v, want fs.ErrNotExist", err)
	}
	// A refused file is left as it was.
	if info, err := os.Stat(filepath.Join(dir, "group")); err != nil || info.Mode().Perm() != 0o640 {
		t.Errorf("refused file changed: %v, %v", info.Mode(), err)
	}
}

func TestCreateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "kms", "master.key")
	key, err := local.LoadOrCreateKeyFile(path, true)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if len(key) != local.MasterKeySize || bytes.Equal(key, make([]byte, local.MasterKeySize)) {
		t.Fatalf("created key of %d bytes (all zero: %v)", len(key), bytes.Equal(key, make([]byte, local.MasterKeySize)))
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 || info.Size() != local.MasterKeySize {
		t.Errorf("key file mode %04o size %d, want 0600 and 32", info.Mode().Perm(), info.Size())
	}
	dirInfo, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if dirInfo.Mode().Perm() != 0o700 {
		t.Errorf("key directory mode %04o, want 0700", dirInfo.Mode().Perm())
	}
	again, err := local.LoadOrCreateKeyFile(path, true)
	if err != nil || !bytes.Equal(again, key) {
		t.Fatalf("second load: %v (same key %v)", err, bytes.Equal(again, key))
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil || len(entries) != 1 {
		t.Errorf("key directory holds %d entries (%v), want only the key file", len(entries), err)
	}
}

func TestCreateKeyFileConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	const n = 8
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = local.LoadOrCreateKeyFile(path, true) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("creator %d: %v", i, errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("creator %d got another key", i)
		}
	}
}
