package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"keyconsole/app/core"
	"keyconsole/models"
	"keyconsole/services/agencies"
	"keyconsole/services/audit"
)

// tool is the wired core shared by every command that touches the database.
type tool struct {
	cfg      *config
	log      *slog.Logger
	db       *models.DB
	agencies *models.AgencyStore
	users    *models.UserStore
	sessions *models.SessionStore
	audits   *models.AuditStore
	recorder *audit.Recorder
	agencySv *agencies.Service
	clock    func() time.Time
	closers  []func()
	// core is the same stores and services, as the app package builds on them.
	core core.Core
}

func newLogger(cfg *config, w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	switch strings.ToLower(cfg.LogLevel) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// openApp opens the database (migrating it when migrate is set) and builds the
// stores and core services.
func openApp(ctx context.Context, cfg *config, log *slog.Logger, migrate bool) (*tool, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	db, err := models.Open(ctx, models.DBConfig{URL: cfg.DatabaseURL})
	if err != nil {
		return nil, errors.New(redactErr(err.Error(), cfg.DatabaseURL))
	}
	// A full disk (or a read-only database) refuses every write with 503;
	// the log says so once per episode, with the database's error.
	db.OnStorage(func(err error) {
		log.Error("database storage is full: every write is refused (503, nothing changed) until space is freed", "error", err)
	}, func() {
		log.Info("database storage takes writes again")
	})
	a := &tool{cfg: cfg, log: log, db: db, clock: time.Now}
	a.closers = append(a.closers, func() { _ = db.Close() })
	if migrate {
		applied, err := db.Migrate(ctx)
		if err != nil {
			a.close()
			return nil, err
		}
		if len(applied) > 0 {
			log.Info("migrations applied", "versions", applied)
		}
	}
	a.core = core.New(db, a.clock, log)
	a.agencies, a.users, a.sessions, a.audits = a.core.Agencies, a.core.Users, a.core.Sessions, a.core.Audits
	a.recorder, a.agencySv = a.core.Recorder, a.core.AgencySvc
	return a, nil
}

func (a *tool) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

// cliActor is the audit actor for commands run on the server's shell.
func cliActor() audit.Actor {
	name := os.Getenv("USER")
	if name == "" {
		name = "cli"
	}
	return audit.Actor{Type: audit.ActorSystem, ID: "cli", Name: "cli:" + name}
}

// redactDSN hides a database password for display.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

func redactErr(msg, dsn string) string {
	u, err := url.Parse(dsn)
	if err == nil && u.User != nil {
		if pw, has := u.User.Password(); has && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}

// loadOrCreateSecretFile returns the contents of a secret file, creating it
// with fresh random content (0600) when allowed and missing.
func loadOrCreateSecretFile(path string, create bool) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		st, serr := os.Stat(path)
		if serr == nil && st.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("%s is readable by other users (mode %v); chmod 600 it", path, st.Mode().Perm())
		}
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) || !create {
		return "", err
	}
	raw := make([]byte, 48)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	v := base64.RawURLEncoding.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		return "", err
	}
	return v, nil
}
