package apiclients_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/apiclients"
	"keyconsole/services/audit"
	"keyconsole/services/oauth"
	"keyconsole/services/secrets"
)

const activationDelay = 3 * time.Minute

type keyReplica struct {
	env
	iss  *oauth.Issuer
	keys *apiclients.KeyManager
}

func keyReplicaOf(t testing.TB, db *models.DB, clk *clock) keyReplica {
	t.Helper()
	e := replica(t, db, clk)
	iss, err := oauth.NewIssuer(oauth.IssuerConfig{Issuer: "https://keys.example.gov", Audience: "https://keys.example.gov/api", Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	km := apiclients.NewKeyManager(apiclients.KeyConfig{
		DB: db, Store: models.NewTokenKeyStore(db), Locker: e.store, Secrets: e.secrets, Audit: e.rec,
		Issuer: iss, ActivationDelay: activationDelay, Clock: clk.Now,
	})
	return keyReplica{env: e, iss: iss, keys: km}
}

func jwksKIDs(t testing.TB, iss *oauth.Issuer) []string {
	t.Helper()
	var set oauth.JWKSet
	if err := json.Unmarshal(iss.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	slices.Sort(kids)
	return kids
}

func sorted(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func issueKID(t testing.TB, iss *oauth.Issuer) (string, string) {
	t.Helper()
	tok, _, _, err := iss.Issue(oauth.Claims{ClientID: "ecd_stg_aaaaaaaaaaaaaaaaaaaa", Agency: "demo-county", Environment: "staging"})
	if err != nil {
		t.Fatalf("issue: %v", err)
	}
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, &jwt.RegisteredClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := parsed.Header["kid"].(string)
	return tok, kid
}

func countAction(t testing.TB, db *models.DB, action string) int64 {
	t.Helper()
	var n int64
	if err := db.Gorm.Model(&models.AuditEvent{}).Where("action = ?", action).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func TestTokenKeysReplicasCreateOneAndPublishTheSameSet(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		clk := &clock{now: time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)}
		reps := []keyReplica{keyReplicaOf(t, db, clk), keyReplicaOf(t, db, clk), keyReplicaOf(t, db, clk)}
		if reps[0].keys.Ready() {
			t.Fatal("ready before any key was loaded")
		}
		if _, _, _, err := reps[0].iss.Issue(oauth.Claims{ClientID: "x"}); !errors.Is(err, oauth.ErrNoSigningKey) {
			t.Fatalf("issue without keys: %v", err)
		}
		var wg sync.WaitGroup
		for _, r := range reps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := r.keys.Ensure(context.Background()); err != nil {
					t.Errorf("ensure: %v", err)
				}
			}()
		}
		wg.Wait()
		live, err := models.NewTokenKeyStore(db).Live(context.Background())
		if err != nil || len(live) != 1 || live[0].Status != models.TokenKeyActive || !live[0].ActivatesAt.Equal(clk.Now()) {
			t.Fatalf("keys after concurrent starts: %+v %v", live, err)
		}
		if n := countAction(t, db, audit.ActionTokenKeyCreate); n != 1 {
			t.Fatalf("key creations audited: %d", n)
		}
		want := []string{live[0].KID}
		for i, r := range reps {
			if !r.keys.Ready() || !slices.Equal(jwksKIDs(t, r.iss), want) {
				t.Fatalf("replica %d: ready %v, JWKS %v", i, r.keys.Ready(), jwksKIDs(t, r.iss))
			}
		}
		tok, kid := issueKID(t, reps[0].iss)
		if kid != live[0].KID {
			t.Fatalf("signed with %s, want %s", kid, live[0].KID)
		}
		for i, r := range reps {
			if _, err := r.iss.Verify(tok); err != nil {
				t.Errorf("replica %d does not verify replica 0's token: %v", i, err)
			}
		}
		// The private key is sealed: the stored blob is not the DER key.
		blob, err := reps[0].secrets.Get(context.Background(), secrets.Ref{AgencyID: 0, RecordType: apiclients.TokenKeyRecordType, RecordID: kid})
		if err != nil {
			t.Fatal(err)
		}
		var sealed models.SealedSecret
		db.Gorm.Where("record_type = ? AND record_id = ?", apiclients.TokenKeyRecordType, kid).Take(&sealed)
		if len(blob) == 0 || string(sealed.Blob) == string(blob) {
			t.Fatal("the signing key is stored in the clear")
		}
	})
}

func TestTokenKeyRotationPublishesFirstAndKeepsTheOldKeyUntilItsTokensExpire(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		clk := &clock{now: time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)}
		a, b := keyReplicaOf(t, db, clk), keyReplicaOf(t, db, clk)
		if err := a.keys.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		if err := b.keys.Load(ctx); err != nil {
			t.Fatal(err)
		}
		oldToken, k1 := issueKID(t, a.iss)

		k2row, err := a.keys.Rotate(ctx, ada, origin)
		if err != nil {
			t.Fatal(err)
		}
		k2 := k2row.KID
		if !k2row.ActivatesAt.Equal(clk.Now().Add(activationDelay)) {
			t.Fatalf("new key activates at %v", k2row.ActivatesAt)
		}
		// Published at once where it was made, but not signing yet.
		if got := jwksKIDs(t, a.iss); !slices.Equal(got, sorted(k1, k2)) {
			t.Fatalf("JWKS after rotation: %v", got)
		}
		if _, kid := issueKID(t, a.iss); kid != k1 {
			t.Fatalf("signs with %s before activation, want the old key", kid)
		}
		// Another replica learns of it at its next reload, before it signs.
		if got := jwksKIDs(t, b.iss); !slices.Equal(got, []string{k1}) {
			t.Fatalf("replica b before reload: %v", got)
		}
		clk.Add(time.Minute)
		if err := b.keys.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if got := jwksKIDs(t, b.iss); !slices.Equal(got, sorted(k1, k2)) {
			t.Fatalf("replica b after reload: %v", got)
		}
		states := map[string]string{}
		list, _ := a.keys.List(ctx)
		for _, k := range list {
			states[k.KID] = k.State
		}
		if states[k1] != apiclients.KeyActive || states[k2] != apiclients.KeyPending {
			t.Fatalf("states before activation: %v", states)
		}

		// At activation both replicas switch without a reload.
		clk.Add(activationDelay)
		for name, r := range map[string]keyReplica{"a": a, "b": b} {
			r.keys.Current(clk.Now())
			if _, kid := issueKID(t, r.iss); kid != k2 {
				t.Fatalf("replica %s signs with %s after activation, want the new key", name, kid)
			}
			if _, err := r.iss.Verify(oldToken); err != nil {
				t.Fatalf("replica %s no longer verifies a live token of the old key: %v", name, err)
			}
		}
		var k1row models.TokenSigningKey
		db.Gorm.Where("kid = ?", k1).Take(&k1row)
		wantUntil := k2row.ActivatesAt.Add(oauth.DefaultLifetime + oauth.DefaultClockSkew)
		if k1row.Status != models.TokenKeyRetired || !k1row.NotAfter.Equal(k2row.ActivatesAt) || !k1row.PublishUntil.Equal(wantUntil) {
			t.Fatalf("retired key: %+v, want publish until %v", k1row, wantUntil)
		}

		// Once the old key's last token has expired it leaves the JWKS and
		// its private key is destroyed.
		clk.now = wantUntil
		a.keys.Current(clk.Now())
		if got := jwksKIDs(t, a.iss); !slices.Equal(got, []string{k2}) {
			t.Fatalf("JWKS after the old key's publication: %v", got)
		}
		if err := a.keys.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		db.Gorm.Where("kid = ?", k1).Take(&k1row)
		var sealedLeft int64
		db.Gorm.Model(&models.SealedSecret{}).Where("record_type = ? AND record_id = ?", apiclients.TokenKeyRecordType, k1).Count(&sealedLeft)
		if k1row.Status != models.TokenKeyExpired || sealedLeft != 0 {
			t.Fatalf("old key after pruning: status %s, sealed rows %d", k1row.Status, sealedLeft)
		}
		if err := b.keys.Ensure(ctx); err != nil {
			t.Fatalf("replica b after pruning: %v", err)
		}
		evs, _ := a.audits.Page(ctx, models.AuditFilter{AgencyID: models.PlatformAgencyID, TargetType: audit.TargetTokenKey}, 10)
		var actions []string
		for _, e := range evs {
			actions = append(actions, e.Action)
		}
		if !slices.Equal(actions, []string{audit.ActionTokenKeyExpire, audit.ActionTokenKeyRotate, audit.ActionTokenKeyCreate}) {
			t.Fatalf("key audit trail: %v", actions)
		}
		d := map[string]string{}
		for _, kv := range audit.DecodeDetails(evs[1].Details) {
			d[kv[0]] = kv[1]
		}
		if d["previous_kid"] != k1 || d["trigger"] != "manual" || evs[1].ActorName != "Ada Admin" {
			t.Fatalf("rotation record: %+v %v", evs[1], d)
		}
	})
}

func TestTokenKeyRotatedOnceWhenTooOld(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		clk := &clock{now: time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)}
		reps := []keyReplica{keyReplicaOf(t, db, clk), keyReplicaOf(t, db, clk)}
		if err := reps[0].keys.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		clk.Add(apiclients.DefaultRotateAfter - time.Second)
		if err := reps[1].keys.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		if n := countAction(t, db, audit.ActionTokenKeyRotate); n != 0 {
			t.Fatalf("rotated before the key was due: %d", n)
		}
		clk.Add(time.Second)
		var wg sync.WaitGroup
		for _, r := range reps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := r.keys.Ensure(ctx); err != nil {
					t.Errorf("ensure: %v", err)
				}
			}()
		}
		wg.Wait()
		live, _ := models.NewTokenKeyStore(db).Live(ctx)
		if n := countAction(t, db, audit.ActionTokenKeyRotate); n != 1 || len(live) != 2 || live[0].Status != models.TokenKeyActive || live[1].Status != models.TokenKeyRetired {
			t.Fatalf("rotations %d, live keys %+v", n, live)
		}
		evs, _ := reps[0].audits.Page(ctx, models.AuditFilter{AgencyID: 0, Action: audit.ActionTokenKeyRotate}, 1)
		if d := audit.DecodeDetails(evs[0].Details); !slices.Contains(d, [2]string{"trigger", "age"}) || evs[0].ActorType != audit.ActorSystem {
			t.Fatalf("automatic rotation record: %+v", evs[0])
		}
	})
}
