package kms_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"keyconsole/kms"
	"keyconsole/kms/aws"
	"keyconsole/kms/kmstest"
	"keyconsole/kms/local"
)

// provider builds keyrings of one kind for table-driven tests.
type provider struct {
	name string
	// keyring returns a keyring whose current master key is "A".
	keyring func(t testing.TB) kms.Keyring
}

func providers() []provider {
	return []provider{
		{"local", func(t testing.TB) kms.Keyring { return newLocal(t, newMasterKey()) }},
		{"aws", func(t testing.TB) kms.Keyring {
			srv := kmstest.Start(t)
			return newAWS(t, srv.Endpoint, kmstest.AliasA)
		}},
	}
}

func newMasterKey() []byte {
	k := make([]byte, local.MasterKeySize)
	rand.Read(k)
	return k
}

func newLocal(t testing.TB, key []byte, previous ...[]byte) *local.Keyring {
	t.Helper()
	kr, err := local.New(key, "", previous...)
	if err != nil {
		t.Fatalf("local.New: %v", err)
	}
	return kr
}

func newAWS(t testing.TB, endpoint, keyID string) *aws.Keyring {
	t.Helper()
	kr, err := aws.New(context.Background(), aws.Options{
		KeyID: keyID, Region: kmstest.Region, Endpoint: endpoint, MaxAttempts: 1,
	})
	if err != nil {
		t.Fatalf("aws.New: %v", err)
	}
	return kr
}

// counting passes every call to a real keyring and counts the calls the
// provider receives, by operation.
type counting struct {
	kms.Keyring
	mu    sync.Mutex
	calls map[string]int
}

func countCalls(kr kms.Keyring) *counting {
	return &counting{Keyring: kr, calls: map[string]int{}}
}

func (c *counting) add(op string) {
	c.mu.Lock()
	c.calls[op]++
	c.mu.Unlock()
}

func (c *counting) count(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[op]
}

func (c *counting) GenerateDataKey(ctx context.Context, ec kms.EncryptionContext) (kms.DataKey, error) {
	c.add(kms.OpGenerateDataKey)
	return c.Keyring.GenerateDataKey(ctx, ec)
}

func (c *counting) Decrypt(ctx context.Context, keyID string, wrapped []byte, ec kms.EncryptionContext) ([]byte, error) {
	c.add(kms.OpDecrypt)
	return c.Keyring.Decrypt(ctx, keyID, wrapped, ec)
}

func (c *counting) WrapKey(ctx context.Context, key []byte, ec kms.EncryptionContext) ([]byte, string, error) {
	c.add(kms.OpEncrypt)
	return c.Keyring.WrapKey(ctx, key, ec)
}

// clock is a settable time source for cache-age tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// v1Fields is a blob split along the documented format-1 layout (see
// Envelope.Seal); tests use it to alter single fields and re-seal the header
// checksum, which also checks that the documentation matches the code.
type v1Fields struct {
	provider string
	keyID    string
	wrapped  []byte
	payload  []byte
}

func splitV1(t testing.TB, blob []byte) v1Fields {
	t.Helper()
	if len(blob) < 13 || string(blob[:3]) != "KCE" || blob[3] != 1 {
		t.Fatalf("not a format-1 blob: % x", blob[:min(len(blob), 8)])
	}
	r := blob[12:]
	var f v1Fields
	n := int(r[0])
	f.provider, r = string(r[1:1+n]), r[1+n:]
	n = int(binary.BigEndian.Uint16(r))
	f.keyID, r = string(r[2:2+n]), r[2+n:]
	n = int(binary.BigEndian.Uint16(r))
	f.wrapped, r = append([]byte(nil), r[2:2+n]...), r[2+n:]
	f.payload = append([]byte(nil), r...)
	return f
}

func joinV1(f v1Fields) []byte {
	out := []byte("KCE\x01")
	out = append(out, make([]byte, 8)...)
	out = append(out, byte(len(f.provider)))
	out = append(out, f.provider...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(f.keyID)))
	out = append(out, f.keyID...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(f.wrapped)))
	out = append(out, f.wrapped...)
	out = append(out, f.payload...)
	h := sha256.New()
	h.Write(out[3:4])
	h.Write(out[12:])
	copy(out[4:12], h.Sum(nil))
	return out
}

// assertNoSecret fails when an error message contains any of the secrets,
// raw or in hex or base64.
func assertNoSecret(t testing.TB, err error, secrets ...[]byte) {
	t.Helper()
	msg := err.Error()
	for _, s := range secrets {
		if len(s) == 0 {
			continue
		}
		for _, form := range []string{string(s), hex.EncodeToString(s), base64.StdEncoding.EncodeToString(s), base64.RawURLEncoding.EncodeToString(s)} {
			if strings.Contains(msg, form) {
				t.Fatalf("error message reveals a secret: %q", msg)
			}
		}
	}
}
