package auth_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/agencies"
	"keyconsole/services/audit"
	"keyconsole/services/auth"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	db       *models.DB
	svc      *auth.Service
	agencies *agencies.Service
	audits   *models.AuditStore
	users    *models.UserStore
	clock    *clock
	agency   models.Agency
}

func setup(t *testing.T, db *models.DB) fixture {
	t.Helper()
	ctx := context.Background()
	clk := &clock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	audits := models.NewAuditStore(db)
	rec := audit.NewRecorder(db, audits, clk.Now)
	as := models.NewAgencyStore(db)
	ag := agencies.NewService(db, as, rec, clk.Now)
	users := models.NewUserStore(db)
	svc := auth.NewService(db, users, as, models.NewSessionStore(db), rec, auth.Config{
		Operators: []string{"okta:ops@platform.gov"}, IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour, Clock: clk.Now,
	})
	sys := audit.Actor{Type: audit.ActorSystem, ID: "test"}
	a, err := ag.Create(ctx, sys, audit.Origin{}, "demo-county", "Demo County")
	if err != nil {
		t.Fatal(err)
	}
	for g, r := range map[string]string{"admins": "admin", "reviewers": "reviewer"} {
		if _, err := ag.Map(ctx, sys, audit.Origin{}, a.ID, "okta", g, r); err != nil {
			t.Fatal(err)
		}
	}
	return fixture{db: db, svc: svc, agencies: ag, audits: audits, users: users, clock: clk, agency: a}
}

var okta = auth.ProviderInfo{ID: "okta", Kind: auth.KindOkta}

func lastEvent(t *testing.T, f fixture, agencyID int64) models.AuditEvent {
	t.Helper()
	ev, err := f.audits.Page(context.Background(), models.AuditFilter{AgencyID: agencyID}, 1)
	if err != nil || len(ev) != 1 {
		t.Fatalf("last event: %v %d", err, len(ev))
	}
	return ev[0]
}

func TestSignInProvisionsAndResolvesRoles(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := setup(t, db)
		ctx := context.Background()
		origin := audit.Origin{SourceIP: "127.0.0.1", RequestID: "r1"}
		pr, token, err := f.svc.SignIn(ctx, okta, auth.Claims{Subject: "00u1", Email: "pat@county.gov", Name: "Pat", Groups: []string{"reviewers", "admins", "other"}}, origin)
		if err != nil {
			t.Fatal(err)
		}
		if pr.RoleIn(f.agency.ID) != models.RoleAdmin {
			t.Fatalf("strongest role wins: got %q", pr.RoleIn(f.agency.ID))
		}
		if token == "" || pr.SessionID == token {
			t.Fatal("the session id stored must be a hash, not the token")
		}
		if ev := lastEvent(t, f, f.agency.ID); ev.Action != audit.ActionSignIn || ev.Outcome != audit.OutcomeSuccess || ev.SourceIP != "127.0.0.1" || ev.RequestID != "r1" {
			t.Fatalf("sign-in audit: %+v", ev)
		}
		// The same subject from another provider is another user; email alone identifies nobody.
		pr2, _, err := f.svc.SignIn(ctx, auth.ProviderInfo{ID: "azure", Kind: auth.KindAzure}, auth.Claims{Subject: "00u1", Email: "pat@county.gov"}, origin)
		var rf *auth.Refusal
		if !errors.As(err, &rf) || rf.Code != auth.RefusedNoAccess {
			t.Fatalf("azure user with no mapping: %v %+v", err, pr2)
		}
		// Roles are re-resolved at every sign-in.
		pr3, _, err := f.svc.SignIn(ctx, okta, auth.Claims{Subject: "00u1", Email: "pat@county.gov", Groups: []string{"reviewers"}}, origin)
		if err != nil {
			t.Fatal(err)
		}
		if pr3.User.ID != pr.User.ID || pr3.RoleIn(f.agency.ID) != models.RoleReviewer {
			t.Fatalf("re-sign-in: user %d role %q", pr3.User.ID, pr3.RoleIn(f.agency.ID))
		}
		if rep, err := audit.NewVerifier(f.audits).Verify(ctx, f.agency.ID); err != nil || !rep.Intact {
			t.Fatalf("chain: %+v %v", rep, err)
		}
	})
}

func TestNoMappingIsRefusedAndAudited(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := setup(t, db)
		_, token, err := f.svc.SignIn(context.Background(), okta, auth.Claims{Subject: "x", Email: "x@y.gov", Groups: []string{"nothing"}}, audit.Origin{})
		var rf *auth.Refusal
		if !errors.As(err, &rf) || rf.Code != auth.RefusedNoAccess || token != "" {
			t.Fatalf("want no_access refusal, got %v", err)
		}
		ev := lastEvent(t, f, models.PlatformAgencyID)
		if ev.Action != audit.ActionSignInRefused || ev.Reason != auth.RefusedNoAccess || ev.Outcome != audit.OutcomeDenied {
			t.Fatalf("refusal audit: %+v", ev)
		}
	})
}

func TestOperatorWithoutAgencySignsIn(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := setup(t, db)
		pr, _, err := f.svc.SignIn(context.Background(), okta, auth.Claims{Subject: "op", Email: "OPS@platform.gov", EmailVerified: true}, audit.Origin{})
		if err != nil {
			t.Fatal(err)
		}
		if !pr.IsOperator() || pr.RoleIn(f.agency.ID) != models.RoleViewer {
			t.Fatalf("operator: %v role %q", pr.IsOperator(), pr.RoleIn(f.agency.ID))
		}
	})
}

func TestSessionTimeoutsAndSignOut(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := setup(t, db)
		ctx := context.Background()
		claims := auth.Claims{Subject: "u", Email: "u@county.gov", Groups: []string{"admins"}}
		signIn := func() string {
			_, tok, err := f.svc.SignIn(ctx, okta, claims, audit.Origin{})
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		// Idle: activity keeps it alive, 30 minutes of silence ends it.
		tok := signIn()
		f.clock.Add(29 * time.Minute)
		if _, err := f.svc.Resolve(ctx, tok, audit.Origin{}); err != nil {
			t.Fatalf("active session refused: %v", err)
		}
		f.clock.Add(29 * time.Minute)
		if _, err := f.svc.Resolve(ctx, tok, audit.Origin{}); err != nil {
			t.Fatalf("session touched 29 minutes ago refused: %v", err)
		}
		f.clock.Add(30 * time.Minute)
		if _, err := f.svc.Resolve(ctx, tok, audit.Origin{}); !errors.Is(err, auth.ErrIdle) {
			t.Fatalf("want idle timeout, got %v", err)
		}
		if ev := lastEvent(t, f, f.agency.ID); ev.Action != audit.ActionSessionTimeout || ev.Reason != "idle_timeout" {
			t.Fatalf("timeout audit: %+v", ev)
		}
		if _, err := f.svc.Resolve(ctx, tok, audit.Origin{}); !errors.Is(err, auth.ErrNoSession) {
			t.Fatalf("ended session must stay ended, got %v", err)
		}
		// Absolute: even with activity, 12 hours is the end.
		tok = signIn()
		for i := 0; i < 25; i++ {
			f.clock.Add(29 * time.Minute)
			_, err := f.svc.Resolve(ctx, tok, audit.Origin{})
			if i < 24 && err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			if i == 24 && !errors.Is(err, auth.ErrExpired) {
				t.Fatalf("want absolute timeout after 12h05m, got %v", err)
			}
		}
		// Sign-out ends the session on the server.
		tok = signIn()
		pr, err := f.svc.Resolve(ctx, tok, audit.Origin{})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.svc.SignOut(ctx, pr, audit.Origin{}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Resolve(ctx, tok, audit.Origin{}); !errors.Is(err, auth.ErrNoSession) {
			t.Fatalf("signed-out token still works: %v", err)
		}
		// A user disabled in the console loses access on the next request.
		tok = signIn()
		u, err := f.users.ByIdentity(ctx, "okta", "u")
		if err != nil {
			t.Fatal(err)
		}
		now := f.clock.Now()
		u.DisabledAt = &now
		if err := f.users.Save(ctx, &u); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Resolve(ctx, tok, audit.Origin{}); !errors.Is(err, auth.ErrDisabled) {
			t.Fatalf("disabled user still resolves: %v", err)
		}
		if _, _, err := f.svc.SignIn(ctx, okta, claims, audit.Origin{}); err == nil {
			t.Fatal("disabled user signed in")
		}
		if rep, err := audit.NewVerifier(f.audits).Verify(ctx, f.agency.ID); err != nil || !rep.Intact {
			t.Fatalf("chain: %+v %v", rep, err)
		}
	})
}

func TestRecentAuthAndReplayedState(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := setup(t, db)
		ctx := context.Background()
		pr, _, err := f.svc.SignIn(ctx, okta, auth.Claims{Subject: "u", Groups: []string{"admins"}}, audit.Origin{})
		if err != nil {
			t.Fatal(err)
		}
		if !f.svc.Recent(pr) {
			t.Fatal("fresh sign-in must count as recent")
		}
		f.clock.Add(11 * time.Minute)
		if f.svc.Recent(pr) {
			t.Fatal("an 11-minute-old sign-in is not recent")
		}
		if err := f.svc.Reauthenticated(ctx, pr, auth.Claims{Subject: "someone-else"}, audit.Origin{}); err == nil {
			t.Fatal("re-authentication as another subject accepted")
		}
		if err := f.svc.Reauthenticated(ctx, pr, auth.Claims{Subject: "u", AuthTime: f.clock.Now()}, audit.Origin{}); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.StartAttempt(ctx, "h1", "okta"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.ConsumeAttempt(ctx, "h1", 10*time.Minute); err != nil {
			t.Fatalf("first use: %v", err)
		}
		if _, err := f.svc.ConsumeAttempt(ctx, "h1", 10*time.Minute); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("replay accepted: %v", err)
		}
		if err := f.svc.StartAttempt(ctx, "h2", "okta"); err != nil {
			t.Fatal(err)
		}
		f.clock.Add(11 * time.Minute)
		if _, err := f.svc.ConsumeAttempt(ctx, "h2", 10*time.Minute); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("stale attempt accepted: %v", err)
		}
	})
}

func TestConcurrentAuditWritesStayLinear(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := setup(t, db)
		ctx := context.Background()
		rec := audit.NewRecorder(db, f.audits, f.clock.Now)
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := 0; i < 40; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- rec.Record(ctx, audit.Event{AgencyID: f.agency.ID, Actor: audit.Actor{Type: audit.ActorSystem}, Action: "test.concurrent", Outcome: audit.OutcomeSuccess})
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		rep, err := audit.NewVerifier(f.audits).Verify(ctx, f.agency.ID)
		if err != nil || !rep.Intact || rep.Records != 43 {
			t.Fatalf("chain after concurrent writes: %+v %v", rep, err)
		}
	})
}
