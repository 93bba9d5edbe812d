package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ssh"

	"keyconsole/kms"
	"keyconsole/models"
	"keyconsole/services/secrets"
	"keyconsole/services/sshkeys"
	"keyconsole/sftpd"
)

// authorizedKeysOptions prefixes every line `keyconsole authorized-keys`
// prints: no forwarding, no pty, no ~/.ssh/rc for SFTP accounts.
const authorizedKeysOptions = "restrict"

// hostKeyRetry is how long the SFTP server waits before asking KMS again for
// its host key while KMS is unavailable.
const hostKeyRetry = 5 * time.Second

// sftpAuth connects the SFTP server to the database-backed authenticator.
type sftpAuth struct{ a *sshkeys.Authenticator }

// AuthenticateKey accepts an active, unexpired key of the account.
func (s sftpAuth) AuthenticateKey(ctx context.Context, account string, key ssh.PublicKey, remoteAddr string) (sftpd.Identity, error) {
	l, err := s.a.Authenticate(ctx, account, key, remoteAddr)
	if err != nil {
		return sftpd.Identity{}, err
	}
	return sftpd.Identity{AccountID: l.AccountID, AgencyID: l.AgencyID, Account: l.Account, Root: l.Root, KeyFingerprint: l.Fingerprint, KeyID: l.KeyID}, nil
}

// LoginSucceeded audits a completed login and notes the key's use.
func (s sftpAuth) LoginSucceeded(ctx context.Context, id sftpd.Identity, remoteAddr string) {
	s.a.LoginSucceeded(ctx, id.AccountID, id.AgencyID, id.Account, id.KeyFingerprint, remoteAddr)
}

// StillAuthorized ends, through the server, the sessions of keys revoked or
// expired since their login, on whichever replica that happened.
func (s sftpAuth) StillAuthorized(ctx context.Context, ids []sftpd.Identity) ([]bool, error) {
	keyIDs := make([]int64, len(ids))
	for i, id := range ids {
		keyIDs[i] = id.KeyID
	}
	return s.a.StillUsable(ctx, keyIDs)
}

// newSFTPAuthenticator builds the authenticator; account directories live in
// <data dir>/sftp.
func newSFTPAuthenticator(a *app, store *models.SSHKeyStore) (*sshkeys.Authenticator, error) {
	auth, err := sshkeys.NewAuthenticator(a.db, store, a.recorder, sshkeys.AuthConfig{
		Root:   filepath.Join(a.cfg.DataDir, "sftp"),
		Logger: a.log,
		Now:    a.clock,
	})
	if err != nil {
		return nil, fmt.Errorf("sftp: %w", err)
	}
	return auth, nil
}

// runSFTPServer loads (or creates) the shared host key, waiting while KMS is
// unavailable, then serves SFTP on KEYCONSOLE_SFTP_ADDR until ctx ends.
func runSFTPServer(ctx context.Context, a *app, sec *secrets.Service, store *models.SSHKeyStore, auth *sshkeys.Authenticator) error {
	log := a.log.With("component", "sftp")
	var hostKey ssh.Signer
	for {
		var err error
		hostKey, err = sshkeys.LoadOrCreateHostKey(ctx, a.db, store, sec, a.recorder)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if !errors.Is(err, kms.ErrUnavailable) && !errors.Is(err, models.ErrUnavailable) && !errors.Is(err, models.ErrStorageFull) {
			return fmt.Errorf("sftp: host key: %w", err)
		}
		log.Warn("sftp server waits for its host key: encryption or database unavailable, or storage full", "error", err, "retry_in", hostKeyRetry.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(hostKeyRetry):
		}
	}
	srv, err := sftpd.New(sftpd.Config{Addr: a.cfg.SFTPAddr, HostKey: hostKey, Auth: sftpAuth{auth}, Logger: log})
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", a.cfg.SFTPAddr)
	if err != nil {
		return fmt.Errorf("KEYCONSOLE_SFTP_ADDR %s: %w", a.cfg.SFTPAddr, err)
	}
	go func() { _ = auth.Run(ctx) }()
	log.Info("sftp server started", "addr", ln.Addr().String(), "host_key", ssh.FingerprintSHA256(hostKey.PublicKey()),
		"host_key_type", hostKey.PublicKey().Type(), "root", filepath.Join(a.cfg.DataDir, "sftp"))
	err = srv.Serve(ctx, ln)
	if errors.Is(err, sftpd.ErrServerClosed) {
		return nil
	}
	return err
}

// cmdSFTP runs the SFTP server alone, for a replica that serves only SFTP.
func cmdSFTP(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stderr io.Writer) error {
	if len(args) > 0 {
		return usageError{"sftp takes no arguments; configure it with KEYCONSOLE_* variables"}
	}
	cfg, err := loadToolConfig(lookupEnv)
	if err != nil {
		return err
	}
	if cfg.SFTPAddr == "" {
		return errors.New("KEYCONSOLE_SFTP_ADDR is empty: there is no address to serve SFTP on")
	}
	log := newLogger(cfg, stderr)
	a, err := openApp(ctx, cfg, log, true)
	if err != nil {
		return err
	}
	defer a.close()
	kr, err := newKeyring(ctx, cfg)
	if err != nil {
		return err
	}
	resolveKeyring(ctx, kr, log)
	sec := secrets.NewService(a.db, kms.NewEnvelope(kr, kms.Options{}), models.NewSealedStore(a.db), a.recorder, a.clock)
	store := models.NewSSHKeyStore(a.db)
	auth, err := newSFTPAuthenticator(a, store)
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := auth.Close(closeCtx); err != nil {
			log.Error("sftp: last write of key use failed", "error", err)
		}
	}()
	err = runSFTPServer(ctx, a, sec, store, auth)
	log.Info("sftp server stopped")
	return err
}

// cmdAuthorizedKeys prints the active, unexpired keys of an SFTP account in
// authorized_keys form, for OpenSSH's AuthorizedKeysCommand: one indexed
// query, no migrations, nothing written. An unknown account prints nothing
// and succeeds.
func cmdAuthorizedKeys(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout io.Writer) error {
	if len(args) != 1 || args[0] == "" {
		return usageError{"usage: keyconsole authorized-keys USER"}
	}
	cfg, err := loadToolConfig(lookupEnv)
	if err != nil {
		return err
	}
	dialect, dsn, err := models.ParseDatabaseURL(cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("KEYCONSOLE_DATABASE_URL: %w", err)
	}
	if dialect == models.SQLite {
		// Opening a missing SQLite file would create an empty database.
		if _, err := os.Stat(dsn); err != nil {
			return fmt.Errorf("database %s: %w", dsn, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	db, err := models.Open(ctx, models.DBConfig{URL: cfg.DatabaseURL, MaxOpenConns: 1})
	if err != nil {
		return errors.New(redactErr(err.Error(), cfg.DatabaseURL))
	}
	defer db.Close()
	lines, err := sshkeys.AuthorizedKeyLines(ctx, models.NewSSHKeyStore(db), args[0], authorizedKeysOptions, time.Now())
	if err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	return w.Flush()
}
