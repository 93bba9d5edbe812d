package apiclients_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"keyconsole/kms"
	"keyconsole/kms/local"
	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/agencies"
	"keyconsole/services/apiclients"
	"keyconsole/services/audit"
	"keyconsole/services/guard"
	"keyconsole/services/oauth"
	"keyconsole/services/policy"
	"keyconsole/services/secrets"
)

var (
	sys    = audit.Actor{Type: audit.ActorSystem, ID: "test"}
	ada    = audit.Actor{Type: audit.ActorUser, ID: "1", Name: "Ada Admin"}
	origin = audit.Origin{SourceIP: "127.0.0.1", RequestID: "req-1"}
)

// clock is a settable time source shared by the services of a test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// env is one replica's view of a database: its own envelope (and caches)
// over a local master key shared by every replica of the test.
type env struct {
	db       *models.DB
	svc      *apiclients.Service
	store    *models.APIClientStore
	audits   *models.AuditStore
	rec      *audit.Recorder
	secrets  *secrets.Service
	demo     models.Agency
	other    models.Agency
	clock    *clock
	agencies *agencies.Service
}

var masterKey = bytes.Repeat([]byte{7}, local.MasterKeySize)

func replica(t testing.TB, db *models.DB, clk *clock) env {
	t.Helper()
	kr, err := local.New(masterKey, "")
	if err != nil {
		t.Fatal(err)
	}
	audits := models.NewAuditStore(db)
	rec := audit.NewRecorder(db, audits, clk.Now)
	sec := secrets.NewService(db, kms.NewEnvelope(kr, kms.Options{}), models.NewSealedStore(db), rec, clk.Now)
	store := models.NewAPIClientStore(db)
	svc := apiclients.NewService(apiclients.Config{
		DB: db, Store: store, Agencies: models.NewAgencyStore(db), Audit: rec, Secrets: sec,
		Policies: policy.DefaultSource{}, Clock: clk.Now,
	})
	return env{db: db, svc: svc, store: store, audits: audits, rec: rec, secrets: sec, clock: clk,
		agencies: agencies.NewService(db, models.NewAgencyStore(db), rec, clk.Now)}
}

func newEnv(t testing.TB, db *models.DB) env {
	t.Helper()
	clk := &clock{now: time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)}
	e := replica(t, db, clk)
	ctx := context.Background()
	var err error
	if e.demo, err = e.agencies.Create(ctx, sys, audit.Origin{}, "demo-county", "Demo County"); err != nil {
		t.Fatal(err)
	}
	if e.other, err = e.agencies.Create(ctx, sys, audit.Origin{}, "other-county", "Other County"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.LoadPepper(ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e env) create(t testing.TB, agencyID int64, name, environment string) (models.APICredential, oauth.ClientSecret) {
	t.Helper()
	c, s, err := e.svc.Create(context.Background(), ada, origin, agencyID, apiclients.CreateInput{Name: name, Environment: environment, Nonce: apiclients.NewNonce()})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return c, s
}

func (e env) authenticate(t testing.TB, clientID string, secret oauth.ClientSecret) (apiclients.Client, string) {
	t.Helper()
	c, _, reason, err := e.svc.Authenticate(context.Background(), clientID, secret, e.clock.Now())
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	return c, reason
}

func (e env) auditCount(t testing.TB) int64 {
	t.Helper()
	var n int64
	if err := e.db.Gorm.Model(&models.AuditEvent{}).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// leaks reports every stored audit field, credential column and sealed blob
// that contains one of the secrets.
func (e env) leaks(t testing.TB, secrets ...string) []string {
	t.Helper()
	var evs []models.AuditEvent
	if err := e.db.Gorm.Find(&evs).Error; err != nil {
		t.Fatal(err)
	}
	var creds []models.APICredential
	if err := e.db.Gorm.Find(&creds).Error; err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, s := range secrets {
		for _, ev := range evs {
			all := strings.Join([]string{ev.ActorID, ev.ActorName, ev.Action, ev.TargetType, ev.TargetID, ev.TargetName, ev.Reason, ev.SourceIP, ev.UserAgent, ev.RequestID, ev.Details}, "\x00")
			if strings.Contains(all, s) || strings.Contains(all, s[len(s)-20:]) {
				found = append(found, "audit event "+ev.Action)
			}
		}
		for _, c := range creds {
			if bytes.Contains(c.SecretHash, []byte(s)) || strings.Contains(c.Name+c.Description+c.ClientID, s) {
				found = append(found, "credential "+c.ClientID)
			}
		}
	}
	return found
}

func TestAPICredentialCreateStoresOnlyAKeyedHash(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		e := newEnv(t, db)
		tests := []struct {
			environment, idPrefix, secretPrefix string
		}{
			{"staging", "ecd_stg_", "ecds_stg_"},
			{"production", "ecd_prd_", "ecds_prd_"},
		}
		for _, tc := range tests {
			c, secret := e.create(t, e.demo.ID, "sync "+tc.environment, tc.environment)
			if !strings.HasPrefix(c.ClientID, tc.idPrefix) || !strings.HasPrefix(secret.Reveal(), tc.secretPrefix) {
				t.Errorf("%s: client id %q secret prefix %q", tc.environment, c.ClientID, secret.Reveal()[:9])
			}
			raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(secret.Reveal(), tc.secretPrefix))
			if err != nil || len(raw) < 32 {
				t.Errorf("%s: secret carries %d random bytes (%v), want at least 32", tc.environment, len(raw), err)
			}
			if len(c.SecretHash) != 32 || bytes.Contains(c.SecretHash, []byte(secret.Reveal())) || c.PepperID != apiclients.PepperID {
				t.Errorf("%s: stored hash %x pepper %q", tc.environment, c.SecretHash, c.PepperID)
			}
			if got, reason := e.authenticate(t, c.ClientID, secret); reason != "" || got.Environment != tc.environment || got.AgencySlug != "demo-county" {
				t.Errorf("%s: authenticate: %+v %q", tc.environment, got, reason)
			}
			evs, err := e.store.History(context.Background(), e.demo.ID, audit.TargetAPICredential, c.ClientID, 0, 10)
			if err != nil || len(evs) != 1 || evs[0].Action != audit.ActionAPICredentialCreate || evs[0].ActorName != "Ada Admin" || evs[0].TargetName != c.Name {
				t.Errorf("%s: audit: %+v %v", tc.environment, evs, err)
			}
			if l := e.leaks(t, secret.Reveal()); len(l) > 0 {
				t.Errorf("%s: secret found in %v", tc.environment, l)
			}
		}
		list, err := e.svc.List(context.Background(), e.demo.ID)
		if err != nil || len(list) != 2 {
			t.Fatalf("list: %d %v", len(list), err)
		}
		for _, c := range list {
			if c.Status != apiclients.StatusActive || c.Policy.AgeState != policy.AgeOK {
				t.Errorf("list %s: status %s age %s", c.Name, c.Status, c.Policy.AgeState)
			}
		}
		if other, _ := e.svc.List(context.Background(), e.other.ID); len(other) != 0 {
			t.Fatalf("another agency lists %d credentials", len(other))
		}
		if _, err := e.svc.Get(context.Background(), e.other.ID, list[0].ID); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("another agency's credential: %v, want ErrNotFound", err)
		}
	})
}

func TestAPICredentialCreateRefusesInvalidInput(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		e.create(t, e.demo.ID, "taken", "staging")
		before := e.auditCount(t)
		nonce := apiclients.NewNonce()
		tests := []struct {
			name  string
			in    apiclients.CreateInput
			field string
		}{
			{"empty name", apiclients.CreateInput{Name: "  ", Environment: "staging", Nonce: nonce}, "name"},
			{"long name", apiclients.CreateInput{Name: strings.Repeat("n", apiclients.MaxNameLen+1), Environment: "staging", Nonce: nonce}, "name"},
			{"control character in name", apiclients.CreateInput{Name: "a\x1b[31mb", Environment: "staging", Nonce: nonce}, "name"},
			{"long description", apiclients.CreateInput{Name: "ok", Description: strings.Repeat("d", apiclients.MaxDescriptionLen+1), Environment: "staging", Nonce: nonce}, "description"},
			{"unknown environment", apiclients.CreateInput{Name: "ok", Environment: "prod", Nonce: nonce}, "environment"},
			{"malformed expiry", apiclients.CreateInput{Name: "ok", Environment: "staging", Expires: "03/04/2027", Nonce: nonce}, "expires"},
			{"expiry today", apiclients.CreateInput{Name: "ok", Environment: "staging", Expires: "2026-03-02", Nonce: nonce}, "expires"},
			{"expiry past", apiclients.CreateInput{Name: "ok", Environment: "staging", Expires: "2025-01-01", Nonce: nonce}, "expires"},
			{"expiry too far", apiclients.CreateInput{Name: "ok", Environment: "staging", Expires: "2040-01-01", Nonce: nonce}, "expires"},
			{"missing nonce", apiclients.CreateInput{Name: "ok", Environment: "staging"}, "form"},
			{"taken name", apiclients.CreateInput{Name: " taken ", Environment: "staging", Nonce: nonce}, "name"},
		}
		for _, tc := range tests {
			_, secret, err := e.svc.Create(ctx, ada, origin, e.demo.ID, tc.in)
			var ve *apiclients.ValidationError
			if !errors.As(err, &ve) || ve.Fields[tc.field] == "" || !secret.IsZero() {
				t.Errorf("%s: %v, want a message for %q", tc.name, err, tc.field)
			}
		}
		list, _ := e.svc.List(ctx, e.demo.ID)
		if len(list) != 1 || e.auditCount(t) != before {
			t.Fatalf("refused forms wrote: %d credentials, %d new audit records", len(list), e.auditCount(t)-before)
		}

		// The same name is free in the other environment and after expiry dates
		// are valid; a form submitted twice creates once.
		in := apiclients.CreateInput{Name: "taken", Environment: "production", Expires: "2026-06-30", Nonce: nonce}
		c, _, err := e.svc.Create(ctx, ada, origin, e.demo.ID, in)
		if err != nil || c.ExpiresAt == nil || !c.ExpiresAt.Equal(time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("create with expiry: %+v %v", c, err)
		}
		_, secret, err := e.svc.Create(ctx, ada, origin, e.demo.ID, in)
		var ae *apiclients.AlreadySubmittedError
		if !errors.As(err, &ae) || ae.Credential.ID != c.ID || !secret.IsZero() {
			t.Fatalf("resubmitted form: %v", err)
		}
	})
}

func TestAPICredentialRegenerateReplacesTheSecretAtOnce(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		c, old := e.create(t, e.demo.ID, "Case sync", "staging")
		before := e.auditCount(t)

		refusals := []struct {
			name   string
			agency int64
			in     apiclients.RegenerateInput
			check  func(error) bool
		}{
			{"wrong name", e.demo.ID, apiclients.RegenerateInput{ConfirmName: "case sync", Version: 1}, func(err error) bool {
				var ve *apiclients.ValidationError
				return errors.As(err, &ve) && ve.Fields["confirm_name"] != ""
			}},
			{"stale version", e.demo.ID, apiclients.RegenerateInput{ConfirmName: "Case sync", Version: 2}, func(err error) bool { return errors.Is(err, apiclients.ErrStale) }},
			{"another agency", e.other.ID, apiclients.RegenerateInput{ConfirmName: "Case sync", Version: 1}, func(err error) bool { return errors.Is(err, models.ErrNotFound) }},
		}
		for _, r := range refusals {
			if _, s, err := e.svc.Regenerate(ctx, ada, origin, r.agency, c.ID, r.in); !r.check(err) || !s.IsZero() {
				t.Errorf("%s: %v", r.name, err)
			}
		}
		// Nothing changed; only the stale attempt (a well-formed attempt at a
		// sensitive action) left its refusal in the audit log.
		if _, reason := e.authenticate(t, c.ClientID, old); reason != "" || e.auditCount(t) != before+1 {
			t.Fatalf("a refused regeneration changed something: reason %q, %d new audit records, want 1", reason, e.auditCount(t)-before)
		}

		out, fresh, err := e.svc.Regenerate(ctx, ada, origin, e.demo.ID, c.ID, apiclients.RegenerateInput{ConfirmName: " Case sync ", Version: 1})
		if err != nil || out.SecretVersion != 2 || out.RotatedAt == nil || fresh.Reveal() == old.Reveal() || !strings.HasPrefix(fresh.Reveal(), "ecds_stg_") {
			t.Fatalf("regenerate: %+v %v", out, err)
		}
		if _, reason := e.authenticate(t, c.ClientID, old); reason != oauth.ReasonInvalidSecret {
			t.Errorf("old secret after regeneration: reason %q, want %q", reason, oauth.ReasonInvalidSecret)
		}
		if got, reason := e.authenticate(t, c.ClientID, fresh); reason != "" || got.ID != c.ID {
			t.Errorf("new secret: %+v %q", got, reason)
		}
		// The form resubmitted (a reload) does not regenerate again.
		if _, _, err := e.svc.Regenerate(ctx, ada, origin, e.demo.ID, c.ID, apiclients.RegenerateInput{ConfirmName: "Case sync", Version: 1}); !errors.Is(err, apiclients.ErrStale) {
			t.Errorf("resubmitted regeneration: %v", err)
		}
		hist, _ := e.svc.History(ctx, e.demo.ID, c.ID, 10)
		// Newest first: the refused resubmission, the regeneration, the
		// refused stale attempt above, the creation.
		if len(hist) != 4 || hist[0].Action != audit.ActionAPICredentialRegenerate || hist[0].Outcome != audit.OutcomeDenied || hist[0].Reason != "stale" ||
			hist[1].Action != audit.ActionAPICredentialRegenerate || hist[1].Outcome != audit.OutcomeSuccess || hist[1].ActorName != "Ada Admin" || hist[1].RequestID != "req-1" {
			t.Errorf("history: %+v", hist)
		}
		if l := e.leaks(t, old.Reveal(), fresh.Reveal()); len(l) > 0 {
			t.Errorf("secrets found in %v", l)
		}
	})
}

func TestAPICredentialRevokedAndExpiredAreRefused(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		revoked, rs := e.create(t, e.demo.ID, "revoked", "staging")
		if _, err := e.svc.Revoke(ctx, ada, origin, e.other.ID, revoked.ID); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("another agency's revoke: %v", err)
		}
		if _, err := e.svc.Revoke(ctx, ada, origin, e.demo.ID, revoked.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Revoke(ctx, ada, origin, e.demo.ID, revoked.ID); !errors.Is(err, apiclients.ErrRevoked) {
			t.Fatalf("second revoke: %v", err)
		}
		if _, _, err := e.svc.Regenerate(ctx, ada, origin, e.demo.ID, revoked.ID, apiclients.RegenerateInput{ConfirmName: "revoked", Version: 1}); !errors.Is(err, apiclients.ErrRevoked) {
			t.Fatalf("regenerate revoked: %v", err)
		}

		expiring, es, err := e.svc.Create(ctx, ada, origin, e.demo.ID, apiclients.CreateInput{Name: "expiring", Environment: "production", Expires: "2026-03-03", Nonce: apiclients.NewNonce()})
		if err != nil {
			t.Fatal(err)
		}
		if _, reason := e.authenticate(t, expiring.ClientID, es); reason != "" {
			t.Fatalf("before expiry: %q", reason)
		}
		e.clock.Add(24 * time.Hour)

		tests := []struct {
			name, clientID string
			secret         oauth.ClientSecret
			reason, slug   string
		}{
			{"revoked", revoked.ClientID, rs, oauth.ReasonRevoked, "demo-county"},
			{"revoked, wrong secret", revoked.ClientID, es, oauth.ReasonInvalidSecret, "demo-county"},
			{"expired", expiring.ClientID, es, oauth.ReasonExpired, "demo-county"},
			{"unknown well-formed id", "ecd_stg_aaaaaaaaaaaaaaaaaaaa", rs, oauth.ReasonUnknownClient, ""},
			{"malformed id", "not-a-client", rs, oauth.ReasonUnknownClient, ""},
			{"secret as id", rs.Reveal(), rs, oauth.ReasonUnknownClient, ""},
		}
		for _, tc := range tests {
			_, slug, reason, err := e.svc.Authenticate(ctx, tc.clientID, tc.secret, e.clock.Now())
			if err != nil || reason != tc.reason || slug != tc.slug {
				t.Errorf("%s: reason %q slug %q err %v, want %q %q", tc.name, reason, slug, err, tc.reason, tc.slug)
			}
		}
		if _, _, err := e.svc.Regenerate(ctx, ada, origin, e.demo.ID, expiring.ID, apiclients.RegenerateInput{ConfirmName: "expiring", Version: 1}); !errors.Is(err, apiclients.ErrExpired) {
			t.Fatalf("regenerate expired: %v", err)
		}

		// Two replicas sweeping at once record the expiry once.
		other := replica(t, db, e.clock)
		var wg sync.WaitGroup
		counts := make([]int, 2)
		for i, s := range []*apiclients.Service{e.svc, other.svc} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, err := s.ExpireDue(ctx)
				if err != nil {
					t.Errorf("expire: %v", err)
				}
				counts[i] = n
			}()
		}
		wg.Wait()
		evs, _ := e.audits.Page(ctx, models.AuditFilter{AgencyID: e.demo.ID, Action: audit.ActionAPICredentialExpire}, 10)
		if counts[0]+counts[1] != 1 || len(evs) != 1 || evs[0].TargetID != expiring.ClientID || evs[0].ActorType != audit.ActorSystem {
			t.Fatalf("expiry records: counts %v, events %+v", counts, evs)
		}
		list, _ := e.svc.List(ctx, e.demo.ID)
		states := map[string]string{}
		for _, c := range list {
			states[c.Name] = c.Status
		}
		if states["revoked"] != apiclients.StatusRevoked || states["expiring"] != apiclients.StatusExpired {
			t.Fatalf("statuses: %v", states)
		}
		if l := e.leaks(t, rs.Reveal(), es.Reveal()); len(l) > 0 {
			t.Errorf("secrets found in %v", l)
		}
	})
}

func TestAPISecretPepperSharedByReplicas(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		clk := &clock{now: time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)}
		first := replica(t, db, clk)
		demo, err := first.agencies.Create(context.Background(), sys, audit.Origin{}, "demo-county", "Demo County")
		if err != nil {
			t.Fatal(err)
		}
		reps := []env{first, replica(t, db, clk), replica(t, db, clk), replica(t, db, clk)}
		if reps[0].svc.Ready() {
			t.Fatal("ready before the pepper was loaded")
		}
		var wg sync.WaitGroup
		for _, r := range reps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := r.svc.LoadPepper(context.Background()); err != nil {
					t.Errorf("load pepper: %v", err)
				}
			}()
		}
		wg.Wait()
		var sealed []models.SealedSecret
		if err := db.Gorm.Where("record_type = ?", apiclients.PepperRecordType).Find(&sealed).Error; err != nil {
			t.Fatal(err)
		}
		var created int64
		db.Gorm.Model(&models.AuditEvent{}).Where("action = ?", audit.ActionAPISecretPepperCreate).Count(&created)
		if len(sealed) != 1 || sealed[0].AgencyID != 0 || sealed[0].RecordID != apiclients.PepperID || created != 1 {
			t.Fatalf("pepper records %d, creations audited %d", len(sealed), created)
		}
		c, secret := reps[1].create(t, demo.ID, "sync", "staging")
		for i, r := range reps {
			if _, reason := r.authenticate(t, c.ClientID, secret); reason != "" {
				t.Errorf("replica %d refuses a credential made on replica 1: %q", i, reason)
			}
		}
	})
}

func TestAPICredentialLastUseAndRefusalRecords(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		c, secret := e.create(t, e.demo.ID, "sync", "staging")
		t1 := e.clock.Now().Add(time.Minute)
		if err := e.svc.FlushLastUse(ctx, map[int64]time.Time{c.ID: t1}); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.FlushLastUse(ctx, map[int64]time.Time{c.ID: t1.Add(-30 * time.Second)}); err != nil {
			t.Fatal(err)
		}
		got, _ := e.svc.Get(ctx, e.demo.ID, c.ID)
		if got.LastUsedAt == nil || !got.LastUsedAt.Equal(t1) {
			t.Fatalf("last used %v, want %v", got.LastUsedAt, t1)
		}

		first, last := e.clock.Now(), e.clock.Now().Add(40*time.Second)
		e.svc.RecordRefusals(ctx, []guard.FailureBatch{
			{FailureKey: guard.FailureKey{Agency: "demo-county", ClientID: c.ClientID, Addr: "192.0.2.7", Reason: oauth.ReasonInvalidSecret}, Count: 41, First: first, Last: last},
			{FailureKey: guard.FailureKey{ClientID: "ecd_stg_aaaaaaaaaaaaaaaaaaaa", Addr: "192.0.2.8", Reason: oauth.ReasonUnknownClient}, Count: 3, First: first, Last: last},
			{FailureKey: guard.FailureKey{Reason: oauth.ReasonMalformedRequest}, Count: 9000, First: first, Last: last, Overflow: true},
		})
		agencyEvs, _ := e.audits.Page(ctx, models.AuditFilter{AgencyID: e.demo.ID, Action: audit.ActionAPICredentialTokenRefused}, 10)
		platformEvs, _ := e.audits.Page(ctx, models.AuditFilter{AgencyID: models.PlatformAgencyID, Action: audit.ActionAPICredentialTokenRefused}, 10)
		if len(agencyEvs) != 1 || len(platformEvs) != 2 {
			t.Fatalf("refusal records: agency %d, platform %d", len(agencyEvs), len(platformEvs))
		}
		d := map[string]string{}
		for _, kv := range audit.DecodeDetails(agencyEvs[0].Details) {
			d[kv[0]] = kv[1]
		}
		want := map[string]string{"count": "41", "reason": "invalid_secret", "client_id": c.ClientID, "source_address": "192.0.2.7",
			"first": first.Format(time.RFC3339Nano), "last": last.Format(time.RFC3339Nano)}
		for k, v := range want {
			if d[k] != v {
				t.Errorf("detail %s = %q, want %q", k, d[k], v)
			}
		}
		if ev := agencyEvs[0]; ev.Outcome != audit.OutcomeDenied || ev.ActorType != audit.ActorAPIClient || ev.TargetID != c.ClientID || ev.SourceIP != "192.0.2.7" {
			t.Errorf("agency refusal record: %+v", ev)
		}
		hist, _ := e.svc.History(ctx, e.demo.ID, c.ID, 10)
		if len(hist) != 2 || hist[0].Action != audit.ActionAPICredentialTokenRefused {
			t.Errorf("the credential's history misses its refusals: %+v", hist)
		}
		if l := e.leaks(t, secret.Reveal()); len(l) > 0 {
			t.Errorf("secret found in %v", l)
		}
		v := audit.NewVerifier(e.audits)
		for _, id := range []int64{models.PlatformAgencyID, e.demo.ID} {
			if r, err := v.Verify(ctx, id); err != nil || !r.Intact || r.Records == 0 {
				t.Errorf("chain %d: %+v %v", id, r, err)
			}
		}
	})
}
