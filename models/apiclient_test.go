package models_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
)

func newAgency(t *testing.T, db *models.DB, slug string) models.Agency {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	a := models.Agency{Slug: slug, Name: slug, CreatedAt: now, UpdatedAt: now}
	if err := models.NewAgencyStore(db).Create(context.Background(), &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func newCredential(agencyID int64, name, env, clientID, nonce string, now time.Time) *models.APICredential {
	return &models.APICredential{
		AgencyID: agencyID, Name: name, Environment: env, ClientID: clientID,
		SecretHash: bytes.Repeat([]byte{1}, 32), PepperID: "v1", SecretVersion: 1, CreateNonce: &nonce,
		CreatedByName: "Ada Admin", CreatedAt: now, UpdatedAt: now,
	}
}

func TestAPIClientStoreCreateAndRead(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		s := models.NewAPIClientStore(db)
		demo, other := newAgency(t, db, "demo-county"), newAgency(t, db, "other-county")
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

		c := newCredential(demo.ID, "sync", "staging", "ecd_stg_aaaaaaaaaaaaaaaaaaaa", "nonce-1-aaaaaaaaaaaa", now)
		if err := s.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			cred *models.APICredential
			want error
		}{
			{"same live name and environment", newCredential(demo.ID, "sync", "staging", "ecd_stg_bbbbbbbbbbbbbbbbbbbb", "nonce-2-aaaaaaaaaaaa", now), models.ErrConflict},
			{"same nonce", newCredential(demo.ID, "other", "staging", "ecd_stg_cccccccccccccccccccc", "nonce-1-aaaaaaaaaaaa", now), models.ErrConflict},
			{"same client id", newCredential(other.ID, "x", "staging", "ecd_stg_aaaaaaaaaaaaaaaaaaaa", "nonce-3-aaaaaaaaaaaa", now), models.ErrConflict},
			{"same name in production", newCredential(demo.ID, "sync", "production", "ecd_prd_dddddddddddddddddddd", "nonce-4-aaaaaaaaaaaa", now), nil},
			{"same name in another agency", newCredential(other.ID, "sync", "staging", "ecd_stg_eeeeeeeeeeeeeeeeeeee", "nonce-1-aaaaaaaaaaaa", now), nil},
		}
		for _, tc := range tests {
			err := s.Create(ctx, tc.cred)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
			}
		}

		got, err := s.Get(ctx, demo.ID, c.ID)
		if err != nil || got.ClientID != c.ClientID || !bytes.Equal(got.SecretHash, c.SecretHash) || !got.CreatedAt.Equal(now) {
			t.Fatalf("get: %+v %v", got, err)
		}
		if _, err := s.Get(ctx, other.ID, c.ID); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("another agency's get: %v, want ErrNotFound", err)
		}
		if _, err := s.GetForUpdate(ctx, other.ID, c.ID); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("another agency's get for update: %v, want ErrNotFound", err)
		}
		byNonce, err := s.ByNonce(ctx, demo.ID, "nonce-1-aaaaaaaaaaaa")
		if err != nil || byNonce.ID != c.ID {
			t.Fatalf("by nonce: %+v %v", byNonce, err)
		}
		auth, err := s.AuthByClientID(ctx, c.ClientID)
		if err != nil || auth.ID != c.ID || auth.AgencySlug != "demo-county" || auth.Environment != "staging" {
			t.Fatalf("by client id: %+v %v", auth, err)
		}
		if _, err := s.AuthByClientID(ctx, "ecd_stg_zzzzzzzzzzzzzzzzzzzz"); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("unknown client id: %v", err)
		}
		list, err := s.List(ctx, demo.ID)
		if err != nil || len(list) != 2 || list[0].Environment != "production" || list[1].Environment != "staging" {
			t.Fatalf("list: %d %v", len(list), err)
		}
	})
}

func TestAPIClientStoreSecretRevokeAndUse(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		s := models.NewAPIClientStore(db)
		demo, other := newAgency(t, db, "demo-county"), newAgency(t, db, "other-county")
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		c := newCredential(demo.ID, "sync", "staging", "ecd_stg_aaaaaaaaaaaaaaaaaaaa", "nonce-1-aaaaaaaaaaaa", now)
		if err := s.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
		newHash := bytes.Repeat([]byte{2}, 32)
		steps := []struct {
			name            string
			agency, version int64
			want            bool
		}{
			{"another agency", other.ID, 1, false},
			{"stale version", demo.ID, 7, false},
			{"current version", demo.ID, 1, true},
			{"same version again", demo.ID, 1, false},
		}
		for _, st := range steps {
			ok, err := s.ReplaceSecret(ctx, st.agency, c.ID, st.version, newHash, "v1", "Ada Admin", now.Add(time.Hour))
			if err != nil || ok != st.want {
				t.Fatalf("replace secret, %s: %v %v, want %v", st.name, ok, err, st.want)
			}
		}
		got, _ := s.Get(ctx, demo.ID, c.ID)
		if got.SecretVersion != 2 || !bytes.Equal(got.SecretHash, newHash) || got.RotatedAt == nil || !got.RotatedAt.Equal(now.Add(time.Hour)) || got.RotatedByName != "Ada Admin" {
			t.Fatalf("after replace: %+v", got)
		}

		if ok, err := s.Revoke(ctx, other.ID, c.ID, "Eve", now); err != nil || ok {
			t.Fatalf("another agency's revoke: %v %v", ok, err)
		}
		if ok, err := s.Revoke(ctx, demo.ID, c.ID, "Ada Admin", now.Add(2*time.Hour)); err != nil || !ok {
			t.Fatalf("revoke: %v %v", ok, err)
		}
		if ok, err := s.Revoke(ctx, demo.ID, c.ID, "Ada Admin", now.Add(3*time.Hour)); err != nil || ok {
			t.Fatalf("second revoke: %v %v", ok, err)
		}
		if ok, _ := s.ReplaceSecret(ctx, demo.ID, c.ID, 2, newHash, "v1", "Ada Admin", now); ok {
			t.Fatal("a revoked credential's secret was replaced")
		}
		// A revoked credential frees its name.
		if err := s.Create(ctx, newCredential(demo.ID, "sync", "staging", "ecd_stg_bbbbbbbbbbbbbbbbbbbb", "nonce-2-aaaaaaaaaaaa", now)); err != nil {
			t.Fatalf("reuse of a revoked credential's name: %v", err)
		}

		// Last use only ever moves forward, whatever order replicas flush in.
		t2, t1 := now.Add(10*time.Minute), now.Add(5*time.Minute)
		for _, at := range []time.Time{t2, t1} {
			if err := s.TouchLastUsed(ctx, map[int64]time.Time{c.ID: at}); err != nil {
				t.Fatal(err)
			}
		}
		got, _ = s.Get(ctx, demo.ID, c.ID)
		if got.LastUsedAt == nil || !got.LastUsedAt.Equal(t2) {
			t.Fatalf("last used = %v, want %v", got.LastUsedAt, t2)
		}
	})
}

func TestAPIClientStoreExpiryAndHistory(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		s := models.NewAPIClientStore(db)
		demo := newAgency(t, db, "demo-county")
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		past, future := now.Add(-time.Hour), now.Add(time.Hour)
		expiring := newCredential(demo.ID, "a", "staging", "ecd_stg_aaaaaaaaaaaaaaaaaaaa", "nonce-1-aaaaaaaaaaaa", now)
		expiring.ExpiresAt = &past
		later := newCredential(demo.ID, "b", "staging", "ecd_stg_bbbbbbbbbbbbbbbbbbbb", "nonce-2-aaaaaaaaaaaa", now)
		later.ExpiresAt = &future
		for _, c := range []*models.APICredential{expiring, later} {
			if err := s.Create(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		due, err := s.DueForExpiry(ctx, now, 10)
		if err != nil || len(due) != 1 || due[0].ID != expiring.ID {
			t.Fatalf("due: %v %v", due, err)
		}
		if !due[0].Expired(now) || later.Expired(now) {
			t.Fatal("Expired disagrees with the dates")
		}
		for i, want := range []bool{true, false} {
			ok, err := s.MarkExpired(ctx, expiring.ID, now)
			if err != nil || ok != want {
				t.Fatalf("mark expired #%d: %v %v", i+1, ok, err)
			}
		}
		if due, _ := s.DueForExpiry(ctx, now, 10); len(due) != 0 {
			t.Fatalf("still due after marking: %d", len(due))
		}

		for i, ev := range []models.AuditEvent{
			{TargetType: "api_credential", TargetID: expiring.ClientID, Action: "api_credential.create"},
			{TargetType: "api_credential", TargetID: later.ClientID, Action: "api_credential.create"},
			{TargetType: "ssh_key", TargetID: expiring.ClientID, Action: "ssh_key.upload"},
			{TargetType: "api_credential", TargetName: expiring.ClientID, TargetID: "other", Action: "api_credential.create"},
		} {
			ev.AgencyID, ev.Seq, ev.OccurredAt, ev.ActorType, ev.Outcome = demo.ID, int64(i+1), now, "user", "success"
			if err := db.Gorm.Create(&ev).Error; err != nil {
				t.Fatal(err)
			}
		}
		hist, err := s.History(ctx, demo.ID, "api_credential", expiring.ClientID, 0, 10)
		if err != nil || len(hist) != 1 || hist[0].TargetID != expiring.ClientID || hist[0].Action != "api_credential.create" {
			t.Fatalf("history: %+v %v", hist, err)
		}
		if hist, _ := s.History(ctx, demo.ID+1, "api_credential", expiring.ClientID, 0, 10); len(hist) != 0 {
			t.Fatal("history crossed agencies")
		}
	})
}

func TestTokenKeyStore(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		s := models.NewTokenKeyStore(db)
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		first := models.TokenSigningKey{KID: "kid-1", Status: models.TokenKeyActive, CreatedAt: now, ActivatesAt: now, UpdatedAt: now}
		if err := s.Insert(ctx, &first); err != nil {
			t.Fatal(err)
		}
		second := models.TokenSigningKey{KID: "kid-2", Status: models.TokenKeyActive, CreatedAt: now.Add(time.Hour), ActivatesAt: now.Add(time.Hour), UpdatedAt: now}
		if err := s.Insert(ctx, &second); !errors.Is(err, models.ErrConflict) {
			t.Fatalf("a second active key: %v, want ErrConflict", err)
		}
		err := db.Tx(ctx, func(ctx context.Context) error {
			if err := models.NewAPIClientStore(db).LockPlatformKeys(ctx); err != nil {
				return err
			}
			if err := s.Retire(ctx, "kid-1", now.Add(time.Hour), now.Add(2*time.Hour), now); err != nil {
				return err
			}
			return s.Insert(ctx, &second)
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := models.NewAPIClientStore(db).LockPlatformKeys(ctx); err == nil {
			t.Fatal("the platform key lock was taken outside a transaction")
		}
		if err := s.Retire(ctx, "kid-1", now, now, now); !errors.Is(err, models.ErrConflict) {
			t.Fatalf("retiring a retired key: %v", err)
		}
		live, err := s.Live(ctx)
		if err != nil || len(live) != 2 || live[0].KID != "kid-2" || live[1].Status != models.TokenKeyRetired ||
			live[1].NotAfter == nil || !live[1].NotAfter.Equal(now.Add(time.Hour)) || !live[1].PublishUntil.Equal(now.Add(2*time.Hour)) {
			t.Fatalf("live: %+v %v", live, err)
		}
		for i, want := range []bool{true, false} {
			if ok, err := s.Expire(ctx, "kid-1", now); err != nil || ok != want {
				t.Fatalf("expire #%d: %v %v", i+1, ok, err)
			}
		}
		if ok, _ := s.Expire(ctx, "kid-2", now); ok {
			t.Fatal("the active key was expired")
		}
		live, _ = s.Live(ctx)
		all, _ := s.All(ctx)
		if len(live) != 1 || len(all) != 2 {
			t.Fatalf("live %d, all %d", len(live), len(all))
		}
	})
}
