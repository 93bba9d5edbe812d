package main

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestFinding01_OperatorEntriesValidated: KEYCONSOLE_OPERATORS takes
// provider:email and provider:sub:SUBJECT (and azure's provider:oid:ID);
// subjects keep their case; an entry that could never be vouched for, names
// no configured provider or is malformed is refused by config check.
func TestFinding01_OperatorEntriesValidated(t *testing.T) {
	withAzure := func(ops string) map[string]string {
		env := prodEnv()
		env["KEYCONSOLE_OIDC_PROVIDERS"] = "okta,azure"
		env["KEYCONSOLE_OIDC_AZURE_KIND"] = "azure"
		env["KEYCONSOLE_OIDC_AZURE_ISSUER"] = "https://login.microsoftonline.com/0d1e2f3a-0000-4000-8000-000000000000/v2.0"
		env["KEYCONSOLE_OIDC_AZURE_CLIENT_ID"] = "az"
		env["KEYCONSOLE_OIDC_AZURE_CLIENT_SECRET"] = "az-secret"
		env["KEYCONSOLE_OPERATORS"] = ops
		return env
	}
	cfg, err := loadConfig(envOf(withAzure(" okta:Ops@Platform.gov , okta:sub:00uAbC123 ,azure:oid:5F0E7B52-0000-4000-8000-00000000AB12, azure:sub:AAAAbbbbCCCC")), false)
	if err != nil {
		t.Fatalf("valid operator entries refused: %v", err)
	}
	want := []string{"okta:ops@platform.gov", "okta:sub:00uAbC123", "azure:oid:5f0e7b52-0000-4000-8000-00000000ab12", "azure:sub:AAAAbbbbCCCC"}
	if !slices.Equal(cfg.Operators, want) {
		t.Fatalf("operators = %q, want %q", cfg.Operators, want)
	}
	for _, tc := range []struct{ entry, want string }{
		{"azure:ops@platform.gov", "Microsoft does not verify"},
		{"okta:sub:", "subject"},
		{"okta:sub:has space", "subject"},
		{"okta:oid:5f0e7b52-0000-4000-8000-00000000ab12", "only for azure"},
		{"azure:oid:not-a-guid", "object id"},
		{"okta:nobody", "provider:email"},
		{"okta:Pat <pat@county.gov>", "provider:email"},
		{"mars:ops@platform.gov", "not a configured provider"},
		{"ops@platform.gov", "provider:email"},
	} {
		_, err := loadConfig(envOf(withAzure(tc.entry)), false)
		var ce configErrors
		if !errors.As(err, &ce) {
			t.Fatalf("%q accepted: %v", tc.entry, err)
		}
		found := false
		for _, e := range ce {
			found = found || e.Var == "KEYCONSOLE_OPERATORS" && strings.Contains(e.Reason, tc.want)
		}
		if !found {
			t.Errorf("%q: no KEYCONSOLE_OPERATORS error containing %q in %v", tc.entry, tc.want, ce)
		}
	}
}
