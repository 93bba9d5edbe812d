package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

const goodKey = "0123456789abcdef0123456789abcdef-key"

func prodEnv() map[string]string {
	return map[string]string{
		"KEYCONSOLE_ENV":                     "production",
		"KEYCONSOLE_BASE_URL":                "https://keys.example.gov",
		"KEYCONSOLE_SESSION_KEYS":            goodKey,
		"KEYCONSOLE_KMS_PROVIDER":            "aws",
		"KEYCONSOLE_KMS_KEY_ID":              "alias/keyconsole",
		"KEYCONSOLE_KMS_REGION":              "us-gov-west-1",
		"KEYCONSOLE_OIDC_PROVIDERS":          "okta",
		"KEYCONSOLE_OIDC_OKTA_ISSUER":        "https://county.okta.com/oauth2/default",
		"KEYCONSOLE_OIDC_OKTA_CLIENT_ID":     "abc",
		"KEYCONSOLE_OIDC_OKTA_CLIENT_SECRET": "s3cret-from-env",
		"KEYCONSOLE_OIDC_OKTA_KIND":          "okta",
	}
}

func TestConfigProductionValid(t *testing.T) {
	cfg, err := loadConfig(envOf(prodEnv()), false)
	if err != nil {
		t.Fatalf("valid production config refused: %v", err)
	}
	if cfg.InsecureCookies || len(cfg.Providers) != 1 || cfg.Providers[0].Scopes[len(cfg.Providers[0].Scopes)-1] != "groups" {
		t.Fatalf("unexpected config: %+v", cfg)
	}
}

func TestConfigRefusals(t *testing.T) {
	tests := []struct {
		name    string
		change  map[string]string
		dev     bool
		wantVar string
		want    string
	}{
		{"missing session keys", map[string]string{"KEYCONSOLE_SESSION_KEYS": ""}, false, "KEYCONSOLE_SESSION_KEYS", "required in production"},
		{"short session key", map[string]string{"KEYCONSOLE_SESSION_KEYS": goodKey + ",short"}, false, "KEYCONSOLE_SESSION_KEYS", "at least 32"},
		{"http base URL", map[string]string{"KEYCONSOLE_BASE_URL": "http://keys.example.gov"}, false, "KEYCONSOLE_BASE_URL", "https"},
		{"dev in production", nil, true, "KEYCONSOLE_ENV", "refuses to start in production"},
		{"local kms without opt-in", map[string]string{"KEYCONSOLE_KMS_PROVIDER": "local"}, false, "KEYCONSOLE_KMS_PROVIDER", "explicitly"},
		{"unknown kms", map[string]string{"KEYCONSOLE_KMS_PROVIDER": "vault"}, false, "KEYCONSOLE_KMS_PROVIDER", "local or aws"},
		{"aws without key", map[string]string{"KEYCONSOLE_KMS_KEY_ID": ""}, false, "KEYCONSOLE_KMS_KEY_ID", "required"},
		{"provider without issuer", map[string]string{"KEYCONSOLE_OIDC_OKTA_ISSUER": ""}, false, "KEYCONSOLE_OIDC_OKTA_ISSUER", "issuer"},
		{"provider over http", map[string]string{"KEYCONSOLE_OIDC_OKTA_ISSUER": "http://county.okta.com"}, false, "KEYCONSOLE_OIDC_OKTA_ISSUER", "https"},
		{"no providers", map[string]string{"KEYCONSOLE_OIDC_PROVIDERS": ""}, false, "KEYCONSOLE_OIDC_PROVIDERS", "no sign-in provider"},
		{"reserved dev id", map[string]string{"KEYCONSOLE_OIDC_PROVIDERS": "dev"}, false, "KEYCONSOLE_OIDC_PROVIDERS", "reserved"},
		{"bad kind", map[string]string{"KEYCONSOLE_OIDC_OKTA_KIND": "ldap"}, false, "KEYCONSOLE_OIDC_OKTA_KIND", "azure, okta, google or generic"},
		{"google without domain", map[string]string{"KEYCONSOLE_OIDC_OKTA_KIND": "google"}, false, "KEYCONSOLE_OIDC_OKTA_ALLOWED_DOMAIN", "hd claim"},
		{"azure common issuer", map[string]string{"KEYCONSOLE_OIDC_OKTA_KIND": "azure", "KEYCONSOLE_OIDC_OKTA_ISSUER": "https://login.microsoftonline.com/common/v2.0"}, false, "KEYCONSOLE_OIDC_OKTA_ISSUER", "tenant-specific"},
		{"public webhook allowlist", map[string]string{"KEYCONSOLE_WEBHOOK_ALLOWED_CIDRS": "8.8.8.0/24"}, false, "KEYCONSOLE_WEBHOOK_ALLOWED_CIDRS", "not a private"},
		{"bad cidr", map[string]string{"KEYCONSOLE_WEBHOOK_ALLOWED_CIDRS": "10.0.0.0/99"}, false, "KEYCONSOLE_WEBHOOK_ALLOWED_CIDRS", "not a CIDR"},
		{"long idle timeout", map[string]string{"KEYCONSOLE_SESSION_IDLE_TIMEOUT": "45m"}, false, "KEYCONSOLE_SESSION_IDLE_TIMEOUT", "CJIS"},
		{"bad duration", map[string]string{"KEYCONSOLE_SESSION_ABSOLUTE_TIMEOUT": "soon"}, false, "KEYCONSOLE_SESSION_ABSOLUTE_TIMEOUT", "duration"},
		{"short retention", map[string]string{"KEYCONSOLE_AUDIT_RETENTION": "720h"}, false, "KEYCONSOLE_AUDIT_RETENTION", "one year"},
		{"bad env", map[string]string{"KEYCONSOLE_ENV": "staging"}, false, "KEYCONSOLE_ENV", "development or production"},
		{"bad http addr", map[string]string{"KEYCONSOLE_HTTP_ADDR": "8080"}, false, "KEYCONSOLE_HTTP_ADDR", "host:port"},
		{"bad egress address", map[string]string{"KEYCONSOLE_WEBHOOK_EGRESS_IPS": "198.51.100.7, egress.example.gov"}, false, "KEYCONSOLE_WEBHOOK_EGRESS_IPS", "not an IP address or CIDR"},
		{"bad database scheme", map[string]string{"KEYCONSOLE_DATABASE_URL": "mysql://x"}, false, "KEYCONSOLE_DATABASE_URL", "postgres://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := prodEnv()
			for k, v := range tt.change {
				if v == "" {
					delete(env, k)
				} else {
					env[k] = v
				}
			}
			_, err := loadConfig(envOf(env), tt.dev)
			var ce configErrors
			if !errors.As(err, &ce) {
				t.Fatalf("want config errors, got %v", err)
			}
			for _, e := range ce {
				if e.Var == tt.wantVar && strings.Contains(e.Reason, tt.want) {
					return
				}
			}
			t.Fatalf("no error for %s containing %q in %v", tt.wantVar, tt.want, ce)
		})
	}
}

func TestConfigCheckCommandNamesTheVariable(t *testing.T) {
	env := prodEnv()
	delete(env, "KEYCONSOLE_SESSION_KEYS")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"config", "check"}, envOf(env), &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "KEYCONSOLE_SESSION_KEYS: required in production") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"config", "check"}, envOf(prodEnv()), &out, &errb); code != 0 || !strings.Contains(out.String(), "configuration is valid") {
		t.Fatalf("valid config: exit %d, %q %q", code, out.String(), errb.String())
	}
	if strings.Contains(out.String(), "s3cret-from-env") {
		t.Fatal("config check printed a client secret")
	}
}

func TestServeRefusesBadConfigBeforeStarting(t *testing.T) {
	env := prodEnv()
	env["KEYCONSOLE_BASE_URL"] = "http://keys.example.gov"
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"serve"}, envOf(env), &out, &errb); code != 1 || !strings.Contains(errb.String(), "KEYCONSOLE_BASE_URL") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := run(context.Background(), []string{"dev"}, envOf(map[string]string{"KEYCONSOLE_ENV": "production"}), &out, &errb); code != 1 || !strings.Contains(errb.String(), "refuses to start in production") {
		t.Fatalf("dev in production: exit %d, stderr %q", code, errb.String())
	}
}

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, envOf(nil), &out, &errb); code != 0 {
		t.Fatalf("help exit %d", code)
	}
	for _, sub := range []string{"serve", "dev", "migrate up", "agency create", "agency map", "config check"} {
		if !strings.Contains(out.String(), sub) {
			t.Errorf("help does not mention %q", sub)
		}
	}
	if code := run(context.Background(), []string{"bogus"}, envOf(nil), &out, &errb); code != 2 {
		t.Fatalf("unknown command exit %d", code)
	}
}

func TestToolCommandsWorkInProduction(t *testing.T) {
	env := map[string]string{"KEYCONSOLE_ENV": "production", "KEYCONSOLE_BASE_URL": "https://keys.example.gov",
		"KEYCONSOLE_KMS_PROVIDER": "aws", "KEYCONSOLE_KMS_KEY_ID": "alias/k", "KEYCONSOLE_DATABASE_URL": t.TempDir() + "/kc.db"}
	if _, err := loadToolConfig(envOf(env)); err != nil {
		t.Fatalf("a tool command needs no provider or session key: %v", err)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"migrate", "up"}, envOf(env), &out, &errb); code != 0 {
		t.Fatalf("migrate up in production: exit %d %s", code, errb.String())
	}
	env["KEYCONSOLE_KMS_PROVIDER"] = "local"
	if _, err := loadToolConfig(envOf(env)); err == nil || !strings.Contains(err.Error(), "KEYCONSOLE_KMS_PROVIDER") {
		t.Fatalf("tools keep the production KMS rules: %v", err)
	}
}

// A database URL that opening would refuse is refused by config loading,
// so `config check` says so before `serve` does.
func TestConfigRefusesADatabaseURLOpenWouldRefuse(t *testing.T) {
	env := prodEnv()
	env["KEYCONSOLE_DATABASE_URL"] = "sqlite://"
	_, err := loadConfig(envOf(env), false)
	if err == nil || !strings.Contains(err.Error(), "KEYCONSOLE_DATABASE_URL") {
		t.Fatalf("sqlite:// without a path accepted or refused without naming the variable: %v", err)
	}
}
