package auth_test

import (
	"context"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
	"keyconsole/services/auth"
)

// TestFinding04_ReauthNeedsAuthTimeNeverInFuture: the re-authentication
// round trip sends max_age, so its ID token must carry auth_time (OIDC Core
// 3.1.2.1); an auth_time beyond the allowed clock skew in the future is
// refused, one within it is stored as now; a refusal leaves the session's
// sign-in time as it was.
func TestFinding04_ReauthNeedsAuthTimeNeverInFuture(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := setup(t, db)
		ctx := context.Background()
		sessions := models.NewSessionStore(db)
		_, tok, err := f.svc.SignIn(ctx, okta, auth.Claims{Subject: "u", Groups: []string{"admins"}}, audit.Origin{})
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Add(11 * time.Minute)
		pr, err := f.svc.Resolve(ctx, tok, audit.Origin{})
		if err != nil {
			t.Fatal(err)
		}
		stale := pr.AuthTime
		authTime := func() time.Time {
			t.Helper()
			s, err := sessions.ByID(ctx, pr.SessionID)
			if err != nil {
				t.Fatal(err)
			}
			return s.AuthTime.UTC()
		}
		for name, c := range map[string]auth.Claims{
			"no auth_time":         {Subject: "u"},
			"auth_time in 10 min":  {Subject: "u", AuthTime: f.clock.Now().Add(10 * time.Minute)},
			"auth_time in 3 min":   {Subject: "u", AuthTime: f.clock.Now().Add(3 * time.Minute)},
			"auth_time 11 min ago": {Subject: "u", AuthTime: f.clock.Now().Add(-11 * time.Minute)},
		} {
			if err := f.svc.Reauthenticated(ctx, pr, c, audit.Origin{}); refusalCode(err) != auth.RefusedClaims {
				t.Errorf("%s: want a bad_claims refusal, got %v", name, err)
			}
			if at := authTime(); !at.Equal(stale) {
				t.Fatalf("%s: refused re-authentication stored auth_time %v", name, at)
			}
		}
		// A little ahead (clock skew): accepted, stored as now, never later.
		if err := f.svc.Reauthenticated(ctx, pr, auth.Claims{Subject: "u", AuthTime: f.clock.Now().Add(30 * time.Second)}, audit.Origin{}); err != nil {
			t.Fatalf("auth_time within the clock skew: %v", err)
		}
		if at := authTime(); at.After(f.clock.Now()) {
			t.Fatalf("stored auth_time %v is after now %v", at, f.clock.Now())
		}
		// Just now: accepted as is.
		f.clock.Add(time.Minute)
		now := f.clock.Now().Truncate(time.Second)
		if err := f.svc.Reauthenticated(ctx, pr, auth.Claims{Subject: "u", AuthTime: now}, audit.Origin{}); err != nil {
			t.Fatal(err)
		}
		if at := authTime(); !at.Equal(now) {
			t.Fatalf("stored auth_time %v, want %v", at, now)
		}
		// A first sign-in never stores a future auth_time either.
		pr2, _, err := f.svc.SignIn(ctx, okta, auth.Claims{Subject: "v", Groups: []string{"admins"}, AuthTime: f.clock.Now().Add(30 * time.Second)}, audit.Origin{})
		if err != nil || pr2.AuthTime.After(f.clock.Now()) {
			t.Fatalf("sign-in with auth_time in the skew: %v %v", pr2.AuthTime, err)
		}
		if _, _, err := f.svc.SignIn(ctx, okta, auth.Claims{Subject: "v", Groups: []string{"admins"}, AuthTime: f.clock.Now().Add(time.Hour)}, audit.Origin{}); refusalCode(err) != auth.RefusedClaims {
			t.Fatalf("sign-in with auth_time an hour ahead: %v", err)
		}
	})
}
