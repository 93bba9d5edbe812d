// Package auth turns verified identity-provider claims into console users,
// agency roles and server-side sessions, and audits every sign-in decision.
package auth

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Provider kinds and their claim conventions.
const (
	KindAzure   = "azure"
	KindOkta    = "okta"
	KindGoogle  = "google"
	KindGeneric = "generic"
	KindDev     = "dev"
)

// ProviderInfo is what the sign-in rules need to know about a provider.
type ProviderInfo struct {
	ID            string
	Kind          string
	Label         string
	GroupsClaim   string
	AllowedDomain string
}

// Claims are the verified ID-token claims keyconsole uses, read per provider kind.
type Claims struct {
	Subject string
	// ObjectID is Azure AD's oid claim (azure kind only).
	ObjectID      string
	Email         string
	EmailVerified bool
	Name          string
	Groups        []string
	AuthTime      time.Time
}

// Refusal is a sign-in that was refused for a reason the user can act on.
type Refusal struct {
	Code    string
	Message string
}

func (r *Refusal) Error() string { return r.Message }

// Refusal codes.
const (
	RefusedGroupOverage = "azure_group_overage"
	RefusedDomain       = "wrong_domain"
	RefusedNoAccess     = "no_access"
	RefusedDisabled     = "user_disabled"
	RefusedClaims       = "bad_claims"
	RefusedState        = "bad_state"
	RefusedNonce        = "bad_nonce"
	RefusedToken        = "bad_token"
	RefusedProvider     = "provider_error"
	RefusedThrottled    = "throttled"
)

// ReadClaims extracts Claims from a raw ID-token claim set by the rules of the
// provider's kind.
func ReadClaims(p ProviderInfo, raw map[string]json.RawMessage) (Claims, error) {
	var c Claims
	str := func(k string) string {
		var s string
		if v, ok := raw[k]; ok {
			_ = json.Unmarshal(v, &s)
		}
		return s
	}
	c.Subject = str("sub")
	if c.Subject == "" {
		return c, &Refusal{RefusedClaims, "The identity provider's token has no subject (sub) claim."}
	}
	c.Email = strings.ToLower(str("email"))
	if p.Kind == KindAzure {
		c.ObjectID = strings.ToLower(str("oid"))
		if c.Email == "" {
			c.Email = strings.ToLower(str("preferred_username"))
		}
	}
	c.Name = str("name")
	if v, ok := raw["email_verified"]; ok {
		var b bool
		if json.Unmarshal(v, &b) == nil {
			c.EmailVerified = b
		} else {
			c.EmailVerified = strings.EqualFold(str("email_verified"), "true")
		}
	}
	if v, ok := raw["auth_time"]; ok {
		var n float64
		if json.Unmarshal(v, &n) == nil && n > 0 {
			c.AuthTime = time.Unix(int64(n), 0).UTC()
		}
	}
	claim := p.GroupsClaim
	if claim == "" {
		claim = "groups"
	}
	groups, err := stringList(raw[claim])
	if err != nil {
		return c, &Refusal{RefusedClaims, fmt.Sprintf("The %q claim is not a list of strings.", claim)}
	}
	switch p.Kind {
	case KindAzure:
		// Azure AD replaces the groups claim with an overage pointer when a user
		// has too many groups; reading that as "no groups" would silently lock the
		// user out or, worse, hide a misconfiguration.
		if names, ok := raw["_claim_names"]; ok {
			var m map[string]any
			if json.Unmarshal(names, &m) == nil {
				if _, over := m["groups"]; over {
					return c, &Refusal{RefusedGroupOverage, "Your Azure AD account belongs to too many groups for them to fit in the sign-in token (group overage). Ask your Azure AD administrator to assign app roles to this application, or to limit the groups claim to groups assigned to the application."}
				}
			}
		}
		if v, ok := raw["hasgroups"]; ok && string(v) == "true" {
			return c, &Refusal{RefusedGroupOverage, "Your Azure AD account belongs to too many groups for them to fit in the sign-in token (group overage). Ask your Azure AD administrator to assign app roles to this application."}
		}
		roles, err := stringList(raw["roles"])
		if err != nil {
			return c, &Refusal{RefusedClaims, "The roles claim is not a list of strings."}
		}
		groups = append(groups, roles...)
	case KindGoogle:
		hd := strings.ToLower(str("hd"))
		if p.AllowedDomain == "" || hd != p.AllowedDomain {
			return c, &Refusal{RefusedDomain, "This Google account does not belong to the agency's Google Workspace domain. Sign in with your agency account."}
		}
		if !c.EmailVerified || !strings.HasSuffix(c.Email, "@"+hd) {
			return c, &Refusal{RefusedDomain, "Google did not confirm an agency e-mail address for this account."}
		}
		// Google puts no groups in ID tokens: map by domain and by address.
		groups = []string{"domain:" + hd, "email:" + c.Email}
	}
	c.Groups = groups
	return c, nil
}

func stringList(v json.RawMessage) ([]string, error) {
	if len(v) == 0 || string(v) == "null" {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal(v, &list); err == nil {
		return list, nil
	}
	var one string
	if err := json.Unmarshal(v, &one); err == nil {
		return []string{one}, nil
	}
	return nil, fmt.Errorf("not a string list")
}
