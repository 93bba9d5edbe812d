package models_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
)

// TestAPIClientStorePageReadsListedFields checks a keyset page against
// Get: order, cursor, limit, environment and agency, and every listed
// field including the optional times.
func TestAPIClientStorePageReadsListedFields(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		s := models.NewAPIClientStore(db)
		demo, other := newAgency(t, db, "demo-county"), newAgency(t, db, "other-county")
		now := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
		var staging []int64
		for i := range 12 {
			env := "staging"
			if i%3 == 2 {
				env = "production"
			}
			name := []string{`quote " and back\ slash`, "tab\tnew\nline\x01", "ünïcödé ✓ 😀", "<b>&amp;</b>", "plain"}[i%5] + " " + strconv.Itoa(i)
			c := newCredential(demo.ID, name, env, "ecd_"+strconv.Itoa(i)+"_aaaaaaaaaaaaaaaa", "nonce-"+strconv.Itoa(i)+"-aaaaaaaaaaa", now.Add(time.Duration(i)*time.Hour))
			at := now.Add(time.Duration(i) * time.Minute)
			if i%2 == 0 {
				c.RotatedAt, c.RotatedByName = &at, "Ada Admin"
			}
			if i%4 == 0 {
				c.LastUsedAt = &at
			}
			if i%5 == 0 {
				c.ExpiresAt = &at
			}
			if i == 7 {
				c.RevokedAt, c.RevokedByName = &at, "Ada Admin"
			}
			if i == 4 {
				c.CreatedByName = "Zoë \"Z\" \\ Admin"
			}
			if err := s.Create(ctx, c); err != nil {
				t.Fatal(err)
			}
			if env == "staging" {
				staging = append(staging, c.ID)
			}
		}
		if err := s.Create(ctx, newCredential(other.ID, "elsewhere", "staging", "ecd_other_aaaaaaaaaaaaaaaa", "nonce-x-aaaaaaaaaaaa", now)); err != nil {
			t.Fatal(err)
		}
		sameTime := func(a, b *time.Time) bool { return a == nil && b == nil || a != nil && b != nil && a.Equal(*b) }
		var seen []int64
		before := int64(0)
		for {
			page, err := s.Page(ctx, demo.ID, "staging", before, 3)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range page {
				want, err := s.Get(ctx, demo.ID, c.ID)
				if err != nil {
					t.Fatal(err)
				}
				if c.AgencyID != demo.ID || c.Environment != "staging" || c.Name != want.Name || c.ClientID != want.ClientID || c.CreatedByName != want.CreatedByName ||
					!c.CreatedAt.Equal(want.CreatedAt) || !sameTime(c.RotatedAt, want.RotatedAt) || !sameTime(c.ExpiresAt, want.ExpiresAt) ||
					!sameTime(c.RevokedAt, want.RevokedAt) || !sameTime(c.LastUsedAt, want.LastUsedAt) {
					t.Errorf("page row %+v, want the fields of %+v", c, want)
				}
				seen = append(seen, c.ID)
			}
			if len(page) < 3 {
				break
			}
			before = page[len(page)-1].ID
		}
		if len(seen) != len(staging) {
			t.Fatalf("pages listed %v, want %v newest first", seen, staging)
		}
		for i, id := range seen {
			if id != staging[len(staging)-1-i] {
				t.Fatalf("pages listed %v, want %v newest first", seen, staging)
			}
		}
	})
}
