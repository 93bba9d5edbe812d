package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
	"keyconsole/services/auth"
)

func refusalCode(err error) string {
	var rf *auth.Refusal
	if errors.As(err, &rf) {
		return rf.Code
	}
	return ""
}

// TestFailedSignInsPauseOnlyThatAccount: five refused sign-ins of one
// account within 15 minutes pause that account (even with a now valid
// group), never another; the pause lifts once the failures age out, and a
// success clears the count.
func TestFailedSignInsPauseOnlyThatAccount(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := setup(t, db)
		ctx := context.Background()
		origin := audit.Origin{SourceIP: "127.0.0.1"}
		bad := auth.Claims{Subject: "00u-mallory", Email: "m@county.gov", Groups: []string{"unmapped"}}
		good := bad
		good.Groups = []string{"admins"}
		other := auth.Claims{Subject: "00u-pat", Email: "pat@county.gov", Groups: []string{"admins"}}

		for i := 1; i <= auth.DefaultMaxFailures; i++ {
			if _, _, err := f.svc.SignIn(ctx, okta, bad, origin); refusalCode(err) != auth.RefusedNoAccess {
				t.Fatalf("failure %d: %v", i, err)
			}
			f.clock.Add(time.Minute)
		}
		_, token, err := f.svc.SignIn(ctx, okta, good, origin)
		if refusalCode(err) != auth.RefusedThrottled || token != "" {
			t.Fatalf("sixth attempt with a valid group: %v, token %q", err, token)
		}
		if !strings.Contains(err.Error(), "paused until") || !strings.Contains(err.Error(), "other accounts are not affected") {
			t.Fatalf("pause message: %q", err.Error())
		}
		ev := lastEvent(t, f, models.PlatformAgencyID)
		if ev.Action != audit.ActionSignInRefused || ev.Reason != auth.RefusedThrottled || ev.Outcome != audit.OutcomeDenied {
			t.Fatalf("pause audit: %+v", ev)
		}
		// Another account signs in at once, from the same address.
		if _, _, err := f.svc.SignIn(ctx, okta, other, origin); err != nil {
			t.Fatalf("another account: %v", err)
		}
		// The same subject at another provider is another account.
		if _, _, err := f.svc.SignIn(ctx, auth.ProviderInfo{ID: "azure", Kind: auth.KindAzure}, bad, origin); refusalCode(err) != auth.RefusedNoAccess {
			t.Fatalf("same subject at another provider: %v", err)
		}
		// Refused attempts while paused do not extend the pause: it ends 15
		// minutes after the first of the five failures.
		f.clock.Add(9 * time.Minute) // 14 minutes after the first failure
		if _, _, err := f.svc.SignIn(ctx, okta, good, origin); refusalCode(err) != auth.RefusedThrottled {
			t.Fatalf("still paused at 14 minutes: %v", err)
		}
		f.clock.Add(time.Minute + time.Second)
		if _, _, err := f.svc.SignIn(ctx, okta, good, origin); err != nil {
			t.Fatalf("after the window: %v", err)
		}
		// The success cleared the count: four new failures do not pause.
		for i := 0; i < auth.DefaultMaxFailures-1; i++ {
			if _, _, err := f.svc.SignIn(ctx, okta, bad, origin); refusalCode(err) != auth.RefusedNoAccess {
				t.Fatalf("failure after success %d: %v", i, err)
			}
		}
		if _, _, err := f.svc.SignIn(ctx, okta, good, origin); err != nil {
			t.Fatalf("four failures after a success must not pause: %v", err)
		}
		if rep, err := audit.NewVerifier(f.audits).Verify(ctx, models.PlatformAgencyID); err != nil || !rep.Intact {
			t.Fatalf("chain: %+v %v", rep, err)
		}
	})
}

// TestRefusalsWithASubjectCount: refusals the web layer records for a known
// subject (wrong domain, nonce mismatch ...) count towards the pause;
// refusals without a subject count against nobody.
func TestRefusalsWithASubjectCount(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := setup(t, db)
		ctx := context.Background()
		for i := 0; i < 50; i++ {
			if err := f.svc.RecordRefusal(ctx, "okta", auth.RefusedState, "", audit.Origin{}); err != nil {
				t.Fatal(err)
			}
		}
		good := auth.Claims{Subject: "00u-ann", Email: "ann@county.gov", Groups: []string{"admins"}}
		if _, _, err := f.svc.SignIn(ctx, okta, good, audit.Origin{}); err != nil {
			t.Fatalf("refusals without a subject paused an account: %v", err)
		}
		for i := 0; i < auth.DefaultMaxFailures; i++ {
			if err := f.svc.RecordRefusal(ctx, "okta", auth.RefusedDomain, good.Subject, audit.Origin{}); err != nil {
				t.Fatal(err)
			}
		}
		ev := lastEvent(t, f, models.PlatformAgencyID)
		if ev.Reason != auth.RefusedDomain || !strings.Contains(ev.Details, "paused_until") {
			t.Fatalf("fifth refusal audit: %+v", ev)
		}
		if _, _, err := f.svc.SignIn(ctx, okta, good, audit.Origin{}); refusalCode(err) != auth.RefusedThrottled {
			t.Fatalf("after five refusals: %v", err)
		}
	})
}

// TestReauthenticationOfAPausedAccountIsRefused: a signed-in user whose
// account is paused cannot refresh the recent sign-in either.
func TestReauthenticationOfAPausedAccountIsRefused(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := setup(t, db)
		ctx := context.Background()
		c := auth.Claims{Subject: "00u-rex", Email: "rex@county.gov", Groups: []string{"admins"}}
		pr, _, err := f.svc.SignIn(ctx, okta, c, audit.Origin{})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < auth.DefaultMaxFailures; i++ {
			if err := f.svc.RecordRefusal(ctx, "okta", auth.RefusedNonce, c.Subject, audit.Origin{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.svc.Reauthenticated(ctx, pr, c, audit.Origin{}); refusalCode(err) != auth.RefusedThrottled {
			t.Fatalf("reauthentication of a paused account: %v", err)
		}
	})
}
