package models_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
)

// BenchmarkTouchLastUsed10000 measures one flush of last-use times for
// 10,000 credentials, as the token endpoint's tracker writes them once a
// minute under load.
func BenchmarkTouchLastUsed10000(b *testing.B) {
	db := modelstest.Open(b, models.SQLite)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	a := models.Agency{Slug: "bench-flush", Name: "Bench flush", CreatedAt: now, UpdatedAt: now}
	if err := models.NewAgencyStore(db).Create(ctx, &a); err != nil {
		b.Fatal(err)
	}
	s := models.NewAPIClientStore(db)
	used := map[int64]time.Time{}
	if err := db.Tx(ctx, func(ctx context.Context) error {
		for i := range 10_000 {
			c := newCredential(a.ID, fmt.Sprintf("c%d", i), "staging", fmt.Sprintf("ecd_stg_%020d", i), fmt.Sprintf("n%d", i), now)
			if err := s.Create(ctx, c); err != nil {
				return err
			}
			used[c.ID] = now
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		at := now.Add(time.Duration(i+1) * time.Second)
		for id := range used {
			used[id] = at
		}
		if err := s.TouchLastUsed(ctx, used); err != nil {
			b.Fatal(err)
		}
	}
}
