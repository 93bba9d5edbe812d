package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"keyconsole/e2e/harness"
)

// productionEnv is a complete, valid production configuration. Its issuer is
// on loopback so that nothing could ever reach another host, although
// neither config check nor a refused serve contacts it.
func productionEnv(t *testing.T) map[string]string {
	dir := t.TempDir()
	return map[string]string{
		"KEYCONSOLE_ENV":                     "production",
		"KEYCONSOLE_HTTP_ADDR":               "127.0.0.1:0",
		"KEYCONSOLE_BASE_URL":                "https://keys.example.gov",
		"KEYCONSOLE_DATA_DIR":                dir,
		"KEYCONSOLE_SESSION_KEYS":            harness.SessionKeys,
		"KEYCONSOLE_KMS_PROVIDER":            "local",
		"KEYCONSOLE_KMS_ALLOW_LOCAL":         "true",
		"KEYCONSOLE_LOCAL_MASTER_KEY_FILE":   filepath.Join(dir, "master.key"),
		"KEYCONSOLE_SFTP_ADDR":               "",
		"KEYCONSOLE_OIDC_PROVIDERS":          "okta",
		"KEYCONSOLE_OIDC_OKTA_KIND":          "okta",
		"KEYCONSOLE_OIDC_OKTA_ISSUER":        "https://127.0.0.1:9443/oauth2/default",
		"KEYCONSOLE_OIDC_OKTA_CLIENT_ID":     "keyconsole",
		"KEYCONSOLE_OIDC_OKTA_CLIENT_SECRET": "config-test-client-secret-value",
	}
}

// configProblems returns the "VAR: reason" lines of a refused configuration.
func configProblems(stderr string) map[string][]string {
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

func TestValidProductionConfigPasses(t *testing.T) {
	t.Parallel()
	r := harness.Exec(t, productionEnv(t), "config", "check")
	if r.Code != 0 || !strings.Contains(r.Stdout, "configuration is valid (production)") {
		t.Fatalf("config check of a valid production configuration: exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
}

func TestBadConfigurationIsRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// change edits the valid production configuration.
		change func(env map[string]string)
		// commands are the command lines that must refuse it.
		commands [][]string
		variable string
		reason   string
	}{
		{
			name:     "production without session keys",
			change:   func(env map[string]string) { delete(env, "KEYCONSOLE_SESSION_KEYS") },
			variable: "KEYCONSOLE_SESSION_KEYS",
			reason:   "required in production",
		},
		{
			name:     "production with an http base URL",
			change:   func(env map[string]string) { env["KEYCONSOLE_BASE_URL"] = "http://keys.example.gov" },
			variable: "KEYCONSOLE_BASE_URL",
			reason:   "must use https in production",
		},
		{
			name:     "production with a short session key",
			change:   func(env map[string]string) { env["KEYCONSOLE_SESSION_KEYS"] = "only-twenty-chars-xx" },
			variable: "KEYCONSOLE_SESSION_KEYS",
			reason:   "needs at least 32",
		},
		{
			name:     "dev command in production",
			change:   func(map[string]string) {},
			commands: [][]string{{"dev"}},
			variable: "KEYCONSOLE_ENV",
			reason:   "refuses to start in production",
		},
		{
			name:     "dev configuration check in production",
			change:   func(map[string]string) {},
			commands: [][]string{{"config", "check", "--dev"}},
			variable: "KEYCONSOLE_ENV",
			reason:   "refuses to start in production",
		},
		{
			name:     "unknown KMS provider",
			change:   func(env map[string]string) { env["KEYCONSOLE_KMS_PROVIDER"] = "vault" },
			variable: "KEYCONSOLE_KMS_PROVIDER",
			reason:   `must be local or aws, not "vault"`,
		},
		{
			name:     "provider named without its issuer",
			change:   func(env map[string]string) { delete(env, "KEYCONSOLE_OIDC_OKTA_ISSUER") },
			variable: "KEYCONSOLE_OIDC_OKTA_ISSUER",
			reason:   "issuer URL",
		},
	}
	for _, tt := range tests {
		commands := tt.commands
		if commands == nil {
			commands = [][]string{{"config", "check"}, {"serve"}}
		}
		for _, args := range commands {
			t.Run(tt.name+"/"+strings.Join(args, "_"), func(t *testing.T) {
				t.Parallel()
				env := productionEnv(t)
				tt.change(env)
				r := harness.Exec(t, env, args...)
				if r.Code == 0 {
					t.Fatalf("keyconsole %s exited 0\nstdout: %s", strings.Join(args, " "), r.Stdout)
				}
				problems := configProblems(r.Stderr)
				if len(problems) != 1 || len(problems[tt.variable]) == 0 {
					t.Fatalf("keyconsole %s named %v, want only %s\nstderr: %s", strings.Join(args, " "), problems, tt.variable, r.Stderr)
				}
				var named bool
				for _, reason := range problems[tt.variable] {
					named = named || strings.Contains(reason, tt.reason)
				}
				if !named {
					t.Errorf("%s reasons %q do not say %q", tt.variable, problems[tt.variable], tt.reason)
				}
			})
		}
	}
}

func TestHelpListsSubcommands(t *testing.T) {
	t.Parallel()
	r := harness.Exec(t, nil, "--help")
	if r.Code != 0 {
		t.Fatalf("keyconsole --help exited %d\nstderr: %s", r.Code, r.Stderr)
	}
	for _, cmd := range []string{"serve", "dev", "migrate up", "migrate status", "agency create", "agency map", "config check", "help"} {
		if !strings.Contains(r.Stdout, "\n  "+cmd) {
			t.Errorf("keyconsole --help does not list %q:\n%s", cmd, r.Stdout)
		}
	}
}
