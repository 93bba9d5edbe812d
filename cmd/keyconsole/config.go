package main

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"keyconsole/app"
	"keyconsole/app/core"
	"keyconsole/models"
	"keyconsole/services/auth"
	"keyconsole/services/guard"
	"keyconsole/services/oauth"
	"keyconsole/web"
)

// config is everything keyconsole reads from its environment, read once here.
type config struct {
	Env            string
	HTTPAddr       string
	BaseURL        string
	DataDir        string
	DatabaseURL    string
	SessionKeys    []string
	sessionKeysSet bool
	KMSProvider    string
	KMSKeyID       string
	KMSRegion      string
	KMSEndpoint    string
	LocalMasterKey string
	AllowLocalKMS  bool
	Providers      []providerConfig
	Operators      []string
	SFTPAddr       string
	WebhookCIDRs   []netip.Prefix
	WebhookEgress  []string
	// TrustedProxies are the load balancers whose ProxyHeader names the
	// client; ProxyHeader is web.HeaderXForwardedFor or web.HeaderForwarded.
	TrustedProxies  []netip.Prefix
	ProxyHeader     string
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	LogFormat       string
	LogLevel        string
	MetricsAddr     string
	MetricsToken    string
	// Profiling serves Go's runtime profiles (/debug/pprof/) beside
	// /metrics on the separate metrics address.
	Profiling       bool
	InsecureCookies bool
	AuditRetention  time.Duration
	TokenAudience   string
	// TokenAddrRate is the token endpoint's sustained requests per second
	// per source address (0: the limiter's default).
	TokenAddrRate float64
	// TokenReuse is how long after an issuance a repeat token request gets
	// the same token (0: never).
	TokenReuse time.Duration
}

// providerConfig is one OIDC provider.
type providerConfig struct {
	ID, Kind, Label, Issuer, ClientID string
	ClientSecret                      string
	Scopes                            []string
	GroupsClaim, AllowedDomain        string
}

func (c *config) production() bool { return c.Env == "production" }

// configError names the variable at fault and why.
type configError struct {
	Var    string
	Reason string
}

func (e configError) Error() string { return e.Var + ": " + e.Reason }

// configErrors is every problem found, so an operator fixes them in one pass.
type configErrors []configError

func (e configErrors) Error() string {
	parts := make([]string, len(e))
	for i, ce := range e {
		parts[i] = ce.Error()
	}
	return strings.Join(parts, "\n")
}

// env looks a variable up, telling unset from empty.
type env func(string) (string, bool)

func (g env) str(name, def string) string {
	if v, _ := g(name); strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return def
}

func (g env) get(name string) string {
	v, _ := g(name)
	return v
}

// configMode says what the configuration is for.
type configMode int

const (
	// modeServe is `keyconsole serve`: everything a running console needs.
	modeServe configMode = iota
	// modeDev is `keyconsole dev`: the built-in provider, never in production.
	modeDev
	// modeTool is a command that works on the database or KMS without serving
	// (migrate, agency, kms, audit, ...): no sign-in provider or session key needed.
	modeTool
)

// loadConfig reads and validates the environment. dev selects the defaults of
// `keyconsole dev` (built-in sign-in provider).
func loadConfig(lookupEnv func(string) (string, bool), dev bool) (*config, error) {
	if dev {
		return loadConfigMode(lookupEnv, modeDev)
	}
	return loadConfigMode(lookupEnv, modeServe)
}

// loadToolConfig reads the configuration of a non-serving command.
func loadToolConfig(lookupEnv func(string) (string, bool)) (*config, error) {
	return loadConfigMode(lookupEnv, modeTool)
}

// loadConfigMode reads every section of the configuration and lists every
// problem at once. Every KEYCONSOLE_* check lives here (in the section
// functions below), so `keyconsole config check` refuses exactly what
// `serve` would.
func loadConfigMode(lookupEnv func(string) (string, bool), mode configMode) (*config, error) {
	l := &loader{g: env(lookupEnv), mode: mode}
	c := &config{}
	l.environment(c)
	l.http(c)
	l.token(c)
	l.database(c)
	l.session(c)
	l.kms(c)
	l.oidc(c)
	l.sftp(c)
	l.webhooks(c)
	l.audit(c)
	l.logs(c)
	l.metrics(c)
	if len(l.errs) > 0 {
		return c, l.errs
	}
	return c, nil
}

// loader reads the sections of the configuration, collecting problems.
type loader struct {
	g    env
	mode configMode
	errs configErrors
}

func (l *loader) bad(v, reason string) { l.errs = append(l.errs, configError{v, reason}) }

// has says whether a problem with the variable was found already.
func (l *loader) has(v string) bool {
	for _, e := range l.errs {
		if e.Var == v {
			return true
		}
	}
	return false
}

// environment: KEYCONSOLE_ENV and the data directory.
func (l *loader) environment(c *config) {
	g, bad := l.g, l.bad
	c.Env = g.str("KEYCONSOLE_ENV", "development")
	c.DataDir = g.str("KEYCONSOLE_DATA_DIR", "./data")
	if c.Env != "development" && c.Env != "production" {
		bad("KEYCONSOLE_ENV", fmt.Sprintf("must be development or production, not %q", c.Env))
	}
	if l.mode == modeDev && c.production() {
		bad("KEYCONSOLE_ENV", "`keyconsole dev` runs a built-in sign-in provider with seeded users and refuses to start in production")
	}
	if abs, err := filepath.Abs(c.DataDir); err == nil {
		c.DataDir = abs
	}
}

// http: the listen address, the base URL and the trusted proxies.
func (l *loader) http(c *config) {
	g, bad := l.g, l.bad
	c.HTTPAddr = g.str("KEYCONSOLE_HTTP_ADDR", "127.0.0.1:8080")
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("KEYCONSOLE_HTTP_ADDR", "must be host:port, e.g. 127.0.0.1:8080")
	}
	c.BaseURL = strings.TrimRight(g.str("KEYCONSOLE_BASE_URL", ""), "/")
	if c.BaseURL == "" {
		host, port, _ := net.SplitHostPort(c.HTTPAddr)
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		c.BaseURL = "http://" + net.JoinHostPort(host, port)
	}
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || (u.Path != "" && u.Path != "/") {
		bad("KEYCONSOLE_BASE_URL", "must be an absolute http(s) URL without path or query, e.g. https://keys.example.gov")
	} else if c.production() && u.Scheme != "https" {
		bad("KEYCONSOLE_BASE_URL", "must use https in production (session cookies are Secure-only)")
	}
	c.TrustedProxies, c.ProxyHeader = trustedProxies(g, bad)
}

// token: the token endpoint's audience, per-address rate and reuse window.
func (l *loader) token(c *config) {
	g, bad := l.g, l.bad
	c.TokenAudience = g.str("KEYCONSOLE_TOKEN_AUDIENCE", c.BaseURL+"/api")
	if v := g.str("KEYCONSOLE_TOKEN_ADDR_RATE", ""); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 || math.IsNaN(r) {
			bad("KEYCONSOLE_TOKEN_ADDR_RATE", fmt.Sprintf("%q is not a positive number of requests per second (or inf)", v))
		}
		c.TokenAddrRate = r
	}
	c.TokenReuse = time.Minute
	if v := g.str("KEYCONSOLE_TOKEN_REUSE", ""); v != "" {
		d, err := time.ParseDuration(v)
		if v == "0" {
			d, err = 0, nil
		}
		if err != nil || d < 0 || d > oauth.DefaultLifetime/10 {
			bad("KEYCONSOLE_TOKEN_REUSE", fmt.Sprintf("%q must be a duration between 0 (off) and %s, a tenth of the token lifetime", v, oauth.DefaultLifetime/10))
		} else {
			c.TokenReuse = d
		}
	}
	// The issuer's own rules, checked here so `config check` refuses what
	// building the token endpoint would (a bad base URL is reported once).
	if !l.has("KEYCONSOLE_BASE_URL") {
		if _, err := oauth.NewIssuer(oauth.IssuerConfig{Issuer: c.BaseURL, Audience: c.TokenAudience, Lifetime: oauth.DefaultLifetime, Reuse: c.TokenReuse}); err != nil {
			bad("KEYCONSOLE_TOKEN_AUDIENCE", err.Error())
		}
	}
	if _, err := guard.NewLimiter(core.TokenLimits(c.tokenConfig())); err != nil {
		bad("KEYCONSOLE_TOKEN_ADDR_RATE", err.Error())
	}
}

// database: KEYCONSOLE_DATABASE_URL.
func (l *loader) database(c *config) {
	g, bad := l.g, l.bad
	c.DatabaseURL = g.str("KEYCONSOLE_DATABASE_URL", filepath.Join(c.DataDir, "keyconsole.db"))
	if strings.Contains(c.DatabaseURL, "://") && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") && !strings.HasPrefix(c.DatabaseURL, "sqlite://") {
		bad("KEYCONSOLE_DATABASE_URL", "must start with postgres://, sqlite:// or be a file path")
	} else if _, _, err := models.ParseDatabaseURL(c.DatabaseURL); err != nil {
		bad("KEYCONSOLE_DATABASE_URL", err.Error())
	}
}

// session: the session keys, Secure cookies and the session timeouts.
func (l *loader) session(c *config) {
	g, bad, mode := l.g, l.bad, l.mode
	getenv := g.get
	if raw := strings.TrimSpace(getenv("KEYCONSOLE_SESSION_KEYS")); raw != "" {
		c.sessionKeysSet = true
		for i, k := range strings.Split(raw, ",") {
			k = strings.TrimSpace(k)
			if len(k) < 32 {
				bad("KEYCONSOLE_SESSION_KEYS", fmt.Sprintf("key %d is %d characters; each key needs at least 32 (use `openssl rand -base64 48`)", i+1, len(k)))
				continue
			}
			c.SessionKeys = append(c.SessionKeys, k)
		}
	} else if c.production() && mode != modeTool {
		bad("KEYCONSOLE_SESSION_KEYS", "required in production: comma-separated keys of at least 32 characters, newest first")
	}
	c.InsecureCookies = strings.HasPrefix(c.BaseURL, "http://")
	if c.production() && c.InsecureCookies && mode != modeTool {
		bad("KEYCONSOLE_BASE_URL", "an http:// base URL would need non-Secure cookies, which production refuses")
	}

	c.IdleTimeout = durationVar(g, "KEYCONSOLE_SESSION_IDLE_TIMEOUT", 30*time.Minute, &l.errs)
	c.AbsoluteTimeout = durationVar(g, "KEYCONSOLE_SESSION_ABSOLUTE_TIMEOUT", 12*time.Hour, &l.errs)
	if c.IdleTimeout > c.AbsoluteTimeout {
		bad("KEYCONSOLE_SESSION_IDLE_TIMEOUT", "must not exceed the absolute timeout")
	}
	if c.production() && c.IdleTimeout > 30*time.Minute {
		bad("KEYCONSOLE_SESSION_IDLE_TIMEOUT", "CJIS requires a session lock after at most 30 minutes of inactivity")
	}
}

// kms: the key-management provider and its key.
func (l *loader) kms(c *config) {
	g, bad := l.g, l.bad
	c.KMSProvider = g.str("KEYCONSOLE_KMS_PROVIDER", "local")
	c.KMSKeyID = g.str("KEYCONSOLE_KMS_KEY_ID", "")
	c.KMSRegion = g.str("KEYCONSOLE_KMS_REGION", "")
	c.KMSEndpoint = g.str("KEYCONSOLE_KMS_ENDPOINT", "")
	switch c.KMSProvider {
	case "local":
		c.LocalMasterKey = g.str("KEYCONSOLE_LOCAL_MASTER_KEY_FILE", "")
		c.AllowLocalKMS = g.str("KEYCONSOLE_KMS_ALLOW_LOCAL", "") == "true"
		if c.production() {
			if !c.AllowLocalKMS {
				bad("KEYCONSOLE_KMS_PROVIDER", "local master keys are refused in production unless KEYCONSOLE_KMS_ALLOW_LOCAL=true says so explicitly (use aws)")
			}
			if c.LocalMasterKey == "" {
				bad("KEYCONSOLE_LOCAL_MASTER_KEY_FILE", "required in production with the local provider (it is never generated there)")
			}
		}
		if c.LocalMasterKey == "" {
			c.LocalMasterKey = filepath.Join(c.DataDir, "master.key")
		}
	case "aws":
		if c.KMSKeyID == "" {
			bad("KEYCONSOLE_KMS_KEY_ID", "required with KEYCONSOLE_KMS_PROVIDER=aws (key id, ARN or alias/NAME)")
		}
		if c.KMSEndpoint != "" {
			if u, err := url.Parse(c.KMSEndpoint); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
				bad("KEYCONSOLE_KMS_ENDPOINT", "must be an absolute URL")
			} else if c.production() && u.Scheme != "https" {
				bad("KEYCONSOLE_KMS_ENDPOINT", "must use https in production")
			}
		}
	default:
		bad("KEYCONSOLE_KMS_PROVIDER", fmt.Sprintf("must be local or aws, not %q", c.KMSProvider))
	}

}

// oidc: the sign-in providers and the platform operators.
func (l *loader) oidc(c *config) {
	g, bad, mode := l.g, l.bad, l.mode
	getenv := g.get
	ids := strings.FieldsFunc(getenv("KEYCONSOLE_OIDC_PROVIDERS"), func(r rune) bool { return r == ',' || r == ' ' })
	seen := map[string]bool{}
	for _, id := range ids {
		id = strings.ToLower(strings.TrimSpace(id))
		if id == "dev" {
			bad("KEYCONSOLE_OIDC_PROVIDERS", "the id dev is reserved for the built-in development provider")
			continue
		}
		if !validProviderID(id) || seen[id] {
			bad("KEYCONSOLE_OIDC_PROVIDERS", fmt.Sprintf("provider id %q must be unique lowercase letters, digits or _", id))
			continue
		}
		seen[id] = true
		c.Providers = append(c.Providers, loadProvider(g, id, &l.errs))
	}
	if len(c.Providers) == 0 && mode == modeServe {
		bad("KEYCONSOLE_OIDC_PROVIDERS", "no sign-in provider configured: name at least one (e.g. okta) and set KEYCONSOLE_OIDC_<ID>_ISSUER, _CLIENT_ID, _CLIENT_SECRET and _KIND; `keyconsole dev` offers a built-in one for development")
	}
	// Operators: provider:email (only where the provider kind vouches for
	// the address), provider:sub:SUBJECT, or provider:oid:OBJECT-ID (azure).
	kinds := map[string]string{}
	for _, p := range c.Providers {
		kinds[p.ID] = p.Kind
	}
	if mode == modeDev {
		kinds[auth.KindDev] = auth.KindDev
	}
	for _, entry := range strings.Split(getenv("KEYCONSOLE_OPERATORS"), ",") {
		if strings.TrimSpace(entry) == "" {
			continue
		}
		op, err := auth.ParseOperator(entry)
		if err != nil {
			bad("KEYCONSOLE_OPERATORS", fmt.Sprintf("entry %q %s", strings.TrimSpace(entry), err))
			continue
		}
		kind, known := kinds[op.Provider]
		if !known && mode != modeTool {
			bad("KEYCONSOLE_OPERATORS", fmt.Sprintf("entry %q: %s is not a configured provider (KEYCONSOLE_OIDC_PROVIDERS)", op, op.Provider))
			continue
		}
		if known {
			if err := op.CheckKind(kind); err != nil {
				bad("KEYCONSOLE_OPERATORS", fmt.Sprintf("entry %q: %s", op, err))
				continue
			}
		}
		c.Operators = append(c.Operators, op.String())
	}

}

// sftp: KEYCONSOLE_SFTP_ADDR (empty: no SFTP server).
func (l *loader) sftp(c *config) {
	bad := l.bad
	c.SFTPAddr = "127.0.0.1:2222"
	if v, ok := l.g("KEYCONSOLE_SFTP_ADDR"); ok {
		c.SFTPAddr = strings.TrimSpace(v)
	}
	if c.SFTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.SFTPAddr); err != nil {
			bad("KEYCONSOLE_SFTP_ADDR", "must be host:port, or empty to disable SFTP")
		}
	}
}

// webhooks: the egress allowlist and the console's own egress addresses.
func (l *loader) webhooks(c *config) {
	getenv, bad := l.g.get, l.bad
	for _, s := range strings.Split(getenv("KEYCONSOLE_WEBHOOK_ALLOWED_CIDRS"), ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			bad("KEYCONSOLE_WEBHOOK_ALLOWED_CIDRS", fmt.Sprintf("%q is not a CIDR prefix", s))
			continue
		}
		if c.production() && !isPrivateRange(p) {
			bad("KEYCONSOLE_WEBHOOK_ALLOWED_CIDRS", fmt.Sprintf("%s is not a private, loopback or link-local range; the allowlist only re-opens refused ranges and public ranges need no allowlist", p))
			continue
		}
		c.WebhookCIDRs = append(c.WebhookCIDRs, p.Masked())
	}
	for _, ip := range strings.FieldsFunc(getenv("KEYCONSOLE_WEBHOOK_EGRESS_IPS"), func(r rune) bool { return r == ',' || r == ' ' }) {
		if _, err := netip.ParseAddr(ip); err != nil {
			if _, err := netip.ParsePrefix(ip); err != nil {
				bad("KEYCONSOLE_WEBHOOK_EGRESS_IPS", fmt.Sprintf("%q is not an IP address or CIDR prefix", ip))
				continue
			}
		}
		c.WebhookEgress = append(c.WebhookEgress, ip)
	}
}

// audit: KEYCONSOLE_AUDIT_RETENTION.
func (l *loader) audit(c *config) {
	c.AuditRetention = durationVar(l.g, "KEYCONSOLE_AUDIT_RETENTION", 366*24*time.Hour, &l.errs)
	if c.AuditRetention < 365*24*time.Hour {
		l.bad("KEYCONSOLE_AUDIT_RETENTION", "must be at least one year (8760h)")
	}
}

// logs: the log format and level.
func (l *loader) logs(c *config) {
	c.LogFormat = l.g.str("KEYCONSOLE_LOG_FORMAT", "")
	c.LogLevel = l.g.str("KEYCONSOLE_LOG_LEVEL", "info")
	if c.LogFormat == "" {
		c.LogFormat = "json"
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		l.bad("KEYCONSOLE_LOG_FORMAT", "must be json or text")
	}
}

// metrics: the separate metrics address, its token and profiling.
func (l *loader) metrics(c *config) {
	g, bad := l.g, l.bad
	c.MetricsAddr = g.str("KEYCONSOLE_METRICS_ADDR", "")
	c.MetricsToken = strings.TrimSpace(g.get("KEYCONSOLE_METRICS_TOKEN"))
	if c.MetricsToken != "" && len(c.MetricsToken) < 32 {
		bad("KEYCONSOLE_METRICS_TOKEN", "must be at least 32 characters")
	}
	switch v := strings.ToLower(g.str("KEYCONSOLE_PROFILING", "false")); v {
	case "true", "1":
		c.Profiling = true
		// Profiles show request data and timings: never on the public
		// address, and never without the token outside development.
		if c.MetricsAddr == "" {
			bad("KEYCONSOLE_PROFILING", "needs KEYCONSOLE_METRICS_ADDR: profiles are served only on the separate metrics address")
		} else if c.production() && c.MetricsToken == "" {
			bad("KEYCONSOLE_PROFILING", "needs KEYCONSOLE_METRICS_TOKEN in production")
		}
	case "false", "0":
	default:
		bad("KEYCONSOLE_PROFILING", "must be true or false")
	}
}

// trustedProxies reads KEYCONSOLE_TRUSTED_PROXIES (comma-separated CIDR
// prefixes or single addresses) and KEYCONSOLE_TRUSTED_PROXY_HEADER.
// Trusting every address would let any client name its own address, so
// /0 is refused.
func trustedProxies(g env, bad func(v, reason string)) ([]netip.Prefix, string) {
	const name = "KEYCONSOLE_TRUSTED_PROXIES"
	var out []netip.Prefix
	for _, s := range strings.Split(g.get(name), ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil || a.Zone() != "" {
				bad(name, fmt.Sprintf("%q is not a CIDR prefix such as 10.0.0.0/8 or fd00::/8, or a single address", s))
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		p = p.Masked()
		if p.Bits() == 0 {
			bad(name, fmt.Sprintf("%s trusts every address, so any client could choose the address it is rate limited and audited under; name the load balancers' own ranges", p))
			continue
		}
		out = append(out, p)
	}
	header := web.HeaderXForwardedFor
	switch v := g.str("KEYCONSOLE_TRUSTED_PROXY_HEADER", ""); strings.ToLower(v) {
	case "", "x-forwarded-for":
	case "forwarded":
		header = web.HeaderForwarded
	default:
		bad("KEYCONSOLE_TRUSTED_PROXY_HEADER", fmt.Sprintf("must be X-Forwarded-For or Forwarded, not %q", v))
	}
	return out, header
}

func durationVar(g env, name string, def time.Duration, errs *configErrors) time.Duration {
	v := g.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		*errs = append(*errs, configError{name, fmt.Sprintf("%q is not a positive duration such as 30m or 12h", v)})
		return def
	}
	return d
}

func validProviderID(id string) bool {
	if id == "" || len(id) > 32 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

func loadProvider(g env, id string, errs *configErrors) providerConfig {
	pfx := "KEYCONSOLE_OIDC_" + strings.ToUpper(id) + "_"
	bad := func(v, reason string) { *errs = append(*errs, configError{pfx + v, reason}) }
	p := providerConfig{
		ID:            id,
		Kind:          strings.ToLower(g.str(pfx+"KIND", "generic")),
		Label:         g.str(pfx+"LABEL", id),
		Issuer:        g.str(pfx+"ISSUER", ""),
		ClientID:      g.str(pfx+"CLIENT_ID", ""),
		ClientSecret:  g.str(pfx+"CLIENT_SECRET", ""),
		GroupsClaim:   g.str(pfx+"GROUPS_CLAIM", "groups"),
		AllowedDomain: strings.ToLower(g.str(pfx+"ALLOWED_DOMAIN", "")),
	}
	switch p.Kind {
	case "azure", "okta", "google", "generic":
	default:
		bad("KIND", fmt.Sprintf("must be azure, okta, google or generic, not %q", p.Kind))
	}
	if u, err := url.Parse(p.Issuer); p.Issuer == "" || err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname()))) {
		bad("ISSUER", "must be the provider's https issuer URL (exactly as in its discovery document)")
	}
	if p.ClientID == "" {
		bad("CLIENT_ID", "required")
	}
	if p.ClientSecret == "" {
		bad("CLIENT_SECRET", "required (from the environment, never a flag)")
	}
	scopes := g.str(pfx+"SCOPES", "")
	if scopes == "" {
		scopes = "openid email profile"
		if p.Kind == "okta" {
			scopes += " groups"
		}
	}
	p.Scopes = strings.Fields(scopes)
	hasOpenID := false
	for _, s := range p.Scopes {
		hasOpenID = hasOpenID || s == "openid"
	}
	if !hasOpenID {
		bad("SCOPES", "must include openid")
	}
	if p.Kind == "google" && p.AllowedDomain == "" {
		bad("ALLOWED_DOMAIN", "required for google: the agency's Google Workspace domain, checked against the hd claim")
	}
	if p.Kind == "azure" && strings.Contains(p.Issuer, "/common/") {
		bad("ISSUER", "use the tenant-specific v2.0 issuer (https://login.microsoftonline.com/<tenant-id>/v2.0), not /common")
	}
	return p
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}

func isPrivateRange(p netip.Prefix) bool {
	a := p.Addr().Unmap()
	return a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() ||
		netip.MustParsePrefix("100.64.0.0/10").Contains(a) && p.Bits() >= 10
}

// tokenConfig is the token endpoint's part of the configuration.
func (c *config) tokenConfig() core.TokenConfig {
	return core.TokenConfig{BaseURL: c.BaseURL, Audience: c.TokenAudience, AddrRate: c.TokenAddrRate, Reuse: c.TokenReuse}
}

// metricsConfig is the separate metrics address's part of the configuration.
func (c *config) metricsConfig() app.MetricsConfig {
	return app.MetricsConfig{Addr: c.MetricsAddr, Token: c.MetricsToken, Profiling: c.Profiling}
}

// appConfig is the configuration the console is built from, with the
// sign-in providers it offers (the configured ones, and the built-in one
// under `keyconsole dev`).
func (c *config) appConfig(providers []*web.OIDCProvider) app.Config {
	kinds := map[string]string{auth.KindDev: auth.KindDev}
	for _, p := range c.Providers {
		kinds[p.ID] = p.Kind
	}
	return app.Config{
		Web: web.Config{BaseURL: c.BaseURL, Production: c.production(), SessionKeys: c.SessionKeys, Providers: providers,
			TrustedProxies: c.TrustedProxies, ProxyHeader: c.ProxyHeader},
		ProviderKinds: kinds,
		Auth:          core.AuthConfig{Operators: c.Operators, IdleTimeout: c.IdleTimeout, AbsoluteTimeout: c.AbsoluteTimeout},
		Token:         c.tokenConfig(),
		SFTP:          app.SFTPConfig{Addr: c.SFTPAddr, DataDir: c.DataDir},
		Webhooks:      core.WebhookConfig{AllowedCIDRs: c.WebhookCIDRs, RequireHTTPS: c.production(), EgressIPs: c.WebhookEgress},
		Metrics:       c.metricsConfig(),
	}
}
