package models_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"keyconsole/models"
)

// TestSQLiteWritersInTwoProcessesWait opens the same SQLite file twice (as
// `serve` and a CLI command would) and writes from both at once: immediate
// transactions make the second writer wait instead of failing as locked.
func TestSQLiteWritersInTwoProcessesWait(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kc.db")
	a, err := models.Open(ctx, models.DBConfig{URL: path})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := models.Open(ctx, models.DBConfig{URL: path})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 20; i++ {
		for j, db := range []*models.DB{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- db.Tx(ctx, func(ctx context.Context) error {
					store := models.NewAgencyStore(db)
					if _, err := store.List(ctx); err != nil {
						return err
					}
					now := time.Now().UTC()
					return store.Create(ctx, &models.Agency{Slug: fmt.Sprintf("a-%d-%d", j, i), Name: "A", CreatedAt: now, UpdatedAt: now})
				})
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent writer failed: %v", err)
		}
	}
	list, err := models.NewAgencyStore(a).List(ctx)
	if err != nil || len(list) != 40 {
		t.Fatalf("agencies: %d %v", len(list), err)
	}
}
