package auth

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"

	"github.com/google/uuid"
)

// What a platform-operator entry matches.
const (
	// OperatorByEmail matches the e-mail claim, and only when the provider
	// kind vouches for it (EmailVouched).
	OperatorByEmail = "email"
	// OperatorBySubject matches the sub claim: the provider's own stable
	// identifier, the safest choice for every kind.
	OperatorBySubject = "sub"
	// OperatorByObjectID matches Azure AD's oid claim (the user's object id
	// in the tenant the issuer names).
	OperatorByObjectID = "oid"
)

// Operator is one KEYCONSOLE_OPERATORS entry: provider:email,
// provider:sub:SUBJECT or, for an azure provider, provider:oid:OBJECT-ID.
type Operator struct {
	Provider string
	By       string
	// Value is the lowercased e-mail or object id, or the subject exactly
	// (subjects are case-sensitive).
	Value string
}

// String is the entry in its canonical form.
func (o Operator) String() string {
	if o.By == OperatorByEmail {
		return o.Provider + ":" + o.Value
	}
	return o.Provider + ":" + o.By + ":" + o.Value
}

// ParseOperator reads one KEYCONSOLE_OPERATORS entry.
func ParseOperator(entry string) (Operator, error) {
	entry = strings.TrimSpace(entry)
	provider, rest, ok := strings.Cut(entry, ":")
	provider = strings.ToLower(provider)
	if !ok || provider == "" || rest == "" {
		return Operator{}, errors.New("must be provider:email or provider:sub:SUBJECT")
	}
	o := Operator{Provider: provider}
	switch by, v, _ := strings.Cut(rest, ":"); strings.ToLower(by) {
	case OperatorBySubject:
		if v == "" || len(v) > 255 || strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			return Operator{}, errors.New("the subject after provider:sub: must be the provider's sub claim exactly: 1 to 255 characters without spaces")
		}
		o.By, o.Value = OperatorBySubject, v
	case OperatorByObjectID:
		id, err := uuid.Parse(v)
		if err != nil || id.String() != strings.ToLower(v) {
			return Operator{}, errors.New("the object id after provider:oid: must be the user's Azure AD object id (a GUID such as 5f0e7b52-1c3d-4e5f-8a9b-0c1d2e3f4a5b)")
		}
		o.By, o.Value = OperatorByObjectID, id.String()
	default:
		addr, err := mail.ParseAddress(rest)
		if err != nil || addr.Name != "" || addr.Address != rest {
			return Operator{}, errors.New("must be provider:email (a bare address such as ops@example.gov) or provider:sub:SUBJECT")
		}
		o.By, o.Value = OperatorByEmail, strings.ToLower(addr.Address)
	}
	return o, nil
}

// CheckKind refuses an entry the provider kind can never vouch for.
func (o Operator) CheckKind(kind string) error {
	switch {
	case o.By == OperatorByEmail && kind == KindAzure:
		return fmt.Errorf("Microsoft does not verify Azure AD's email claim, so %s could never grant operator; use %s:sub:SUBJECT or %s:oid:OBJECT-ID", o, o.Provider, o.Provider)
	case o.By == OperatorByObjectID && kind != KindAzure:
		return fmt.Errorf("provider:oid: entries are only for azure providers; use %s:sub:SUBJECT", o.Provider)
	}
	return nil
}

// EmailVouched reports whether the provider kind vouches for the e-mail of
// these claims, so that it may grant privilege. Okta, Google, generic
// providers (and the development provider) say so with email_verified,
// which a user-editable address at a generic provider does not get.
// Azure AD's email (or preferred_username) claim is whatever the account
// holds, never verified by Microsoft: it never vouches.
func EmailVouched(kind string, c Claims) bool {
	return c.Email != "" && c.EmailVerified && kind != KindAzure
}

// Why an operator entry by e-mail matched but granted nothing.
const (
	operatorEmailNotVerified = "email_not_verified"
)

// operatorMatch decides whether the claims are a platform operator's.
// refused is set when an e-mail entry matched an address the provider did
// not vouch for, and says why nothing was granted.
func (s *Service) operatorMatch(p ProviderInfo, c Claims) (ok bool, refused string) {
	for _, op := range s.operators {
		if op.Provider != p.ID {
			continue
		}
		switch op.By {
		case OperatorBySubject:
			if c.Subject == op.Value {
				return true, ""
			}
		case OperatorByObjectID:
			if p.Kind == KindAzure && c.ObjectID != "" && strings.ToLower(c.ObjectID) == op.Value {
				return true, ""
			}
		case OperatorByEmail:
			if c.Email == "" || strings.ToLower(c.Email) != op.Value {
				continue
			}
			if EmailVouched(p.Kind, c) {
				return true, ""
			}
			refused = operatorEmailNotVerified
		}
	}
	return false, refused
}

// operatorRefusedText tells the user why their operator e-mail granted nothing.
func operatorRefusedText(p ProviderInfo, c Claims) string {
	label := p.Label
	if label == "" {
		label = p.ID
	}
	why := label + " did not confirm that you own this e-mail address (email_verified)"
	if p.Kind == KindAzure {
		why = "Microsoft does not verify the e-mail address in an Azure AD sign-in"
	}
	return " Your e-mail address is listed as a platform operator, but " + why + ", so it grants nothing. A platform operator entry by subject works instead: " + p.ID + ":sub:" + c.Subject + "."
}
