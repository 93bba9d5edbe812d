package auth_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
	"keyconsole/services/auth"
)

// signInTogether runs n sign-ins of the same claims at once (released
// together by one channel) and returns each one's error.
func signInTogether(f fixture, n int, c auth.Claims) ([]auth.Principal, []error) {
	prs := make([]auth.Principal, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			prs[i], _, errs[i] = f.svc.SignIn(context.Background(), okta, c, audit.Origin{SourceIP: "127.0.0.1"})
		}()
	}
	close(start)
	wg.Wait()
	return prs, errs
}

func countRows(t *testing.T, db *models.DB, table, where string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.Gorm.Table(table).Where(where, args...).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFault02_ConcurrentFirstSignInOneUser: the first sign-ins of one person
// arriving together (a double-clicked button, several tabs, two replicas)
// all succeed, with one user row, that person's groups once, a session each
// and an intact audit chain. Sign-ins refused for lack of a mapping arrive
// as refusals, never as an internal error, and leave one user row too.
func TestFault02_ConcurrentFirstSignInOneUser(t *testing.T) {
	const n = 40
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := setup(t, db)
		ctx := context.Background()
		claims := auth.Claims{Subject: "00u-first", Email: "first@county.gov", Name: "First", Groups: []string{"admins", "reviewers", "other"}}
		prs, errs := signInTogether(f, n, claims)
		for i, err := range errs {
			if err != nil {
				t.Fatalf("sign-in %d of %d: %v", i+1, n, err)
			}
		}
		if got := countRows(t, db, "users", "provider = ? AND subject = ?", "okta", "00u-first"); got != 1 {
			t.Fatalf("user rows: %d, want 1", got)
		}
		u, err := f.users.ByIdentity(ctx, "okta", "00u-first")
		if err != nil {
			t.Fatal(err)
		}
		for i, pr := range prs {
			if pr.User.ID != u.ID || pr.RoleIn(f.agency.ID) != models.RoleAdmin {
				t.Fatalf("sign-in %d: user %d role %q, want user %d admin", i+1, pr.User.ID, pr.RoleIn(f.agency.ID), u.ID)
			}
		}
		if u.LastSignInAt == nil || u.Email != "first@county.gov" || u.Name != "First" {
			t.Fatalf("user record: %+v", u)
		}
		groups, err := f.users.Groups(ctx, u.ID)
		if err != nil || len(groups) != 3 {
			t.Fatalf("groups: %v %v", groups, err)
		}
		if got := countRows(t, db, "sessions", "user_id = ? AND revoked_at IS NULL", u.ID); got != n {
			t.Fatalf("live sessions: %d, want %d", got, n)
		}
		if got := countRows(t, db, "audit_events", "agency_id = ? AND action = ?", f.agency.ID, audit.ActionSignIn); got != n {
			t.Fatalf("sign-in records: %d, want %d", got, n)
		}
		if rep, err := audit.NewVerifier(f.audits).Verify(ctx, f.agency.ID); err != nil || !rep.Intact {
			t.Fatalf("chain: %+v %v", rep, err)
		}

		// No mapping: every one is refused as such (or paused after the
		// failures add up), none fails, and one user row is kept.
		_, errs = signInTogether(f, n, auth.Claims{Subject: "00u-unmapped", Groups: []string{"nobody"}})
		for i, err := range errs {
			var rf *auth.Refusal
			if !errors.As(err, &rf) || (rf.Code != auth.RefusedNoAccess && rf.Code != auth.RefusedThrottled) {
				t.Fatalf("unmapped sign-in %d of %d: %v", i+1, n, err)
			}
		}
		if got := countRows(t, db, "users", "provider = ? AND subject = ?", "okta", "00u-unmapped"); got != 1 {
			t.Fatalf("unmapped user rows: %d, want 1", got)
		}
		if rep, err := audit.NewVerifier(f.audits).Verify(ctx, models.PlatformAgencyID); err != nil || !rep.Intact {
			t.Fatalf("platform chain: %+v %v", rep, err)
		}
	})
}

// TestFault02_SignInDuringDeactivationStaysDeactivated: a user deactivated
// while sign-ins of theirs are under way stays deactivated, and none of
// those sign-ins keeps a live session: each either finishes before the
// deactivation (which then ends its session) or sees it and is refused.
func TestFault02_SignInDuringDeactivationStaysDeactivated(t *testing.T) {
	const n, rounds = 40, 5
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := setup(t, db)
		ctx := context.Background()
		sessions := models.NewSessionStore(db)
		claims := auth.Claims{Subject: "00u-leaver", Email: "leaver@county.gov", Groups: []string{"admins"}}
		if _, _, err := f.svc.SignIn(ctx, okta, claims, audit.Origin{}); err != nil {
			t.Fatal(err)
		}
		u, err := f.users.ByIdentity(ctx, "okta", "00u-leaver")
		if err != nil {
			t.Fatal(err)
		}
		for r := range rounds {
			// Re-enabled for the round, then deactivated while n sign-ins run,
			// the way the console deactivates: the flag and the sessions in
			// one transaction.
			enable := func() error {
				return db.Tx(ctx, func(ctx context.Context) error {
					cur, err := f.users.ByID(ctx, u.ID)
					if err != nil {
						return err
					}
					cur.DisabledAt = nil
					return f.users.Save(ctx, &cur)
				})
			}
			if err := enable(); err != nil {
				t.Fatal(err)
			}
			start := make(chan struct{})
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, _, errs[i] = f.svc.SignIn(ctx, okta, claims, audit.Origin{})
				}()
			}
			var disableErr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				disableErr = db.Tx(ctx, func(ctx context.Context) error {
					cur, err := f.users.ByID(ctx, u.ID)
					if err != nil {
						return err
					}
					now := f.clock.Now()
					cur.DisabledAt = &now
					if err := f.users.Save(ctx, &cur); err != nil {
						return err
					}
					_, err = sessions.RevokeUser(ctx, u.ID, "user_disabled", now)
					return err
				})
			}()
			close(start)
			wg.Wait()
			if disableErr != nil {
				t.Fatal(disableErr)
			}
			for i, err := range errs {
				var rf *auth.Refusal
				if err != nil && (!errors.As(err, &rf) || (rf.Code != auth.RefusedDisabled && rf.Code != auth.RefusedThrottled)) {
					t.Fatalf("round %d: sign-in %d: %v", r+1, i+1, err)
				}
			}
			got, err := f.users.ByID(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Disabled() {
				t.Fatalf("round %d: a sign-in undid the deactivation", r+1)
			}
			if live := countRows(t, db, "sessions", "user_id = ? AND revoked_at IS NULL", u.ID); live != 0 {
				t.Fatalf("round %d: %d live sessions of a deactivated user", r+1, live)
			}
			// Refused sign-ins count as failures; clear them for the next round.
			if err := db.Gorm.Exec("DELETE FROM sign_in_failures").Error; err != nil {
				t.Fatal(err)
			}
		}
	})
}
