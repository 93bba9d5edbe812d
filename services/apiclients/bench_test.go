package apiclients_test

import (
	"context"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/oauth"
)

// BenchmarkAuthenticate measures client authentication as the token
// endpoint does it: one indexed query by client_id and an HMAC-SHA256
// comparison in constant time.
func BenchmarkAuthenticate(b *testing.B) {
	for _, d := range modelstest.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			e := newEnv(b, modelstest.Open(b, d))
			c, secret := e.create(b, e.demo.ID, "bench", "staging")
			ctx := context.Background()
			now := e.clock.Now()
			b.ReportAllocs()
			for b.Loop() {
				if _, _, reason, err := e.svc.Authenticate(ctx, c.ClientID, secret, now); err != nil || reason != "" {
					b.Fatalf("%q %v", reason, err)
				}
			}
		})
	}
}

// BenchmarkVerifySecret measures the keyed-hash comparison alone.
func BenchmarkVerifySecret(b *testing.B) {
	h, err := oauth.NewHasher(masterKey)
	if err != nil {
		b.Fatal(err)
	}
	secret, err := oauth.GenerateClientSecret(oauth.EnvStaging)
	if err != nil {
		b.Fatal(err)
	}
	stored := h.Hash(secret.Reveal())
	b.ReportAllocs()
	for b.Loop() {
		if !h.Verify(secret.Reveal(), stored) {
			b.Fatal("no match")
		}
	}
}

// BenchmarkIssueToken measures ES256 signing of an access token with a key
// loaded by the key manager.
func BenchmarkIssueToken(b *testing.B) {
	db := modelstest.Open(b, models.SQLite)
	clk := &clock{now: time.Now().UTC()}
	r := keyReplicaOf(b, db, clk)
	if err := r.keys.Ensure(context.Background()); err != nil {
		b.Fatal(err)
	}
	claims := oauth.Claims{ClientID: "ecd_stg_aaaaaaaaaaaaaaaaaaaa", Agency: "demo-county", Environment: "staging"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := r.iss.Issue(claims); err != nil {
			b.Fatal(err)
		}
	}
}
