package app

import (
	"log/slog"
	"time"

	"keyconsole/kms"
	"keyconsole/models"
	"keyconsole/services/agencies"
	"keyconsole/services/audit"
	"keyconsole/services/auth"
	"keyconsole/services/secrets"
)

// Core is what every command that touches the database shares: the stores
// of the core records, the audit recorder and the agency service.
type Core struct {
	DB        *models.DB
	Agencies  *models.AgencyStore
	Users     *models.UserStore
	Sessions  *models.SessionStore
	Audits    *models.AuditStore
	Recorder  *audit.Recorder
	AgencySvc *agencies.Service
	Clock     func() time.Time
	Log       *slog.Logger
}

// NewCore builds the core over an open database.
func NewCore(db *models.DB, clock func() time.Time, log *slog.Logger) Core {
	if clock == nil {
		clock = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := Core{
		DB: db, Clock: clock, Log: log,
		Agencies: models.NewAgencyStore(db),
		Users:    models.NewUserStore(db),
		Sessions: models.NewSessionStore(db),
		Audits:   models.NewAuditStore(db),
	}
	c.Recorder = audit.NewRecorder(db, c.Audits, clock)
	c.AgencySvc = agencies.NewService(db, c.Agencies, c.Recorder, clock)
	return c
}

// AuthConfig is how sign-in sessions are kept and who the platform
// operators are.
type AuthConfig struct {
	Operators       []string
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
}

// NewAuth builds the sign-in and session service.
func NewAuth(c Core, cfg AuthConfig) *auth.Service {
	return auth.NewService(c.DB, c.Users, c.Agencies, c.Sessions, c.Recorder, auth.Config{
		Operators:       cfg.Operators,
		IdleTimeout:     cfg.IdleTimeout,
		AbsoluteTimeout: cfg.AbsoluteTimeout,
		Clock:           c.Clock,
	})
}

// NewSecrets builds the secret service over an envelope of the keyring.
func NewSecrets(c Core, env *kms.Envelope) *secrets.Service {
	return secrets.NewService(c.DB, env, models.NewSealedStore(c.DB), c.Recorder, c.Clock)
}
