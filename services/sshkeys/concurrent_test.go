package sshkeys

import (
	"context"
	"errors"
	"sync"
	"testing"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
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

// TestFault02_ConcurrentAccountAndKeyCreatesAnswerPlainly: the same SFTP
// account created, or the same key uploaded, by several requests at once
// gives one row and one audit record; every other request is told plainly
// that it exists, never an internal error.
func TestFault02_ConcurrentAccountAndKeyCreatesAnswerPlainly(t *testing.T) {
	const n = 30
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		origin := audit.Origin{SourceIP: "127.0.0.1"}
		accountsBefore := len(f.events(t, audit.ActionSFTPAccountCreate))
		errs := together(n, func(int) error {
			_, err := f.svc.CreateAccount(ctx, f.betaAdm, origin, f.beta, models.EnvStg)
			return err
		})
		created := 0
		for i, err := range errs {
			var ve *ValidationError
			switch {
			case err == nil:
				created++
			case !errors.As(err, &ve) || ve.Fields["environment"] == "":
				t.Fatalf("account create %d of %d: %v", i+1, n, err)
			}
		}
		if created != 1 || len(f.events(t, audit.ActionSFTPAccountCreate)) != accountsBefore+1 {
			t.Fatalf("account created %d times, %d records", created, len(f.events(t, audit.ActionSFTPAccountCreate))-accountsBefore)
		}

		key := newGoKey(t, "shared")
		errs = together(n, func(int) error {
			_, err := f.svc.Upload(ctx, f.admin, origin, f.alpha.ID, f.alphaProd.ID, key.line, nil)
			return err
		})
		uploaded := 0
		for i, err := range errs {
			var re *RefusalError
			switch {
			case err == nil:
				uploaded++
			case !errors.As(err, &re) || re.Code != CodeDuplicate:
				t.Fatalf("upload %d of %d: %v", i+1, n, err)
			}
		}
		if uploaded != 1 || f.keyCount(t) != 1 || len(f.events(t, audit.ActionSSHKeyUpload)) != 1 {
			t.Fatalf("key uploaded %d times: %d rows, %d records", uploaded, f.keyCount(t), len(f.events(t, audit.ActionSSHKeyUpload)))
		}
	})
}
