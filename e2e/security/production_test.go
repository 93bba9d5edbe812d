package security

import (
	"path/filepath"
	"strings"
	"testing"

	"keyconsole/e2e/harness"
)

// secureProductionEnv is a complete production configuration with every
// setting at its secure choice. Nothing in it is ever contacted: config
// check and a refused start-up stop before any connection.
func secureProductionEnv(t *testing.T) map[string]string {
	dir := t.TempDir()
	return map[string]string{
		"KEYCONSOLE_ENV":                     "production",
		"KEYCONSOLE_HTTP_ADDR":               "127.0.0.1:0",
		"KEYCONSOLE_BASE_URL":                "https://keys.example.gov",
		"KEYCONSOLE_DATA_DIR":                dir,
		"KEYCONSOLE_DATABASE_URL":            filepath.Join(dir, "keyconsole.db"),
		"KEYCONSOLE_SESSION_KEYS":            harness.SessionKeys + "," + strings.Repeat("k", 40),
		"KEYCONSOLE_KMS_PROVIDER":            "aws",
		"KEYCONSOLE_KMS_KEY_ID":              "alias/keyconsole",
		"KEYCONSOLE_KMS_REGION":              "us-gov-west-1",
		"KEYCONSOLE_KMS_ENDPOINT":            "https://kms-fips.us-gov-west-1.amazonaws.com",
		"KEYCONSOLE_SFTP_ADDR":               "",
		"KEYCONSOLE_WEBHOOK_ALLOWED_CIDRS":   "10.20.0.0/16,fd00:1::/64",
		"KEYCONSOLE_OIDC_PROVIDERS":          "okta",
		"KEYCONSOLE_OIDC_OKTA_KIND":          "okta",
		"KEYCONSOLE_OIDC_OKTA_ISSUER":        "https://agency.okta.example/oauth2/default",
		"KEYCONSOLE_OIDC_OKTA_CLIENT_ID":     "keyconsole",
		"KEYCONSOLE_OIDC_OKTA_CLIENT_SECRET": "production-test-client-secret-value",
	}
}

// problemsOf returns the "VAR: reason" lines of a refused configuration.
func problemsOf(stderr string) map[string][]string {
	out := map[string][]string{}
	_, list, ok := strings.Cut(stderr, "configuration is not valid:\n")
	if !ok {
		return out
	}
	for _, line := range strings.Split(list, "\n") {
		if !strings.HasPrefix(line, "  ") {
			break
		}
		v, reason, _ := strings.Cut(strings.TrimSpace(line), ": ")
		out[v] = append(out[v], reason)
	}
	return out
}

func TestSecureProductionConfigurationIsAccepted(t *testing.T) {
	t.Parallel()
	r := harness.Exec(t, secureProductionEnv(t), "config", "check")
	if r.Code != 0 || !strings.Contains(r.Stdout, "configuration is valid (production)") {
		t.Fatalf("config check: exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
}

// TestProductionRefusesInsecureSettings changes one setting of a secure
// production configuration at a time to an insecure choice: the real
// binary must refuse to start (serve) and to validate it (config check),
// naming that variable, and only that variable, with the reason.
func TestProductionRefusesInsecureSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		change   func(env map[string]string)
		commands [][]string
		variable string
		reason   string
	}{
		{
			name:     "development command",
			change:   func(map[string]string) {},
			commands: [][]string{{"dev"}},
			variable: "KEYCONSOLE_ENV",
			reason:   "refuses to start in production",
		},
		{
			name:     "development provider id",
			change:   func(env map[string]string) { env["KEYCONSOLE_OIDC_PROVIDERS"] = "okta,dev" },
			variable: "KEYCONSOLE_OIDC_PROVIDERS",
			reason:   "reserved for the built-in development provider",
		},
		{
			name:     "development provider kind",
			change:   func(env map[string]string) { env["KEYCONSOLE_OIDC_OKTA_KIND"] = "dev" },
			variable: "KEYCONSOLE_OIDC_OKTA_KIND",
			reason:   "must be azure, okta, google or generic",
		},
		{
			name: "local KMS without the explicit opt-in",
			change: func(env map[string]string) {
				env["KEYCONSOLE_KMS_PROVIDER"] = "local"
				env["KEYCONSOLE_LOCAL_MASTER_KEY_FILE"] = filepath.Join(env["KEYCONSOLE_DATA_DIR"], "master.key")
			},
			variable: "KEYCONSOLE_KMS_PROVIDER",
			reason:   "KEYCONSOLE_KMS_ALLOW_LOCAL=true",
		},
		{
			name: "local KMS opted in but with a generated master key",
			change: func(env map[string]string) {
				env["KEYCONSOLE_KMS_PROVIDER"] = "local"
				env["KEYCONSOLE_KMS_ALLOW_LOCAL"] = "true"
			},
			variable: "KEYCONSOLE_LOCAL_MASTER_KEY_FILE",
			reason:   "never generated there",
		},
		{
			name:     "KMS endpoint over http",
			change:   func(env map[string]string) { env["KEYCONSOLE_KMS_ENDPOINT"] = "http://kms.us-gov-west-1.amazonaws.com" },
			variable: "KEYCONSOLE_KMS_ENDPOINT",
			reason:   "must use https in production",
		},
		{
			name:     "missing session keys",
			change:   func(env map[string]string) { delete(env, "KEYCONSOLE_SESSION_KEYS") },
			variable: "KEYCONSOLE_SESSION_KEYS",
			reason:   "required in production",
		},
		{
			name:     "empty session keys",
			change:   func(env map[string]string) { env["KEYCONSOLE_SESSION_KEYS"] = " " },
			variable: "KEYCONSOLE_SESSION_KEYS",
			reason:   "required in production",
		},
		{
			name:     "short session key",
			change:   func(env map[string]string) { env["KEYCONSOLE_SESSION_KEYS"] = strings.Repeat("s", 31) },
			variable: "KEYCONSOLE_SESSION_KEYS",
			reason:   "needs at least 32",
		},
		{
			name:     "short older session key",
			change:   func(env map[string]string) { env["KEYCONSOLE_SESSION_KEYS"] = harness.SessionKeys + ",short-old-key" },
			variable: "KEYCONSOLE_SESSION_KEYS",
			reason:   "key 2 is 13 characters",
		},
		{
			name:     "http base URL",
			change:   func(env map[string]string) { env["KEYCONSOLE_BASE_URL"] = "http://keys.example.gov" },
			variable: "KEYCONSOLE_BASE_URL",
			reason:   "must use https in production",
		},
		{
			name:     "webhook allowlist of a public range",
			change:   func(env map[string]string) { env["KEYCONSOLE_WEBHOOK_ALLOWED_CIDRS"] = "10.20.0.0/16,8.8.8.0/24" },
			variable: "KEYCONSOLE_WEBHOOK_ALLOWED_CIDRS",
			reason:   "8.8.8.0/24 is not a private, loopback or link-local range",
		},
		{
			name:     "webhook allowlist of everything",
			change:   func(env map[string]string) { env["KEYCONSOLE_WEBHOOK_ALLOWED_CIDRS"] = "0.0.0.0/0" },
			variable: "KEYCONSOLE_WEBHOOK_ALLOWED_CIDRS",
			reason:   "0.0.0.0/0 is not a private",
		},
		{
			name:     "webhook allowlist of a public IPv6 range",
			change:   func(env map[string]string) { env["KEYCONSOLE_WEBHOOK_ALLOWED_CIDRS"] = "2001:db8::/32" },
			variable: "KEYCONSOLE_WEBHOOK_ALLOWED_CIDRS",
			reason:   "2001:db8::/32 is not a private",
		},
		{
			name:     "session lock later than CJIS allows",
			change:   func(env map[string]string) { env["KEYCONSOLE_SESSION_IDLE_TIMEOUT"] = "31m" },
			variable: "KEYCONSOLE_SESSION_IDLE_TIMEOUT",
			reason:   "at most 30 minutes",
		},
	}
	for _, tt := range tests {
		commands := tt.commands
		if commands == nil {
			commands = [][]string{{"serve"}, {"config", "check"}}
		}
		for _, args := range commands {
			t.Run(tt.name+"/"+strings.Join(args, "_"), func(t *testing.T) {
				t.Parallel()
				env := secureProductionEnv(t)
				tt.change(env)
				r := harness.Exec(t, env, args...)
				if r.Code != 1 {
					t.Fatalf("keyconsole %s exited %d, want 1\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
				}
				problems := problemsOf(r.Stderr)
				if len(problems) != 1 || len(problems[tt.variable]) == 0 {
					t.Fatalf("keyconsole %s named %v, want only %s\nstderr: %s", strings.Join(args, " "), problems, tt.variable, r.Stderr)
				}
				named := false
				for _, reason := range problems[tt.variable] {
					named = named || strings.Contains(reason, tt.reason)
				}
				if !named {
					t.Errorf("%s: reasons %q do not say %q", tt.variable, problems[tt.variable], tt.reason)
				}
				if strings.Contains(r.Stdout+r.Stderr, "keyconsole started") {
					t.Errorf("keyconsole %s started before refusing", strings.Join(args, " "))
				}
			})
		}
	}
}
