package kms

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
)

// blobMagic starts every envelope blob ("KeyConsole Envelope").
var blobMagic = []byte("KCE")

const (
	// formatV1 is the first blob format; see Envelope.Seal.
	formatV1 = 1

	checksumSize = 8
	headerFixed  = len("KCE") + 1 + checksumSize

	// gcmOverhead is nonce plus tag of cipher.NewGCMWithRandomNonce output.
	gcmOverhead = 12 + 16
)

// payloadAADv1 separates the payload's additional data from any other use of
// the canonical context.
const payloadAADv1 = "keyconsole/kms envelope v1\x00"

// blob is a parsed envelope blob.
type blob struct {
	version  int
	provider string
	keyID    string
	wrapped  []byte
	payload  []byte // nonce || ciphertext || tag
}

// BlobInfo describes a blob without opening it.
type BlobInfo struct {
	// Version is the format version.
	Version int
	// Provider is the keyring provider that wrapped the data key.
	Provider string
	// KeyID is the master key the data key is wrapped under.
	KeyID string
}

// Describe reports the format version, provider and master key id of a blob
// without calling any key provider. It verifies the blob's checksum, so a
// blob it accepts is not damaged outside its authenticated payload.
func Describe(data []byte) (BlobInfo, error) {
	b, err := parseBlob(data)
	if err != nil {
		return BlobInfo{}, fmt.Errorf("kms: describe: %w", err)
	}
	return BlobInfo{Version: b.version, Provider: b.provider, KeyID: b.keyID}, nil
}

// parseBlob dispatches on the format version. Every version ever written
// stays readable here.
func parseBlob(data []byte) (blob, error) {
	if len(data) < len(blobMagic)+1 || !bytes.Equal(data[:len(blobMagic)], blobMagic) {
		return blob{}, ErrFormat
	}
	switch v := data[len(blobMagic)]; v {
	case formatV1:
		return parseV1(data)
	default:
		return blob{}, fmt.Errorf("%w: unknown format version %d", ErrFormat, v)
	}
}

// checksumV1 covers the version byte and everything after the checksum field.
func checksumV1(data []byte) []byte {
	h := sha256.New()
	h.Write(data[len(blobMagic) : len(blobMagic)+1])
	h.Write(data[headerFixed:])
	return h.Sum(nil)[:checksumSize]
}

func parseV1(data []byte) (blob, error) {
	if len(data) < headerFixed {
		return blob{}, fmt.Errorf("%w: truncated header", ErrFormat)
	}
	if subtle.ConstantTimeCompare(checksumV1(data), data[len(blobMagic)+1:headerFixed]) != 1 {
		return blob{}, fmt.Errorf("%w: blob checksum mismatch (altered or truncated)", ErrIntegrity)
	}
	r := data[headerFixed:]
	b := blob{version: formatV1}

	if len(r) < 1 {
		return blob{}, fmt.Errorf("%w: truncated provider", ErrFormat)
	}
	n := int(r[0])
	r = r[1:]
	if n == 0 || len(r) < n {
		return blob{}, fmt.Errorf("%w: bad provider field", ErrFormat)
	}
	b.provider, r = string(r[:n]), r[n:]

	var field []byte
	var ok bool
	if field, r, ok = readU16(r); !ok || len(field) == 0 {
		return blob{}, fmt.Errorf("%w: bad key id field", ErrFormat)
	}
	b.keyID = string(field)
	if field, r, ok = readU16(r); !ok || len(field) == 0 {
		return blob{}, fmt.Errorf("%w: bad wrapped key field", ErrFormat)
	}
	b.wrapped = field
	if len(r) < gcmOverhead {
		return blob{}, fmt.Errorf("%w: truncated ciphertext", ErrFormat)
	}
	b.payload = r
	return b, nil
}

func readU16(r []byte) (field, rest []byte, ok bool) {
	if len(r) < 2 {
		return nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(r))
	r = r[2:]
	if len(r) < n {
		return nil, nil, false
	}
	return r[:n], r[n:], true
}

// encodeV1 builds a format-1 blob. The fields are copied.
func encodeV1(provider, keyID string, wrapped, payload []byte) ([]byte, error) {
	switch {
	case provider == "" || len(provider) > 0xff:
		return nil, fmt.Errorf("kms: provider name length %d out of range", len(provider))
	case keyID == "" || len(keyID) > 0xffff:
		return nil, fmt.Errorf("kms: key id length %d out of range", len(keyID))
	case len(wrapped) == 0 || len(wrapped) > 0xffff:
		return nil, fmt.Errorf("kms: wrapped key length %d out of range", len(wrapped))
	}
	out := make([]byte, headerFixed, headerFixed+1+len(provider)+2+len(keyID)+2+len(wrapped)+len(payload))
	copy(out, blobMagic)
	out[len(blobMagic)] = formatV1
	out = append(out, byte(len(provider)))
	out = append(out, provider...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(keyID)))
	out = append(out, keyID...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(wrapped)))
	out = append(out, wrapped...)
	out = append(out, payload...)
	copy(out[len(blobMagic)+1:headerFixed], checksumV1(out))
	return out, nil
}

// aadV1 is the additional data of a format-1 payload.
func aadV1(canonical []byte) []byte {
	aad := make([]byte, 0, len(payloadAADv1)+len(canonical))
	aad = append(aad, payloadAADv1...)
	return append(aad, canonical...)
}
