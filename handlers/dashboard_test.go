package handlers_test

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"strings"
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
	pages := handlers.NewAPICredentials(st.h, st.api, "")
	st.tiles = []handlers.TileSource{pages.Tiles, handlers.NewWebhooks(st.h, st.hooks).Tiles, st.hyg.Tiles, handlers.NewSSHKeys(st.h, st.keys).Tiles}
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
	for _, d := range modelstest.Dialects() {
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

// boundaryOffsets are the distances from a policy cutoff the boundary
// data set puts times at.
var boundaryOffsets = []time.Duration{-24 * time.Hour, -time.Second, -time.Millisecond, -500 * time.Microsecond, -time.Microsecond, -time.Nanosecond, 0,
	time.Nanosecond, time.Microsecond, 500 * time.Microsecond, time.Millisecond, time.Second, 24 * time.Hour}

// seedBoundaries inserts API credentials, SSH keys and webhook endpoints
// (in the agency and, to be left out, in the other one) whose times lie at
// and around every cutoff of the policy at st.now, in UTC and in other
// zones, some revoked, expired, disabled or without a secret. On SQLite some
// times are rewritten in the other text forms SQLite and the driver read.
func (st *dashStack) seedBoundaries(t *testing.T, p policy.Policy, n int) {
	t.Helper()
	ctx := context.Background()
	r := mrand.New(mrand.NewPCG(7, uint64(n)))
	zones := []*time.Location{time.UTC, time.UTC, time.FixedZone("EST", -5*3600), time.FixedZone("IST", 5*3600+1800)}
	near := func(typ string, bases ...string) time.Time {
		c := p.Cutoffs(typ, st.now)
		var at time.Time
		switch bases[r.IntN(len(bases))] {
		case "overdue":
			at = c.Overdue
		case "due":
			at = c.DueSoon
		case "unused":
			at = c.Unused
		case "now":
			at = c.Now
		case "old":
			at = st.now.Add(-400 * 24 * time.Hour)
		}
		return at.Add(boundaryOffsets[r.IntN(len(boundaryOffsets))]).In(zones[r.IntN(len(zones))])
	}
	maybe := func(pct int, f func() time.Time) *time.Time {
		if r.IntN(100) >= pct {
			return nil
		}
		v := f()
		return &v
	}
	api := policy.TypeAPICredential
	for i := range n {
		agency := st.agency.ID
		if i%10 == 9 {
			agency = st.other.ID
		}
		c := models.APICredential{AgencyID: agency, Name: fmt.Sprintf("Boundary %04d", i), Environment: []string{"staging", "production"}[i%2],
			ClientID: fmt.Sprintf("ecd_b_%06d", i), SecretHash: []byte("0123456789abcdef0123456789abcdef"), PepperID: "p1", SecretVersion: 1,
			CreatedAt: near(api, "overdue", "due", "unused", "now", "old"), UpdatedAt: st.now,
			RotatedAt:  maybe(40, func() time.Time { return near(api, "overdue", "due") }),
			LastUsedAt: maybe(60, func() time.Time { return near(api, "unused", "now") }),
			ExpiresAt:  maybe(20, func() time.Time { return near(api, "now") }),
			RevokedAt:  maybe(10, func() time.Time { return near(api, "now", "old") }),
		}
		if err := st.db.Gorm.WithContext(ctx).Create(&c).Error; err != nil {
			t.Fatal(err)
		}
	}
	ssh := policy.TypeSSHKey
	keys := models.NewSSHKeyStore(st.db)
	var accounts []models.SFTPAccount
	for _, a := range []models.Agency{st.agency, st.agency, st.other} {
		acc := models.SFTPAccount{AgencyID: a.ID, Name: a.Slug + "-" + strconv.Itoa(len(accounts)), Environment: []string{models.EnvProd, models.EnvStg}[len(accounts)%2], CreatedAt: st.now}
		if err := keys.CreateAccount(ctx, &acc); err != nil {
			t.Fatal(err)
		}
		accounts = append(accounts, acc)
	}
	for i := range n / 2 {
		acc := accounts[i%len(accounts)]
		k := models.SSHKey{AgencyID: acc.AgencyID, AccountID: acc.ID, KeyType: "ssh-ed25519", Bits: 256, Fingerprint: "SHA256:boundary" + strconv.Itoa(i),
			PublicKey: "ssh-ed25519 AAAAboundary" + strconv.Itoa(i), CreatedAt: near(ssh, "overdue", "due", "unused", "now", "old"),
			LastUsedAt: maybe(60, func() time.Time { return near(ssh, "unused", "now") }),
			ExpiresAt:  maybe(20, func() time.Time { return near(ssh, "now") }),
			ExpiredAt:  maybe(5, func() time.Time { return near(ssh, "now") }),
			RevokedAt:  maybe(10, func() time.Time { return near(ssh, "now", "old") }),
		}
		if err := st.db.Gorm.WithContext(ctx).Create(&k).Error; err != nil {
			t.Fatal(err)
		}
	}
	hook := policy.TypeWebhookSecret
	hooks := models.NewWebhookStore(st.db)
	for i := range n / 4 {
		agency := st.agency.ID
		if i%10 == 9 {
			agency = st.other.ID
		}
		e := models.WebhookEndpoint{AgencyID: agency, Environment: "staging", Name: "Boundary hook " + strconv.Itoa(i), URL: "https://hooks.example.gov/b" + strconv.Itoa(i),
			EventTypes: "court_date.scheduled", Enabled: r.IntN(5) != 0, SecretVersion: int64(r.IntN(6)),
			CreatedAt: near(hook, "overdue", "due", "unused", "now", "old"), UpdatedAt: st.now,
			SecretSetAt:    maybe(70, func() time.Time { return near(hook, "overdue", "due") }),
			LastDeliveryAt: maybe(60, func() time.Time { return near(hook, "unused", "now") }),
		}
		if err := hooks.CreateEndpoint(ctx, &e); err != nil {
			t.Fatal(err)
		}
	}
	if st.db.Dialect == models.SQLite {
		// The other forms SQLite's time functions and the driver both read:
		// a T between date and time, Z for UTC, no zone (UTC), whole seconds.
		forms := []string{"2006-01-02T15:04:05.999999999Z", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999-07:00", "2006-01-02 15:04:05-07:00"}
		for i, col := range []string{"created_at", "last_used_at", "rotated_at", "expires_at"} {
			for j, form := range forms {
				var rows []models.APICredential
				if err := st.db.Gorm.Where(col + " IS NOT NULL").Order("id").Offset(7*i + 31*j).Limit(25).Find(&rows).Error; err != nil {
					t.Fatal(err)
				}
				for _, c := range rows {
					v := map[string]*time.Time{"created_at": &c.CreatedAt, "last_used_at": c.LastUsedAt, "rotated_at": c.RotatedAt, "expires_at": c.ExpiresAt}[col]
					zone := zones[r.IntN(len(zones))]
					if !strings.HasSuffix(form, "-07:00") {
						zone = time.UTC
					}
					text := v.In(zone).Format(form)
					if form == "2006-01-02 15:04:05-07:00" {
						// Whole seconds: keep the stored time what was written.
						text = v.Truncate(time.Second).In(zone).Format(form)
					}
					if err := st.db.Gorm.Exec("UPDATE api_credentials SET "+col+" = ? WHERE id = ?", text, c.ID).Error; err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	exp := st.now.Add(10 * 24 * time.Hour)
	if err := st.pols.SetIdPSecret(ctx, policy.IdPSecretChange{AgencyID: st.agency.ID, Actor: audit.Actor{Type: audit.ActorSystem, ID: "test"}, Provider: "okta",
		ProviderLabel: "Okta", ProviderKind: "okta", ExpiresAt: &exp}); err != nil {
		t.Fatal(err)
	}
}

// plainTiles are the dashboard's credential figures as counted before
// the database counted them: every item listed and measured in Go.
func (st *dashStack) plainTiles(t *testing.T) map[string]views.DashboardTile {
	t.Helper()
	ctx := context.Background()
	out := map[string]views.DashboardTile{}
	list, err := st.api.List(ctx, st.agency.ID)
	if err != nil {
		t.Fatal(err)
	}
	sum := apiclients.SummaryOf(list)
	at := views.DashboardTile{Label: "API credentials", Value: strconv.Itoa(sum.Active), Link: "/a/demo-county/api-credentials", Hint: "active"}
	if sum.Overdue > 0 || sum.DueSoon > 0 {
		at.Hint = strconv.Itoa(sum.Overdue) + " overdue, " + strconv.Itoa(sum.DueSoon) + " due soon for rotation"
		at.Warn = sum.Overdue > 0
	}
	out[at.Label] = at
	rep, _, err := st.inv.Report(ctx, st.agency.ID)
	if err != nil {
		t.Fatal(err)
	}
	var overdue, soon int
	for _, r := range rep.Overdue {
		if r.Type != inventory.TypeIdPSecret {
			overdue++
		}
	}
	for _, r := range rep.DueSoon {
		if r.Type != inventory.TypeIdPSecret {
			soon++
		}
	}
	out["Overdue credentials"] = views.DashboardTile{Label: "Overdue credentials", Value: strconv.Itoa(overdue), Warn: overdue > 0, Link: "/a/demo-county/hygiene#overdue",
		Hint: fmt.Sprintf("%d due soon, %d never used, %d unused", soon, len(rep.NeverUsed), len(rep.Unused))}
	ov, err := st.keys.Overview(ctx, st.agency.ID)
	if err != nil {
		t.Fatal(err)
	}
	ks := sshkeys.SummaryOf(ov)
	hint := strconv.Itoa(len(ov.Accounts)) + " SFTP " + map[bool]string{true: "account", false: "accounts"}[len(ov.Accounts) == 1]
	if ks.Overdue > 0 || ks.DueSoon > 0 {
		hint += "; " + strconv.Itoa(ks.Overdue) + " overdue, " + strconv.Itoa(ks.DueSoon) + " due soon"
	}
	out["SSH keys"] = views.DashboardTile{Label: "SSH keys", Value: strconv.Itoa(ks.Active), Hint: hint, Link: "/a/demo-county/ssh-keys", Warn: ks.Overdue > 0}
	return out
}

// TestFault05_DashboardCountsEqualThePlainVersion holds the counts the
// database makes for the dashboard equal to listing every credential and
// measuring it with policy.Evaluate, on both databases, for a data set with
// times at and around every cutoff of the policy.
func TestFault05_DashboardCountsEqualThePlainVersion(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		p := policy.Policy{MaxAgeDays: map[string]int{policy.TypeAPICredential: 30, policy.TypeSSHKey: 200, policy.TypeWebhookSecret: 60},
			DueSoonDays: 10, UnusedDays: 45, MinRSABits: 3072, IdPWarningDays: 20}
		if err := policy.Validate(p); err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 6, 1, 12, 0, 0, 123456000, time.UTC)
		st := newDashStack(t, db, p, now)
		st.seedBoundaries(t, p, 1200)
		ctx := context.Background()

		// Each source's database count against Evaluate over its list.
		tally, err := st.inv.Tally(ctx, st.agency.ID)
		if err != nil {
			t.Fatal(err)
		}
		rep, _, err := st.inv.Report(ctx, st.agency.ID)
		if err != nil {
			t.Fatal(err)
		}
		plain := rep.Tally()
		for _, typ := range st.inv.Types() {
			if tally.ByType[typ] != plain.ByType[typ] {
				t.Errorf("%s: the database counts %+v, Evaluate %+v", typ, tally.ByType[typ], plain.ByType[typ])
			}
			t.Logf("%s: %+v", typ, plain.ByType[typ])
		}
		for _, typ := range []string{policy.TypeAPICredential, policy.TypeSSHKey, policy.TypeWebhookSecret} {
			if c := plain.ByType[typ]; c.Overdue == 0 || c.DueSoon == 0 || c.NeverUsed == 0 || c.Unused == 0 || c.Active == c.Overdue+c.DueSoon {
				t.Fatalf("%s: the data set misses a state: %+v", typ, c)
			}
		}
		list, err := st.api.List(ctx, st.agency.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := mustSummarize(t, st), apiclients.SummaryOf(list); got != want {
			t.Errorf("API credentials: summarized %+v, counted from the list %+v", got, want)
		}
		ov, err := st.keys.Overview(ctx, st.agency.ID)
		if err != nil {
			t.Fatal(err)
		}
		ks, err := st.keys.Summarize(ctx, st.agency.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := sshkeys.SummaryOf(ov); ks != want {
			t.Errorf("SSH keys: summarized %+v, counted from the overview %+v", ks, want)
		}

		// The dashboard shows what it showed when it counted in Go.
		tiles, err := st.dashboard(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := st.plainTiles(t)
		seen := 0
		for _, tile := range tiles {
			if w, ok := want[tile.Label]; ok {
				seen++
				if tile != w {
					t.Errorf("tile %q: %+v, before %+v", tile.Label, tile, w)
				}
			}
		}
		if seen != len(want) {
			t.Errorf("the dashboard shows %d of the %d credential tiles: %+v", seen, len(want), tiles)
		}
	})
}

func mustSummarize(t *testing.T, st *dashStack) apiclients.Summary {
	t.Helper()
	s, err := st.api.Summarize(context.Background(), st.agency.ID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
