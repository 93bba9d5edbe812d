package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"keyconsole/handlers"
	"keyconsole/kms"
	"keyconsole/models"
	"keyconsole/services/apiclients"
	"keyconsole/services/auth"
	"keyconsole/services/inventory"
	"keyconsole/services/policy"
	"keyconsole/services/secrets"
	"keyconsole/services/sshkeys"
	"keyconsole/services/webhooks"
	"keyconsole/web"
	"keyconsole/web/devidp"
)

// runtime is the running console: the core app plus what features add.
type runtime struct {
	*app
	dev        bool
	auth       *auth.Service
	handler    *handlers.Handler
	mounts     []func(e *echo.Echo, r *web.Router)
	ready      []web.ReadyCheck
	tiles      []handlers.TileSource
	background []func(ctx context.Context) error
	shutdown   []func(ctx context.Context)
	envelope   *kms.Envelope
	secrets    *secrets.Service
	policies   policy.Source
	metrics    *web.Metrics
	// The credential features' services, shared by the features built on
	// them (hygiene, personnel change, reports).
	apiclients *apiclients.Service
	sshkeys    *sshkeys.Service
	webhooks   *webhooks.Service
	policy     *policy.Service
	policyDB   *models.PolicyStore
	inventory  *inventory.Service
}

// feature wires one part of the console into the runtime.
type feature func(ctx context.Context, rt *runtime) error

// features is every optional part of the console, in start order.
var features = []feature{
	wireKMS,
	wirePolicy,
	wireMetrics,
	wireAPIClients,
	wireAudit,
	wireWebhooks,
	wireSFTP,
	wireHygiene,
	wireReports,
}

func cmdServe(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer, dev bool) error {
	if len(args) > 0 {
		return usageError{"serve and dev take no arguments; configure them with KEYCONSOLE_* variables"}
	}
	start := time.Now()
	cfg, err := loadConfig(lookupEnv, dev)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	if !cfg.sessionKeysSet {
		k, err := loadOrCreateSecretFile(filepath.Join(cfg.DataDir, "session.key"), !cfg.production())
		if err != nil {
			return fmt.Errorf("KEYCONSOLE_SESSION_KEYS: no keys set and the development key file could not be used: %w", err)
		}
		cfg.SessionKeys = []string{k}
	}
	a, err := openApp(ctx, cfg, log, true)
	if err != nil {
		return err
	}
	defer a.close()
	if dev {
		if err := seedDev(ctx, a); err != nil {
			return fmt.Errorf("seed development data: %w", err)
		}
	}
	rt := &runtime{app: a, dev: dev, auth: a.authService(), policies: policy.DefaultSource{}}

	var providers []*web.OIDCProvider
	for _, p := range cfg.Providers {
		providers = append(providers, &web.OIDCProvider{
			Info:   auth.ProviderInfo{ID: p.ID, Kind: p.Kind, Label: p.Label, GroupsClaim: p.GroupsClaim, AllowedDomain: p.AllowedDomain},
			Issuer: p.Issuer, ClientID: p.ClientID, ClientSecret: p.ClientSecret, Scopes: p.Scopes,
			HTTPClient: &http.Client{Timeout: 15 * time.Second},
		})
	}
	if dev {
		idp, prov, err := devProvider(cfg)
		if err != nil {
			return err
		}
		providers = append([]*web.OIDCProvider{prov}, providers...)
		rt.mounts = append(rt.mounts, func(e *echo.Echo, _ *web.Router) { idp.Mount(e, "/dev/oidc") })
	}
	rt.handler = handlers.New(handlers.Deps{
		Logger: log, Auth: rt.auth, Agencies: a.agencySv, Users: a.users, Audit: a.audits,
		Providers: web.ProviderChoices(providers), Clock: a.clock,
	})
	// A database that answers may still refuse writes (a full disk, a
	// read-only file): database_write commits one small write, cached.
	writeProbe := &cachedCheck{check: a.db.ProbeWrite, okFor: writeProbeOK, failedFor: readyCacheFailed, now: time.Now}
	rt.ready = append(rt.ready, web.ReadyCheck{Name: "database", Check: a.db.Ping},
		web.ReadyCheck{Name: "database_write", Check: writeProbe.Check})
	rt.background = append(rt.background, func(ctx context.Context) error { return watchStorage(ctx, a.db) })
	for _, f := range features {
		if err := f(ctx, rt); err != nil {
			return err
		}
	}
	rt.handler.Tiles = append(rt.handler.Tiles, rt.tiles...)
	srv, err := web.New(web.Config{BaseURL: cfg.BaseURL, Production: cfg.production(), SessionKeys: cfg.SessionKeys, Providers: providers,
		TrustedProxies: cfg.TrustedProxies, ProxyHeader: cfg.ProxyHeader},
		web.Deps{Logger: log, Auth: rt.auth, Handlers: rt.handler, Ready: rt.ready, Mount: rt.mounts,
			Metrics: rt.metrics, MetricsToken: rt.cfg.MetricsToken})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("KEYCONSOLE_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	hs := &http.Server{Handler: srv.Echo, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 5 * time.Minute, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1+len(rt.background))
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	for _, b := range rt.background {
		go func() {
			if err := b(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- err
			}
		}()
	}
	log.Info("keyconsole started", "env", cfg.Env, "addr", ln.Addr().String(), "base_url", cfg.BaseURL, "startup_ms", time.Since(start).Milliseconds())
	if dev {
		fmt.Fprintf(stdout, "\nkeyconsole is running. Open %s/ and sign in with the built-in development provider.\n", cfg.BaseURL)
		fmt.Fprintf(stdout, "Seeded: agency Demo County (demo-county) with an admin, a reviewer and a viewer, and a platform operator.\nPress Ctrl-C to stop.\n\n")
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	cancel()
	shutCtx, shutCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer shutCancel()
	// Requests in flight finish first: what they record (refused token
	// requests, last use) is then in the last flushes of the shutdown
	// hooks. The hooks run side by side with a grace period of their own,
	// so one that retries against a database refusing writes, or a webhook
	// attempt that takes the whole grace, does not eat another's time.
	_ = hs.Shutdown(shutCtx)
	hookCtx, hookCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer hookCancel()
	var hooks sync.WaitGroup
	for _, s := range rt.shutdown {
		hooks.Go(func() { s(hookCtx) })
	}
	hooks.Wait()
	log.Info("keyconsole stopped")
	return runErr
}

// devProvider builds the built-in development IdP and the console's client of it.
func devProvider(cfg *config) (*devidp.Provider, *web.OIDCProvider, error) {
	secret, err := randomToken(32)
	if err != nil {
		return nil, nil, err
	}
	issuer := cfg.BaseURL + "/dev/oidc"
	idp, err := devidp.New(issuer, "keyconsole-dev", secret, cfg.BaseURL+"/auth/callback/dev", devUsers())
	if err != nil {
		return nil, nil, err
	}
	prov := &web.OIDCProvider{
		Info:   auth.ProviderInfo{ID: "dev", Kind: auth.KindDev, Label: "Development sign-in", GroupsClaim: "groups"},
		Issuer: issuer, ClientID: "keyconsole-dev", ClientSecret: secret, Scopes: []string{"openid", "email", "profile", "groups"},
		HTTPClient: &http.Client{Timeout: 10 * time.Second},
	}
	return idp, prov, nil
}
