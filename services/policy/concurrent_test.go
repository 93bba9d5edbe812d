package policy_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
	"keyconsole/services/policy"
)

// together runs fn(i) for i in [0, n) at once, released by one channel, and
// returns each call's error.
func together(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// chronological returns an agency's audit records of an action, oldest first.
func chronological(t *testing.T, db *models.DB, agencyID int64, action string) []models.AuditEvent {
	t.Helper()
	var evs []models.AuditEvent
	if err := db.Gorm.Where("agency_id = ? AND action = ?", agencyID, action).Order("seq").Find(&evs).Error; err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestFault02_ConcurrentPolicySavesAuditTrueBefore: admins saving an
// agency's first policy at the same time all succeed, and the audit records
// tell the true history: each one's "before" is what the previous one left,
// a save that changes nothing (the same preset saved again) leaves no
// record, and replaying the records from the default gives the stored
// policy.
func TestFault02_ConcurrentPolicySavesAuditTrueBefore(t *testing.T) {
	const n = 40
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		cjis, _ := policy.PresetByID(policy.PresetCJIS)
		cis, _ := policy.PresetByID(policy.PresetCIS)
		presets := []policy.Preset{cjis, cis}
		errs := together(n, func(i int) error {
			pr := presets[i%2]
			_, err := f.svc.Update(ctx, policy.Change{AgencyID: f.agency.ID, AgencyName: f.agency.Name, UserID: 7, Actor: admin,
				Preset: pr.ID, Policy: policy.Default().WithPreset(pr)})
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("save %d of %d: %v", i+1, n, err)
			}
		}
		state := policy.Default().Fields()
		for _, ev := range chronological(t, db, f.agency.ID, audit.ActionPolicyUpdate) {
			d := details(t, ev)
			if d["changed"] == "" {
				t.Fatalf("record %d changes nothing: %v", ev.Seq, d)
			}
			for k := range state {
				b, changed := d["before."+k]
				if !changed {
					continue
				}
				if b != strconv.Itoa(state[k]) {
					t.Fatalf("record %d says %s was %s before; it was %d (details %v)", ev.Seq, k, b, state[k], d)
				}
				a, err := strconv.Atoi(d["after."+k])
				if err != nil {
					t.Fatalf("record %d: after.%s: %v", ev.Seq, k, err)
				}
				state[k] = a
			}
		}
		got, _, err := f.svc.Current(ctx, f.agency.ID)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range got.Fields() {
			if state[k] != v {
				t.Fatalf("replayed records give %s=%d, stored %d", k, state[k], v)
			}
		}
	})
}

// TestFault02_ConcurrentIdPSecretRecordsAuditTrueBefore: recording an IdP
// secret's expiry from several requests at once succeeds for all, and each
// audit record's "before" is the date the previous one left; recording the
// date already stored leaves no record.
func TestFault02_ConcurrentIdPSecretRecordsAuditTrueBefore(t *testing.T) {
	const n = 40
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		dates := []time.Time{f.now.AddDate(0, 6, 0), f.now.AddDate(0, 9, 0)}
		errs := together(n, func(i int) error {
			exp := dates[i%2]
			return f.svc.SetIdPSecret(ctx, policy.IdPSecretChange{AgencyID: f.agency.ID, UserID: 7, Actor: admin, Provider: "azure",
				ProviderLabel: "Contoso Azure AD", ProviderKind: "azure", ExpiresAt: &exp})
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("record %d of %d: %v", i+1, n, err)
			}
		}
		state := ""
		evs := chronological(t, db, f.agency.ID, audit.ActionIdPSecretRecord)
		for _, ev := range evs {
			d := details(t, ev)
			if d["before.expires_at"] != state || d["after.expires_at"] == state {
				t.Fatalf("record %d: before %q after %q, but the stored date was %q", ev.Seq, d["before.expires_at"], d["after.expires_at"], state)
			}
			state = d["after.expires_at"]
		}
		got, err := f.svc.IdPSecrets(ctx, f.agency.ID)
		if err != nil || got["azure"].ExpiresAt.Format(time.DateOnly) != state {
			t.Fatalf("stored %v, records end at %q (%v)", got["azure"].ExpiresAt, state, err)
		}
	})
}
