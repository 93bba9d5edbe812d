package sshkeys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
	"keyconsole/services/policy"
)

// testClock is a settable clock shared by a test's services.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Now().UTC().Truncate(time.Second)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// policies gives agencies listed in minRSA their own minimum RSA size and
// every other agency the default policy.
type policies struct{ minRSA map[int64]int }

func (p policies) Policy(_ context.Context, agencyID int64) (policy.Policy, error) {
	pol := policy.Default()
	if n, ok := p.minRSA[agencyID]; ok {
		pol.MinRSABits = n
	}
	return pol, nil
}

// fixture is a migrated database with two agencies: Alpha (prod and stg
// accounts, default policy) and Beta (prod account, RSA 2048 allowed).
type fixture struct {
	db             *models.DB
	store          *models.SSHKeyStore
	rec            *audit.Recorder
	audits         *models.AuditStore
	clock          *testClock
	svc            *Service
	alpha, beta    models.Agency
	alphaProd      models.SFTPAccount
	alphaStg       models.SFTPAccount
	betaProd       models.SFTPAccount
	admin, betaAdm audit.Actor
}

func newFixture(t testing.TB, db *models.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{db: db, store: models.NewSSHKeyStore(db), audits: models.NewAuditStore(db), clock: newTestClock()}
	f.rec = audit.NewRecorder(db, f.audits, f.clock.Now)
	agencies := models.NewAgencyStore(db)
	for _, a := range []*models.Agency{{Slug: "alpha", Name: "Alpha"}, {Slug: "beta", Name: "Beta"}} {
		a.CreatedAt, a.UpdatedAt = f.clock.Now(), f.clock.Now()
		if err := agencies.Create(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if f.alpha, err = agencies.BySlug(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	if f.beta, err = agencies.BySlug(ctx, "beta"); err != nil {
		t.Fatal(err)
	}
	f.svc = NewService(db, f.store, f.rec, policies{minRSA: map[int64]int{f.beta.ID: 2048}}, f.clock.Now, nil)
	f.admin = audit.Actor{Type: audit.ActorUser, ID: "7", Name: "Ada Admin"}
	f.betaAdm = audit.Actor{Type: audit.ActorUser, ID: "8", Name: "Ben Admin"}
	origin := audit.Origin{SourceIP: "127.0.0.1", RequestID: "test"}
	if f.alphaProd, err = f.svc.CreateAccount(ctx, f.admin, origin, f.alpha, models.EnvProd); err != nil {
		t.Fatal(err)
	}
	if f.alphaStg, err = f.svc.CreateAccount(ctx, f.admin, origin, f.alpha, models.EnvStg); err != nil {
		t.Fatal(err)
	}
	if f.betaProd, err = f.svc.CreateAccount(ctx, f.betaAdm, origin, f.beta, models.EnvProd); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) events(t testing.TB, action string) []models.AuditEvent {
	t.Helper()
	var evs []models.AuditEvent
	if err := f.db.Gorm.Where("action = ?", action).Order("id").Find(&evs).Error; err != nil {
		t.Fatal(err)
	}
	return evs
}

func (f *fixture) keyCount(t testing.TB) int64 {
	t.Helper()
	var n int64
	if err := f.db.Gorm.Model(&models.SSHKey{}).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *fixture) upload(t testing.TB, acc models.SFTPAccount, input []byte, expires *time.Time) models.SSHKey {
	t.Helper()
	actor := f.admin
	if acc.AgencyID == f.beta.ID {
		actor = f.betaAdm
	}
	k, err := f.svc.Upload(context.Background(), actor, audit.Origin{RequestID: "test"}, acc.AgencyID, acc.ID, input, expires)
	if err != nil {
		t.Fatalf("upload to %s: %v", acc.Name, err)
	}
	return k
}

// keyPair is a key made by ssh-keygen: the private key file and its public key.
type keyPair struct {
	path string
	pub  []byte
	key  ssh.PublicKey
}

func makeKey(t testing.TB, dir, name string, args ...string) keyPair {
	t.Helper()
	path := filepath.Join(dir, name)
	if out, err := execKeygen(append([]string{"-q", "-N", "", "-C", name + "@keyconsole.test", "-f", path}, args...)...); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{path: path, pub: pub, key: key}
}

// dumpDatabase returns every value of every column of every table as text,
// one line per row, for searching.
func dumpDatabase(t testing.TB, db *models.DB) string {
	t.Helper()
	q := "SELECT name FROM sqlite_master WHERE type = 'table'"
	if db.Dialect == models.Postgres {
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
	}
	var tables []string
	if err := db.Gorm.Raw(q).Scan(&tables).Error; err != nil {
		t.Fatal(err)
	}
	if len(tables) < 5 {
		t.Fatalf("found only tables %v", tables)
	}
	var out strings.Builder
	for _, table := range tables {
		rows, err := db.SQL().Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out.WriteString(table)
			for _, v := range vals {
				switch v := v.(type) {
				case []byte:
					out.WriteString("\t" + string(v))
				case nil:
					out.WriteString("\t")
				default:
					fmt.Fprintf(&out, "\t%v", v)
				}
			}
			out.WriteString("\n")
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return out.String()
}

// assertAbsent fails if any 12-character run of the key material of input
// appears in haystack.
func assertAbsent(t testing.TB, input []byte, haystack, where string) {
	t.Helper()
	const window = 12
	checked := 0
	for _, line := range material(input) {
		for i := 0; i+window <= len(line); i += 4 {
			checked++
			if strings.Contains(haystack, line[i:i+window]) {
				t.Fatalf("%s contains %q from the private key", where, line[i:i+window])
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d fragments checked: the private key sample is too small", checked)
	}
}

func TestCreateAccount(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		if f.alphaProd.Name != "alpha-prod" || f.alphaStg.Name != "alpha-stg" || f.betaProd.Name != "beta-prod" {
			t.Fatalf("names %q %q %q", f.alphaProd.Name, f.alphaStg.Name, f.betaProd.Name)
		}
		if f.alphaProd.CreatedByID == nil || *f.alphaProd.CreatedByID != 7 || f.alphaProd.CreatedByName != "Ada Admin" {
			t.Errorf("created by %v %q", f.alphaProd.CreatedByID, f.alphaProd.CreatedByName)
		}
		for _, env := range []string{"prod", "dev", "", "prod-2"} {
			_, err := f.svc.CreateAccount(ctx, f.admin, audit.Origin{}, f.alpha, env)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Fields["environment"] == "" {
				t.Errorf("CreateAccount(%q): err = %v, want a ValidationError on environment", env, err)
			}
		}
		evs := f.events(t, audit.ActionSFTPAccountCreate)
		if len(evs) != 3 || evs[0].TargetName != "alpha-prod" || evs[0].AgencyID != f.alpha.ID || evs[2].AgencyID != f.beta.ID {
			t.Errorf("account audit records %+v", evs)
		}
	})
}

func TestUploadAccepted(t *testing.T) {
	dir := t.TempDir()
	ed := makeKey(t, dir, "ed", "-t", "ed25519")
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := newFixture(t, db)
		exp := f.clock.Now().Add(30 * 24 * time.Hour)
		k := f.upload(t, f.alphaProd, ed.pub, &exp)
		want := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ed.key)))
		if k.PublicKey != want || k.Comment != "ed@keyconsole.test" || k.KeyType != "ssh-ed25519" || k.Bits != 256 ||
			k.Fingerprint != ssh.FingerprintSHA256(ed.key) || k.ExpiresAt == nil || !k.ExpiresAt.Equal(exp) ||
			k.CreatedByName != "Ada Admin" || k.CreatedByID == nil || *k.CreatedByID != 7 {
			t.Fatalf("stored key %+v", k)
		}
		got, err := f.store.Key(context.Background(), f.alpha.ID, k.ID)
		if err != nil || got.PublicKey != want || !got.ExpiresAt.Equal(exp) {
			t.Fatalf("read back %+v, %v", got, err)
		}
		evs := f.events(t, audit.ActionSSHKeyUpload)
		if len(evs) != 1 || evs[0].TargetName != k.Fingerprint || evs[0].AgencyID != f.alpha.ID || evs[0].ActorName != "Ada Admin" ||
			!strings.Contains(evs[0].Details, `"account":"alpha-prod"`) {
			t.Fatalf("upload audit records %+v", evs)
		}
		// Several keys may be active on one account at once.
		f.upload(t, f.alphaProd, makeKey(t, t.TempDir(), "second", "-t", "ecdsa").pub, nil)
		ov, err := f.svc.Overview(context.Background(), f.alpha.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ov.Accounts) != 2 || ov.Accounts[0].Account.Name != "alpha-prod" || ov.Accounts[0].Active != 2 {
			t.Fatalf("overview %+v", ov.Accounts)
		}
	})
}

func TestUploadRefusals(t *testing.T) {
	dir := t.TempDir()
	ed := makeKey(t, dir, "ed", "-t", "ed25519")
	edOther := makeKey(t, dir, "ed-other", "-t", "ed25519")
	edBeta := makeKey(t, dir, "ed-beta", "-t", "ed25519")
	ec := makeKey(t, dir, "ec", "-t", "ecdsa", "-b", "384")
	rsa2048 := makeKey(t, dir, "rsa2048", "-t", "rsa", "-b", "2048")
	ca := makeKey(t, dir, "ca", "-t", "ed25519")
	if out, err := execKeygen("-q", "-s", ca.path, "-I", "alice", "-n", "alice", ed.path+".pub"); err != nil {
		t.Fatalf("sign: %v %s", err, out)
	}
	cert, err := os.ReadFile(ed.path + "-cert.pub")
	if err != nil {
		t.Fatal(err)
	}
	private, err := os.ReadFile(makeKey(t, dir, "leaked", "-t", "ed25519").path)
	if err != nil {
		t.Fatal(err)
	}
	rsaPrivate, err := os.ReadFile(makeKey(t, dir, "leaked-rsa", "-t", "rsa", "-b", "3072", "-m", "PEM").path)
	if err != nil {
		t.Fatal(err)
	}
	xmss := "ssh-xmss@openssh.com AAAAFHNzaC14bXNzQG9wZW5zc2guY29tAAAAEDAxMjM0NTY3ODlhYmNkZWY= pq"

	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		f.upload(t, f.alphaProd, edOther.pub, nil)
		f.upload(t, f.betaProd, edBeta.pub, nil)
		past := f.clock.Now().Add(-time.Minute)
		tooFar := f.clock.Now().Add(MaxExpiry + 24*time.Hour)

		type tc struct {
			name     string
			account  models.SFTPAccount
			input    []byte
			expires  *time.Time
			code     string // refusal code, or "" for a validation error
			field    string
			contains []string
			excludes []string
		}
		cases := []tc{
			{name: "empty", account: f.alphaProd, input: []byte("  \n"), code: CodeEmpty},
			{name: "too large", account: f.alphaProd, input: bytes.Repeat([]byte("A"), MaxInputSize+1), code: CodeTooLarge, contains: []string{"16 KiB"}},
			{name: "malformed", account: f.alphaProd, input: []byte("not a key"), code: CodeMalformed},
			{name: "options", account: f.alphaProd, input: append([]byte("restrict "), ed.pub...), code: CodeOptions},
			{name: "two keys", account: f.alphaProd, input: append(append([]byte{}, ed.pub...), ec.pub...), code: CodeMultipleKeys},
			{name: "dsa", account: f.alphaProd, input: readFile(t, "testdata/dsa.pub"), code: CodeDSA},
			{name: "short rsa under the default policy", account: f.alphaProd, input: rsa2048.pub, code: CodeRSATooShort, contains: []string{"2048 bits", "minimum is 3072"}},
			{name: "certificate", account: f.alphaProd, input: cert, code: CodeCertificate},
			{name: "unsupported type", account: f.alphaProd, input: []byte(xmss), code: CodeUnsupportedType},
			{name: "openssh private key", account: f.alphaProd, input: private, code: CodePrivateKey, contains: []string{"treat this key pair as exposed"}},
			{name: "pem rsa private key", account: f.betaProd, input: rsaPrivate, code: CodePrivateKey, contains: []string{"treat this key pair as exposed"}},
			{name: "duplicate on the same account", account: f.alphaProd, input: edOther.pub, code: CodeDuplicate, contains: []string{"already active on the SFTP account alpha-prod"}},
			{name: "duplicate on another account of the agency", account: f.alphaStg, input: edOther.pub, code: CodeDuplicate, contains: []string{"already active on the SFTP account alpha-prod", "separate key pair for alpha-stg"}},
			{name: "duplicate with another comment", account: f.alphaStg, input: []byte(strings.Fields(string(edOther.pub))[0] + " " + strings.Fields(string(edOther.pub))[1] + " renamed"), code: CodeDuplicate, contains: []string{"alpha-prod"}, excludes: []string{"beta"}},
			{name: "expiry in the past", account: f.alphaProd, input: ec.pub, expires: &past, field: "expires_on"},
			{name: "expiry too far", account: f.alphaProd, input: ec.pub, expires: &tooFar, field: "expires_on"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := f.keyCount(t)
				actor := f.admin
				if c.account.AgencyID == f.beta.ID {
					actor = f.betaAdm
				}
				_, err := f.svc.Upload(ctx, actor, audit.Origin{RequestID: "r-" + c.name}, c.account.AgencyID, c.account.ID, c.input, c.expires)
				if err == nil {
					t.Fatal("upload accepted")
				}
				msg := err.Error()
				if c.code == "" {
					var ve *ValidationError
					if !errors.As(err, &ve) || ve.Fields[c.field] == "" {
						t.Fatalf("err = %v (%T), want a ValidationError on %s", err, err, c.field)
					}
				} else {
					var re *RefusalError
					if !errors.As(err, &re) {
						t.Fatalf("err = %v (%T), want a *RefusalError", err, err)
					}
					if re.Code != c.code || re.PrivateKey != (c.code == CodePrivateKey) {
						t.Fatalf("code %q private %v, want %q (%s)", re.Code, re.PrivateKey, c.code, re.Message)
					}
					msg = re.Message
				}
				for _, s := range c.contains {
					if !strings.Contains(msg, s) {
						t.Errorf("message %q lacks %q", msg, s)
					}
				}
				for _, s := range c.excludes {
					if strings.Contains(msg, s) {
						t.Errorf("message %q names %q", msg, s)
					}
				}
				if after := f.keyCount(t); after != before {
					t.Errorf("%d keys stored after a refusal, %d before", after, before)
				}
			})
		}

		// The private keys were refused with an audit record naming the
		// account only, and nothing of them is anywhere in the database.
		evs := f.events(t, audit.ActionSSHKeyPrivateRefused)
		if len(evs) != 2 {
			t.Fatalf("%d private key refusal records, want 2", len(evs))
		}
		for i, acc := range []models.SFTPAccount{f.alphaProd, f.betaProd} {
			e := evs[i]
			if e.AgencyID != acc.AgencyID || e.TargetType != audit.TargetSFTPAccount || e.TargetName != acc.Name || e.Outcome != audit.OutcomeDenied ||
				e.Reason != CodePrivateKey || e.Details != "" || strings.Contains(e.TargetName+e.TargetID+e.Reason, "SHA256") {
				t.Errorf("private key refusal record %+v", e)
			}
		}
		dump := dumpDatabase(t, db)
		assertAbsent(t, private, dump, "the database")
		assertAbsent(t, rsaPrivate, dump, "the database")
		if got := f.svc.Stats().PrivateKeysRefused; got != 2 {
			t.Errorf("PrivateKeysRefused = %d", got)
		}
		if evs := f.events(t, audit.ActionSSHKeyUpload); len(evs) != 2 {
			t.Errorf("%d upload records, want 2", len(evs))
		}
	})
}

func TestUploadMinimumRSAFromPolicy(t *testing.T) {
	rsa2048 := makeKey(t, t.TempDir(), "rsa2048", "-t", "rsa", "-b", "2048")
	db := modelstest.Open(t, models.SQLite)
	f := newFixture(t, db)
	k := f.upload(t, f.betaProd, rsa2048.pub, nil)
	if k.Bits != 2048 || k.KeyType != ssh.KeyAlgoRSA {
		t.Fatalf("stored %+v", k)
	}
	if _, err := f.svc.Upload(context.Background(), f.admin, audit.Origin{}, f.alpha.ID, f.alphaProd.ID, rsa2048.pub, nil); err == nil {
		t.Fatal("Alpha (default policy) accepted a 2048-bit RSA key")
	}
}

func TestUploadOtherAgencyAccount(t *testing.T) {
	ed := makeKey(t, t.TempDir(), "ed", "-t", "ed25519")
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		if _, err := f.svc.Upload(ctx, f.admin, audit.Origin{}, f.alpha.ID, f.betaProd.ID, ed.pub, nil); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("upload to another agency's account: err = %v, want ErrNotFound", err)
		}
		k := f.upload(t, f.betaProd, ed.pub, nil)
		if err := f.svc.Revoke(ctx, f.admin, audit.Origin{}, f.alpha.ID, k.ID, ""); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("revoke of another agency's key: err = %v, want ErrNotFound", err)
		}
		if _, _, err := f.svc.Key(ctx, f.alpha.ID, k.ID); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("Key of another agency: err = %v", err)
		}
	})
}

func TestRevoke(t *testing.T) {
	dir := t.TempDir()
	a := makeKey(t, dir, "a", "-t", "ed25519")
	b := makeKey(t, dir, "b", "-t", "ed25519")
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		ka := f.upload(t, f.alphaProd, a.pub, nil)
		f.upload(t, f.alphaProd, b.pub, nil)
		if err := f.svc.Revoke(ctx, f.admin, audit.Origin{RequestID: "rv"}, f.alpha.ID, ka.ID, ""); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.Revoke(ctx, f.admin, audit.Origin{}, f.alpha.ID, ka.ID, ""); !errors.Is(err, ErrNotActive) {
			t.Fatalf("second revoke: err = %v, want ErrNotActive", err)
		}
		got, _, err := f.svc.Key(ctx, f.alpha.ID, ka.ID)
		if err != nil || got.Status(f.clock.Now()) != models.SSHKeyRevoked || got.RevokedByName != "Ada Admin" {
			t.Fatalf("revoked key %+v, %v", got, err)
		}
		evs := f.events(t, audit.ActionSSHKeyRevoke)
		if len(evs) != 1 || evs[0].TargetName != ka.Fingerprint || evs[0].RequestID != "rv" {
			t.Fatalf("revoke records %+v", evs)
		}
		lines, err := f.svc.AuthorizedKeys(ctx, "alpha-prod", "")
		if err != nil || len(lines) != 1 || !strings.HasPrefix(lines[0], strings.TrimSpace(string(ssh.MarshalAuthorizedKey(b.key)))) {
			t.Fatalf("authorized keys after revoke %q, %v", lines, err)
		}
		// The revoked key can be uploaded again, to any account.
		f.upload(t, f.alphaStg, a.pub, nil)
	})
}

func TestExpirySweepAuditsOncePerKey(t *testing.T) {
	dir := t.TempDir()
	var pubs [][]byte
	for i := range 5 {
		pubs = append(pubs, makeKey(t, dir, fmt.Sprintf("k%d", i), "-t", "ed25519").pub)
	}
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		soon := f.clock.Now().Add(time.Hour)
		later := f.clock.Now().Add(48 * time.Hour)
		var expiring []models.SSHKey
		for i, p := range pubs[:3] {
			acc := f.alphaProd
			if i == 2 {
				acc = f.betaProd
			}
			expiring = append(expiring, f.upload(t, acc, p, &soon))
		}
		f.upload(t, f.alphaProd, pubs[3], &later)
		revoked := f.upload(t, f.alphaStg, pubs[4], &soon)
		if err := f.svc.Revoke(ctx, f.admin, audit.Origin{}, f.alpha.ID, revoked.ID, ""); err != nil {
			t.Fatal(err)
		}
		if n, err := f.svc.ExpireDue(ctx); err != nil || n != 0 {
			t.Fatalf("ExpireDue before expiry = %d, %v", n, err)
		}
		f.clock.Advance(time.Hour)

		// Two replicas sweep at once; each key is marked and audited once.
		other := NewService(db, models.NewSSHKeyStore(db), f.rec, policy.DefaultSource{}, f.clock.Now, nil)
		var wg sync.WaitGroup
		counts := make([]int, 2)
		errs := make([]error, 2)
		for i, s := range []*Service{f.svc, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				counts[i], errs[i] = s.ExpireDue(ctx)
			}()
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil || counts[0]+counts[1] != 3 {
			t.Fatalf("sweeps marked %v keys, errors %v; want 3 in all", counts, errs)
		}
		if n, err := f.svc.ExpireDue(ctx); err != nil || n != 0 {
			t.Fatalf("third sweep = %d, %v", n, err)
		}
		evs := f.events(t, audit.ActionSSHKeyExpired)
		if len(evs) != 3 {
			t.Fatalf("%d expiry records, want 3", len(evs))
		}
		var got []string
		for _, e := range evs {
			got = append(got, e.TargetName)
			if e.ActorType != audit.ActorSystem || e.Outcome != audit.OutcomeSuccess {
				t.Errorf("expiry record %+v", e)
			}
		}
		for _, k := range expiring {
			if !slices.Contains(got, k.Fingerprint) {
				t.Errorf("no expiry record for %s", k.Fingerprint)
			}
		}
		if evs[2].AgencyID != f.beta.ID && evs[0].AgencyID != f.beta.ID && evs[1].AgencyID != f.beta.ID {
			t.Errorf("Beta's key not audited in Beta's chain")
		}
		lines, err := f.svc.AuthorizedKeys(ctx, "alpha-prod", "restrict")
		if err != nil || len(lines) != 1 || !strings.HasPrefix(lines[0], "restrict ssh-ed25519 ") {
			t.Fatalf("authorized keys after expiry %q, %v", lines, err)
		}
	})
}

func TestUploadReplacesExpiredDuplicate(t *testing.T) {
	ed := makeKey(t, t.TempDir(), "ed", "-t", "ed25519")
	db := modelstest.Open(t, models.SQLite)
	f := newFixture(t, db)
	soon := f.clock.Now().Add(time.Hour)
	old := f.upload(t, f.alphaProd, ed.pub, &soon)
	f.clock.Advance(2 * time.Hour)
	k := f.upload(t, f.alphaProd, ed.pub, nil)
	if k.ID == old.ID {
		t.Fatal("no new key")
	}
	if evs := f.events(t, audit.ActionSSHKeyExpired); len(evs) != 1 || evs[0].TargetID != fmt.Sprint(old.ID) {
		t.Fatalf("expiry records %+v", evs)
	}
	if n, err := f.svc.ExpireDue(context.Background()); err != nil || n != 0 {
		t.Fatalf("sweep after replacement = %d, %v", n, err)
	}
}

func TestOverviewMeasuresAgainstPolicy(t *testing.T) {
	dir := t.TempDir()
	old := makeKey(t, dir, "old", "-t", "ed25519")
	fresh := makeKey(t, dir, "fresh", "-t", "ed25519")
	db := modelstest.Open(t, models.SQLite)
	f := newFixture(t, db)
	ctx := context.Background()
	ko := f.upload(t, f.alphaProd, old.pub, nil)
	f.clock.Advance(360 * 24 * time.Hour)
	kf := f.upload(t, f.alphaProd, fresh.pub, nil)
	if err := f.store.TouchLastUsed(ctx, map[int64]time.Time{kf.ID: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	ov, err := f.svc.Overview(ctx, f.alpha.ID)
	if err != nil {
		t.Fatal(err)
	}
	rows := ov.Accounts[0].Keys
	if len(rows) != 2 || rows[0].Key.ID != kf.ID || rows[1].Key.ID != ko.ID {
		t.Fatalf("rows %+v", rows)
	}
	if rows[0].Eval.AgeState != policy.AgeOK || rows[0].Eval.UseState != policy.UseRecent {
		t.Errorf("fresh key evaluated %+v", rows[0].Eval)
	}
	if rows[1].Eval.AgeState != policy.AgeDueSoon || rows[1].Eval.UseState != policy.UseNever {
		t.Errorf("old key evaluated %+v", rows[1].Eval)
	}
	if !rows[1].Eval.DueAt.Equal(ko.CreatedAt.Add(365 * 24 * time.Hour)) {
		t.Errorf("due at %v", rows[1].Eval.DueAt)
	}
}

func TestAuthorizedKeyLinesParse(t *testing.T) {
	dir := t.TempDir()
	var pairs []keyPair
	for i, args := range [][]string{{"-t", "ed25519"}, {"-t", "ecdsa"}, {"-t", "rsa", "-b", "3072"}, {"-t", "ed25519"}} {
		pairs = append(pairs, makeKey(t, dir, fmt.Sprintf("k%d", i), args...))
	}
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		soon := f.clock.Now().Add(time.Hour)
		var keys []models.SSHKey
		for i, p := range pairs {
			var exp *time.Time
			if i == 3 {
				exp = &soon
			}
			keys = append(keys, f.upload(t, f.alphaProd, p.pub, exp))
		}
		if err := f.svc.Revoke(ctx, f.admin, audit.Origin{}, f.alpha.ID, keys[1].ID, ""); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Hour) // keys[3] expires, not yet swept
		lines, err := f.svc.AuthorizedKeys(ctx, "alpha-prod", "restrict")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range lines {
			key, comment, options, rest, err := ssh.ParseAuthorizedKey([]byte(l))
			if err != nil || len(rest) != 0 {
				t.Fatalf("line %q: %v", l, err)
			}
			if !slices.Equal(options, []string{"restrict"}) {
				t.Errorf("options %q", options)
			}
			got = append(got, ssh.FingerprintSHA256(key)+" "+comment)
		}
		want := []string{keys[0].Fingerprint + " k0@keyconsole.test", keys[2].Fingerprint + " k2@keyconsole.test"}
		if !slices.Equal(got, want) {
			t.Fatalf("authorized keys %q, want %q", got, want)
		}
		if lines, err := f.svc.AuthorizedKeys(ctx, "nobody-prod", "restrict"); err != nil || len(lines) != 0 {
			t.Fatalf("unknown account: %q, %v", lines, err)
		}
	})
}

// execKeygen runs ssh-keygen and returns its combined output.
func execKeygen(args ...string) ([]byte, error) {
	var out bytes.Buffer
	cmd := exec.Command("ssh-keygen", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}
