package sshkeys

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
)

// TestFinding10_KeyActiveInAnotherAgencyRevealsNothing: an upload answers
// the same whether or not another agency uses the key (it is accepted, as a
// key nobody uses would be); within one agency a duplicate is still refused,
// on the same account and, with the advice to use a separate key pair, on
// its other environment. Each agency's copy logs in to its own account only,
// lives and dies on its own, and an offer of a key another agency uses is
// audited like an unknown key.
func TestFinding10_KeyActiveInAnotherAgencyRevealsNothing(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		shared, betaOnly, stranger := newGoKey(t, "shared"), newGoKey(t, "beta-only"), newGoKey(t, "stranger")
		onBeta := f.upload(t, f.betaProd, shared.line, nil)
		f.upload(t, f.betaProd, betaOnly.line, nil)

		onAlpha, err := f.svc.Upload(ctx, f.admin, audit.Origin{}, f.alpha.ID, f.alphaProd.ID, shared.line, nil)
		if err != nil {
			t.Fatalf("a key another agency uses was refused, which tells this agency it is in use: %v", err)
		}
		if onAlpha.ID == onBeta.ID || onAlpha.AgencyID != f.alpha.ID || onAlpha.Fingerprint != onBeta.Fingerprint {
			t.Fatalf("alpha's copy %+v", onAlpha)
		}

		// Within the agency a duplicate is refused, as before.
		for _, tc := range []struct {
			account models.SFTPAccount
			want    []string
		}{
			{f.alphaProd, []string{"already active on the SFTP account alpha-prod", "upload a new key first"}},
			{f.alphaStg, []string{"already active on the SFTP account alpha-prod", "separate key pair for alpha-stg"}},
		} {
			_, err := f.svc.Upload(ctx, f.admin, audit.Origin{}, f.alpha.ID, tc.account.ID, shared.line, nil)
			var re *RefusalError
			if !errors.As(err, &re) || re.Code != CodeDuplicate {
				t.Fatalf("duplicate on %s: %v, want a duplicate refusal", tc.account.Name, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(re.Message, w) {
					t.Errorf("duplicate on %s: %q lacks %q", tc.account.Name, re.Message, w)
				}
			}
			if strings.Contains(re.Message, "beta") {
				t.Errorf("the refusal names another agency: %q", re.Message)
			}
		}

		// Each copy opens its own account and nothing else.
		a := newAuthenticator(t, f, AuthConfig{})
		for _, tc := range []struct {
			account string
			want    models.SSHKey
		}{{"alpha-prod", onAlpha}, {"beta-prod", onBeta}} {
			l, err := a.Authenticate(ctx, tc.account, shared.signer.PublicKey(), "192.0.2.30:40000")
			if err != nil || l.KeyID != tc.want.ID || l.AgencyID != tc.want.AgencyID || l.Account != tc.account {
				t.Fatalf("login of %s with the shared key: %+v, %v", tc.account, l, err)
			}
		}

		// An offer of beta's key to alpha's account is recorded in alpha's
		// chain exactly like a key nobody has.
		for i, k := range []goKey{betaOnly, stranger} {
			if _, err := a.Authenticate(ctx, "alpha-prod", k.signer.PublicKey(), fmt.Sprintf("192.0.2.31:%d", 40000+i)); !errors.Is(err, ErrRefused) ||
				!strings.HasSuffix(err.Error(), ReasonUnknownKey) {
				t.Fatalf("offer %d to alpha-prod: %v, want %s", i, err, ReasonUnknownKey)
			}
		}
		a.fails.Flush(ctx)
		// The first refusal is written at once and the repeat summarised:
		// together they count both offers, every one as an unknown key.
		offers := 0
		for _, e := range f.events(t, audit.ActionSFTPLoginRefused) {
			if e.AgencyID != f.alpha.ID {
				continue
			}
			if e.Reason != ReasonUnknownKey {
				t.Errorf("alpha's refusal record %+v, want %s", e, ReasonUnknownKey)
			}
			for _, kv := range audit.DecodeDetails(e.Details) {
				if kv[0] == "count" {
					n, _ := strconv.Atoi(kv[1])
					offers += n
				}
			}
		}
		if offers != 2 {
			t.Errorf("alpha's refusal records count %d offers, want 2", offers)
		}

		// Revoking alpha's copy leaves beta's working, and the reverse.
		if err := f.svc.Revoke(ctx, f.admin, audit.Origin{}, f.alpha.ID, onAlpha.ID, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Authenticate(ctx, "alpha-prod", shared.signer.PublicKey(), "192.0.2.32:40000"); !errors.Is(err, ErrRefused) {
			t.Fatalf("alpha's revoked copy still logs in: %v", err)
		}
		if _, err := a.Authenticate(ctx, "beta-prod", shared.signer.PublicKey(), "192.0.2.32:40001"); err != nil {
			t.Fatalf("beta's copy stopped working when alpha revoked its own: %v", err)
		}
		if ok, err := a.StillUsable(ctx, []int64{onAlpha.ID, onBeta.ID}); err != nil || ok[0] || !ok[1] {
			t.Fatalf("open sessions of the two copies: %v, %v; want alpha's ended and beta's kept", ok, err)
		}
	})
}
