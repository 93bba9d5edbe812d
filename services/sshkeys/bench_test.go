package sshkeys

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/time/rate"

	"keyconsole/models"
	"keyconsole/models/modelstest"
)

// benchSizes are the numbers of active keys in the database that
// authentication is measured against, in the same run.
var benchSizes = []int{10, 100000}

// BenchmarkAuthenticate measures one public-key authentication (the
// decision the SFTP server asks for when a client offers a key) with 10 and
// with 100,000 active keys in the database (spread over 1,000 accounts of
// 500 agencies). The lookup goes through the unique index on active
// fingerprints, so both should cost about the same.
func BenchmarkAuthenticate(b *testing.B) {
	for _, d := range modelstest.Dialects() {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/keys=%d", d, n), func(b *testing.B) {
				db := modelstest.Open(b, d)
				f := newFixture(b, db)
				lc := DefaultLimiterConfig()
				lc.AddrRate = rate.Inf
				a := newAuthenticator(b, f, AuthConfig{Limiter: lc})
				user := newGoKey(b, "user")
				k := f.upload(b, f.alphaProd, user.line, nil)
				seedKeys(b, f, n-1)
				assertKeyCount(b, f, int64(n))
				ctx := context.Background()
				pub := user.signer.PublicKey()
				b.ResetTimer()
				for b.Loop() {
					l, err := a.Authenticate(ctx, "alpha-prod", pub, "192.0.2.1:2222")
					if err != nil || l.KeyID != k.ID {
						b.Fatalf("authenticate: %v", err)
					}
				}
			})
		}
	}
}

// BenchmarkAuthorizedKeys measures the query behind `keyconsole
// authorized-keys USER` (OpenSSH's AuthorizedKeysCommand) for an account
// with 3 keys while 100,000 other keys of 1,000 accounts are in the
// database.
func BenchmarkAuthorizedKeys(b *testing.B) {
	for _, d := range modelstest.Dialects() {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/keys=%d", d, n), func(b *testing.B) {
				db := modelstest.Open(b, d)
				f := newFixture(b, db)
				for i := range 3 {
					f.upload(b, f.alphaProd, newGoKey(b, fmt.Sprintf("k%d", i)).line, nil)
				}
				seedKeys(b, f, n)
				assertKeyCount(b, f, int64(n+3))
				ctx := context.Background()
				b.ResetTimer()
				for b.Loop() {
					lines, err := AuthorizedKeyLines(ctx, f.store, "alpha-prod", "restrict", f.clock.Now())
					if err != nil || len(lines) != 3 || !strings.HasPrefix(lines[0], "restrict ssh-ed25519 ") {
						b.Fatalf("authorized keys: %q, %v", lines, err)
					}
				}
			})
		}
	}
}

func assertKeyCount(tb testing.TB, f *fixture, want int64) {
	tb.Helper()
	var n int64
	if err := f.db.Gorm.Model(&models.SSHKey{}).Where("revoked_at IS NULL AND expired_at IS NULL").Count(&n).Error; err != nil {
		tb.Fatal(err)
	}
	if n != want {
		tb.Fatalf("%d active keys in the database, want %d", n, want)
	}
	// Fresh statistics, so PostgreSQL plans with the real table size.
	if f.db.Dialect == models.Postgres {
		if err := f.db.Gorm.Exec("ANALYZE ssh_keys").Error; err != nil {
			tb.Fatal(err)
		}
	} else if err := f.db.Gorm.Exec("ANALYZE").Error; err != nil {
		tb.Fatal(err)
	}
}
