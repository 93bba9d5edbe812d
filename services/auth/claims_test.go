package auth

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func raw(t *testing.T, m map[string]any) map[string]json.RawMessage {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReadClaims(t *testing.T) {
	azure := ProviderInfo{ID: "azure", Kind: KindAzure, GroupsClaim: "groups"}
	google := ProviderInfo{ID: "google", Kind: KindGoogle, AllowedDomain: "county.gov"}
	okta := ProviderInfo{ID: "okta", Kind: KindOkta, GroupsClaim: "groups"}
	tests := []struct {
		name       string
		p          ProviderInfo
		claims     map[string]any
		wantGroups []string
		wantCode   string
	}{
		{"okta groups", okta, map[string]any{"sub": "u1", "email": "A@X.gov", "groups": []string{"g1", "g2"}}, []string{"g1", "g2"}, ""},
		{"okta single group string", okta, map[string]any{"sub": "u1", "groups": "g1"}, []string{"g1"}, ""},
		{"okta groups not strings", okta, map[string]any{"sub": "u1", "groups": []int{1}}, nil, RefusedClaims},
		{"missing subject", okta, map[string]any{"email": "a@x.gov"}, nil, RefusedClaims},
		{"azure groups and app roles", azure, map[string]any{"sub": "u1", "groups": []string{"oid-1"}, "roles": []string{"KeyAdmin"}}, []string{"oid-1", "KeyAdmin"}, ""},
		{"azure overage via _claim_names", azure, map[string]any{"sub": "u1", "_claim_names": map[string]string{"groups": "src1"}, "_claim_sources": map[string]any{"src1": map[string]string{"endpoint": "x"}}}, nil, RefusedGroupOverage},
		{"azure overage via hasgroups", azure, map[string]any{"sub": "u1", "hasgroups": true}, nil, RefusedGroupOverage},
		{"azure no groups is not overage", azure, map[string]any{"sub": "u1"}, nil, ""},
		{"google matching hd", google, map[string]any{"sub": "g1", "email": "pat@county.gov", "email_verified": true, "hd": "county.gov"}, []string{"domain:county.gov", "email:pat@county.gov"}, ""},
		{"google other domain", google, map[string]any{"sub": "g1", "email": "pat@gmail.com", "email_verified": true}, nil, RefusedDomain},
		{"google wrong hd", google, map[string]any{"sub": "g1", "email": "pat@evil.gov", "email_verified": true, "hd": "evil.gov"}, nil, RefusedDomain},
		{"google unverified email", google, map[string]any{"sub": "g1", "email": "pat@county.gov", "email_verified": false, "hd": "county.gov"}, nil, RefusedDomain},
		{"google groups claim ignored", google, map[string]any{"sub": "g1", "email": "pat@county.gov", "email_verified": true, "hd": "county.gov", "groups": []string{"admins"}}, []string{"domain:county.gov", "email:pat@county.gov"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ReadClaims(tt.p, raw(t, tt.claims))
			if tt.wantCode != "" {
				var r *Refusal
				if !errors.As(err, &r) || r.Code != tt.wantCode {
					t.Fatalf("want refusal %s, got %v", tt.wantCode, err)
				}
				if r.Message == "" {
					t.Fatal("refusal without a message")
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(c.Groups, tt.wantGroups) {
				t.Fatalf("groups = %v, want %v", c.Groups, tt.wantGroups)
			}
		})
	}
}

func TestReadClaimsLowercasesEmail(t *testing.T) {
	c, err := ReadClaims(ProviderInfo{Kind: KindGeneric}, raw(t, map[string]any{"sub": "s", "email": "Pat@County.GOV", "auth_time": 1700000000}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Email != "pat@county.gov" {
		t.Fatalf("email = %q", c.Email)
	}
	if c.AuthTime.Unix() != 1700000000 {
		t.Fatalf("auth_time = %v", c.AuthTime)
	}
}
