package sshkeys

import (
	"context"
	"maps"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
)

// TestAuthenticatorStats checks the counters the metrics read: completed
// logins, and refused keys by reason.
func TestAuthenticatorStats(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		a := newAuthenticator(t, f, AuthConfig{Root: t.TempDir()})
		good, expiring, stranger := newGoKey(t, "good"), newGoKey(t, "expiring"), newGoKey(t, "stranger")
		f.upload(t, f.alphaProd, good.line, nil)
		soon := f.clock.Now().Add(time.Minute)
		f.upload(t, f.alphaProd, expiring.line, &soon)

		for range 2 {
			l, err := a.Authenticate(ctx, "alpha-prod", good.signer.PublicKey(), "192.0.2.20:40000")
			if err != nil {
				t.Fatalf("active key refused: %v", err)
			}
			a.LoginSucceeded(ctx, l.AccountID, l.AgencyID, l.Account, l.Fingerprint, "192.0.2.20:40000")
		}
		// An accepted key whose owner never signs is no login.
		if _, err := a.Authenticate(ctx, "alpha-prod", good.signer.PublicKey(), "192.0.2.20:40001"); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Minute)
		for _, r := range []struct{ account, key string }{
			{"alpha-stg", "good"}, {"alpha-prod", "stranger"}, {"alpha-prod", "stranger"}, {"alpha-prod", "expiring"},
		} {
			k := map[string]goKey{"good": good, "stranger": stranger, "expiring": expiring}[r.key]
			if _, err := a.Authenticate(ctx, r.account, k.signer.PublicKey(), "192.0.2.21:40000"); err == nil {
				t.Fatalf("%s key accepted for %s", r.key, r.account)
			}
		}
		st := a.Stats()
		want := map[string]uint64{ReasonUnknownKey: 2, ReasonWrongAccount: 1, ReasonExpired: 1, ReasonRateLimited: 0}
		if st.Logins != 2 || !maps.Equal(st.Refused, want) {
			t.Fatalf("stats %+v, want 2 logins and refusals %v", st, want)
		}
	})
}
