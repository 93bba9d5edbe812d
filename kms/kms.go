// Package kms is keyconsole's envelope encryption layer.
//
// Every secret the console can reveal again (webhook secrets, for instance) is
// sealed with AES-256-GCM under a fresh data key, and the data key is wrapped
// by a master key held by a [Keyring] provider: AWS KMS (package kms/aws) or a
// local master key (package kms/local). The ciphertext and the wrapped data key
// are both bound to an [EncryptionContext] naming the record they belong to, so
// a ciphertext copied to another row does not open.
//
// [Envelope] does the sealing, keeps bounded caches of data keys so steady
// traffic costs few provider calls, re-wraps data keys when the master key
// changes ([Envelope.Rewrap]) and counts the calls it makes ([Envelope.Stats]).
// The stored form is described on [Envelope.Seal].
//
// Failures come in three kinds, to be tested with errors.Is: [ErrUnavailable]
// (the key service cannot help right now; retrying later may work),
// [ErrIntegrity] (the blob does not authenticate for this record) and
// [ErrFormat] (the bytes are not a blob this package understands). No error
// message carries plaintext or key material.
package kms

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Errors returned by Envelope and by Keyring providers. Test with errors.Is.
var (
	// ErrUnavailable means the key provider could not serve the request: it is
	// unreachable, throttling, refusing, the master key is disabled or missing,
	// or the blob belongs to another provider. It is never the ciphertext's fault.
	ErrUnavailable = errors.New("key service unavailable")
	// ErrIntegrity means the blob does not authenticate: another record's
	// encryption context, altered bytes, or a master key other than the one
	// that wrapped its data key.
	ErrIntegrity = errors.New("integrity check failed")
	// ErrFormat means the bytes are not an envelope blob in a known format.
	ErrFormat = errors.New("not a recognised encrypted blob")
)

// Standard encryption context keys binding a ciphertext to its record.
const (
	ContextAgency     = "agency"
	ContextRecordType = "record_type"
	ContextRecordID   = "record_id"
)

// EncryptionContext binds a ciphertext to its record. Services use the keys
// "agency", "record_type" and "record_id" (see RecordContext). Keys and values
// must be non-empty; the map is never modified.
type EncryptionContext map[string]string

// RecordContext returns the encryption context of one record of an agency.
func RecordContext(agency, recordType, recordID string) EncryptionContext {
	return EncryptionContext{
		ContextAgency:     agency,
		ContextRecordType: recordType,
		ContextRecordID:   recordID,
	}
}

// Validate reports whether the context can bind a ciphertext: it needs at
// least one entry and no empty key or value.
func (ec EncryptionContext) Validate() error {
	if len(ec) == 0 {
		return errors.New("encryption context is empty")
	}
	for k, v := range ec {
		if k == "" {
			return errors.New("encryption context has an empty key")
		}
		if v == "" {
			return fmt.Errorf("encryption context key %q has an empty value", k)
		}
	}
	return nil
}

// Canonical returns the unambiguous binary encoding of the context used as
// additional authenticated data: the number of entries, then each entry in
// ascending key order as length-prefixed key and value (all lengths big-endian
// uint32). Two different contexts never encode the same way.
func (ec EncryptionContext) Canonical() []byte {
	keys := make([]string, 0, len(ec))
	size := 4
	for k, v := range ec {
		keys = append(keys, k)
		size += 8 + len(k) + len(v)
	}
	slices.Sort(keys)
	out := make([]byte, 0, size)
	out = binary.BigEndian.AppendUint32(out, uint32(len(keys)))
	for _, k := range keys {
		v := ec[k]
		out = binary.BigEndian.AppendUint32(out, uint32(len(k)))
		out = append(out, k...)
		out = binary.BigEndian.AppendUint32(out, uint32(len(v)))
		out = append(out, v...)
	}
	return out
}

// DataKey is a freshly generated data key: the plaintext key for sealing, the
// same key wrapped by the master key, and the id of that master key.
type DataKey struct {
	// Plaintext is the 32-byte AES-256 key. Callers zero it when done.
	Plaintext []byte
	// Wrapped is the key encrypted under the master key, bound to the context.
	Wrapped []byte
	// KeyID identifies the master key that wrapped it (for AWS, the key ARN).
	KeyID string
}

// DataKeySize is the size of a data key in bytes (AES-256).
const DataKeySize = 32

// Keyring wraps and unwraps data keys with a master key. Implementations are
// safe for concurrent use and return errors that match ErrUnavailable or
// ErrIntegrity.
type Keyring interface {
	// Provider names the provider: "local" or "aws".
	Provider() string
	// CurrentKeyID is the id of the master key new data keys are wrapped under.
	CurrentKeyID() string
	// GenerateDataKey returns a new AES-256 data key wrapped under the current
	// master key and bound to ec.
	GenerateDataKey(ctx context.Context, ec EncryptionContext) (DataKey, error)
	// Decrypt unwraps a data key wrapped under master key keyID and bound to ec.
	Decrypt(ctx context.Context, keyID string, wrapped []byte, ec EncryptionContext) ([]byte, error)
	// WrapKey wraps an existing data key under the current master key, bound to
	// ec, and returns the wrapped key and the id of the master key used.
	WrapKey(ctx context.Context, key []byte, ec EncryptionContext) (wrapped []byte, keyID string, err error)
}

// Provider operation names, as counted in Stats.KMSCalls.
const (
	OpGenerateDataKey = "generate_data_key"
	OpDecrypt         = "decrypt"
	OpEncrypt         = "encrypt"
)
