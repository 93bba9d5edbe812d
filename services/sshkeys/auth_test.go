package sshkeys

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"keyconsole/kms"
	"keyconsole/kms/local"
	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
	"keyconsole/services/secrets"
	"keyconsole/sftpd"
)

// sftpdAuth plugs an Authenticator into the SFTP server, as the command does.
type sftpdAuth struct{ a *Authenticator }

func (s sftpdAuth) AuthenticateKey(ctx context.Context, account string, key ssh.PublicKey, remote string) (sftpd.Identity, error) {
	l, err := s.a.Authenticate(ctx, account, key, remote)
	if err != nil {
		return sftpd.Identity{}, err
	}
	return sftpd.Identity{AccountID: l.AccountID, AgencyID: l.AgencyID, Account: l.Account, Root: l.Root, KeyFingerprint: l.Fingerprint, KeyID: l.KeyID}, nil
}

func (s sftpdAuth) LoginSucceeded(ctx context.Context, id sftpd.Identity, remote string) {
	s.a.LoginSucceeded(ctx, id.AccountID, id.AgencyID, id.Account, id.KeyFingerprint, remote)
}

func (s sftpdAuth) StillAuthorized(ctx context.Context, ids []sftpd.Identity) ([]bool, error) {
	keyIDs := make([]int64, len(ids))
	for i, id := range ids {
		keyIDs[i] = id.KeyID
	}
	return s.a.StillUsable(ctx, keyIDs)
}

func newAuthenticator(t testing.TB, f *fixture, cfg AuthConfig) *Authenticator {
	t.Helper()
	if cfg.Root == "" {
		cfg.Root = t.TempDir()
	}
	if cfg.Now == nil {
		cfg.Now = f.clock.Now
	}
	a, err := NewAuthenticator(f.db, f.store, f.rec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	return a
}

// goKey is an Ed25519 key made in Go: its signer and its public key line.
type goKey struct {
	signer ssh.Signer
	priv   ed25519.PrivateKey
	line   []byte
}

func newGoKey(t testing.TB, comment string) goKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	line := bytes.TrimSpace(ssh.MarshalAuthorizedKey(signer.PublicKey()))
	return goKey{signer: signer, priv: priv, line: append(line, []byte(" "+comment)...)}
}

func TestAuthenticateDecisions(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		root := t.TempDir()
		a := newAuthenticator(t, f, AuthConfig{Root: root})
		good, other, expiring, revoked, stranger := newGoKey(t, "good"), newGoKey(t, "other"), newGoKey(t, "expiring"), newGoKey(t, "revoked"), newGoKey(t, "stranger")
		kg := f.upload(t, f.alphaProd, good.line, nil)
		f.upload(t, f.betaProd, other.line, nil)
		soon := f.clock.Now().Add(time.Hour)
		f.upload(t, f.alphaProd, expiring.line, &soon)
		kr := f.upload(t, f.alphaProd, revoked.line, nil)
		if err := f.svc.Revoke(ctx, f.admin, audit.Origin{}, f.alpha.ID, kr.ID, ""); err != nil {
			t.Fatal(err)
		}

		l, err := a.Authenticate(ctx, "alpha-prod", good.signer.PublicKey(), "192.0.2.10:40000")
		if err != nil {
			t.Fatalf("active key refused: %v", err)
		}
		want := Login{KeyID: kg.ID, AccountID: f.alphaProd.ID, AgencyID: f.alpha.ID, Account: "alpha-prod",
			Root: filepath.Join(root, "alpha-prod"), Fingerprint: kg.Fingerprint}
		if l != want {
			t.Fatalf("login %+v, want %+v", l, want)
		}
		if _, err := a.Authenticate(ctx, "alpha-prod", expiring.signer.PublicKey(), "192.0.2.10:40001"); err != nil {
			t.Fatalf("key before its expiry refused: %v", err)
		}
		f.clock.Advance(time.Hour)

		refusals := []struct {
			name, account string
			key           ssh.PublicKey
			reason        string
		}{
			{"another agency's key", "alpha-prod", other.signer.PublicKey(), ReasonUnknownKey},
			{"key of alpha-prod on alpha-stg", "alpha-stg", good.signer.PublicKey(), ReasonWrongAccount},
			{"unknown key", "alpha-prod", stranger.signer.PublicKey(), ReasonUnknownKey},
			{"unknown key again", "alpha-prod", stranger.signer.PublicKey(), ReasonUnknownKey},
			{"revoked key", "alpha-prod", revoked.signer.PublicKey(), ReasonUnknownKey},
			{"expired key, not swept yet", "alpha-prod", expiring.signer.PublicKey(), ReasonExpired},
			{"unknown account", "ghost", good.signer.PublicKey(), ReasonWrongAccount},
		}
		for i, r := range refusals {
			_, err := a.Authenticate(ctx, r.account, r.key, fmt.Sprintf("192.0.2.10:%d", 41000+i))
			if !errors.Is(err, ErrRefused) || !strings.HasSuffix(err.Error(), r.reason) {
				t.Errorf("%s: err = %v, want a refusal for %s", r.name, err, r.reason)
			}
		}
		if err := a.fails.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		// The first refusal of each key is its own record, its repeats one
		// summary: the counts add up per account, reason and address.
		evs := f.events(t, audit.ActionSFTPLoginRefused)
		type summary struct {
			agency                  int64
			account, reason, source string
		}
		got := map[summary]int{}
		for _, e := range evs {
			for _, kv := range audit.DecodeDetails(e.Details) {
				if kv[0] == "count" {
					n, _ := strconv.Atoi(kv[1])
					got[summary{e.AgencyID, e.TargetName, e.Reason, e.SourceIP}] += n
				}
			}
		}
		wantSummaries := map[summary]int{
			{f.alpha.ID, "alpha-stg", ReasonWrongAccount, "192.0.2.10"}:          1,
			{f.alpha.ID, "alpha-prod", ReasonUnknownKey, "192.0.2.10"}:           4,
			{f.alpha.ID, "alpha-prod", ReasonExpired, "192.0.2.10"}:              1,
			{models.PlatformAgencyID, "ghost", ReasonWrongAccount, "192.0.2.10"}: 1,
		}
		if fmt.Sprint(got) != fmt.Sprint(wantSummaries) || len(evs) != len(wantSummaries)+1 {
			t.Fatalf("refusal counts %v in %d records, want %v in %d", got, len(evs), wantSummaries, len(wantSummaries)+1)
		}
		// Offers are not logins: nothing was recorded as used.
		if err := a.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if k, _ := f.store.Key(ctx, f.alpha.ID, kg.ID); k.LastUsedAt != nil {
			t.Errorf("last use recorded for an offered key: %v", k.LastUsedAt)
		}
		if evs := f.events(t, audit.ActionSFTPLogin); len(evs) != 0 {
			t.Errorf("%d login records for offers", len(evs))
		}
	})
}

func TestAuthenticateSlowsDownOneAddressOnly(t *testing.T) {
	db := modelstest.Open(t, models.SQLite)
	f := newFixture(t, db)
	ctx := context.Background()
	const hold = 150 * time.Millisecond
	lc := DefaultLimiterConfig()
	lc.PairFailureThreshold, lc.AddrFailureThreshold, lc.BaseDelay = 3, 6, 10*time.Second
	a := newAuthenticator(t, f, AuthConfig{BlockDelay: hold, Limiter: lc})
	prod, stg, beta, stranger := newGoKey(t, "prod"), newGoKey(t, "stg"), newGoKey(t, "beta"), newGoKey(t, "stranger")
	f.upload(t, f.alphaProd, prod.line, nil)
	f.upload(t, f.alphaStg, stg.line, nil)
	f.upload(t, f.betaProd, beta.line, nil)
	const x, y = "198.51.100.7", "203.0.113.9"

	attempt := func(account string, key goKey, addr string) (time.Duration, error) {
		start := time.Now()
		_, err := a.Authenticate(ctx, account, key.signer.PublicKey(), addr+":50000")
		return time.Since(start), err
	}
	for range 3 {
		if _, err := attempt("alpha-prod", stranger, x); !errors.Is(err, ErrRefused) {
			t.Fatalf("stranger accepted: %v", err)
		}
	}
	steps := []struct {
		name, account string
		key           goKey
		addr          string
		limited       bool
	}{
		{"valid key, blocked pair", "alpha-prod", prod, x, true},
		{"valid key, same address, other account", "alpha-stg", stg, x, false},
		{"valid key, other address", "alpha-prod", prod, y, false},
	}
	for _, s := range steps {
		d, err := attempt(s.account, s.key, s.addr)
		if s.limited {
			if !errors.Is(err, ErrRefused) || !strings.HasSuffix(err.Error(), ReasonRateLimited) {
				t.Fatalf("%s: err = %v, want rate limited", s.name, err)
			}
			if d < hold {
				t.Errorf("%s: refused after %v, want at least %v", s.name, d, hold)
			}
		} else if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	// Three more failures from x on another account reach the address limit:
	// x is refused for every account, y still gets in.
	for range 3 {
		if _, err := attempt("alpha-stg", stranger, x); !errors.Is(err, ErrRefused) {
			t.Fatalf("stranger accepted: %v", err)
		}
	}
	if _, err := attempt("beta-prod", beta, x); err == nil || !strings.HasSuffix(err.Error(), ReasonRateLimited) {
		t.Fatalf("blocked address let in: %v", err)
	}
	if _, err := attempt("beta-prod", beta, y); err != nil {
		t.Fatalf("other address refused: %v", err)
	}
	a.fails.Flush(ctx)
	var limited []models.AuditEvent
	for _, e := range f.events(t, audit.ActionSFTPLoginRefused) {
		if e.Reason == ReasonRateLimited {
			limited = append(limited, e)
		}
	}
	if len(limited) != 2 || limited[0].Outcome != audit.OutcomeDenied || limited[0].SourceIP != x {
		t.Fatalf("rate-limited summaries %+v", limited)
	}
}

// TestLoginRecordedOnlyAfterSignature drives the SFTP server with a client
// that offers a registered public key but cannot sign with it, then with
// OpenSSH's sftp holding the private key: only the second is a login.
func TestLoginRecordedOnlyAfterSignature(t *testing.T) {
	for _, tool := range []string{"sftp", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required (Debian package openssh-client): %v", tool, err)
		}
	}
	db := modelstest.Open(t, models.SQLite)
	f := newFixture(t, db)
	ctx := context.Background()
	root := t.TempDir()
	a := newAuthenticator(t, f, AuthConfig{Root: root, Now: time.Now})
	user := newGoKey(t, "user")
	k := f.upload(t, f.alphaProd, user.line, nil)
	addr, knownHosts := startSFTP(t, sftpdAuth{a})

	// The impostor knows the public key only.
	impostor := lyingSigner{pub: user.signer.PublicKey(), inner: newGoKey(t, "impostor").signer}
	_, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "alpha-prod", Auth: []ssh.AuthMethod{ssh.PublicKeys(impostor)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err == nil {
		t.Fatal("a client without the private key logged in")
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if evs := f.events(t, audit.ActionSFTPLogin); len(evs) != 0 {
		t.Fatalf("login recorded for a client that could not sign: %+v", evs)
	}
	if got, _ := f.store.Key(ctx, f.alpha.ID, k.ID); got.LastUsedAt != nil {
		t.Fatalf("last use recorded for a client that could not sign")
	}

	dir := t.TempDir()
	keyFile := filepath.Join(dir, "id_ed25519")
	block, err := ssh.MarshalPrivateKey(user.priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := runSFTP(t, dir, addr, knownHosts, keyFile, "alpha-prod", "put hello.txt\nls\n")
	if code != 0 || !strings.Contains(out, "hello.txt") {
		t.Fatalf("sftp exit %d: %s", code, out)
	}
	if b, err := os.ReadFile(filepath.Join(root, "alpha-prod", "hello.txt")); err != nil || string(b) != "hello\n" {
		t.Fatalf("uploaded file: %q, %v", b, err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	evs := f.events(t, audit.ActionSFTPLogin)
	if len(evs) != 1 || evs[0].TargetID != fmt.Sprint(k.ID) || evs[0].ActorType != audit.ActorSFTPAccount || evs[0].ActorName != "alpha-prod" ||
		evs[0].SourceIP != "127.0.0.1" || evs[0].AgencyID != f.alpha.ID {
		t.Fatalf("login records %+v", evs)
	}
	if got, _ := f.store.Key(ctx, f.alpha.ID, k.ID); got.LastUsedAt == nil {
		t.Fatal("last use not recorded after a login")
	}
}

// lyingSigner presents one public key and signs with another key.
type lyingSigner struct {
	pub   ssh.PublicKey
	inner ssh.Signer
}

func (s lyingSigner) PublicKey() ssh.PublicKey { return s.pub }

func (s lyingSigner) Sign(r io.Reader, data []byte) (*ssh.Signature, error) {
	return s.inner.Sign(r, data)
}

// startSFTP runs an SFTP server on 127.0.0.1 and returns its address and a
// known_hosts file for it.
func startSFTP(t *testing.T, auth sftpd.Authenticator) (addr, knownHosts string) {
	t.Helper()
	host := newGoKey(t, "host")
	srv, err := sftpd.New(sftpd.Config{HostKey: host.signer, Auth: auth, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("SFTP server did not stop")
		}
	})
	addr = ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	knownHosts = filepath.Join(t.TempDir(), "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%s %s", port, ssh.MarshalAuthorizedKey(host.signer.PublicKey()))
	if err := os.WriteFile(knownHosts, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return addr, knownHosts
}

// runSFTP runs OpenSSH sftp in batch mode and returns its combined output
// and exit code.
func runSFTP(t *testing.T, dir, addr, knownHosts, keyFile, user, batch string) (string, int) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sftp", "-b", "-", "-P", port, "-i", keyFile, "-F", "/dev/null",
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile="+knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR",
		user+"@"+host)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(batch)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("sftp: %v", err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// replica is one console process's view of a shared database.
type replica struct {
	db    *models.DB
	store *models.SSHKeyStore
	sec   *secrets.Service
	rec   *audit.Recorder
}

func newReplica(t *testing.T, url string, master []byte) replica {
	t.Helper()
	db, err := models.Open(context.Background(), models.DBConfig{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	kr, err := local.New(master, "")
	if err != nil {
		t.Fatal(err)
	}
	rec := audit.NewRecorder(db, models.NewAuditStore(db), nil)
	return replica{db: db, store: models.NewSSHKeyStore(db), rec: rec,
		sec: secrets.NewService(db, kms.NewEnvelope(kr, kms.Options{}), models.NewSealedStore(db), rec, nil)}
}

func TestHostKeyCreatedOnceAcrossReplicas(t *testing.T) {
	for _, d := range modelstest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			url := modelstest.NewURL(t, d)
			master := make([]byte, local.MasterKeySize)
			if _, err := rand.Read(master); err != nil {
				t.Fatal(err)
			}
			replicas := []replica{newReplica(t, url, master), newReplica(t, url, master)}
			if _, err := replicas[0].db.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			const per = 4
			keys := make([]string, 2*per)
			errs := make([]error, 2*per)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range keys {
				r := replicas[i%2]
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					s, err := LoadOrCreateHostKey(context.Background(), r.db, r.store, r.sec, r.rec)
					errs[i] = err
					if err == nil {
						keys[i] = string(ssh.MarshalAuthorizedKey(s.PublicKey()))
					}
				}()
			}
			close(start)
			wg.Wait()
			for i := range keys {
				if errs[i] != nil {
					t.Fatalf("start %d: %v", i, errs[i])
				}
				if keys[i] != keys[0] {
					t.Fatalf("start %d presents %s, start 0 %s", i, keys[i], keys[0])
				}
			}
			if !strings.HasPrefix(keys[0], ssh.KeyAlgoED25519+" ") {
				t.Errorf("host key %q is not Ed25519", keys[0])
			}
			db := replicas[1].db
			var sealed, created int64
			db.Gorm.Model(&models.SealedSecret{}).Where("record_type = ?", "sftp_host_key").Count(&sealed)
			db.Gorm.Model(&models.AuditEvent{}).Where("action = ?", audit.ActionSFTPHostKeyCreate).Count(&created)
			if sealed != 1 || created != 1 {
				t.Fatalf("%d sealed host keys and %d creation records, want 1 and 1", sealed, created)
			}
			// A restart reads the same key.
			again := newReplica(t, url, master)
			s, err := LoadOrCreateHostKey(context.Background(), again.db, again.store, again.sec, again.rec)
			if err != nil || string(ssh.MarshalAuthorizedKey(s.PublicKey())) != keys[0] {
				t.Fatalf("after restart: %v", err)
			}
		})
	}
}

// seedKeys adds n active keys with random fingerprints, spread over other
// agencies' accounts at 100 keys per account (two accounts per agency), in
// batches.
func seedKeys(tb testing.TB, f *fixture, n int) {
	tb.Helper()
	const perAccount = 100
	accounts := make([]models.SFTPAccount, 0, n/perAccount+1)
	now := f.clock.Now()
	for i := 0; len(accounts)*perAccount < n; i++ {
		ag := models.Agency{Slug: fmt.Sprintf("bench-%d", i), Name: fmt.Sprintf("Bench %d", i), CreatedAt: now, UpdatedAt: now}
		if err := f.db.Gorm.Create(&ag).Error; err != nil {
			tb.Fatal(err)
		}
		for _, env := range Environments() {
			acc := models.SFTPAccount{AgencyID: ag.ID, Name: AccountName(ag.Slug, env), Environment: env, CreatedAt: now}
			if err := f.store.CreateAccount(context.Background(), &acc); err != nil {
				tb.Fatal(err)
			}
			accounts = append(accounts, acc)
		}
	}
	const batch = 1000
	buf := make([]byte, 32)
	for done := 0; done < n; done += batch {
		rows := make([]models.SSHKey, 0, batch)
		for i := done; i < n && i < done+batch; i++ {
			if _, err := rand.Read(buf); err != nil {
				tb.Fatal(err)
			}
			acc := accounts[i/perAccount]
			blob := ssh.Marshal(struct{ Name, Key string }{ssh.KeyAlgoED25519, string(buf)})
			fp := "SHA256:" + base64.RawStdEncoding.EncodeToString(buf)
			rows = append(rows, models.SSHKey{AgencyID: acc.AgencyID, AccountID: acc.ID, KeyType: ssh.KeyAlgoED25519, Bits: 256,
				Fingerprint: fp, PublicKey: ssh.KeyAlgoED25519 + " " + base64.StdEncoding.EncodeToString(blob),
				CreatedAt: now})
		}
		if err := f.db.Gorm.CreateInBatches(rows, 500).Error; err != nil {
			tb.Fatal(err)
		}
	}
}
