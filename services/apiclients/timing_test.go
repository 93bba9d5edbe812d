package apiclients_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/apiclients"
	"keyconsole/services/oauth"
)

// wrongSecret has the shape of a real secret, so every path hashes the
// same length.
var wrongSecret = oauth.NewClientSecret("ecds_stg_" + strings.Repeat("w", 43))

// TestFinding09_EveryClientIDCostsOneLookupAndOneHMAC: whatever the
// client_id (a real one with the wrong secret, a well-formed unknown one,
// one that could never exist, a real one whose hash is under an old
// pepper), authentication does the same work as for a real client: one
// look-up by client_id and one HMAC comparison. Timing then tells nothing
// about which ids exist.
func TestFinding09_EveryClientIDCostsOneLookupAndOneHMAC(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		e := newEnv(t, db)
		known, secret := e.create(t, e.demo.ID, "case sync", "staging")
		stale, _ := e.create(t, e.demo.ID, "old pepper", "staging")
		if err := db.Gorm.Model(&models.APICredential{}).Where("id = ?", stale.ID).Update("pepper_id", "v0").Error; err != nil {
			t.Fatal(err)
		}
		var steps []string
		apiclients.OnAuthStep(e.svc, func(step string) { steps = append(steps, step) })
		for _, tc := range []struct {
			name, clientID string
			secret         oauth.ClientSecret
			reason         string
		}{
			{"the right secret", known.ClientID, secret, ""},
			{"a known client_id with a wrong secret", known.ClientID, wrongSecret, oauth.ReasonInvalidSecret},
			{"a well-formed unknown client_id", "ecd_stg_" + strings.Repeat("q", 20), wrongSecret, oauth.ReasonUnknownClient},
			{"a client_id of the wrong shape", "nosuchclient", wrongSecret, oauth.ReasonUnknownClient},
			{"a client_id one character short", known.ClientID[:len(known.ClientID)-1], wrongSecret, oauth.ReasonUnknownClient},
			{"a client_id with characters never generated", "ecd_stg_" + strings.Repeat("0", 20), wrongSecret, oauth.ReasonUnknownClient},
			{"a known client_id hashed under another pepper", stale.ClientID, wrongSecret, oauth.ReasonInvalidSecret},
		} {
			steps = nil
			_, _, reason, err := e.svc.Authenticate(context.Background(), tc.clientID, tc.secret, e.clock.Now())
			if err != nil || reason != tc.reason {
				t.Fatalf("%s: reason %q, error %v; want %q", tc.name, reason, err, tc.reason)
			}
			if !slices.Equal(steps, []string{"lookup", "verify"}) {
				t.Errorf("%s: authentication did %v, want one lookup and one verify like every other client_id", tc.name, steps)
			}
		}
	})
}

// BenchmarkFinding09_RefusedAuthentication compares the refusal of a known
// client_id with a wrong secret with those of unknown ones: the same work,
// so the same time within the noise of the database round trip.
func BenchmarkFinding09_RefusedAuthentication(b *testing.B) {
	for _, d := range modelstest.Dialects() {
		e := newEnv(b, modelstest.Open(b, d))
		known, _ := e.create(b, e.demo.ID, "bench", "staging")
		ctx, now := context.Background(), e.clock.Now()
		for _, tc := range []struct{ name, clientID, reason string }{
			{"known_wrong_secret", known.ClientID, oauth.ReasonInvalidSecret},
			{"unknown_client_id", "ecd_stg_" + strings.Repeat("q", 20), oauth.ReasonUnknownClient},
			{"malformed_client_id", "nosuchclient", oauth.ReasonUnknownClient},
		} {
			b.Run(string(d)+"/"+tc.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, _, reason, err := e.svc.Authenticate(ctx, tc.clientID, wrongSecret, now); err != nil || reason != tc.reason {
						b.Fatalf("%q %v", reason, err)
					}
				}
			})
		}
	}
}
