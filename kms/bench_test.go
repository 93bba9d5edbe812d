package kms_test

import (
	"context"
	"testing"

	"keyconsole/kms"
)

// BenchmarkSeal seals a 24-byte secret for one record with a warm seal cache:
// one data key serves DefaultSealKeyMaxUses seals.
func BenchmarkSeal(b *testing.B) {
	ctx := context.Background()
	for _, p := range providers() {
		b.Run(p.name, func(b *testing.B) {
			c := countCalls(p.keyring(b))
			e := kms.NewEnvelope(c, kms.Options{})
			if _, err := e.Seal(ctx, record42, secret); err != nil {
				b.Fatal(err)
			}
			before := c.count(kms.OpGenerateDataKey)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := e.Seal(ctx, record42, secret); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(c.count(kms.OpGenerateDataKey)-before)*10000/float64(b.N), "kms-calls/10k-seals")
		})
	}
}

// BenchmarkOpen opens one record's blob with a warm open cache.
func BenchmarkOpen(b *testing.B) {
	ctx := context.Background()
	for _, p := range providers() {
		b.Run(p.name, func(b *testing.B) {
			c := countCalls(p.keyring(b))
			e := kms.NewEnvelope(c, kms.Options{})
			blob, err := kms.NewEnvelope(c, kms.Options{}).Seal(ctx, record42, secret)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.Open(ctx, record42, blob); err != nil {
				b.Fatal(err)
			}
			before := c.count(kms.OpDecrypt)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := e.Open(ctx, record42, blob); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(c.count(kms.OpDecrypt)-before)*10000/float64(b.N), "kms-calls/10k-opens")
		})
	}
}

// BenchmarkOpenUncached opens with the open cache off: every open is a
// provider Decrypt (for aws, an HTTP round trip to local-kms on 127.0.0.1).
func BenchmarkOpenUncached(b *testing.B) {
	ctx := context.Background()
	for _, p := range providers() {
		b.Run(p.name, func(b *testing.B) {
			kr := p.keyring(b)
			e := kms.NewEnvelope(kr, kms.Options{OpenCacheSize: -1})
			blob, err := e.Seal(ctx, record42, secret)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := e.Open(ctx, record42, blob); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpen10000SameRecord runs 10,000 opens of one record on a cold
// Envelope per iteration and reports the provider calls they cost.
func BenchmarkOpen10000SameRecord(b *testing.B) {
	ctx := context.Background()
	for _, p := range providers() {
		b.Run(p.name, func(b *testing.B) {
			c := countCalls(p.keyring(b))
			blob, err := kms.NewEnvelope(c, kms.Options{}).Seal(ctx, record42, secret)
			if err != nil {
				b.Fatal(err)
			}
			before := c.count(kms.OpDecrypt)
			b.ResetTimer()
			for b.Loop() {
				e := kms.NewEnvelope(c, kms.Options{})
				for range 10000 {
					if _, err := e.Open(ctx, record42, blob); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(c.count(kms.OpDecrypt)-before)/float64(b.N), "kms-calls/10k-opens")
		})
	}
}
