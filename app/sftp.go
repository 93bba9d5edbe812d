package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/ssh"

	"keyconsole/app/core"
	"keyconsole/kms"
	"keyconsole/models"
	"keyconsole/services/policy"
	"keyconsole/services/secrets"
	"keyconsole/services/sshkeys"
	"keyconsole/sftpd"
)

// expirySweepInterval is how often expired SSH keys are recorded and audited.
const expirySweepInterval = time.Minute

// hostKeyRetry is how long the SFTP server waits before asking KMS again for
// its host key while KMS is unavailable.
const hostKeyRetry = 5 * time.Second

// SFTPConfig is where the SFTP server listens (empty: no server) and the
// data directory whose sftp/ subdirectory holds the account directories.
type SFTPConfig struct {
	Addr    string
	DataDir string
}

// Root is the directory of the SFTP account directories.
func (c SFTPConfig) Root() string { return filepath.Join(c.DataDir, "sftp") }

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

// NewSFTPAuthenticator builds the authenticator of SFTP logins.
func NewSFTPAuthenticator(c core.Core, store *models.SSHKeyStore, cfg SFTPConfig) (*sshkeys.Authenticator, error) {
	auth, err := sshkeys.NewAuthenticator(c.DB, store, c.Recorder, sshkeys.AuthConfig{
		Root:   cfg.Root(),
		Logger: c.Log,
		Now:    c.Clock,
	})
	if err != nil {
		return nil, fmt.Errorf("sftp: %w", err)
	}
	return auth, nil
}

// RunSFTPServer loads (or creates) the shared host key, waiting while KMS is
// unavailable, then serves SFTP on KEYCONSOLE_SFTP_ADDR until ctx ends.
func RunSFTPServer(ctx context.Context, c core.Core, sec *secrets.Service, store *models.SSHKeyStore, auth *sshkeys.Authenticator, cfg SFTPConfig) error {
	log := c.Log.With("component", "sftp")
	var hostKey ssh.Signer
	for {
		var err error
		hostKey, err = sshkeys.LoadOrCreateHostKey(ctx, c.DB, store, sec, c.Recorder)
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
	srv, err := sftpd.New(sftpd.Config{Addr: cfg.Addr, HostKey: hostKey, Auth: sftpAuth{auth}, Logger: log})
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("KEYCONSOLE_SFTP_ADDR %s: %w", cfg.Addr, err)
	}
	go func() { _ = auth.Run(ctx) }()
	log.Info("sftp server started", "addr", ln.Addr().String(), "host_key", ssh.FingerprintSHA256(hostKey.PublicKey()),
		"host_key_type", hostKey.PublicKey().Type(), "root", cfg.Root())
	err = srv.Serve(ctx, ln)
	if errors.Is(err, sftpd.ErrServerClosed) {
		return nil
	}
	return err
}

// sshKeys is the SSH key service, the sweep that records expired keys and,
// unless the address is empty, the SFTP server.
type sshKeys struct {
	Service    *sshkeys.Service
	Collectors []prometheus.Collector
	Background []func(ctx context.Context) error
	Shutdown   func(ctx context.Context)
}

func newSSHKeys(c core.Core, sec *secrets.Service, pol policy.Source, cfg SFTPConfig) (sshKeys, error) {
	store := models.NewSSHKeyStore(c.DB)
	svc := core.NewSSHKeys(c, store, pol)
	out := sshKeys{
		Service: svc,
		Background: []func(ctx context.Context) error{func(ctx context.Context) error {
			return svc.RunExpirySweep(ctx, expirySweepInterval)
		}},
		Shutdown: func(context.Context) {},
	}
	if cfg.Addr == "" {
		c.Log.Info("sftp server disabled (KEYCONSOLE_SFTP_ADDR is empty)")
		return out, nil
	}
	auth, err := NewSFTPAuthenticator(c, store, cfg)
	if err != nil {
		return sshKeys{}, err
	}
	out.Collectors = sftpMetrics(auth)
	out.Background = append(out.Background, func(ctx context.Context) error {
		return RunSFTPServer(ctx, c, sec, store, auth, cfg)
	})
	out.Shutdown = func(ctx context.Context) {
		if err := auth.Close(ctx); err != nil {
			c.Log.Error("sftp: last write of key use or refusal records failed", "error", err)
		}
	}
	return out, nil
}
