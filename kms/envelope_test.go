package kms_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"keyconsole/kms"
	"keyconsole/kms/aws"
	"keyconsole/kms/kmstest"
)

var (
	record42 = kms.RecordContext("agency-1", "webhook_secret", "42")
	record43 = kms.RecordContext("agency-1", "webhook_secret", "43")
	secret   = []byte("whsec-0123456789abcdefABCD")
)

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, p := range providers() {
		t.Run(p.name, func(t *testing.T) {
			kr := p.keyring(t)
			sealer := kms.NewEnvelope(kr, kms.Options{})
			plaintexts := []struct {
				name string
				data []byte
			}{
				{"empty", []byte{}},
				{"webhook secret", secret},
				{"binary", bytes.Repeat([]byte{0, 0xff, 0x80}, 100)},
				{"one MiB", bytes.Repeat([]byte("x"), 1<<20)},
			}
			for _, pt := range plaintexts {
				t.Run(pt.name, func(t *testing.T) {
					blob, err := sealer.Seal(ctx, record42, pt.data)
					if err != nil {
						t.Fatalf("Seal: %v", err)
					}
					if len(pt.data) > 8 && bytes.Contains(blob, pt.data) {
						t.Fatal("blob contains the plaintext")
					}
					info, err := kms.Describe(blob)
					if err != nil {
						t.Fatalf("Describe: %v", err)
					}
					if info.Version != 1 || info.Provider != p.name || info.KeyID != kr.CurrentKeyID() {
						t.Errorf("Describe = %+v, want version 1, provider %s, key %s", info, p.name, kr.CurrentKeyID())
					}
					// The sealing Envelope (warm cache) and a fresh one (cold
					// cache, so the provider unwraps) both open it.
					for _, opener := range []*kms.Envelope{sealer, kms.NewEnvelope(kr, kms.Options{})} {
						got, err := opener.Open(ctx, record42, blob)
						if err != nil {
							t.Fatalf("Open: %v", err)
						}
						if !bytes.Equal(got, pt.data) {
							t.Fatal("Open returned other bytes")
						}
					}
				})
			}
			// Sealing the same value twice gives different blobs.
			b1, err1 := sealer.Seal(ctx, record42, secret)
			b2, err2 := sealer.Seal(ctx, record42, secret)
			if err1 != nil || err2 != nil || bytes.Equal(b1, b2) {
				t.Errorf("two seals: %v, %v, equal %v", err1, err2, bytes.Equal(b1, b2))
			}
		})
	}
}

func TestOpenRefusesMovedOrAlteredBlobs(t *testing.T) {
	ctx := context.Background()
	for _, p := range providers() {
		t.Run(p.name, func(t *testing.T) {
			kr := p.keyring(t)
			sealer := kms.NewEnvelope(kr, kms.Options{})
			blob, err := sealer.Seal(ctx, record42, secret)
			if err != nil {
				t.Fatal(err)
			}
			f := splitV1(t, blob)

			payloadFlip := f
			payloadFlip.payload = bytes.Clone(f.payload)
			payloadFlip.payload[len(f.payload)/2] ^= 0x04
			wrappedFlip := f
			wrappedFlip.wrapped = bytes.Clone(f.wrapped)
			wrappedFlip.wrapped[len(f.wrapped)-1] ^= 0x01
			// Another record's data key with this record's payload.
			other, err := sealer.Seal(ctx, record43, secret)
			if err != nil {
				t.Fatal(err)
			}
			swapped := f
			swapped.wrapped = splitV1(t, other).wrapped

			tests := []struct {
				name string
				ec   kms.EncryptionContext
				blob []byte
				want error
				msg  string
			}{
				{"copied to another record", record43, blob, kms.ErrIntegrity, "integrity"},
				{"copied to another agency", kms.RecordContext("agency-2", "webhook_secret", "42"), blob, kms.ErrIntegrity, "integrity"},
				{"copied to another record type", kms.RecordContext("agency-1", "api_client", "42"), blob, kms.ErrIntegrity, "integrity"},
				{"extra context entry", kms.EncryptionContext{"agency": "agency-1", "record_type": "webhook_secret", "record_id": "42", "x": "y"}, blob, kms.ErrIntegrity, "integrity"},
				{"flipped payload bit, checksum re-sealed", record42, joinV1(payloadFlip), kms.ErrIntegrity, "does not authenticate"},
				{"flipped wrapped-key bit, checksum re-sealed", record42, joinV1(wrappedFlip), kms.ErrIntegrity, "integrity"},
				{"another record's wrapped key", record42, joinV1(swapped), kms.ErrIntegrity, "integrity"},
				{"truncated", record42, blob[:len(blob)-1], kms.ErrIntegrity, "checksum"},
				{"empty", record42, nil, kms.ErrFormat, "not a recognised"},
				{"not a blob", record42, []byte("hello, this is plain text"), kms.ErrFormat, "not a recognised"},
				{"unknown version", record42, append([]byte("KCE\x09"), blob[4:]...), kms.ErrFormat, "version 9"},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					// Warm: the sealing Envelope has the data key cached.
					// Cold: a fresh Envelope must ask the provider.
					for _, e := range []*kms.Envelope{sealer, kms.NewEnvelope(kr, kms.Options{})} {
						_, err := e.Open(ctx, tc.ec, tc.blob)
						if !errors.Is(err, tc.want) {
							t.Fatalf("Open: %v, want %v", err, tc.want)
						}
						if errors.Is(err, kms.ErrUnavailable) {
							t.Fatalf("Open: %v also claims the provider is unavailable", err)
						}
						if !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "kms: open: ") {
							t.Errorf("error %q lacks prefix or %q", err, tc.msg)
						}
						assertNoSecret(t, err, secret)
					}
				})
			}
		})
	}
}

func TestEveryFlippedBitFails(t *testing.T) {
	ctx := context.Background()
	for _, p := range providers() {
		t.Run(p.name, func(t *testing.T) {
			e := kms.NewEnvelope(p.keyring(t), kms.Options{})
			blob, err := e.Seal(ctx, record42, secret)
			if err != nil {
				t.Fatal(err)
			}
			for i := range len(blob) * 8 {
				altered := bytes.Clone(blob)
				altered[i/8] ^= 1 << (i % 8)
				_, err := e.Open(ctx, record42, altered)
				// Magic and version bytes make it another format; any other
				// bit breaks the checksum or the authentication.
				want := kms.ErrIntegrity
				if i/8 < 4 {
					want = kms.ErrFormat
				}
				if !errors.Is(err, want) {
					t.Fatalf("bit %d of byte %d: Open: %v, want %v", i%8, i/8, err, want)
				}
			}
			if _, err := e.Open(ctx, record42, blob); err != nil {
				t.Fatalf("unaltered blob: %v", err)
			}
		})
	}
}

func TestWrongMasterKey(t *testing.T) {
	ctx := context.Background()
	t.Run("local", func(t *testing.T) {
		right, wrong := newMasterKey(), newMasterKey()
		blob, err := kms.NewEnvelope(newLocal(t, right), kms.Options{}).Seal(ctx, record42, secret)
		if err != nil {
			t.Fatal(err)
		}
		wrongKR := newLocal(t, wrong)
		_, err = kms.NewEnvelope(wrongKR, kms.Options{}).Open(ctx, record42, blob)
		if !errors.Is(err, kms.ErrIntegrity) {
			t.Fatalf("Open with the wrong master key: %v, want ErrIntegrity", err)
		}
		msg := err.Error()
		info, _ := kms.Describe(blob)
		if !strings.Contains(msg, "wrong master key") || !strings.Contains(msg, info.KeyID) || !strings.Contains(msg, wrongKR.CurrentKeyID()) {
			t.Errorf("error %q does not name the master key ids", msg)
		}
		assertNoSecret(t, err, secret, right, wrong)
	})
	t.Run("aws", func(t *testing.T) {
		srv := kmstest.Start(t)
		e := kms.NewEnvelope(newAWS(t, srv.Endpoint, kmstest.AliasA), kms.Options{})
		blob, err := e.Seal(ctx, record42, secret)
		if err != nil {
			t.Fatal(err)
		}
		// The header names key B, whose key did not wrap the data key.
		f := splitV1(t, blob)
		f.keyID = srv.KeyARN(kmstest.KeyB)
		_, err = kms.NewEnvelope(newAWS(t, srv.Endpoint, kmstest.AliasB), kms.Options{}).Open(ctx, record42, joinV1(f))
		if !errors.Is(err, kms.ErrIntegrity) {
			t.Fatalf("Open with the wrong master key: %v, want ErrIntegrity", err)
		}
		assertNoSecret(t, err, secret)
	})
}

func TestOtherProvidersBlob(t *testing.T) {
	ctx := context.Background()
	srv := kmstest.Start(t)
	blob, err := kms.NewEnvelope(newLocal(t, newMasterKey()), kms.Options{}).Seal(ctx, record42, secret)
	if err != nil {
		t.Fatal(err)
	}
	e := kms.NewEnvelope(newAWS(t, srv.Endpoint, kmstest.AliasA), kms.Options{})
	if _, err := e.Open(ctx, record42, blob); !errors.Is(err, kms.ErrUnavailable) || !strings.Contains(err.Error(), `"local"`) {
		t.Fatalf("Open of a local blob with the aws keyring: %v, want ErrUnavailable naming the provider", err)
	}
}

func TestInvalidContext(t *testing.T) {
	ctx := context.Background()
	e := kms.NewEnvelope(newLocal(t, newMasterKey()), kms.Options{})
	blob, err := e.Seal(ctx, record42, secret)
	if err != nil {
		t.Fatal(err)
	}
	for _, ec := range []kms.EncryptionContext{nil, {}, {"agency": ""}, {"": "x"}} {
		if _, err := e.Seal(ctx, ec, secret); err == nil {
			t.Errorf("Seal(%v) succeeded", ec)
		}
		if _, err := e.Open(ctx, ec, blob); err == nil {
			t.Errorf("Open(%v) succeeded", ec)
		}
		if _, _, err := e.Rewrap(ctx, ec, blob); err == nil {
			t.Errorf("Rewrap(%v) succeeded", ec)
		}
	}
}

func TestSealCacheLimits(t *testing.T) {
	ctx := context.Background()
	for _, p := range providers() {
		t.Run(p.name, func(t *testing.T) {
			kr := p.keyring(t)
			tests := []struct {
				name string
				opts kms.Options
				// steps: seal count per context, then clock advance
				run          func(e *kms.Envelope, clk *clock) error
				wantGenerate int
				wantHits     uint64
			}{
				{"max uses", kms.Options{SealKeyMaxUses: 3}, func(e *kms.Envelope, clk *clock) error {
					return sealN(ctx, e, record42, 10)
				}, 4, 6},
				{"max age", kms.Options{SealKeyMaxAge: time.Minute}, func(e *kms.Envelope, clk *clock) error {
					if err := sealN(ctx, e, record42, 3); err != nil {
						return err
					}
					clk.Advance(59 * time.Second)
					if err := sealN(ctx, e, record42, 1); err != nil {
						return err
					}
					clk.Advance(time.Second)
					return sealN(ctx, e, record42, 2)
				}, 2, 4},
				{"clock moved back", kms.Options{}, func(e *kms.Envelope, clk *clock) error {
					if err := sealN(ctx, e, record42, 1); err != nil {
						return err
					}
					clk.Advance(-time.Second)
					return sealN(ctx, e, record42, 1)
				}, 2, 0},
				{"contexts never share a key", kms.Options{}, func(e *kms.Envelope, clk *clock) error {
					for _, ec := range []kms.EncryptionContext{record42, record43, kms.RecordContext("agency-2", "webhook_secret", "42")} {
						if err := sealN(ctx, e, ec, 5); err != nil {
							return err
						}
					}
					return nil
				}, 3, 12},
				{"cache size", kms.Options{SealCacheSize: 2}, func(e *kms.Envelope, clk *clock) error {
					// 42, 43, 44 evicts 42; 42 again needs a new key.
					for _, id := range []string{"42", "43", "44", "42", "44"} {
						if err := sealN(ctx, e, kms.RecordContext("agency-1", "webhook_secret", id), 1); err != nil {
							return err
						}
					}
					return nil
				}, 4, 1},
				{"reuse off", kms.Options{SealKeyMaxUses: -1}, func(e *kms.Envelope, clk *clock) error {
					return sealN(ctx, e, record42, 5)
				}, 5, 0},
				{"one use", kms.Options{SealKeyMaxUses: 1}, func(e *kms.Envelope, clk *clock) error {
					return sealN(ctx, e, record42, 3)
				}, 3, 0},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					clk := newClock()
					tc.opts.Clock = clk.Now
					c := countCalls(kr)
					e := kms.NewEnvelope(c, tc.opts)
					if err := tc.run(e, clk); err != nil {
						t.Fatal(err)
					}
					st := e.Stats()
					if got := c.count(kms.OpGenerateDataKey); got != tc.wantGenerate {
						t.Errorf("provider received %d GenerateDataKey calls, want %d", got, tc.wantGenerate)
					}
					if st.KMSCalls[kms.OpGenerateDataKey] != uint64(c.count(kms.OpGenerateDataKey)) {
						t.Errorf("Stats counts %d generate calls, the provider received %d", st.KMSCalls[kms.OpGenerateDataKey], c.count(kms.OpGenerateDataKey))
					}
					if st.SealCacheHits != tc.wantHits {
						t.Errorf("seal cache hits %d, want %d", st.SealCacheHits, tc.wantHits)
					}
					if c.count(kms.OpDecrypt) != 0 {
						t.Errorf("sealing made %d decrypt calls", c.count(kms.OpDecrypt))
					}
				})
			}
		})
	}
}

func sealN(ctx context.Context, e *kms.Envelope, ec kms.EncryptionContext, n int) error {
	for range n {
		blob, err := e.Seal(ctx, ec, secret)
		if err != nil {
			return err
		}
		got, err := e.Open(ctx, ec, blob)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, secret) {
			return errors.New("round trip returned other bytes")
		}
	}
	return nil
}

func TestOpenCacheLimits(t *testing.T) {
	ctx := context.Background()
	for _, p := range providers() {
		t.Run(p.name, func(t *testing.T) {
			kr := p.keyring(t)
			sealer := kms.NewEnvelope(kr, kms.Options{})
			blobs := map[string][]byte{}
			for _, id := range []string{"1", "2", "3"} {
				b, err := sealer.Seal(ctx, kms.RecordContext("agency-1", "webhook_secret", id), secret)
				if err != nil {
					t.Fatal(err)
				}
				blobs[id] = b
			}
			type step struct {
				open    string
				advance time.Duration
			}
			tests := []struct {
				name        string
				opts        kms.Options
				steps       []step
				wantDecrypt int
				wantHits    uint64
			}{
				{"same record", kms.Options{}, []step{{open: "1"}, {open: "1"}, {open: "1"}}, 1, 2},
				{"lru eviction", kms.Options{OpenCacheSize: 2}, []step{
					{open: "1"}, {open: "2"}, {open: "1"}, {open: "3"}, // 3 evicts 2
					{open: "1"}, {open: "3"}, {open: "2"},
				}, 4, 3},
				{"max age", kms.Options{OpenKeyMaxAge: time.Minute}, []step{
					{open: "1"}, {advance: 59 * time.Second}, {open: "1"}, {advance: time.Second}, {open: "1"}, {open: "1"},
				}, 2, 2},
				{"cache off", kms.Options{OpenCacheSize: -1}, []step{{open: "1"}, {open: "1"}, {open: "2"}}, 3, 0},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					clk := newClock()
					tc.opts.Clock = clk.Now
					c := countCalls(kr)
					e := kms.NewEnvelope(c, tc.opts)
					for _, s := range tc.steps {
						clk.Advance(s.advance)
						if s.open == "" {
							continue
						}
						got, err := e.Open(ctx, kms.RecordContext("agency-1", "webhook_secret", s.open), blobs[s.open])
						if err != nil || !bytes.Equal(got, secret) {
							t.Fatalf("Open %s: %v", s.open, err)
						}
					}
					st := e.Stats()
					if got := c.count(kms.OpDecrypt); got != tc.wantDecrypt {
						t.Errorf("provider received %d Decrypt calls, want %d", got, tc.wantDecrypt)
					}
					if st.KMSCalls[kms.OpDecrypt] != uint64(c.count(kms.OpDecrypt)) || st.OpenCacheMisses != uint64(c.count(kms.OpDecrypt)) {
						t.Errorf("Stats counts %d decrypt calls and %d misses, the provider received %d",
							st.KMSCalls[kms.OpDecrypt], st.OpenCacheMisses, c.count(kms.OpDecrypt))
					}
					if st.OpenCacheHits != tc.wantHits {
						t.Errorf("open cache hits %d, want %d", st.OpenCacheHits, tc.wantHits)
					}
				})
			}
		})
	}
}

func TestSealedKeyOpensWithoutProvider(t *testing.T) {
	ctx := context.Background()
	c := countCalls(newLocal(t, newMasterKey()))
	e := kms.NewEnvelope(c, kms.Options{})
	blob, err := e.Seal(ctx, record42, secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Open(ctx, record42, blob); err != nil {
		t.Fatal(err)
	}
	if c.count(kms.OpDecrypt) != 0 {
		t.Errorf("opening a blob this Envelope sealed made %d decrypt calls", c.count(kms.OpDecrypt))
	}
	if _, err := kms.Describe(blob); err != nil {
		t.Fatal(err)
	}
	e.Purge()
	if _, err := e.Open(ctx, record42, blob); err != nil {
		t.Fatal(err)
	}
	if c.count(kms.OpDecrypt) != 1 {
		t.Errorf("after Purge, Open made %d decrypt calls, want 1", c.count(kms.OpDecrypt))
	}
}

func TestKMSCallsPer10000Opens(t *testing.T) {
	ctx := context.Background()
	for _, p := range providers() {
		t.Run(p.name, func(t *testing.T) {
			kr := p.keyring(t)
			blob, err := kms.NewEnvelope(kr, kms.Options{}).Seal(ctx, record42, secret)
			if err != nil {
				t.Fatal(err)
			}
			c := countCalls(kr)
			e := kms.NewEnvelope(c, kms.Options{})
			for range 10000 {
				if _, err := e.Open(ctx, record42, blob); err != nil {
					t.Fatal(err)
				}
			}
			if got := c.count(kms.OpDecrypt); got != 1 {
				t.Errorf("10,000 opens of one record made %d decrypt calls, want 1", got)
			}
			if st := e.Stats(); st.OpenCacheHits != 9999 {
				t.Errorf("open cache hits %d, want 9999", st.OpenCacheHits)
			}
		})
	}
}

func TestRewrapAWS(t *testing.T) {
	ctx := context.Background()
	srv := kmstest.Start(t)
	arnA, arnB := srv.KeyARN(kmstest.KeyA), srv.KeyARN(kmstest.KeyB)

	underA := kms.NewEnvelope(newAWS(t, srv.Endpoint, kmstest.AliasA), kms.Options{})
	const n = 5
	records := make([]kms.EncryptionContext, n)
	blobs := make([][]byte, n)
	for i := range n {
		records[i] = kms.RecordContext("agency-1", "webhook_secret", fmt.Sprint(100+i))
		b, err := underA.Seal(ctx, records[i], []byte(fmt.Sprintf("secret-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if info, _ := kms.Describe(b); info.KeyID != arnA {
			t.Fatalf("sealed under %q, want %q", info.KeyID, arnA)
		}
		blobs[i] = b
	}
	notRewrapped, err := underA.Seal(ctx, record42, secret)
	if err != nil {
		t.Fatal(err)
	}

	// The same key named by its bare id: nothing to do, even before the
	// keyring has learnt the ARN.
	sameKey := countCalls(newAWS(t, srv.Endpoint, kmstest.KeyA))
	same := kms.NewEnvelope(sameKey, kms.Options{})
	for i := range n {
		out, changed, err := same.Rewrap(ctx, records[i], blobs[i])
		if err != nil || changed || !bytes.Equal(out, blobs[i]) {
			t.Fatalf("Rewrap under the same key: changed %v, err %v", changed, err)
		}
	}
	if got := sameKey.count(kms.OpEncrypt); got != 1 {
		t.Errorf("rewrap under the same key made %d encrypt calls, want 1 (then the ARN is known)", got)
	}

	// Switch to key B and rewrap.
	c := countCalls(newAWS(t, srv.Endpoint, kmstest.AliasB))
	underB := kms.NewEnvelope(c, kms.Options{})
	if _, _, err := underB.Rewrap(ctx, record43, blobs[0]); !errors.Is(err, kms.ErrIntegrity) {
		t.Fatalf("Rewrap with another record's context: %v, want ErrIntegrity", err)
	}
	if c.count(kms.OpEncrypt) != 0 {
		t.Fatal("a refused rewrap still wrapped the key")
	}
	rewrapped := make([][]byte, n)
	for i := range n {
		out, changed, err := underB.Rewrap(ctx, records[i], blobs[i])
		if err != nil || !changed {
			t.Fatalf("Rewrap %d: changed %v, err %v", i, changed, err)
		}
		info, err := kms.Describe(out)
		if err != nil || info.KeyID != arnB || info.Provider != "aws" {
			t.Fatalf("rewrapped blob: %+v, %v; want key %s", info, err, arnB)
		}
		if !bytes.Equal(splitV1(t, out).payload, splitV1(t, blobs[i]).payload) {
			t.Fatal("Rewrap changed the ciphertext")
		}
		rewrapped[i] = out
	}
	// Rewrapping again is a no-op without provider calls.
	before := c.count(kms.OpDecrypt) + c.count(kms.OpEncrypt)
	for i := range n {
		out, changed, err := underB.Rewrap(ctx, records[i], rewrapped[i])
		if err != nil || changed || !bytes.Equal(out, rewrapped[i]) {
			t.Fatalf("second Rewrap %d: changed %v, err %v", i, changed, err)
		}
	}
	if after := c.count(kms.OpDecrypt) + c.count(kms.OpEncrypt); after != before {
		t.Errorf("no-op rewraps made %d provider calls", after-before)
	}

	srv.DisableKey(t, kmstest.KeyA)

	// A fresh Envelope, so nothing comes from a cache: every rewrapped record
	// opens under key B alone.
	fresh := kms.NewEnvelope(newAWS(t, srv.Endpoint, kmstest.AliasB), kms.Options{})
	for i := range n {
		got, err := fresh.Open(ctx, records[i], rewrapped[i])
		if err != nil {
			t.Fatalf("Open rewrapped %d with key A disabled: %v", i, err)
		}
		if want := fmt.Sprintf("secret-%d", i); string(got) != want {
			t.Fatalf("Open rewrapped %d = %q, want %q", i, got, want)
		}
		if _, err := fresh.Open(ctx, records[i], blobs[i]); !errors.Is(err, kms.ErrUnavailable) {
			t.Fatalf("Open of the old blob %d with key A disabled: %v, want ErrUnavailable", i, err)
		}
	}
	// A record the rewrap missed cannot be moved while key A is disabled,
	// and that is the service's refusal, not damage.
	if _, _, err := fresh.Rewrap(ctx, record42, notRewrapped); !errors.Is(err, kms.ErrUnavailable) {
		t.Fatalf("Rewrap under a disabled key: %v, want ErrUnavailable", err)
	}
	srv.EnableKey(t, kmstest.KeyA)
	if _, changed, err := fresh.Rewrap(ctx, record42, notRewrapped); err != nil || !changed {
		t.Fatalf("Rewrap after re-enabling key A: changed %v, err %v", changed, err)
	}
}

func TestRewrapLocal(t *testing.T) {
	ctx := context.Background()
	oldKey, newKey := newMasterKey(), newMasterKey()
	oldKR := newLocal(t, oldKey)
	blob, err := kms.NewEnvelope(oldKR, kms.Options{}).Seal(ctx, record42, secret)
	if err != nil {
		t.Fatal(err)
	}
	rotating := kms.NewEnvelope(newLocal(t, newKey, oldKey), kms.Options{})
	out, changed, err := rotating.Rewrap(ctx, record42, blob)
	if err != nil || !changed {
		t.Fatalf("Rewrap: changed %v, err %v", changed, err)
	}
	info, err := kms.Describe(out)
	if err != nil || info.KeyID != newLocal(t, newKey).CurrentKeyID() {
		t.Fatalf("Describe rewrapped: %+v, %v", info, err)
	}
	// Only the new master key: the rewrapped blob opens, the old one does not.
	onlyNew := kms.NewEnvelope(newLocal(t, newKey), kms.Options{})
	if got, err := onlyNew.Open(ctx, record42, out); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open rewrapped: %v", err)
	}
	if _, err := onlyNew.Open(ctx, record42, blob); !errors.Is(err, kms.ErrIntegrity) {
		t.Fatalf("Open old blob without the old key: %v, want ErrIntegrity", err)
	}
	// A damaged record is reported, not carried over.
	f := splitV1(t, blob)
	f.payload[0] ^= 1
	if _, _, err := rotating.Rewrap(ctx, record42, joinV1(f)); !errors.Is(err, kms.ErrIntegrity) {
		t.Fatalf("Rewrap of a damaged blob: %v, want ErrIntegrity", err)
	}
}

func TestUnavailable(t *testing.T) {
	ctx := context.Background()
	srv := kmstest.Start(t)
	blob, err := kms.NewEnvelope(newAWS(t, srv.Endpoint, kmstest.AliasA), kms.Options{}).Seal(ctx, record42, secret)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("closed port", func(t *testing.T) {
		closed := kmstest.ClosedEndpoint(t)
		e := kms.NewEnvelope(newAWS(t, closed, kmstest.AliasA), kms.Options{})
		checkUnavailable(t, e, closed, blob)
	})

	t.Run("closed port with SDK retries", func(t *testing.T) {
		kr, err := aws.New(ctx, aws.Options{KeyID: kmstest.AliasA, Region: kmstest.Region, Endpoint: kmstest.ClosedEndpoint(t)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kms.NewEnvelope(kr, kms.Options{}).Open(ctx, record42, blob); !errors.Is(err, kms.ErrUnavailable) || errors.Is(err, kms.ErrIntegrity) {
			t.Fatalf("Open: %v, want only ErrUnavailable", err)
		}
	})

	t.Run("server stopped and restarted", func(t *testing.T) {
		e := kms.NewEnvelope(newAWS(t, srv.Endpoint, kmstest.AliasA), kms.Options{})
		if err := e.Check(ctx); err != nil {
			t.Fatalf("Check while up: %v", err)
		}
		cached, err := e.Seal(ctx, record43, secret)
		if err != nil {
			t.Fatal(err)
		}
		srv.Stop(t)
		checkUnavailable(t, e, srv.Endpoint, blob)
		// Keys already in the caches keep working while KMS is away.
		if got, err := e.Open(ctx, record43, cached); err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("Open with a cached key while KMS is down: %v", err)
		}
		srv.Restart(t)
		if err := e.Check(ctx); err != nil {
			t.Fatalf("Check after restart: %v", err)
		}
		if got, err := e.Open(ctx, record42, blob); err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("Open after restart: %v", err)
		}
		if _, err := e.Seal(ctx, kms.RecordContext("agency-9", "webhook_secret", "1"), secret); err != nil {
			t.Fatalf("Seal after restart: %v", err)
		}
	})

	t.Run("master key disabled", func(t *testing.T) {
		e := kms.NewEnvelope(newAWS(t, srv.Endpoint, kmstest.AliasA), kms.Options{})
		srv.DisableKey(t, kmstest.KeyA)
		checkUnavailable(t, e, srv.Endpoint, blob)
		srv.EnableKey(t, kmstest.KeyA)
		if got, err := e.Open(ctx, record42, blob); err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("Open after enabling: %v", err)
		}
	})
}

// checkUnavailable asserts that opening blob (sealed under key A), sealing
// for a new record, rewrapping blob to key B and Check all fail as
// unavailable, never as integrity failures.
func checkUnavailable(t *testing.T, e *kms.Envelope, endpoint string, blob []byte) {
	t.Helper()
	ctx := context.Background()
	_, openErr := e.Open(ctx, record42, blob)
	_, sealErr := e.Seal(ctx, kms.RecordContext("agency-7", "webhook_secret", "7"), secret)
	_, _, rewrapErr := kms.NewEnvelope(newAWS(t, endpoint, kmstest.AliasB), kms.Options{}).Rewrap(ctx, record42, blob)
	checkErr := e.Check(ctx)
	for name, err := range map[string]error{"Open": openErr, "Seal": sealErr, "Rewrap": rewrapErr, "Check": checkErr} {
		if !errors.Is(err, kms.ErrUnavailable) || errors.Is(err, kms.ErrIntegrity) || errors.Is(err, kms.ErrFormat) {
			t.Errorf("%s: %v, want only ErrUnavailable", name, err)
			continue
		}
		assertNoSecret(t, err, secret)
	}
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	for _, p := range providers() {
		t.Run(p.name, func(t *testing.T) {
			c := countCalls(p.keyring(t))
			e := kms.NewEnvelope(c, kms.Options{})
			for range 2 {
				if err := e.Check(ctx); err != nil {
					t.Fatalf("Check: %v", err)
				}
			}
			// Check bypasses the caches: each run reaches the provider.
			if c.count(kms.OpGenerateDataKey) != 2 || c.count(kms.OpDecrypt) != 2 {
				t.Errorf("two Checks made %d generate and %d decrypt calls, want 2 and 2",
					c.count(kms.OpGenerateDataKey), c.count(kms.OpDecrypt))
			}
		})
	}
}

func TestStatsConcurrent(t *testing.T) {
	ctx := context.Background()
	c := countCalls(newLocal(t, newMasterKey()))
	e := kms.NewEnvelope(c, kms.Options{SealKeyMaxUses: 7, OpenCacheSize: 3, SealCacheSize: 3})
	const workers, rounds = 8, 200
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				ec := kms.RecordContext("agency-1", "webhook_secret", fmt.Sprint((w+i)%5))
				blob, err := e.Seal(ctx, ec, secret)
				if err != nil {
					errs <- err
					return
				}
				got, err := e.Open(ctx, ec, blob)
				if err != nil || !bytes.Equal(got, secret) {
					errs <- fmt.Errorf("open: %v", err)
					return
				}
				_ = e.Stats()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := e.Stats()
	if st.SealCacheHits+st.SealCacheMisses != workers*rounds || st.OpenCacheHits+st.OpenCacheMisses != workers*rounds {
		t.Errorf("stats do not add up: %+v", st)
	}
	if st.KMSCalls[kms.OpGenerateDataKey] != st.SealCacheMisses || uint64(c.count(kms.OpGenerateDataKey)) != st.SealCacheMisses {
		t.Errorf("generate calls: stats %d, provider %d, misses %d", st.KMSCalls[kms.OpGenerateDataKey], c.count(kms.OpGenerateDataKey), st.SealCacheMisses)
	}
	// Concurrent misses of one data key share a single keyring call, so
	// there are never more Decrypt calls than misses, and at least one.
	if dec := st.KMSCalls[kms.OpDecrypt]; dec != uint64(c.count(kms.OpDecrypt)) || dec > st.OpenCacheMisses || (st.OpenCacheMisses > 0 && dec == 0) {
		t.Errorf("decrypt calls: stats %d, provider %d, misses %d", st.KMSCalls[kms.OpDecrypt], c.count(kms.OpDecrypt), st.OpenCacheMisses)
	}
	if min := uint64(workers * rounds / 7); st.SealCacheMisses < min {
		t.Errorf("%d seal misses, fewer than the %d the use limit allows", st.SealCacheMisses, min)
	}
}

func TestDescribeMakesNoCalls(t *testing.T) {
	ctx := context.Background()
	c := countCalls(newLocal(t, newMasterKey()))
	e := kms.NewEnvelope(c, kms.Options{})
	blob, err := e.Seal(ctx, record42, secret)
	if err != nil {
		t.Fatal(err)
	}
	calls := c.count(kms.OpGenerateDataKey) + c.count(kms.OpDecrypt)
	info, err := kms.Describe(blob)
	if err != nil {
		t.Fatal(err)
	}
	if want := (kms.BlobInfo{Version: 1, Provider: "local", KeyID: c.CurrentKeyID()}); info != want {
		t.Errorf("Describe = %+v, want %+v", info, want)
	}
	if c.count(kms.OpGenerateDataKey)+c.count(kms.OpDecrypt) != calls {
		t.Error("Describe called the provider")
	}
	for _, bad := range [][]byte{nil, []byte("KCE"), []byte("KCE\x02........"), []byte("XYZ\x01........")} {
		if _, err := kms.Describe(bad); !errors.Is(err, kms.ErrFormat) {
			t.Errorf("Describe(%q): %v, want ErrFormat", bad, err)
		}
	}
}
