package agencies_test

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
)

// TestFault02_ConcurrentAgencyAndMappingCreatesAnswerPlainly: the same
// agency, or the same group mapping, created by several requests at once
// gives one row and one audit record; every other request gets the form's
// "already exists" message, never an internal error.
func TestFault02_ConcurrentAgencyAndMappingCreatesAnswerPlainly(t *testing.T) {
	const n = 30
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		now := func() time.Time { return time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC) }
		audits := models.NewAuditStore(db)
		svc := agencies.NewService(db, models.NewAgencyStore(db), audit.NewRecorder(db, audits, now), now)
		sys := audit.Actor{Type: audit.ActorSystem, ID: "test"}
		together := func(fn func() (int64, error)) (int64, []error) {
			var (
				mu   sync.Mutex
				id   int64
				wg   sync.WaitGroup
				errs = make([]error, n)
			)
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					got, err := fn()
					if err == nil {
						mu.Lock()
						if id != 0 {
							errs[i] = errors.New("created twice")
						}
						id = got
						mu.Unlock()
					}
					errs[i] = errors.Join(errs[i], err)
				}()
			}
			close(start)
			wg.Wait()
			return id, errs
		}
		check := func(what string, id int64, errs []error, field string) {
			t.Helper()
			if id == 0 {
				t.Fatalf("%s: none created: %v", what, errs[0])
			}
			for i, err := range errs {
				var ve *agencies.ValidationError
				if err != nil && (!errors.As(err, &ve) || ve.Fields[field] == "") {
					t.Fatalf("%s %d of %d: %v", what, i+1, n, err)
				}
			}
		}
		agencyID, errs := together(func() (int64, error) {
			a, err := svc.Create(ctx, sys, audit.Origin{}, "race-county", "Race County")
			return a.ID, err
		})
		check("agency", agencyID, errs, "slug")
		mappingID, errs := together(func() (int64, error) {
			m, err := svc.Map(ctx, sys, audit.Origin{}, agencyID, "okta", "race-admins", models.RoleAdmin)
			return m.ID, err
		})
		check("mapping", mappingID, errs, "group")
		for action, want := range map[string]int64{audit.ActionAgencyCreate: 1, audit.ActionMappingCreate: 1} {
			var got int64
			if err := db.Gorm.Model(&models.AuditEvent{}).Where("agency_id = ? AND action = ?", agencyID, action).Count(&got).Error; err != nil || got != want {
				t.Fatalf("%s records: %d %v, want %d", action, got, err, want)
			}
		}
		if rep, err := audit.NewVerifier(audits).Verify(ctx, agencyID); err != nil || !rep.Intact {
			t.Fatalf("chain: %+v %v", rep, err)
		}
	})
}
