// Package core builds the stores and services every part of the console
// shares, from typed parameters: the command line, the web server (package
// app) and the test stacks call the same constructors.
package core

import (
	"log/slog"
	"net/netip"
	"time"

	"keyconsole/kms"
	"keyconsole/models"
	"keyconsole/services/agencies"
	"keyconsole/services/apiclients"
	"keyconsole/services/audit"
	"keyconsole/services/auth"
	"keyconsole/services/inventory"
	"keyconsole/services/policy"
	"keyconsole/services/reports"
	"keyconsole/services/secrets"
	"keyconsole/services/sshkeys"
	"keyconsole/services/webhooks"
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

// New builds the core over an open database.
func New(db *models.DB, clock func() time.Time, log *slog.Logger) Core {
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

// NewPolicies builds the stored-policy service, the policy source of every
// credential kind.
func NewPolicies(c Core) *policy.Service {
	return policy.NewService(c.DB, models.NewPolicyStore(c.DB), c.Recorder, c.Clock)
}

// NewAPIClients builds the API credential service. Listing needs no secret,
// so sec may be nil where nothing is issued (the command line).
func NewAPIClients(c Core, sec *secrets.Service, pol policy.Source) *apiclients.Service {
	return apiclients.NewService(apiclients.Config{
		DB: c.DB, Store: models.NewAPIClientStore(c.DB), Agencies: c.Agencies, Audit: c.Recorder,
		Secrets: sec, Policies: pol, Clock: c.Clock, Logger: c.Log,
	})
}

// NewSSHKeys builds the SSH key service.
func NewSSHKeys(c Core, store *models.SSHKeyStore, pol policy.Source) *sshkeys.Service {
	return sshkeys.NewService(c.DB, store, c.Recorder, pol, c.Clock, c.Log)
}

// WebhookConfig is the webhook egress policy: the private ranges
// deliveries may reach, whether https is required, and the console's own
// egress addresses shown to agencies.
type WebhookConfig struct {
	AllowedCIDRs []netip.Prefix
	RequireHTTPS bool
	EgressIPs    []string
}

// NewWebhooks builds the webhook service. sec may be nil where no secret is
// read (the command line's inventory).
func NewWebhooks(c Core, sec *secrets.Service, pol policy.Source, cfg WebhookConfig) *webhooks.Service {
	return webhooks.NewService(c.DB, models.NewWebhookStore(c.DB), sec, c.Recorder, pol, webhooks.Options{
		Egress:    webhooks.EgressPolicy{AllowedCIDRs: cfg.AllowedCIDRs, RequireHTTPS: cfg.RequireHTTPS},
		EgressIPs: cfg.EgressIPs,
		Clock:     c.Clock,
	})
}

// NewInventory builds the inventory over every credential kind, each read
// through its own service, and the IdP client secrets of the providers.
func NewInventory(c Core, pol *policy.Service, store *models.PolicyStore, creds *apiclients.Service, ssh *sshkeys.Service, hooks *webhooks.Service, providers []inventory.Provider) *inventory.Service {
	inv := inventory.NewService(inventory.Config{DB: c.DB, Audit: c.Recorder, Policies: pol, Store: store,
		Users: c.Users, Sessions: c.Sessions, Clock: c.Clock})
	inv.Add(inventory.APICredentials{Svc: creds})
	inv.Add(inventory.SSHKeys{Svc: ssh})
	inv.Add(inventory.Webhooks{Svc: hooks})
	inv.Add(inventory.IdPSecrets{Expiries: pol.IdPSecrets, Providers: providers})
	return inv
}

// NewReports builds the reports service over an inventory.
func NewReports(c Core, inv *inventory.Service, pol policy.Source) *reports.Service {
	return reports.NewService(reports.Config{Inventory: inv, Policies: pol, Audit: c.Recorder, Clock: c.Clock})
}
