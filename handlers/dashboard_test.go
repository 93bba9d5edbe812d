package handlers_test

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"syscall"
	"testing"
	"time"

	"keyconsole/handlers"
	"keyconsole/kms"
	"keyconsole/kms/local"
	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/apiclients"
	"keyconsole/services/audit"
	"keyconsole/services/inventory"
	"keyconsole/services/policy"
	"keyconsole/services/secrets"
	"keyconsole/services/sshkeys"
	"keyconsole/services/webhooks"
	"keyconsole/views"
)

// fixedPolicy is one agency policy for every agency.
type fixedPolicy struct{ p policy.Policy }

func (f fixedPolicy) Policy(context.Context, int64) (policy.Policy, error) { return f.p, nil }

// dashStack is the dashboard's tile sources wired as the console wires
// them, on a real database, at a fixed time.
type dashStack struct {
	db     *models.DB
	now    time.Time
	agency models.Agency
	other  models.Agency
	api    *apiclients.Service
	keys   *sshkeys.Service
	hooks  *webhooks.Service
	pols   *policy.Service
	inv    *inventory.Service
	h      *handlers.Handler
	hyg    *handlers.Hygiene
	tiles  []handlers.TileSource
}

func newDashStack(tb testing.TB, db *models.DB, p policy.Policy, now time.Time) *dashStack {
	tb.Helper()
	ctx := context.Background()
	clock := func() time.Time { return now }
	st := &dashStack{db: db, now: now}
	agencies := models.NewAgencyStore(db)
	for _, a := range []*models.Agency{{Slug: "demo-county", Name: "Demo County"}, {Slug: "other-county", Name: "Other County"}} {
		a.CreatedAt, a.UpdatedAt = now, now
		if err := agencies.Create(ctx, a); err != nil {
			tb.Fatal(err)
		}
	}
	var err error
	if st.agency, err = agencies.BySlug(ctx, "demo-county"); err != nil {
		tb.Fatal(err)
	}
	if st.other, err = agencies.BySlug(ctx, "other-county"); err != nil {
		tb.Fatal(err)
	}
	rec := audit.NewRecorder(db, models.NewAuditStore(db), clock)
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	kr, err := local.New(master, "")
	if err != nil {
		tb.Fatal(err)
	}
	sec := secrets.NewService(db, kms.NewEnvelope(kr, kms.Options{}), models.NewSealedStore(db), rec, clock)
	src := fixedPolicy{p}
	polStore := models.NewPolicyStore(db)
	st.pols = policy.NewService(db, polStore, rec, clock)
	st.api = apiclients.NewService(apiclients.Config{DB: db, Store: models.NewAPIClientStore(db), Agencies: agencies, Audit: rec, Secrets: sec, Policies: src, Clock: clock})
	st.keys = sshkeys.NewService(db, models.NewSSHKeyStore(db), rec, src, clock, nil)
	st.hooks = webhooks.NewService(db, models.NewWebhookStore(db), sec, rec, src, webhooks.Options{Clock: clock})
	st.inv = inventory.NewService(inventory.Config{DB: db, Audit: rec, Policies: src, Store: polStore, Clock: clock})
	st.inv.Add(inventory.APICredentials{Svc: st.api})
	st.inv.Add(inventory.SSHKeys{Svc: st.keys})
	st.inv.Add(inventory.Webhooks{Svc: st.hooks})
	providers := []handlers.IdPProvider{{ID: "okta", Label: "Okta", Kind: "okta"}}
	st.inv.Add(inventory.IdPSecrets{Expiries: st.pols.IdPSecrets, Providers: []inventory.Provider{{ID: "okta", Label: "Okta", Kind: "okta"}}})
	st.h = handlers.New(handlers.Deps{Clock: clock})
	st.hyg = &handlers.Hygiene{Handler: st.h, Policies: st.pols, Inventory: st.inv, Providers: providers}
	pages := &handlers.APICredentials{Handler: st.h, Svc: st.api, Policies: src}
	st.tiles = []handlers.TileSource{pages.Tile, handlers.WebhookTiles(st.hooks), st.hyg.Tiles, handlers.NewSSHKeys(st.h, st.keys).Tiles}
	return st
}

func (st *dashStack) scope() handlers.Scope {
	return handlers.Scope{Agency: st.agency, Role: models.RoleAdmin}
}

// dashboard runs every tile source as the dashboard does.
func (st *dashStack) dashboard(ctx context.Context) ([]views.DashboardTile, error) {
	var out []views.DashboardTile
	for _, t := range st.tiles {
		tiles, err := t(ctx, st.scope())
		if err != nil {
			return nil, err
		}
		out = append(out, tiles...)
	}
	return out, nil
}

// seedSpread inserts n API credentials of the agency spread over 400 days
// of ages, with rotations, uses, expiries and revocations among them, and a
// few SSH keys and webhook endpoints, in batches.
func (st *dashStack) seedSpread(tb testing.TB, n int) {
	tb.Helper()
	ctx := context.Background()
	r := mrand.New(mrand.NewPCG(uint64(n), 5))
	ago := func(max time.Duration) *time.Time {
		t := st.now.Add(-time.Duration(r.Int64N(int64(max))))
		return &t
	}
	rows := make([]models.APICredential, 0, 1000)
	flush := func() {
		if len(rows) == 0 {
			return
		}
		if err := st.db.Gorm.WithContext(ctx).CreateInBatches(rows, 250).Error; err != nil {
			tb.Fatal(err)
		}
		rows = rows[:0]
	}
	for i := range n {
		env := "staging"
		if i%2 == 1 {
			env = "production"
		}
		created := st.now.Add(-time.Duration(i%400)*24*time.Hour - time.Duration(r.Int64N(int64(24*time.Hour))))
		c := models.APICredential{AgencyID: st.agency.ID, Name: fmt.Sprintf("Integration %06d", i), Environment: env,
			ClientID: fmt.Sprintf("ecd_%s_%020d", env[:3], i), SecretHash: []byte("0123456789abcdef0123456789abcdef"), PepperID: "p1", SecretVersion: 1,
			CreatedByName: "Seeder", CreatedAt: created, UpdatedAt: created}
		if i%7 == 0 {
			c.RotatedAt = ago(created.Sub(st.now) * -1)
		}
		if i%3 != 0 {
			c.LastUsedAt = ago(200 * 24 * time.Hour)
		}
		if i%13 == 0 {
			c.RevokedAt = ago(30 * 24 * time.Hour)
		}
		if i%17 == 0 {
			exp := st.now.Add(time.Duration(r.Int64N(int64(60*24*time.Hour))) - 30*24*time.Hour)
			c.ExpiresAt = &exp
		}
		rows = append(rows, c)
		if len(rows) == cap(rows) {
			flush()
		}
	}
	flush()
	acc := models.SFTPAccount{AgencyID: st.agency.ID, Name: "demo-county-prod", Environment: models.EnvProd, CreatedAt: st.now}
	if err := models.NewSSHKeyStore(st.db).CreateAccount(ctx, &acc); err != nil {
		tb.Fatal(err)
	}
	for i := range 20 {
		k := models.SSHKey{AgencyID: st.agency.ID, AccountID: acc.ID, KeyType: "ssh-ed25519", Bits: 256, Fingerprint: "SHA256:spread" + strconv.Itoa(i),
			PublicKey: "ssh-ed25519 AAAA" + strconv.Itoa(i), CreatedAt: *ago(500 * 24 * time.Hour)}
		if i%2 == 0 {
			k.LastUsedAt = ago(120 * 24 * time.Hour)
		}
		if err := st.db.Gorm.WithContext(ctx).Create(&k).Error; err != nil {
			tb.Fatal(err)
		}
	}
	for i := range 5 {
		e := models.WebhookEndpoint{AgencyID: st.agency.ID, Environment: "staging", Name: "Hook " + strconv.Itoa(i), URL: "https://hooks.example.gov/" + strconv.Itoa(i),
			EventTypes: "court_date.scheduled", Enabled: i != 4, SecretVersion: 1, SecretSetAt: ago(300 * 24 * time.Hour), CreatedAt: st.now.Add(-400 * 24 * time.Hour), UpdatedAt: st.now}
		if err := models.NewWebhookStore(st.db).CreateEndpoint(ctx, &e); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkDashboardCounts measures the figures of an agency's dashboard
// (every tile source) with 10,000 and 100,000 API credentials.
func BenchmarkDashboardCounts(b *testing.B) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, d := range modelstest.Dialects {
		for _, n := range []int{10_000, 100_000} {
			b.Run(fmt.Sprintf("%s/%d", d, n), func(b *testing.B) {
				st := newDashStack(b, modelstest.Open(b, d), policy.Default(), now)
				st.seedSpread(b, n)
				ctx := context.Background()
				if _, err := st.dashboard(ctx); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				cpu := processCPU()
				for b.Loop() {
					if _, err := st.dashboard(ctx); err != nil {
						b.Fatal(err)
					}
				}
				// CPU time of the whole process (PostgreSQL's own work is not
				// in it) is steadier than ns/op on a shared machine.
				b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// processCPU is the CPU time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
