package models_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
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

// TestFault02_ProvisionInsertsOnceAndReturnsStored: Provision inserts a new
// user, and for a known one returns the stored row unchanged (disabled flag,
// times, name) rather than the values offered; concurrent calls in their
// own transactions all get the one row.
func TestFault02_ProvisionInsertsOnceAndReturnsStored(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		users := models.NewUserStore(db)
		created := time.Date(2026, 3, 1, 9, 0, 0, 123456000, time.UTC)
		u := models.User{Provider: "okta", Subject: "00u-p", Email: "p@county.gov", Name: "P", CreatedAt: created, UpdatedAt: created}
		if err := users.Provision(ctx, &u); err != nil {
			t.Fatal(err)
		}
		if u.ID == 0 || u.Email != "p@county.gov" || !u.CreatedAt.Equal(created) || u.Disabled() {
			t.Fatalf("inserted: %+v", u)
		}
		disabled := created.Add(time.Hour)
		u.DisabledAt = &disabled
		if err := users.Save(ctx, &u); err != nil {
			t.Fatal(err)
		}
		later := created.Add(48 * time.Hour)
		again := models.User{Provider: "okta", Subject: "00u-p", Email: "new@county.gov", Name: "New", IsOperator: true, CreatedAt: later, UpdatedAt: later}
		if err := users.Provision(ctx, &again); err != nil {
			t.Fatal(err)
		}
		if again.ID != u.ID || again.Email != "p@county.gov" || again.IsOperator || !again.CreatedAt.Equal(created) ||
			again.DisabledAt == nil || !again.DisabledAt.Equal(disabled) {
			t.Fatalf("stored user must come back as stored: %+v", again)
		}

		const n = 40
		ids := make([]int64, n)
		errs := together(n, func(i int) error {
			return db.Tx(ctx, func(ctx context.Context) error {
				v := models.User{Provider: "okta", Subject: "00u-race", CreatedAt: later, UpdatedAt: later}
				err := users.Provision(ctx, &v)
				ids[i] = v.ID
				return err
			})
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("provision %d of %d: %v", i+1, n, err)
			}
			if ids[i] != ids[0] || ids[i] == 0 {
				t.Fatalf("provision %d got user %d, the first %d", i+1, ids[i], ids[0])
			}
		}
		var rows int64
		if err := db.Gorm.Table("users").Where("subject = ?", "00u-race").Count(&rows).Error; err != nil || rows != 1 {
			t.Fatalf("rows: %d %v", rows, err)
		}
	})
}

// TestFault02_ConcurrentSetGroupsKeepOneSignIn: sign-ins of one user that
// store their groups at the same time all succeed, and the user is left
// with the groups of exactly one of them, never a mixture.
func TestFault02_ConcurrentSetGroupsKeepOneSignIn(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		users := models.NewUserStore(db)
		now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		u := models.User{Provider: "okta", Subject: "00u-g", CreatedAt: now, UpdatedAt: now}
		if err := users.Create(ctx, &u); err != nil {
			t.Fatal(err)
		}
		if err := users.SetGroups(ctx, u.ID, []string{"old-1", "old-2"}); err != nil {
			t.Fatal(err)
		}
		const n = 40
		// Every set shares "common", so two writers collide on it; each
		// also has a group of its own, so a mixture shows.
		sets := make([][]string, n)
		for i := range sets {
			sets[i] = []string{"common", fmt.Sprintf("own-%02d", i)}
		}
		errs := together(n, func(i int) error {
			if i%2 == 0 {
				// Alone, as its own transaction.
				return users.SetGroups(ctx, u.ID, sets[i])
			}
			// In a transaction, as a sign-in stores them.
			return db.Tx(ctx, func(ctx context.Context) error { return users.SetGroups(ctx, u.ID, sets[i]) })
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("set groups %d of %d: %v", i+1, n, err)
			}
		}
		got, err := users.Groups(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, set := range sets {
			want := slices.Clone(set)
			slices.Sort(want)
			if slices.Equal(got, want) {
				return
			}
		}
		t.Fatalf("groups %s are no one sign-in's", strings.Join(got, ","))
	})
}
