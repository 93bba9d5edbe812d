// Package app wires the console: it builds every store, service, handler
// and server of `keyconsole serve` in one straight line, each from typed
// parameters, so a missing dependency is a compile error. The command line
// and the test stacks build their pieces with the same constructors.
package app

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"keyconsole/app/core"
	"keyconsole/handlers"
	"keyconsole/kms"
	"keyconsole/models"
	"keyconsole/services/audit"
	"keyconsole/services/inventory"
	"keyconsole/services/oauth"
	"keyconsole/services/policy"
	"keyconsole/web"
)

// Config is the validated configuration the console is built from; the
// command reads and checks it from KEYCONSOLE_* variables.
type Config struct {
	// Web is the HTTP front door's configuration (base URL, session keys,
	// sign-in providers, trusted proxies).
	Web web.Config
	// ProviderKinds maps each sign-in provider id to its kind (okta, azure,
	// dev...), for the IdP secret tracker.
	ProviderKinds map[string]string
	Auth          core.AuthConfig
	Token         core.TokenConfig
	SFTP          SFTPConfig
	Webhooks      core.WebhookConfig
	Metrics       MetricsConfig
}

// Options are what the environment provides rather than configures: the
// open (migrated) database, the keyring, the clock and the logger, and
// routes owned outside the console (the development IdP).
type Options struct {
	DB      *models.DB
	Keyring kms.Keyring
	Clock   func() time.Time
	Logger  *slog.Logger
	Mount   []func(e *echo.Echo, r *web.Router)
}

// App is the built console: the web server, and the work that runs beside
// it until shutdown.
type App struct {
	Core   core.Core
	Server *web.Server
	// Background runs until its context ends; an error stops the console.
	Background []func(ctx context.Context) error
	// Shutdown runs after the web server stopped taking requests, each with
	// the grace period's context, side by side.
	Shutdown []func(ctx context.Context)
}

// New builds the console in dependency order.
func New(ctx context.Context, cfg Config, opt Options) (*App, error) {
	c := core.New(opt.DB, opt.Clock, opt.Logger)
	metrics := web.NewMetrics()
	auditCollectors, onAuditWrite := auditMetrics()
	c.Recorder.OnWrite = onAuditWrite
	authSvc := core.NewAuth(c, cfg.Auth)

	// Encryption and the stored policies every credential kind reads.
	enc := newEncryption(c, opt.Keyring)
	policyStore := models.NewPolicyStore(c.DB)
	policies := policy.NewService(c.DB, policyStore, c.Recorder, c.Clock)

	// The credential kinds.
	creds, err := newAPIClients(ctx, c, enc.Secrets, policies, cfg.Token)
	if err != nil {
		return nil, err
	}
	ssh, err := newSSHKeys(c, enc.Secrets, policies, cfg.SFTP)
	if err != nil {
		return nil, err
	}
	hooks := newWebhooks(c, enc.Secrets, policies, cfg.Webhooks)

	// The inventory over every credential kind, and the reports on it.
	var idps []inventory.Provider
	var idpPages []handlers.IdPProvider
	for _, p := range cfg.Web.Providers {
		kind := cfg.ProviderKinds[p.Info.ID]
		idps = append(idps, inventory.Provider{ID: p.Info.ID, Label: p.Info.Label, Kind: kind})
		idpPages = append(idpPages, handlers.IdPProvider{ID: p.Info.ID, Label: p.Info.Label, Kind: kind})
	}
	inv := core.NewInventory(c, policies, policyStore, creds.Service, ssh.Service, hooks.Service, idps)
	reps := core.NewReports(c, inv, policies)

	// The pages. Dashboard tiles read only their service (and the clock).
	tileBase := handlers.New(handlers.Deps{Clock: c.Clock})
	h := handlers.New(handlers.Deps{
		Logger: c.Log, Auth: authSvc, Agencies: c.AgencySvc, Users: c.Users, Audit: c.Audits,
		Providers: web.ProviderChoices(cfg.Web.Providers), Clock: c.Clock,
		Tiles: []handlers.TileSource{
			handlers.NewAPICredentials(tileBase, creds.Service, "").Tiles,
			handlers.NewSSHKeys(tileBase, ssh.Service).Tiles,
			handlers.NewWebhooks(tileBase, hooks.Service).Tiles,
			handlers.NewHygiene(tileBase, inv, policies, idpPages).Tiles,
		},
	})
	credPages := handlers.NewAPICredentials(h, creds.Service, cfg.Web.BaseURL+oauth.TokenPath)
	tokenPages := &handlers.OAuthToken{Endpoint: creds.Endpoint, Issuer: creds.Issuer, BaseURL: cfg.Web.BaseURL, Logger: c.Log}
	// A page shows a chain result at most 15 seconds old, bringing it up to
	// date over the new records, and re-verifies whole chains every 10 minutes.
	auditPages := handlers.NewAuditLog(h, audit.NewExporter(c.Audits, c.Recorder, c.Clock),
		audit.NewChainMonitor(audit.NewVerifier(c.Audits), 15*time.Second, 10*time.Minute, c.Clock))
	mounts := append(append([]func(e *echo.Echo, r *web.Router){}, opt.Mount...),
		web.APICredentialsRoutes(credPages, tokenPages),
		web.AuditRoutes(auditPages),
		web.WebhooksRoutes(handlers.NewWebhooks(h, hooks.Service)),
		web.SSHKeysRoutes(handlers.NewSSHKeys(h, ssh.Service)),
		web.PolicyRoutes(handlers.NewHygiene(h, inv, policies, idpPages)),
		web.ReportsRoutes(handlers.NewReports(h, reps)),
	)

	// A database that answers may still refuse writes (a full disk, a
	// read-only file): database_write commits one small write, cached.
	writeProbe := &cachedCheck{check: c.DB.ProbeWrite, okFor: writeProbeOK, failedFor: readyCacheFailed, now: time.Now}
	ready := append([]web.ReadyCheck{
		{Name: "database", Check: c.DB.Ping},
		{Name: "database_write", Check: writeProbe.Check},
		enc.Ready,
	}, creds.Ready...)

	if err := registerMetrics(metrics.Registry, auditCollectors, enc.Collectors, creds.Collectors, hooks.collectors(), ssh.Collectors); err != nil {
		return nil, err
	}
	srv, err := web.New(cfg.Web, web.Deps{Logger: c.Log, Auth: authSvc, Handlers: h, Ready: ready, Mount: mounts,
		Metrics: metrics, MetricsToken: cfg.Metrics.Token})
	if err != nil {
		return nil, err
	}

	background := []func(ctx context.Context) error{func(ctx context.Context) error { return watchStorage(ctx, c.DB) }}
	if cfg.Metrics.Addr != "" {
		serveMetrics, err := metricsServer(cfg.Metrics, metrics)
		if err != nil {
			return nil, err
		}
		background = append(background, serveMetrics)
	}
	background = append(background, creds.Background...)
	background = append(background, hooks.Worker.Run)
	background = append(background, ssh.Background...)
	return &App{
		Core:       c,
		Server:     srv,
		Background: background,
		Shutdown:   []func(ctx context.Context){creds.Shutdown, hooks.shutdown, ssh.Shutdown},
	}, nil
}

// Handler is the console's HTTP handler.
func (a *App) Handler() http.Handler { return a.Server.Echo }
