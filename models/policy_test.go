package models_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
)

func TestPolicyStore(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		s := models.NewPolicyStore(db)
		demo, other := policyAgency(t, db, "policy-demo"), policyAgency(t, db, "policy-other")
		if _, err := s.Get(ctx, demo.ID); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("no policy yet: err = %v", err)
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		uid := int64(7)
		p := models.AgencyPolicy{AgencyID: demo.ID, APICredentialMaxAgeDays: 365, SSHKeyMaxAgeDays: 365, WebhookSecretMaxAgeDays: 365,
			DueSoonDays: 14, UnusedDays: 90, MinRSABits: 3072, IdPWarningDays: 30, UpdatedByUserID: &uid, CreatedAt: now, UpdatedAt: now}
		if err := s.Put(ctx, &p); err != nil {
			t.Fatal(err)
		}
		later := now.Add(time.Hour)
		p.APICredentialMaxAgeDays, p.MinRSABits, p.UpdatedAt = 90, 2048, later
		if err := s.Put(ctx, &p); err != nil {
			t.Fatalf("replace: %v", err)
		}
		err := db.Tx(ctx, func(ctx context.Context) error {
			got, err := s.GetForUpdate(ctx, demo.ID)
			if err != nil {
				return err
			}
			if got.APICredentialMaxAgeDays != 90 || got.MinRSABits != 2048 || got.SSHKeyMaxAgeDays != 365 || !got.UpdatedAt.Equal(later) || !got.CreatedAt.Equal(now) {
				t.Errorf("stored %+v", got)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, other.ID); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("another agency has the policy: %v", err)
		}

		// IdP secret expiries: one per agency and provider.
		exp := now.AddDate(1, 0, 0)
		e := models.IdPSecretExpiry{AgencyID: demo.ID, Provider: "azure", ExpiresAt: exp, Note: "prod app", CreatedAt: now, UpdatedAt: now}
		if err := s.PutIdPSecret(ctx, &e); err != nil {
			t.Fatal(err)
		}
		e2 := models.IdPSecretExpiry{AgencyID: demo.ID, Provider: "azure", ExpiresAt: exp.AddDate(0, 6, 0), CreatedAt: later, UpdatedAt: later}
		if err := s.PutIdPSecret(ctx, &e2); err != nil {
			t.Fatal(err)
		}
		if e2.ID != e.ID || !e2.CreatedAt.Equal(now) || !e2.ExpiresAt.Equal(exp.AddDate(0, 6, 0)) || e2.Note != "" {
			t.Errorf("replaced record %+v (first id %d)", e2, e.ID)
		}
		o := models.IdPSecretExpiry{AgencyID: other.ID, Provider: "azure", ExpiresAt: exp, CreatedAt: now, UpdatedAt: now}
		if err := s.PutIdPSecret(ctx, &o); err != nil {
			t.Fatal(err)
		}
		list, err := s.IdPSecrets(ctx, demo.ID)
		if err != nil || len(list) != 1 || list[0].ID != e.ID {
			t.Fatalf("demo's records: %+v %v", list, err)
		}
		if err := s.DeleteIdPSecret(ctx, demo.ID, "azure"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteIdPSecret(ctx, demo.ID, "azure"); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if _, err := s.IdPSecret(ctx, other.ID, "azure"); err != nil {
			t.Fatalf("another agency's record went with it: %v", err)
		}
	})
}

func TestAuditQueriesOfThePersonnelReview(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		s := models.NewPolicyStore(db)
		audits := models.NewAuditStore(db)
		demo, other := policyAgency(t, db, "touch-demo"), policyAgency(t, db, "touch-other")
		base := time.Now().UTC().Truncate(time.Microsecond)
		seq := map[int64]int64{}
		add := func(agency int64, actorType, actorID, action, targetType, targetID, outcome, details string, at time.Time) {
			t.Helper()
			err := db.Tx(ctx, func(ctx context.Context) error {
				h, err := audits.LockHead(ctx, agency, "genesis", at)
				if err != nil {
					return err
				}
				seq[agency] = h.Seq + 1
				return audits.Append(ctx, &models.AuditEvent{AgencyID: agency, Seq: h.Seq + 1, OccurredAt: at, ActorType: actorType, ActorID: actorID, Action: action,
					TargetType: targetType, TargetID: targetID, TargetName: "name-" + targetID, Outcome: outcome, Details: details, PrevHash: h.Hash, Hash: action + at.String()})
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		add(demo.ID, "user", "5", "api_credential.create", "api_credential", "ecd_stg_a", "success", "", base)
		add(demo.ID, "user", "5", "webhook.secret_reveal", "webhook_endpoint", "3", "success", "", base.Add(time.Minute))
		add(demo.ID, "user", "5", "webhook.secret_reveal", "webhook_endpoint", "3", "success", `{"operation":"abc123"}`, base.Add(2*time.Minute))
		add(demo.ID, "user", "5", "webhook.secret_reveal", "webhook_endpoint", "3", "failure", "", base.Add(3*time.Minute))
		add(demo.ID, "user", "55", "ssh_key.upload", "ssh_key", "9", "success", `{"operation":"abc1234"}`, base)
		add(demo.ID, "api_client", "5", "ssh_key.upload", "ssh_key", "9", "success", "", base)
		add(demo.ID, "user", "5", "sftp_account.create", "sftp_account", "1", "success", "", base)
		add(other.ID, "user", "5", "api_credential.create", "api_credential", "ecd_stg_b", "success", `{"operation":"abc123"}`, base)

		got, err := s.TouchesByUser(ctx, demo.ID, 5, []string{"api_credential", "ssh_key", "webhook_endpoint"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("touches = %+v, want the credential and the endpoint", got)
		}
		if got[0].TargetID != "ecd_stg_a" || got[0].Count != 1 || got[1].TargetID != "3" || got[1].Count != 2 || !got[1].LastAt.Equal(base.Add(2*time.Minute)) {
			t.Errorf("touches = %+v", got)
		}
		if none, err := s.TouchesByUser(ctx, demo.ID, 5, nil); err != nil || len(none) != 0 {
			t.Errorf("no target types: %v %v", none, err)
		}

		evs, err := s.OperationEvents(ctx, demo.ID, "abc123")
		if err != nil || len(evs) != 1 || evs[0].Action != "webhook.secret_reveal" {
			t.Fatalf("operation events = %+v, %v (another agency's and a longer id must not match)", evs, err)
		}
		for _, op := range []string{"", "abc%", "nope"} {
			if _, err := s.OperationEvents(ctx, demo.ID, op); !errors.Is(err, models.ErrNotFound) {
				t.Errorf("operation %q: err = %v, want not found", op, err)
			}
		}
	})
}

func policyAgency(t *testing.T, db *models.DB, slug string) models.Agency {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	a := models.Agency{Slug: slug, Name: slug, CreatedAt: now, UpdatedAt: now}
	if err := models.NewAgencyStore(db).Create(context.Background(), &a); err != nil {
		t.Fatal(err)
	}
	return a
}
