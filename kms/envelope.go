package kms

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Defaults applied by NewEnvelope to zero Options fields.
const (
	DefaultSealKeyMaxAge  = 5 * time.Minute
	DefaultSealKeyMaxUses = 1000
	DefaultSealCacheSize  = 1024
	DefaultOpenKeyMaxAge  = 15 * time.Minute
	DefaultOpenCacheSize  = 1024
)

// Options tunes an Envelope's data-key caches. Zero fields take the defaults
// above; a negative value turns the corresponding cache off.
type Options struct {
	// SealKeyMaxAge is how long a generated data key may be reused for sealing.
	SealKeyMaxAge time.Duration
	// SealKeyMaxUses is how many seals one generated data key may serve.
	SealKeyMaxUses int
	// SealCacheSize bounds the number of encryption contexts holding a
	// reusable data key for sealing.
	SealCacheSize int
	// OpenKeyMaxAge is how long an unwrapped data key is kept for opening.
	OpenKeyMaxAge time.Duration
	// OpenCacheSize bounds the number of unwrapped data keys kept for opening.
	OpenCacheSize int
	// Clock returns the current time; time.Now when nil.
	Clock func() time.Time
}

func (o Options) withDefaults() Options {
	if o.SealKeyMaxAge == 0 {
		o.SealKeyMaxAge = DefaultSealKeyMaxAge
	}
	if o.SealKeyMaxUses == 0 {
		o.SealKeyMaxUses = DefaultSealKeyMaxUses
	}
	if o.SealCacheSize == 0 {
		o.SealCacheSize = DefaultSealCacheSize
	}
	if o.OpenKeyMaxAge == 0 {
		o.OpenKeyMaxAge = DefaultOpenKeyMaxAge
	}
	if o.OpenCacheSize == 0 {
		o.OpenCacheSize = DefaultOpenCacheSize
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return o
}

// Envelope seals and opens secrets with data keys wrapped by a Keyring. It is
// safe for concurrent use.
//
// A data key generated for sealing is reused for the same encryption context
// and master key at most Options.SealKeyMaxUses times and for at most
// Options.SealKeyMaxAge. Unwrapped data keys are kept for opening in a bounded
// LRU keyed by master key id, wrapped key and encryption context, for at most
// Options.OpenKeyMaxAge. The caches hold the raw key bytes only to wrap them
// again (Rewrap) and zero them on eviction; the AES key schedule inside
// crypto/cipher cannot be zeroed and is left to the garbage collector.
type Envelope struct {
	kr   Keyring
	opts Options

	sealOn bool
	openOn bool

	mu   sync.Mutex
	seal *keyCache
	open *keyCache
	// opening shares one keyring call among concurrent opens of a data key
	// that is not cached.
	opening singleflight.Group

	calls      [numOps]atomic.Uint64
	callErrors [numOps]atomic.Uint64
	sealHits   atomic.Uint64
	sealMisses atomic.Uint64
	openHits   atomic.Uint64
	openMisses atomic.Uint64
}

type op int

const (
	opGenerate op = iota
	opDecrypt
	opEncrypt
	numOps
)

var opNames = [numOps]string{OpGenerateDataKey, OpDecrypt, OpEncrypt}

// NewEnvelope returns an Envelope sealing under kr's current master key.
func NewEnvelope(kr Keyring, opts Options) *Envelope {
	opts = opts.withDefaults()
	e := &Envelope{
		kr:     kr,
		opts:   opts,
		sealOn: opts.SealKeyMaxAge > 0 && opts.SealKeyMaxUses > 1 && opts.SealCacheSize > 0,
		openOn: opts.OpenKeyMaxAge > 0 && opts.OpenCacheSize > 0,
	}
	e.seal = newKeyCache(max(opts.SealCacheSize, 0))
	e.open = newKeyCache(max(opts.OpenCacheSize, 0))
	return e
}

// Keyring returns the keyring the Envelope seals with.
func (e *Envelope) Keyring() Keyring { return e.kr }

// Seal encrypts plaintext for the record named by ec and returns the blob to
// store.
//
// Stored form, format version 1 (binary; big-endian lengths):
//
//	"KCE"            magic, 3 bytes
//	0x01             format version
//	checksum         8 bytes: SHA-256 over the version byte and every byte
//	                 after this field, truncated (detects damage to the
//	                 unauthenticated header; the payload is authenticated by GCM)
//	provider         1-byte length, then the provider name ("local", "aws")
//	key id           2-byte length, then the master key id
//	wrapped key      2-byte length, then the wrapped data key
//	payload          the rest: AES-256-GCM nonce (12) || ciphertext || tag (16)
//
// The payload's additional data is "keyconsole/kms envelope v1\x00" followed by
// the canonical encoding of ec (EncryptionContext.Canonical). The header is not
// part of it, so Rewrap can replace the wrapped key without touching the
// payload. Later format versions get a new version byte; Open dispatches on it
// and keeps reading every earlier version.
func (e *Envelope) Seal(ctx context.Context, ec EncryptionContext, plaintext []byte) ([]byte, error) {
	if err := ec.Validate(); err != nil {
		return nil, fmt.Errorf("kms: seal: %w", err)
	}
	cec := ec.Canonical()
	sk, err := e.sealKey(ctx, ec, cec)
	if err != nil {
		return nil, fmt.Errorf("kms: seal: %w", err)
	}
	payload := sk.aead.Seal(nil, nil, plaintext, aadV1(cec))
	out, err := encodeV1(e.kr.Provider(), sk.keyID, sk.wrapped, payload)
	if err != nil {
		return nil, fmt.Errorf("kms: seal: %w", err)
	}
	return out, nil
}

// Open decrypts a blob made by Seal for the record named by ec. A blob of
// another record, an altered blob or one whose data key was wrapped under
// another master key fails with ErrIntegrity; a provider that cannot be
// reached or refuses fails with ErrUnavailable; bytes that are no blob fail
// with ErrFormat.
func (e *Envelope) Open(ctx context.Context, ec EncryptionContext, data []byte) ([]byte, error) {
	if err := ec.Validate(); err != nil {
		return nil, fmt.Errorf("kms: open: %w", err)
	}
	b, err := parseBlob(data)
	if err != nil {
		return nil, fmt.Errorf("kms: open: %w", err)
	}
	if err := e.checkProvider(b); err != nil {
		return nil, fmt.Errorf("kms: open: %w", err)
	}
	cec := ec.Canonical()
	aead, key, err := e.unwrap(ctx, b, ec, cec, false)
	if err != nil {
		return nil, fmt.Errorf("kms: open: %w", err)
	}
	clear(key)
	pt, err := openPayload(b, aead, cec)
	if err != nil {
		return nil, fmt.Errorf("kms: open: %w", err)
	}
	return pt, nil
}

// Rewrap re-wraps the blob's data key under the keyring's current master key
// and returns the new blob; the encrypted payload is kept byte for byte. It
// first checks that the payload opens for ec, so a damaged record is reported
// (ErrIntegrity) rather than carried over. When the data key is already
// wrapped under the current master key it returns the blob unchanged and
// changed is false.
func (e *Envelope) Rewrap(ctx context.Context, ec EncryptionContext, data []byte) (newBlob []byte, changed bool, err error) {
	if err := ec.Validate(); err != nil {
		return nil, false, fmt.Errorf("kms: rewrap: %w", err)
	}
	b, err := parseBlob(data)
	if err != nil {
		return nil, false, fmt.Errorf("kms: rewrap: %w", err)
	}
	if err := e.checkProvider(b); err != nil {
		return nil, false, fmt.Errorf("kms: rewrap: %w", err)
	}
	if b.keyID == e.kr.CurrentKeyID() {
		return data, false, nil
	}
	cec := ec.Canonical()
	aead, key, err := e.unwrap(ctx, b, ec, cec, true)
	if err != nil {
		return nil, false, fmt.Errorf("kms: rewrap: %w", err)
	}
	defer clear(key)
	pt, err := openPayload(b, aead, cec)
	if err != nil {
		return nil, false, fmt.Errorf("kms: rewrap: %w", err)
	}
	clear(pt)

	wrapped, keyID, err := e.wrapKey(ctx, key, ec)
	if err != nil {
		return nil, false, fmt.Errorf("kms: rewrap: %w", err)
	}
	if keyID == b.keyID {
		// The configured key id named the same master key (an alias, say).
		return data, false, nil
	}
	out, err := encodeV1(b.provider, keyID, wrapped, b.payload)
	if err != nil {
		return nil, false, fmt.Errorf("kms: rewrap: %w", err)
	}
	if e.openOn {
		ck := &cachedKey{key: slices.Clone(key), aead: aead, created: e.opts.Clock()}
		e.mu.Lock()
		e.open.add(openCacheID(keyID, wrapped, cec), ck)
		e.mu.Unlock()
	}
	return out, true, nil
}

// checkContext is the encryption context of the Check round trip.
var checkContext = EncryptionContext{"purpose": "keyconsole-kms-check"}

// Check seals and opens a probe value through the provider, bypassing the
// caches, so it fails when the provider cannot generate or unwrap data keys.
func (e *Envelope) Check(ctx context.Context) error {
	cec := checkContext.Canonical()
	dk, err := e.generate(ctx, checkContext)
	if err != nil {
		return fmt.Errorf("kms: check: %w", err)
	}
	aead, err := newAEAD(dk.Plaintext)
	clear(dk.Plaintext)
	if err != nil {
		return fmt.Errorf("kms: check: %w", err)
	}
	probe := []byte("keyconsole kms check")
	probeBlob := blob{version: formatV1, provider: e.kr.Provider(), keyID: dk.KeyID, wrapped: dk.Wrapped,
		payload: aead.Seal(nil, nil, probe, aadV1(cec))}

	key, err := e.decrypt(ctx, dk.KeyID, dk.Wrapped, checkContext)
	if err != nil {
		return fmt.Errorf("kms: check: %w", err)
	}
	aead2, err := newAEAD(key)
	clear(key)
	if err != nil {
		return fmt.Errorf("kms: check: %w", err)
	}
	got, err := openPayload(probeBlob, aead2, cec)
	if err != nil {
		return fmt.Errorf("kms: check: %w", err)
	}
	if !bytes.Equal(got, probe) {
		return fmt.Errorf("kms: check: %w: round trip returned different bytes", ErrIntegrity)
	}
	return nil
}

// Stats are an Envelope's counters since it was made.
type Stats struct {
	// KMSCalls counts calls made to the keyring by operation
	// ("generate_data_key", "decrypt", "encrypt"), failed ones included.
	KMSCalls map[string]uint64
	// KMSErrors counts the calls of KMSCalls that failed.
	KMSErrors map[string]uint64
	// SealCacheHits and SealCacheMisses count seals that reused a data key
	// and seals that needed a new one.
	SealCacheHits, SealCacheMisses uint64
	// OpenCacheHits and OpenCacheMisses count opens (and rewraps) that found
	// the unwrapped data key cached and those that asked the keyring.
	OpenCacheHits, OpenCacheMisses uint64
}

// Stats returns a snapshot of the counters. It is safe for concurrent use.
func (e *Envelope) Stats() Stats {
	s := Stats{
		KMSCalls:        make(map[string]uint64, numOps),
		KMSErrors:       make(map[string]uint64, numOps),
		SealCacheHits:   e.sealHits.Load(),
		SealCacheMisses: e.sealMisses.Load(),
		OpenCacheHits:   e.openHits.Load(),
		OpenCacheMisses: e.openMisses.Load(),
	}
	for i, name := range opNames {
		s.KMSCalls[name] = e.calls[i].Load()
		s.KMSErrors[name] = e.callErrors[i].Load()
	}
	return s
}

// Purge zeroes and drops every cached data key.
func (e *Envelope) Purge() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seal.purge()
	e.open.purge()
}

func (e *Envelope) checkProvider(b blob) error {
	if p := e.kr.Provider(); b.provider != p {
		return fmt.Errorf("%w: blob was sealed by the %q provider, this keyring is %q", ErrUnavailable, b.provider, p)
	}
	return nil
}

// sealKey is what sealing needs from a data key.
type sealKey struct {
	aead    cipher.AEAD
	keyID   string
	wrapped []byte
}

func (e *Envelope) sealKey(ctx context.Context, ec EncryptionContext, cec []byte) (sealKey, error) {
	id := sealCacheID(e.kr.CurrentKeyID(), cec)
	if e.sealOn {
		now := e.opts.Clock()
		e.mu.Lock()
		if ck, ok := e.seal.get(id); ok {
			if fresh(now, ck.created, e.opts.SealKeyMaxAge) && ck.uses < e.opts.SealKeyMaxUses {
				ck.uses++
				sk := sealKey{aead: ck.aead, keyID: ck.keyID, wrapped: ck.wrapped}
				if ck.uses >= e.opts.SealKeyMaxUses {
					e.seal.remove(id)
				}
				e.mu.Unlock()
				e.sealHits.Add(1)
				return sk, nil
			}
			e.seal.remove(id)
		}
		e.mu.Unlock()
	}
	e.sealMisses.Add(1)

	dk, err := e.generate(ctx, ec)
	if err != nil {
		return sealKey{}, err
	}
	defer clear(dk.Plaintext)
	aead, err := newAEAD(dk.Plaintext)
	if err != nil {
		return sealKey{}, err
	}
	sk := sealKey{aead: aead, keyID: dk.KeyID, wrapped: dk.Wrapped}
	if e.sealOn || e.openOn {
		now := e.opts.Clock()
		e.mu.Lock()
		if e.sealOn {
			e.seal.add(id, &cachedKey{key: slices.Clone(dk.Plaintext), aead: aead, created: now, uses: 1,
				keyID: dk.KeyID, wrapped: dk.Wrapped})
		}
		if e.openOn {
			e.open.add(openCacheID(dk.KeyID, dk.Wrapped, cec),
				&cachedKey{key: slices.Clone(dk.Plaintext), aead: aead, created: now})
		}
		e.mu.Unlock()
	}
	return sk, nil
}

// unwrap returns the AEAD of the blob's data key, from the cache or the
// keyring; with wantKey it also returns a copy of the key, which the caller
// zeroes.
func (e *Envelope) unwrap(ctx context.Context, b blob, ec EncryptionContext, cec []byte, wantKey bool) (cipher.AEAD, []byte, error) {
	id := openCacheID(b.keyID, b.wrapped, cec)
	if e.openOn {
		now := e.opts.Clock()
		e.mu.Lock()
		if ck, ok := e.open.get(id); ok {
			if fresh(now, ck.created, e.opts.OpenKeyMaxAge) {
				aead := ck.aead
				var key []byte
				if wantKey {
					key = slices.Clone(ck.key)
				}
				e.mu.Unlock()
				e.openHits.Add(1)
				return aead, key, nil
			}
			e.open.remove(id)
		}
		e.mu.Unlock()
	}
	e.openMisses.Add(1)
	if e.openOn && !wantKey {
		return e.unwrapShared(ctx, b, ec, id)
	}

	key, err := e.decrypt(ctx, b.keyID, b.wrapped, ec)
	if err != nil {
		return nil, nil, err
	}
	aead, err := newAEAD(key)
	if err != nil {
		clear(key)
		return nil, nil, err
	}
	if e.openOn {
		ck := &cachedKey{key: slices.Clone(key), aead: aead, created: e.opts.Clock()}
		e.mu.Lock()
		e.open.add(id, ck)
		e.mu.Unlock()
	}
	if !wantKey {
		clear(key)
		key = nil
	}
	return aead, key, nil
}

// unwrapShared unwraps a data key that is not cached with one keyring call
// however many opens of it miss the cache at once (a replica that just
// started, or an expired entry under load): the first caller asks the
// keyring and caches the key, the others wait for its answer. The call runs
// without the first caller's cancellation (the keyring bounds each call), so
// one caller giving up fails no other; each waiter still returns when its
// own context ends.
func (e *Envelope) unwrapShared(ctx context.Context, b blob, ec EncryptionContext, id string) (cipher.AEAD, []byte, error) {
	ch := e.opening.DoChan(id, func() (any, error) {
		e.mu.Lock()
		ck, ok := e.open.get(id)
		e.mu.Unlock()
		if ok && fresh(e.opts.Clock(), ck.created, e.opts.OpenKeyMaxAge) {
			return ck.aead, nil
		}
		key, err := e.decrypt(context.WithoutCancel(ctx), b.keyID, b.wrapped, ec)
		if err != nil {
			return nil, err
		}
		aead, err := newAEAD(key)
		if err != nil {
			clear(key)
			return nil, err
		}
		e.mu.Lock()
		e.open.add(id, &cachedKey{key: key, aead: aead, created: e.opts.Clock()})
		e.mu.Unlock()
		return aead, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, nil, r.Err
		}
		return r.Val.(cipher.AEAD), nil, nil
	case <-ctx.Done():
		return nil, nil, providerError(ctx.Err())
	}
}

func (e *Envelope) generate(ctx context.Context, ec EncryptionContext) (DataKey, error) {
	e.calls[opGenerate].Add(1)
	dk, err := e.kr.GenerateDataKey(ctx, ec)
	if err != nil {
		e.callErrors[opGenerate].Add(1)
		return DataKey{}, providerError(err)
	}
	if len(dk.Plaintext) != DataKeySize || len(dk.Wrapped) == 0 || dk.KeyID == "" {
		clear(dk.Plaintext)
		e.callErrors[opGenerate].Add(1)
		return DataKey{}, fmt.Errorf("%w: provider returned a malformed data key", ErrUnavailable)
	}
	return dk, nil
}

func (e *Envelope) decrypt(ctx context.Context, keyID string, wrapped []byte, ec EncryptionContext) ([]byte, error) {
	e.calls[opDecrypt].Add(1)
	key, err := e.kr.Decrypt(ctx, keyID, wrapped, ec)
	if err != nil {
		e.callErrors[opDecrypt].Add(1)
		return nil, providerError(err)
	}
	if len(key) != DataKeySize {
		clear(key)
		e.callErrors[opDecrypt].Add(1)
		return nil, fmt.Errorf("%w: unwrapped data key has the wrong size", ErrIntegrity)
	}
	return key, nil
}

func (e *Envelope) wrapKey(ctx context.Context, key []byte, ec EncryptionContext) ([]byte, string, error) {
	e.calls[opEncrypt].Add(1)
	wrapped, keyID, err := e.kr.WrapKey(ctx, key, ec)
	if err != nil {
		e.callErrors[opEncrypt].Add(1)
		return nil, "", providerError(err)
	}
	if len(wrapped) == 0 || keyID == "" {
		e.callErrors[opEncrypt].Add(1)
		return nil, "", fmt.Errorf("%w: provider returned a malformed wrapped key", ErrUnavailable)
	}
	return wrapped, keyID, nil
}

// providerError makes sure a keyring error carries one of the typed errors;
// anything a provider did not classify is not the ciphertext's fault.
func providerError(err error) error {
	if errors.Is(err, ErrIntegrity) || errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func openPayload(b blob, aead cipher.AEAD, cec []byte) ([]byte, error) {
	switch b.version {
	case formatV1:
		pt, err := aead.Open(nil, nil, b.payload, aadV1(cec))
		if err != nil {
			return nil, fmt.Errorf("%w: ciphertext does not authenticate for this encryption context (another record's data, or altered)", ErrIntegrity)
		}
		return pt, nil
	default:
		return nil, fmt.Errorf("%w: unknown format version %d", ErrFormat, b.version)
	}
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	return aead, nil
}

func fresh(now, created time.Time, maxAge time.Duration) bool {
	return !now.Before(created) && now.Sub(created) < maxAge
}

func appendLenPrefixed(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

func sealCacheID(keyID string, cec []byte) string {
	id := appendLenPrefixed(nil, keyID)
	return string(append(id, cec...))
}

func openCacheID(keyID string, wrapped, cec []byte) string {
	id := appendLenPrefixed(nil, keyID)
	id = appendLenPrefixed(id, string(wrapped))
	return string(append(id, cec...))
}
