package policy

import (
	"fmt"
	"slices"

	"keyconsole/services/validation"
)

// Accepted ranges of policy values.
const (
	MinMaxAgeDays     = 7
	MaxMaxAgeDays     = 1095
	MinDueSoonDays    = 1
	MaxDueSoonDays    = 90
	MinUnusedDays     = 7
	MaxUnusedDays     = 730
	MinIdPWarningDays = 7
	MaxIdPWarningDays = 180
)

// RSASizes are the minimum RSA key sizes an agency may choose.
func RSASizes() []int { return []int{2048, 3072, 4096} }

// ValidationError is a refused policy: field name to message; it is the one
// validation error every service returns.
type ValidationError = validation.Error

// Validate checks every value of p and returns a *ValidationError naming
// each refused field, or nil.
func Validate(p Policy) error {
	errs := map[string]string{}
	for _, t := range Types() {
		d := p.MaxAgeDays[t]
		if d < MinMaxAgeDays || d > MaxMaxAgeDays {
			errs[t] = fmt.Sprintf("Maximum age of %s must be between %d and %d days.", TypeLabel(t), MinMaxAgeDays, MaxMaxAgeDays)
		}
	}
	switch {
	case p.DueSoonDays < MinDueSoonDays || p.DueSoonDays > MaxDueSoonDays:
		errs[FieldDueSoon] = fmt.Sprintf("The due-soon window must be between %d and %d days.", MinDueSoonDays, MaxDueSoonDays)
	default:
		for _, t := range Types() {
			if _, bad := errs[t]; !bad && p.DueSoonDays >= p.MaxAgeDays[t] {
				errs[FieldDueSoon] = fmt.Sprintf("The due-soon window must be shorter than every maximum age (%s: %d days).", TypeLabel(t), p.MaxAgeDays[t])
				break
			}
		}
	}
	if p.UnusedDays < MinUnusedDays || p.UnusedDays > MaxUnusedDays {
		errs[FieldUnused] = fmt.Sprintf("The unused threshold must be between %d and %d days.", MinUnusedDays, MaxUnusedDays)
	}
	if !slices.Contains(RSASizes(), p.MinRSABits) {
		errs[FieldMinRSA] = "The minimum RSA key size must be 2048, 3072 or 4096 bits."
	}
	if p.IdPWarningDays < MinIdPWarningDays || p.IdPWarningDays > MaxIdPWarningDays {
		errs[FieldIdPWarning] = fmt.Sprintf("The IdP secret warning window must be between %d and %d days.", MinIdPWarningDays, MaxIdPWarningDays)
	}
	if len(errs) > 0 {
		return &ValidationError{Fields: errs}
	}
	return nil
}
