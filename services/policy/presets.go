package policy

import "sort"

// Types lists the secret types whose maximum age a policy sets, in display order.
func Types() []string { return []string{TypeAPICredential, TypeSSHKey, TypeWebhookSecret} }

// TypeLabel is the display name of a secret type.
func TypeLabel(secretType string) string {
	switch secretType {
	case TypeAPICredential:
		return "API credentials"
	case TypeSSHKey:
		return "SSH keys"
	case TypeWebhookSecret:
		return "Webhook secrets"
	case "idp_secret":
		return "IdP client secrets"
	}
	return secretType
}

// Preset is a named set of maximum ages an admin can apply in one step.
type Preset struct {
	ID          string
	Label       string
	Description string
	MaxAgeDays  map[string]int
}

// Preset identifiers.
const (
	PresetCJIS    = "cjis"
	PresetCIS     = "cis"
	PresetDefault = "default"
)

// Presets returns the offered presets, in display order.
func Presets() []Preset {
	all := func(d int) map[string]int {
		m := map[string]int{}
		for _, t := range Types() {
			m[t] = d
		}
		return m
	}
	return []Preset{
		{ID: PresetCJIS, Label: "CJIS: annual rotation", Description: "Every secret type rotated at least every 365 days.", MaxAgeDays: all(365)},
		{ID: PresetCIS, Label: "CIS: 90 days", Description: "Every secret type rotated at least every 90 days.", MaxAgeDays: all(90)},
		{ID: PresetDefault, Label: "Console defaults", Description: "API credentials 90 days, SSH keys 365 days, webhook secrets 180 days.", MaxAgeDays: Default().MaxAgeDays},
	}
}

// PresetByID finds a preset.
func PresetByID(id string) (Preset, bool) {
	for _, p := range Presets() {
		if p.ID == id {
			return p, true
		}
	}
	return Preset{}, false
}

// WithPreset returns p with the preset's maximum ages; other values stay.
func (p Policy) WithPreset(pr Preset) Policy {
	out := p.Clone()
	for t, d := range pr.MaxAgeDays {
		out.MaxAgeDays[t] = d
	}
	return out
}

// MatchingPreset returns the preset whose maximum ages p has, if any.
func (p Policy) MatchingPreset() (Preset, bool) {
	for _, pr := range Presets() {
		match := true
		for _, t := range Types() {
			if p.MaxAgeDays[t] != pr.MaxAgeDays[t] {
				match = false
				break
			}
		}
		if match {
			return pr, true
		}
	}
	return Preset{}, false
}

// Clone returns a deep copy of p.
func (p Policy) Clone() Policy {
	out := p
	out.MaxAgeDays = make(map[string]int, len(p.MaxAgeDays))
	for k, v := range p.MaxAgeDays {
		out.MaxAgeDays[k] = v
	}
	return out
}

// Field names of a policy, as used in forms and in audit details.
const (
	FieldDueSoon    = "due_soon_days"
	FieldUnused     = "unused_days"
	FieldMinRSA     = "min_rsa_bits"
	FieldIdPWarning = "idp_warning_days"
)

// Fields returns the policy as field name to value, for audit details and
// comparisons: one entry per secret type's maximum age plus the windows.
func (p Policy) Fields() map[string]int {
	m := map[string]int{
		FieldDueSoon:    p.DueSoonDays,
		FieldUnused:     p.UnusedDays,
		FieldMinRSA:     p.MinRSABits,
		FieldIdPWarning: p.IdPWarningDays,
	}
	for _, t := range Types() {
		m[t] = p.MaxAgeDays[t]
	}
	return m
}

// FieldNames returns the names of Fields in display order.
func FieldNames() []string {
	return append(Types(), FieldDueSoon, FieldUnused, FieldMinRSA, FieldIdPWarning)
}

// Changes lists the fields whose values differ between a and b, sorted.
func Changes(a, b Policy) []string {
	fa, fb := a.Fields(), b.Fields()
	var out []string
	for k, v := range fa {
		if fb[k] != v {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
