package apiclients_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/apiclients"
	"keyconsole/services/audit"
)

// TestFault02_DoubleSubmittedCreateShowsAlreadyCreated: one create form
// submitted several times at once (a double click, a retried request)
// creates one credential; every other submission is told it was already
// created, never that its name is taken and never an internal error.
func TestFault02_DoubleSubmittedCreateShowsAlreadyCreated(t *testing.T) {
	// Each round is one form submitted n times; a round loses the race
	// only when two submissions insert at the same moment, so there are
	// several.
	const n, rounds = 30, 10
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		e := newEnv(t, db)
		for r := range rounds {
			doubleSubmit(t, e, n, apiclients.CreateInput{Name: fmt.Sprintf("Case sync %d", r), Environment: "staging", Nonce: apiclients.NewNonce()})
		}
		var rows, records int64
		if err := db.Gorm.Model(&models.APICredential{}).Where("agency_id = ?", e.demo.ID).Count(&rows).Error; err != nil || rows != rounds {
			t.Fatalf("credentials: %d %v, want %d", rows, err, rounds)
		}
		if err := db.Gorm.Model(&models.AuditEvent{}).Where("agency_id = ? AND action = ?", e.demo.ID, audit.ActionAPICredentialCreate).Count(&records).Error; err != nil || records != rounds {
			t.Fatalf("create records: %d %v, want %d", records, err, rounds)
		}
	})
}

func doubleSubmit(t *testing.T, e env, n int, in apiclients.CreateInput) {
	t.Helper()
	creds := make([]models.APICredential, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			creds[i], _, errs[i] = e.svc.Create(context.Background(), ada, origin, e.demo.ID, in)
		}()
	}
	close(start)
	wg.Wait()
	var created models.APICredential
	for i, err := range errs {
		if err == nil {
			if created.ID != 0 {
				t.Fatalf("two credentials from one form: %d and %d", created.ID, creds[i].ID)
			}
			created = creds[i]
		}
	}
	if created.ID == 0 {
		t.Fatalf("no submission created the credential: %v", errs[0])
	}
	for i, err := range errs {
		var ae *apiclients.AlreadySubmittedError
		if err != nil && (!errors.As(err, &ae) || ae.Credential.ID != created.ID) {
			t.Fatalf("submission %d of %d: %v, want already created", i+1, n, err)
		}
	}
}
