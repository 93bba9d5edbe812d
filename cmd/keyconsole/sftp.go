package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"keyconsole/app"
	"keyconsole/app/core"
	"keyconsole/kms"
	"keyconsole/models"
	"keyconsole/services/sshkeys"
)

// authorizedKeysOptions prefixes every line `keyconsole authorized-keys`
// prints: no forwarding, no pty, no ~/.ssh/rc for SFTP accounts.
const authorizedKeysOptions = "restrict"

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
	sec := core.NewSecrets(a.core, kms.NewEnvelope(kr, kms.Options{}))
	store := models.NewSSHKeyStore(a.db)
	sftpCfg := app.SFTPConfig{Addr: cfg.SFTPAddr, DataDir: cfg.DataDir}
	auth, err := app.NewSFTPAuthenticator(a.core, store, sftpCfg)
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
	err = app.RunSFTPServer(ctx, a.core, sec, store, auth, sftpCfg)
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
