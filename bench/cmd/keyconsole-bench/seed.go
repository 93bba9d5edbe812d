package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"keyconsole/app/core"
	"keyconsole/kms"
	"keyconsole/kms/local"
	"keyconsole/models"
	"keyconsole/services/apiclients"
	"keyconsole/services/audit"
	"keyconsole/services/oauth"
	"keyconsole/services/policy"
	"keyconsole/services/secrets"
	"keyconsole/services/sshkeys"
)

// Sizes of the seeded data.
const (
	seedCredentials = 10_000
	seedAuditEvents = 1_000_000
	seedSSHKeysBig  = 100_000
	seedSSHKeysMini = 10
	// seedDashboardCredentials are Dashboard County's API credentials, for
	// the dashboard at 100,000 (Bench County's 10,000 are the other size).
	seedDashboardCredentials = 100_000
	// auditPage is the page size of the audit viewer; page 10,000 starts
	// after 9,999 full pages.
	auditPage   = 50
	auditPageNo = 10_000
	// seedVersion changes whenever the seeded data changes shape.
	seedVersion = 4
)

// Names in the seeded databases.
const (
	benchSlug     = "bench-county"
	benchName     = "Bench County"
	dashSlug      = "dashboard-county"
	dashName      = "Dashboard County"
	providerID    = "mock"
	adminGroup    = "bench-admins"
	sessionKeys   = "bench-session-key-0123456789abcdefghijklmnopqrstuv"
	loginAccount  = benchSlug + "-prod"
	metricsBearer = "bench-metrics-token-0123456789abcdefghijklmnop"
)

// seedInfo describes seeded databases; it is kept as seed.json in the work
// directory so later runs reuse them.
type seedInfo struct {
	Version      int     `json:"version"`
	BigDir       string  `json:"big_dir"`
	SmallDir     string  `json:"small_dir"`
	AgencyID     int64   `json:"agency_id"`
	Credentials  int     `json:"credentials"`
	DashAgencyID int64   `json:"dashboard_agency_id"`
	DashCreds    int     `json:"dashboard_credentials"`
	CredFile     string  `json:"cred_file"`
	AuditEvents  int64   `json:"audit_events"`
	AuditCursor  int64   `json:"audit_cursor"`
	SSHKeysBig   int64   `json:"ssh_keys_big"`
	SSHKeysSmall int64   `json:"ssh_keys_small"`
	LoginKeyFile string  `json:"login_key_file"`
	SeedSeconds  float64 `json:"seed_seconds"`
}

func (s seedInfo) bigDB() string   { return filepath.Join(s.BigDir, "keyconsole.db") }
func (s seedInfo) smallDB() string { return filepath.Join(s.SmallDir, "keyconsole.db") }

// seedAll seeds (or reuses) the two databases: "big" (10,000 API
// credentials and 1,000,000 audit events in Bench County, 100,000 API
// credentials in Dashboard County, 100,000 active SSH keys over 1,001 SFTP
// accounts) and "small" (the same agency with 10 active SSH keys).
func seedAll(ctx context.Context, work string, reseed bool, logf func(string, ...any)) (seedInfo, error) {
	stamp := filepath.Join(work, "seed.json")
	if !reseed {
		if b, err := os.ReadFile(stamp); err == nil {
			var s seedInfo
			if json.Unmarshal(b, &s) == nil && s.Version == seedVersion {
				logf("reusing seeded databases in %s (seeded in %.0f s; -reseed to seed again)", work, s.SeedSeconds)
				return s, nil
			}
		}
	}
	start := time.Now()
	if err := os.RemoveAll(work); err != nil {
		return seedInfo{}, err
	}
	s := seedInfo{Version: seedVersion, BigDir: filepath.Join(work, "big"), SmallDir: filepath.Join(work, "small"),
		CredFile: filepath.Join(work, "credentials.txt"), LoginKeyFile: filepath.Join(work, "login_ed25519")}
	for _, d := range []string{s.BigDir, s.SmallDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return s, err
		}
	}
	loginKey, err := newLoginKey(s.LoginKeyFile)
	if err != nil {
		return s, err
	}

	big, err := openSeedDB(ctx, s.bigDB())
	if err != nil {
		return s, err
	}
	defer big.db.Close()
	if s.AgencyID, err = big.agency(ctx, benchSlug, benchName); err != nil {
		return s, err
	}
	logf("seeding %d API credentials", seedCredentials)
	if err := big.credentials(ctx, s.AgencyID, seedCredentials, filepath.Join(s.BigDir, "master.key"), s.CredFile); err != nil {
		return s, fmt.Errorf("seed credentials: %w", err)
	}
	s.Credentials = seedCredentials
	logf("seeding %d API credentials of %s", seedDashboardCredentials, dashName)
	if s.DashAgencyID, err = big.agency(ctx, dashSlug, dashName); err != nil {
		return s, err
	}
	if err := big.dashboardCredentials(ctx, s.DashAgencyID, seedDashboardCredentials); err != nil {
		return s, fmt.Errorf("seed dashboard credentials: %w", err)
	}
	s.DashCreds = seedDashboardCredentials
	logf("seeding %d audit events with their hash chain", seedAuditEvents)
	t := time.Now()
	if err := big.auditEvents(ctx, s.AgencyID, seedAuditEvents); err != nil {
		return s, fmt.Errorf("seed audit events: %w", err)
	}
	logf("  %d audit events in %s", seedAuditEvents, time.Since(t).Round(time.Second))
	logf("seeding %d SSH keys", seedSSHKeysBig)
	if s.SSHKeysBig, err = big.sshKeys(ctx, s.AgencyID, loginKey, seedSSHKeysBig); err != nil {
		return s, fmt.Errorf("seed ssh keys: %w", err)
	}
	// No ANALYZE: the console never runs it, so its databases carry no
	// planner statistics, and with sqlite_stat4 samples SQLite compiles a
	// statement again on every new binding whose plan the samples could
	// change (a sixth of a token request's CPU when they were here).
	if s.AuditEvents, s.AuditCursor, err = auditCursor(ctx, big.db, s.AgencyID); err != nil {
		return s, err
	}

	small, err := openSeedDB(ctx, s.smallDB())
	if err != nil {
		return s, err
	}
	defer small.db.Close()
	smallAgency, err := small.agency(ctx, benchSlug, benchName)
	if err != nil {
		return s, err
	}
	if s.SSHKeysSmall, err = small.sshKeys(ctx, smallAgency, loginKey, seedSSHKeysMini); err != nil {
		return s, fmt.Errorf("seed ssh keys (small): %w", err)
	}
	s.SeedSeconds = time.Since(start).Seconds()
	b, _ := json.MarshalIndent(s, "", "  ")
	if err := os.WriteFile(stamp, b, 0o600); err != nil {
		return s, err
	}
	logf("seeded in %s", time.Since(start).Round(time.Second))
	return s, nil
}

// seedDB is one database being seeded through its stores and services.
type seedDB struct {
	db    *models.DB
	rec   *audit.Recorder
	clock func() time.Time
	// core is the console's shared stores and services (app/core), so the
	// seed goes through the services as the console builds them.
	core core.Core
}

func openSeedDB(ctx context.Context, path string) (*seedDB, error) {
	db, err := models.Open(ctx, models.DBConfig{URL: path})
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	clock := func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
	c := core.New(db, clock, nil)
	return &seedDB{db: db, rec: c.Recorder, clock: clock, core: c}, nil
}

var seedActor = audit.Actor{Type: audit.ActorSystem, ID: "bench", Name: "keyconsole-bench"}

// agency creates an agency (Bench County, Dashboard County) and maps the
// mock provider's bench-admins group to its admin role, through the
// agencies service.
func (s *seedDB) agency(ctx context.Context, slug, name string) (int64, error) {
	svc := s.core.AgencySvc
	ag, err := svc.Create(ctx, seedActor, audit.Origin{RequestID: "bench"}, slug, name)
	if err != nil {
		return 0, fmt.Errorf("create agency: %w", err)
	}
	if _, err := svc.Map(ctx, seedActor, audit.Origin{RequestID: "bench"}, ag.ID, providerID, adminGroup, models.RoleAdmin); err != nil {
		return 0, fmt.Errorf("map group: %w", err)
	}
	return ag.ID, nil
}

// credentials creates the API-secret pepper through the credential service
// (sealed with the local master key the server will use), then inserts n
// credentials whose secrets are hashed with it, and writes each
// credential's HTTP Basic authorization header to credFile.
func (s *seedDB) credentials(ctx context.Context, agencyID int64, n int, masterKey, credFile string) error {
	key, err := local.LoadOrCreateKeyFile(masterKey, true)
	if err != nil {
		return err
	}
	kr, err := local.New(key, "")
	if err != nil {
		return err
	}
	sec := core.NewSecrets(s.core, kms.NewEnvelope(kr, kms.Options{}))
	svc := core.NewAPIClients(s.core, sec, policy.DefaultSource{})
	if err := svc.LoadPepper(ctx); err != nil {
		return err
	}
	pepper, err := sec.Get(ctx, secrets.Ref{AgencyID: models.PlatformAgencyID, RecordType: apiclients.PepperRecordType, RecordID: apiclients.PepperID})
	if err != nil {
		return err
	}
	h, err := oauth.NewHasher(pepper)
	clear(pepper)
	if err != nil {
		return err
	}
	now := s.clock()
	var lines strings.Builder
	rows := make([]models.APICredential, 0, n)
	for i := range n {
		env := oauth.EnvStaging
		if i%2 == 1 {
			env = oauth.EnvProduction
		}
		id, err := oauth.GenerateClientID(env)
		if err != nil {
			return err
		}
		secret, err := oauth.GenerateClientSecret(env)
		if err != nil {
			return err
		}
		created := now.Add(-time.Duration(i%400) * 24 * time.Hour)
		rows = append(rows, models.APICredential{AgencyID: agencyID, Name: fmt.Sprintf("Integration %05d", i), Description: "Seeded for the benchmark suite",
			Environment: env, ClientID: id, SecretHash: h.Hash(secret.Reveal()), PepperID: apiclients.PepperID, SecretVersion: 1,
			CreatedByName: "Bench Seeder", CreatedAt: created, UpdatedAt: created})
		lines.WriteString("Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret.Reveal()))) + "\n")
	}
	if err := s.db.Tx(ctx, func(ctx context.Context) error {
		return s.db.Conn(ctx).CreateInBatches(rows, 500).Error
	}); err != nil {
		return err
	}
	return os.WriteFile(credFile, []byte(lines.String()), 0o600)
}

// dashboardCredentials inserts n API credentials whose secrets are never
// used (their hash is a placeholder), in every state the dashboard counts:
// ages over 400 days, every seventh rotated since, two in three used in the
// last 200 days, one in 13 revoked, one in 17 expiring within 30 days
// either side of now.
func (s *seedDB) dashboardCredentials(ctx context.Context, agencyID int64, n int) error {
	now := s.clock()
	day := 24 * time.Hour
	ptrAt := func(t time.Time) *time.Time { return &t }
	return s.db.Tx(ctx, func(ctx context.Context) error {
		rows := make([]models.APICredential, 0, 1000)
		for i := range n {
			env := oauth.EnvStaging
			if i%2 == 1 {
				env = oauth.EnvProduction
			}
			created := now.Add(-time.Duration(i%400)*day - time.Duration(i%86400)*time.Second)
			c := models.APICredential{AgencyID: agencyID, Name: fmt.Sprintf("Dashboard %06d", i), Environment: env,
				ClientID: fmt.Sprintf("ecd_dash_%012d", i), SecretHash: make([]byte, 32), PepperID: apiclients.PepperID, SecretVersion: 1,
				CreatedByName: "Bench Seeder", CreatedAt: created, UpdatedAt: created}
			if i%7 == 0 {
				c.RotatedAt = ptrAt(created.Add(now.Sub(created) / 2))
			}
			if i%3 != 0 {
				c.LastUsedAt = ptrAt(now.Add(-time.Duration(i%200)*day - time.Duration(i%3600)*time.Second))
			}
			if i%13 == 0 {
				c.RevokedAt = ptrAt(now.Add(-time.Duration(i%30) * day))
			}
			if i%17 == 0 {
				c.ExpiresAt = ptrAt(now.Add(time.Duration(i%60-30) * day))
			}
			rows = append(rows, c)
			if len(rows) == cap(rows) || i == n-1 {
				if err := s.db.Conn(ctx).CreateInBatches(rows, 500).Error; err != nil {
					return err
				}
				rows = rows[:0]
			}
		}
		return nil
	})
}

const insertEventSQL = `INSERT INTO audit_events (agency_id, seq, occurred_at, actor_type, actor_id, actor_name, action,
	target_type, target_id, target_name, outcome, reason, source_ip, user_agent, request_id, details, prev_hash, hash)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

var (
	genActors  = []string{"Ada Admin", "Rita Reviewer", "=HYPERLINK(\"http://evil.example\")", "@SUM(1+1)", "Zoë Ünal", "+1 555 0100", "-dash", "\tTabby"}
	genActions = []string{"auth.sign_in", "api_credential.create", "api_credential.rotate", "api_credential.revoke", "ssh_key.upload", "webhook.update", "auth.sign_out"}
	genOutcome = []string{audit.OutcomeSuccess, audit.OutcomeSuccess, audit.OutcomeSuccess, audit.OutcomeFailure, audit.OutcomeDenied}
)

// auditEvents appends n events to the agency's chain, computing each
// sequence number and hash as the Recorder does (audit.Hash over the
// previous hash), with prepared inserts in transactions of 5,000, and moves
// the chain head along.
func (s *seedDB) auditEvents(ctx context.Context, agencyID int64, n int) (err error) {
	store := models.NewAuditStore(s.db)
	prev, seq := audit.Genesis, int64(0)
	if h, err := store.Head(ctx, agencyID); err == nil {
		prev, seq = h.Hash, h.Seq
	} else if !errors.Is(err, models.ErrNotFound) {
		return err
	}
	// Bulk inserts go faster without the secondary indexes: they are
	// dropped here and made again, from their own definitions, at the end.
	var indexes []string
	if err := s.db.Gorm.WithContext(ctx).Raw("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_events' AND sql IS NOT NULL").Scan(&indexes).Error; err != nil {
		return err
	}
	for _, ix := range indexes {
		name := strings.Fields(ix)[2]
		if strings.EqualFold(name, "UNIQUE") || strings.EqualFold(name, "INDEX") {
			name = strings.Fields(ix)[3]
		}
		if err := s.db.Gorm.WithContext(ctx).Exec("DROP INDEX " + name).Error; err != nil {
			return fmt.Errorf("drop %s: %w", name, err)
		}
	}
	defer func() {
		for _, ix := range indexes {
			if ierr := s.db.Gorm.WithContext(context.WithoutCancel(ctx)).Exec(ix).Error; ierr != nil && err == nil {
				err = fmt.Errorf("recreate index: %w", ierr)
			}
		}
	}()
	start := s.clock().Add(-time.Duration(n+10) * 25 * time.Second)
	const batch = 5000
	buf := make([]models.AuditEvent, 0, batch)
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		last := buf[len(buf)-1]
		err := s.db.Tx(ctx, func(ctx context.Context) error {
			c := s.db.Conn(ctx)
			stmt, err := c.Statement.ConnPool.PrepareContext(ctx, insertEventSQL)
			if err != nil {
				return err
			}
			defer stmt.Close()
			for _, e := range buf {
				if _, err := stmt.ExecContext(ctx, e.AgencyID, e.Seq, e.OccurredAt, e.ActorType, e.ActorID, e.ActorName, e.Action,
					e.TargetType, e.TargetID, e.TargetName, e.Outcome, e.Reason, e.SourceIP, e.UserAgent, e.RequestID, e.Details,
					e.PrevHash, e.Hash); err != nil {
					return err
				}
			}
			return c.Save(&models.AuditHead{AgencyID: agencyID, Seq: last.Seq, Hash: last.Hash, UpdatedAt: last.OccurredAt}).Error
		})
		buf = buf[:0]
		return err
	}
	for i := range n {
		seq++
		e := models.AuditEvent{AgencyID: agencyID, Seq: seq, OccurredAt: start.Add(time.Duration(i) * 25 * time.Second).UTC().Truncate(time.Microsecond)}
		genEvent(i, &e)
		e.PrevHash = prev
		e.Hash = audit.Hash(&e)
		prev = e.Hash
		buf = append(buf, e)
		if len(buf) == batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// genEvent fills an event deterministically from its index with a mix of
// actors (some shaped like spreadsheet formulas), actions and outcomes.
func genEvent(i int, e *models.AuditEvent) {
	e.ActorType = audit.ActorUser
	e.ActorID = strconv.Itoa(i % len(genActors))
	e.ActorName = genActors[i%len(genActors)]
	e.Action = genActions[i%len(genActions)]
	e.Outcome = genOutcome[i%len(genOutcome)]
	e.TargetType = "api_credential"
	e.TargetID = fmt.Sprintf("cred-%d", i%97)
	e.TargetName = fmt.Sprintf("Nightly sync %d", i%97)
	if e.Outcome != audit.OutcomeSuccess {
		e.Reason = []string{"=1+1", "bad secret, \"quoted\"", "line\nbreak", "\rreturn"}[i%4]
	}
	e.SourceIP = fmt.Sprintf("10.0.%d.%d", i%200, i%250)
	e.UserAgent = "Mozilla/5.0 (bench) ☃"
	e.RequestID = fmt.Sprintf("req-%08d", i)
	e.Details = fmt.Sprintf(`{"n":"%d","note":"=cmd|' /C calc'!A0"}`, i)
}

// auditCursor returns the number of the agency's events and the "before"
// cursor of viewer page 10,000: the id of the last event of page 9,999.
func auditCursor(ctx context.Context, db *models.DB, agencyID int64) (int64, int64, error) {
	var count, id int64
	if err := db.Gorm.WithContext(ctx).Raw("SELECT COUNT(*) FROM audit_events WHERE agency_id = ?", agencyID).Scan(&count).Error; err != nil {
		return 0, 0, err
	}
	if err := db.Gorm.WithContext(ctx).Raw("SELECT id FROM audit_events WHERE agency_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
		agencyID, auditPage*(auditPageNo-1)-1).Scan(&id).Error; err != nil {
		return 0, 0, err
	}
	if id == 0 {
		return 0, 0, errors.New("audit cursor: not enough events for page 10,000")
	}
	return count, id, nil
}

// newLoginKey creates the Ed25519 key the SFTP logins use and writes its
// private half to path.
func newLoginKey(path string) (ssh.PublicKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	blk, err := ssh.MarshalPrivateKey(priv, "bench")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	return signer.PublicKey(), nil
}

func loadLoginKey(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ssh.ParsePrivateKey(b)
}

// sshKeys creates Bench County's two SFTP accounts with the login key in
// the production account, then fills the database up to total active keys:
// with more than 100 to go, over 100-key accounts of further agencies (two
// accounts each); otherwise in Bench County's staging account.
func (s *seedDB) sshKeys(ctx context.Context, agencyID int64, login ssh.PublicKey, total int) (int64, error) {
	store := models.NewSSHKeyStore(s.db)
	now := s.clock()
	var benchAccounts []models.SFTPAccount
	for _, env := range sshkeys.Environments() {
		acc := models.SFTPAccount{AgencyID: agencyID, Name: sshkeys.AccountName(benchSlug, env), Environment: env, CreatedByName: "Bench Seeder", CreatedAt: now}
		if err := store.CreateAccount(ctx, &acc); err != nil {
			return 0, err
		}
		benchAccounts = append(benchAccounts, acc)
	}
	keyRow := func(acc models.SFTPAccount, pub ssh.PublicKey, comment string) models.SSHKey {
		return models.SSHKey{AgencyID: acc.AgencyID, AccountID: acc.ID, KeyType: pub.Type(), Bits: 256, Fingerprint: ssh.FingerprintSHA256(pub),
			PublicKey: pub.Type() + " " + base64.StdEncoding.EncodeToString(pub.Marshal()), Comment: comment, CreatedByName: "Bench Seeder", CreatedAt: now}
	}
	if err := s.db.Gorm.WithContext(ctx).Create(ptr(keyRow(benchAccounts[0], login, "bench login"))).Error; err != nil {
		return 0, err
	}
	rest := total - 1
	var accounts []models.SFTPAccount
	if rest <= 100 {
		accounts = []models.SFTPAccount{benchAccounts[1]}
	} else {
		for i := 0; len(accounts)*100 < rest; i++ {
			ag := models.Agency{Slug: fmt.Sprintf("ssh-%04d", i), Name: fmt.Sprintf("SSH Agency %d", i), CreatedAt: now, UpdatedAt: now}
			if err := s.db.Gorm.WithContext(ctx).Create(&ag).Error; err != nil {
				return 0, err
			}
			for _, env := range sshkeys.Environments() {
				acc := models.SFTPAccount{AgencyID: ag.ID, Name: sshkeys.AccountName(ag.Slug, env), Environment: env, CreatedAt: now}
				if err := store.CreateAccount(ctx, &acc); err != nil {
					return 0, err
				}
				accounts = append(accounts, acc)
			}
		}
	}
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		rows := make([]models.SSHKey, 0, 1000)
		for i := range rest {
			pub, _, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			sp, err := ssh.NewPublicKey(pub)
			if err != nil {
				return err
			}
			rows = append(rows, keyRow(accounts[(i/100)%len(accounts)], sp, ""))
			if len(rows) == cap(rows) || i == rest-1 {
				if err := s.db.Conn(ctx).CreateInBatches(rows, 500).Error; err != nil {
					return err
				}
				rows = rows[:0]
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	var n int64
	err = s.db.Gorm.WithContext(ctx).Model(&models.SSHKey{}).Where("revoked_at IS NULL AND expired_at IS NULL").Count(&n).Error
	return n, err
}

func ptr[T any](v T) *T { return &v }
