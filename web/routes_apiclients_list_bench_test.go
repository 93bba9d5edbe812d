package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/policy"
)

// seedListCredentials inserts n credentials of the demo agency straight
// into the table, half staging and half production, some rotated, used,
// expiring, expired or revoked.
func seedListCredentials(tb testing.TB, st acStack, n int) {
	tb.Helper()
	// Times are whole days' offsets from today plus a fraction of a second, so
	// the page is the same all day long.
	now := time.Now().UTC().Truncate(24 * time.Hour).Add(-123456789 * time.Nanosecond).Truncate(time.Microsecond)
	rows := make([]models.APICredential, 0, n)
	for i := range n {
		created := now.Add(-time.Duration(n-i) * time.Hour)
		switch {
		case i%7 == 0:
			created = created.Add(-200 * 24 * time.Hour)
		case i%11 == 0:
			created = created.Add(-80 * 24 * time.Hour)
		}
		c := models.APICredential{
			AgencyID: st.demo.ID, Name: "integration " + strconv.Itoa(i), Environment: "staging",
			ClientID: "kc_bench_" + strconv.Itoa(i), SecretHash: []byte("0123456789abcdef0123456789abcdef"), PepperID: "v1",
			SecretVersion: 1, CreatedByName: "Ada Admin", CreatedAt: created, UpdatedAt: created,
		}
		if i%2 == 1 {
			c.Environment = "production"
		}
		if i%3 == 0 {
			r := created.Add(time.Hour)
			c.RotatedAt, c.RotatedByName = &r, "Ada Admin"
		}
		if i%4 == 0 {
			u := now.Add(-time.Duration(i) * time.Minute)
			c.LastUsedAt = &u
		}
		switch i % 10 {
		case 3:
			r := now.Add(-time.Minute)
			c.RevokedAt, c.RevokedByName = &r, "Ada Admin"
		case 5:
			e := now.Add(-time.Hour)
			c.ExpiresAt = &e
		case 7:
			e := now.Add(24 * time.Hour)
			c.ExpiresAt = &e
		}
		rows = append(rows, c)
	}
	if err := st.db.Gorm.CreateInBatches(rows, 200).Error; err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkAPICredentialListPage serves the list page of an agency with
// 10,000 credentials through the whole console stack (session, agency
// scope, stored policies, rendering) to a signed-in admin.
func BenchmarkAPICredentialListPage(b *testing.B) {
	db := modelstest.Open(b, models.SQLite)
	pols := policy.NewService(db, models.NewPolicyStore(db), nil, nil)
	st := newACStack(b, db, acOptions{Policies: pols})
	seedListCredentials(b, st, 10_000)
	cookie, err := st.web.jar.encodeSessionToken(st.sessions["demo-admins"])
	if err != nil {
		b.Fatal(err)
	}
	get := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/a/demo-county/api-credentials", nil)
		req = req.WithContext(context.Background())
		req.AddCookie(&http.Cookie{Name: st.web.jar.sessionName, Value: cookie})
		rec := httptest.NewRecorder()
		st.web.Echo.ServeHTTP(rec, req)
		return rec
	}
	if r := get(); r.Code != http.StatusOK || strings.Count(r.Body.String(), "<tr data-credential=") != 50 {
		b.Fatalf("status %d, %d rows", r.Code, strings.Count(r.Body.String(), "<tr data-credential="))
	}
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		if r := get(); r.Code != http.StatusOK {
			b.Fatalf("status %d", r.Code)
		}
	}
	// CPU time (user and system, every thread of the process) is steadier
	// than ns/op on a machine that other work shares.
	b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
}

// processCPU is the CPU time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
