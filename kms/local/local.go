// Package local is the kms.Keyring of a master key held by the console itself
// (from a file or the environment): the default for development and
// single-machine installations.
//
// A wrapped data key is a version byte (1) followed by the output of
// AES-256-GCM with a random nonce (nonce || ciphertext || tag) under the master
// key. Its additional data binds the master key id and the canonical
// encryption context, so a wrapped key moved to another record, or offered to
// another master key, does not unwrap.
package local

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"keyconsole/kms"
)

// ProviderName is what Keyring.Provider returns.
const ProviderName = "local"

// MasterKeySize is the size of a local master key in bytes (AES-256).
const MasterKeySize = 32

const (
	wrapVersion = 1
	wrapAAD     = "keyconsole/kms local wrap v1\x00"
	keyIDLabel  = "keyconsole/kms local key id v1\x00"
)

// KeyID returns the id of a master key: "local:" and the first 16 hex digits
// of a SHA-256 over a fixed label and the key. It identifies the key without
// revealing it, so a blob offered to the wrong master key is recognised as such.
func KeyID(masterKey []byte) string {
	h := sha256.New()
	h.Write([]byte(keyIDLabel))
	h.Write(masterKey)
	return "local:" + hex.EncodeToString(h.Sum(nil))[:16]
}

// Keyring wraps data keys under a local master key. It can also unwrap data
// keys wrapped under earlier master keys handed to New, so that Rewrap can move
// them to the current one. It is safe for concurrent use.
type Keyring struct {
	currentID string
	aeads     map[string]cipher.AEAD
}

var _ kms.Keyring = (*Keyring)(nil)

// New returns a keyring whose current master key is masterKey (32 bytes).
// keyID is either empty or the key's id as KeyID computes it; any other value
// is refused, so a configured key id pins the expected master key. previous
// are older master keys whose wrapped data keys the keyring can still unwrap.
// The keyring keeps no reference to the given slices.
func New(masterKey []byte, keyID string, previous ...[]byte) (*Keyring, error) {
	id, aead, err := load(masterKey)
	if err != nil {
		return nil, err
	}
	if keyID != "" && keyID != id {
		return nil, fmt.Errorf("kms/local: key id %q does not match the master key, whose id is %q", keyID, id)
	}
	k := &Keyring{currentID: id, aeads: map[string]cipher.AEAD{id: aead}}
	for i, p := range previous {
		pid, paead, err := load(p)
		if err != nil {
			return nil, fmt.Errorf("previous key %d: %w", i+1, err)
		}
		if _, dup := k.aeads[pid]; !dup {
			k.aeads[pid] = paead
		}
	}
	return k, nil
}

func load(masterKey []byte) (string, cipher.AEAD, error) {
	if len(masterKey) != MasterKeySize {
		return "", nil, fmt.Errorf("kms/local: master key must be %d bytes, got %d", MasterKeySize, len(masterKey))
	}
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return "", nil, fmt.Errorf("kms/local: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return "", nil, fmt.Errorf("kms/local: %w", err)
	}
	return KeyID(masterKey), aead, nil
}

// Provider returns "local".
func (k *Keyring) Provider() string { return ProviderName }

// CurrentKeyID returns the id of the current master key.
func (k *Keyring) CurrentKeyID() string { return k.currentID }

// GenerateDataKey returns a random AES-256 data key wrapped under the current
// master key and bound to ec.
func (k *Keyring) GenerateDataKey(ctx context.Context, ec kms.EncryptionContext) (kms.DataKey, error) {
	key := make([]byte, kms.DataKeySize)
	rand.Read(key)
	wrapped, id, err := k.WrapKey(ctx, key, ec)
	if err != nil {
		clear(key)
		return kms.DataKey{}, err
	}
	return kms.DataKey{Plaintext: key, Wrapped: wrapped, KeyID: id}, nil
}

// WrapKey wraps key under the current master key, bound to ec.
func (k *Keyring) WrapKey(ctx context.Context, key []byte, ec kms.EncryptionContext) ([]byte, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", fmt.Errorf("kms/local: wrap: %w: %w", kms.ErrUnavailable, err)
	}
	if err := ec.Validate(); err != nil {
		return nil, "", fmt.Errorf("kms/local: wrap: %w", err)
	}
	if len(key) != kms.DataKeySize {
		return nil, "", fmt.Errorf("kms/local: wrap: data key must be %d bytes, got %d", kms.DataKeySize, len(key))
	}
	aead := k.aeads[k.currentID]
	out := []byte{wrapVersion}
	out = aead.Seal(out, nil, key, additionalData(k.currentID, ec))
	return out, k.currentID, nil
}

// Decrypt unwraps a data key wrapped under master key keyID and bound to ec.
// A key id the keyring does not hold, another context or altered bytes fail
// with kms.ErrIntegrity.
func (k *Keyring) Decrypt(ctx context.Context, keyID string, wrapped []byte, ec kms.EncryptionContext) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("kms/local: decrypt: %w: %w", kms.ErrUnavailable, err)
	}
	if err := ec.Validate(); err != nil {
		return nil, fmt.Errorf("kms/local: decrypt: %w", err)
	}
	aead, ok := k.aeads[keyID]
	if !ok {
		return nil, fmt.Errorf("kms/local: decrypt: %w: data key is wrapped under master key %q, but this keyring holds %q (wrong master key)",
			kms.ErrIntegrity, keyID, k.currentID)
	}
	if len(wrapped) < 1 || wrapped[0] != wrapVersion {
		return nil, fmt.Errorf("kms/local: decrypt: %w: unknown wrapped key format", kms.ErrIntegrity)
	}
	key, err := aead.Open(nil, nil, wrapped[1:], additionalData(keyID, ec))
	if err != nil {
		return nil, fmt.Errorf("kms/local: decrypt: %w: wrapped data key does not authenticate under master key %q for this encryption context (another record's key, or altered)",
			kms.ErrIntegrity, keyID)
	}
	return key, nil
}

func additionalData(keyID string, ec kms.EncryptionContext) []byte {
	cec := ec.Canonical()
	ad := make([]byte, 0, len(wrapAAD)+2+len(keyID)+len(cec))
	ad = append(ad, wrapAAD...)
	ad = binary.BigEndian.AppendUint16(ad, uint16(len(keyID)))
	ad = append(ad, keyID...)
	return append(ad, cec...)
}
