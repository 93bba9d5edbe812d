package policy_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
	"keyconsole/services/policy"
)

type fixture struct {
	db     *models.DB
	svc    *policy.Service
	audits *models.AuditStore
	agency models.Agency
	other  models.Agency
	now    time.Time
}

func newFixture(t *testing.T, db *models.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{db: db, audits: models.NewAuditStore(db), now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return f.now }
	agencies := models.NewAgencyStore(db)
	f.agency = models.Agency{Slug: "demo", Name: "Demo", CreatedAt: f.now, UpdatedAt: f.now}
	f.other = models.Agency{Slug: "other", Name: "Other", CreatedAt: f.now, UpdatedAt: f.now}
	for _, a := range []*models.Agency{&f.agency, &f.other} {
		if err := agencies.Create(ctx, a); err != nil {
			t.Fatalf("create agency: %v", err)
		}
	}
	f.svc = policy.NewService(db, models.NewPolicyStore(db), audit.NewRecorder(db, f.audits, clock), clock)
	return f
}

func (f *fixture) events(t *testing.T, agencyID int64, action string) []models.AuditEvent {
	t.Helper()
	evs, err := f.audits.Page(context.Background(), models.AuditFilter{AgencyID: agencyID, Action: action}, 100)
	if err != nil {
		t.Fatalf("audit page: %v", err)
	}
	return evs
}

func details(t *testing.T, e models.AuditEvent) map[string]string {
	t.Helper()
	m := map[string]string{}
	if err := json.Unmarshal([]byte(e.Details), &m); err != nil {
		t.Fatalf("details %q: %v", e.Details, err)
	}
	return m
}

var admin = audit.Actor{Type: audit.ActorUser, ID: "7", Name: "Ada Admin"}

func TestStoredPolicy(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		f := newFixture(t, db)

		p, st, err := f.svc.Current(ctx, f.agency.ID)
		if err != nil || st.Custom {
			t.Fatalf("fresh agency: custom=%v err=%v", st.Custom, err)
		}
		if len(policy.Changes(p, policy.Default())) != 0 {
			t.Fatalf("fresh agency policy differs from the default: %v", policy.Changes(p, policy.Default()))
		}

		cjis, _ := policy.PresetByID(policy.PresetCJIS)
		want := policy.Default().WithPreset(cjis)
		changed, err := f.svc.Update(ctx, policy.Change{AgencyID: f.agency.ID, AgencyName: f.agency.Name, UserID: 7, Actor: admin, Preset: cjis.ID, Policy: want})
		if err != nil {
			t.Fatalf("update: %v", err)
		}
		// The default SSH key age is already 365 days: only two values change.
		if len(changed) != 2 || changed[0] != policy.TypeAPICredential || changed[1] != policy.TypeWebhookSecret {
			t.Fatalf("changed = %v, want [api_credential webhook_secret]", changed)
		}
		got, err := f.svc.Policy(ctx, f.agency.ID)
		if err != nil {
			t.Fatalf("policy: %v", err)
		}
		for _, typ := range policy.Types() {
			if got.MaxAgeDays[typ] != 365 {
				t.Errorf("max age of %s = %d, want 365", typ, got.MaxAgeDays[typ])
			}
		}
		if pr, ok := got.MatchingPreset(); !ok || pr.ID != policy.PresetCJIS {
			t.Errorf("stored policy does not match the CJIS preset: %v %v", pr.ID, ok)
		}
		other, err := f.svc.Policy(ctx, f.other.ID)
		if err != nil || other.MaxAgeDays[policy.TypeAPICredential] != 90 {
			t.Fatalf("another agency's policy changed: %v %v", other.MaxAgeDays, err)
		}

		evs := f.events(t, f.agency.ID, audit.ActionPolicyUpdate)
		if len(evs) != 1 {
			t.Fatalf("policy.update records = %d, want 1", len(evs))
		}
		d := details(t, evs[0])
		for k, v := range map[string]string{
			"before.api_credential": "90", "after.api_credential": "365",
			"before.webhook_secret": "180", "after.webhook_secret": "365", "preset": "cjis",
		} {
			if d[k] != v {
				t.Errorf("detail %s = %q, want %q", k, d[k], v)
			}
		}
		if _, ok := d["before.ssh_key"]; ok {
			t.Errorf("unchanged ssh_key recorded: %v", d)
		}
		if evs[0].ActorID != "7" || evs[0].TargetType != "policy" || evs[0].Outcome != audit.OutcomeSuccess {
			t.Errorf("record = %+v", evs[0])
		}

		// The same values again change and record nothing.
		changed, err = f.svc.Update(ctx, policy.Change{AgencyID: f.agency.ID, UserID: 7, Actor: admin, Policy: want})
		if err != nil || len(changed) != 0 {
			t.Fatalf("no-op update: changed=%v err=%v", changed, err)
		}
		if n := len(f.events(t, f.agency.ID, audit.ActionPolicyUpdate)); n != 1 {
			t.Fatalf("no-op update recorded: %d records", n)
		}

		// Custom values on top of the stored row.
		custom := want.Clone()
		custom.DueSoonDays, custom.MinRSABits, custom.UnusedDays, custom.IdPWarningDays = 30, 2048, 60, 45
		custom.MaxAgeDays[policy.TypeSSHKey] = 180
		if _, err := f.svc.Update(ctx, policy.Change{AgencyID: f.agency.ID, UserID: 7, Actor: admin, Policy: custom}); err != nil {
			t.Fatalf("custom update: %v", err)
		}
		got, _ = f.svc.Policy(ctx, f.agency.ID)
		if len(policy.Changes(got, custom)) != 0 {
			t.Fatalf("stored %+v, want %+v", got, custom)
		}
		d = details(t, f.events(t, f.agency.ID, audit.ActionPolicyUpdate)[0])
		if d["before.min_rsa_bits"] != "3072" || d["after.min_rsa_bits"] != "2048" || d["before.ssh_key"] != "365" || d["after.ssh_key"] != "180" {
			t.Errorf("custom change details = %v", d)
		}
	})
}

func TestRefusedPolicyChangesNothing(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		bad := policy.Default()
		bad.MaxAgeDays[policy.TypeAPICredential] = 0
		bad.MaxAgeDays[policy.TypeSSHKey] = 5000
		bad.UnusedDays = 1
		bad.MinRSABits = 1024
		bad.IdPWarningDays = 500
		_, err := f.svc.Update(ctx, policy.Change{AgencyID: f.agency.ID, UserID: 7, Actor: admin, Policy: bad})
		var ve *policy.ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("err = %v, want a validation error", err)
		}
		for _, field := range []string{policy.TypeAPICredential, policy.TypeSSHKey, policy.FieldUnused, policy.FieldMinRSA, policy.FieldIdPWarning} {
			if ve.Fields[field] == "" {
				t.Errorf("no message for %s: %v", field, ve.Fields)
			}
		}
		if _, st, _ := f.svc.Current(ctx, f.agency.ID); st.Custom {
			t.Fatalf("a refused policy was stored")
		}
		if n := len(f.events(t, f.agency.ID, audit.ActionPolicyUpdate)); n != 0 {
			t.Fatalf("a refused policy was recorded: %d", n)
		}
	})
}

func TestIdPSecretExpiry(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		exp := f.now.AddDate(0, 6, 0)
		change := policy.IdPSecretChange{AgencyID: f.agency.ID, UserID: 7, Actor: admin, Provider: "azure", ProviderLabel: "Contoso Azure AD", ProviderKind: "azure", ExpiresAt: &exp, Note: "app keyconsole-prod"}
		if err := f.svc.SetIdPSecret(ctx, change); err != nil {
			t.Fatalf("set: %v", err)
		}
		got, err := f.svc.IdPSecrets(ctx, f.agency.ID)
		if err != nil || !got["azure"].ExpiresAt.Equal(exp) || got["azure"].Note != "app keyconsole-prod" {
			t.Fatalf("recorded = %+v, %v", got, err)
		}
		if o, _ := f.svc.IdPSecrets(ctx, f.other.ID); len(o) != 0 {
			t.Fatalf("another agency sees the record: %v", o)
		}

		tooFar := f.now.AddDate(0, 25, 0)
		bad := change
		bad.ExpiresAt = &tooFar
		var ve *policy.ValidationError
		if err := f.svc.SetIdPSecret(ctx, bad); !errors.As(err, &ve) || ve.Fields["expires_at"] == "" {
			t.Fatalf("Azure secret beyond 24 months: err = %v", err)
		}
		bad.ProviderKind = "okta"
		if err := f.svc.SetIdPSecret(ctx, bad); err != nil {
			t.Fatalf("an Okta secret may live longer than 24 months: %v", err)
		}
		if err := f.svc.SetIdPSecret(ctx, policy.IdPSecretChange{AgencyID: f.agency.ID, UserID: 7, Actor: admin, Provider: "azure", ProviderLabel: "Contoso Azure AD"}); err != nil {
			t.Fatalf("clear: %v", err)
		}
		got, _ = f.svc.IdPSecrets(ctx, f.agency.ID)
		if _, ok := got["azure"]; ok {
			t.Fatalf("cleared record still present")
		}
		recs := f.events(t, f.agency.ID, audit.ActionIdPSecretRecord)
		if len(recs) != 2 {
			t.Fatalf("idp_secret.record records = %d, want 2", len(recs))
		}
		d := details(t, recs[1])
		if d["before.expires_at"] != "" || d["after.expires_at"] != exp.Format(time.DateOnly) {
			t.Errorf("first record details = %v", d)
		}
		dels := f.events(t, f.agency.ID, audit.ActionIdPSecretDelete)
		if len(dels) != 1 || details(t, dels[0])["before.expires_at"] != tooFar.Format(time.DateOnly) {
			t.Fatalf("idp_secret.delete records = %v", dels)
		}
	})
}

func TestStoredPolicyEvaluation(t *testing.T) {
	day := 24 * time.Hour
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	used := created.Add(day)
	cjis, _ := policy.PresetByID(policy.PresetCJIS)
	cis, _ := policy.PresetByID(policy.PresetCIS)
	custom := policy.Default().WithPreset(cis)
	custom.DueSoonDays = 30
	custom.UnusedDays = 30
	tests := []struct {
		name    string
		p       policy.Policy
		typ     string
		at      time.Duration
		used    *time.Time
		wantAge string
		wantUse string
	}{
		{"cjis api day 100 ok (default would be overdue)", policy.Default().WithPreset(cjis), policy.TypeAPICredential, 100 * day, &used, policy.AgeOK, policy.UseUnused},
		{"cjis api day 351 due soon", policy.Default().WithPreset(cjis), policy.TypeAPICredential, 351 * day, &used, policy.AgeDueSoon, policy.UseUnused},
		{"cjis webhook day 365 overdue", policy.Default().WithPreset(cjis), policy.TypeWebhookSecret, 365 * day, &used, policy.AgeOverdue, policy.UseUnused},
		{"cis ssh day 89 due soon", policy.Default().WithPreset(cis), policy.TypeSSHKey, 89 * day, &used, policy.AgeDueSoon, policy.UseRecent},
		{"cis ssh day 90 overdue, used 89 days ago", policy.Default().WithPreset(cis), policy.TypeSSHKey, 90 * day, &used, policy.AgeOverdue, policy.UseRecent},
		{"custom window day 59 ok", custom, policy.TypeWebhookSecret, 59*day + time.Hour, &used, policy.AgeOK, policy.UseUnused},
		{"custom window day 60 due soon", custom, policy.TypeWebhookSecret, 60 * day, &used, policy.AgeDueSoon, policy.UseUnused},
		{"custom unused threshold 30: used 29 days ago", custom, policy.TypeAPICredential, 30 * day, &used, policy.AgeOK, policy.UseRecent},
		{"custom unused threshold 30: used 30 days ago", custom, policy.TypeAPICredential, 31 * day, &used, policy.AgeOK, policy.UseUnused},
		{"custom unused threshold 30: never used, 30 days old", custom, policy.TypeAPICredential, 30 * day, nil, policy.AgeOK, policy.UseNever},
		{"custom unused threshold 30: never used, 29 days old", custom, policy.TypeAPICredential, 29 * day, nil, policy.AgeOK, policy.UseRecent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := tt.p.Evaluate(tt.typ, created, time.Time{}, tt.used, created.Add(tt.at))
			if ev.AgeState != tt.wantAge || ev.UseState != tt.wantUse {
				t.Fatalf("got %s/%s, want %s/%s", ev.AgeState, ev.UseState, tt.wantAge, tt.wantUse)
			}
		})
	}
}

func TestValidateRanges(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(p *policy.Policy)
		field string
	}{
		{"max age 6 days", func(p *policy.Policy) { p.MaxAgeDays[policy.TypeWebhookSecret] = 6 }, policy.TypeWebhookSecret},
		{"max age 1096 days", func(p *policy.Policy) { p.MaxAgeDays[policy.TypeSSHKey] = 1096 }, policy.TypeSSHKey},
		{"due soon 0", func(p *policy.Policy) { p.DueSoonDays = 0 }, policy.FieldDueSoon},
		{"due soon not shorter than a max age", func(p *policy.Policy) { p.MaxAgeDays[policy.TypeAPICredential] = 14 }, policy.FieldDueSoon},
		{"unused 731", func(p *policy.Policy) { p.UnusedDays = 731 }, policy.FieldUnused},
		{"rsa 1024", func(p *policy.Policy) { p.MinRSABits = 1024 }, policy.FieldMinRSA},
		{"idp warning 6", func(p *policy.Policy) { p.IdPWarningDays = 6 }, policy.FieldIdPWarning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := policy.Default()
			tt.edit(&p)
			var ve *policy.ValidationError
			if err := policy.Validate(p); !errors.As(err, &ve) || ve.Fields[tt.field] == "" || len(ve.Fields) != 1 {
				t.Fatalf("err = %v, want exactly a message for %s", err, tt.field)
			}
		})
	}
	for _, pr := range policy.Presets() {
		if err := policy.Validate(policy.Default().WithPreset(pr)); err != nil {
			t.Errorf("preset %s is refused: %v", pr.ID, err)
		}
	}
	for _, bits := range policy.RSASizes() {
		p := policy.Default()
		p.MinRSABits = bits
		if err := policy.Validate(p); err != nil {
			t.Errorf("RSA %d refused: %v", bits, err)
		}
	}
}
