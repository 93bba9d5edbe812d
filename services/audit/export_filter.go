package audit

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"keyconsole/models"
	"keyconsole/services/validation"
)

// Filter is a view of one agency's audit log as people write it, in a URL
// query string or on a command line. The zero Filter selects everything.
type Filter struct {
	// FromText and ToText are the bounds as given; From and To are their
	// parsed UTC instants (From inclusive, To exclusive).
	FromText, ToText string
	From, To         *time.Time
	Actor            string
	// Action is an exact action, or a prefix when it ends in '.'.
	Action     string
	TargetType string
	// Target matches a target id or name exactly.
	Target  string
	Outcome string
}

// FilterError lists the filter fields that were not accepted, by field name.
type FilterError struct {
	Fields map[string]string
}

func (e *FilterError) Error() string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+e.Fields[k])
	}
	return "audit: filter: " + strings.Join(parts, "; ")
}

// ErrFilter is what a FilterError unwraps to.
var ErrFilter = errors.New("audit: invalid filter")

// Unwrap lets callers test for ErrFilter, and find the refused fields as a
// *validation.Error (which the web answers 422).
func (e *FilterError) Unwrap() []error { return []error{ErrFilter, validation.New(e.Fields)} }

// FilterKeys are the query-string names of the filter fields, in display order.
func FilterKeys() []string {
	return []string{"from", "to", "actor", "action", "target_type", "target", "outcome"}
}

var actionPattern = regexp.MustCompile(`^[a-z0-9_]+(\.[a-z0-9_]+)*\.?$`)

// ParseFilter reads a filter from named values (a URL query or flags).
// Times are UTC: a date (2026-03-01), a minute (2026-03-01T09:30), a second
// (2026-03-01T09:30:15) or RFC 3339 with a zone, converted to UTC. "to"
// includes the whole day, minute or second it names.
func ParseFilter(get func(key string) string) (Filter, error) {
	f := Filter{
		FromText:   strings.TrimSpace(get("from")),
		ToText:     strings.TrimSpace(get("to")),
		Actor:      strings.TrimSpace(get("actor")),
		Action:     strings.TrimSpace(get("action")),
		TargetType: strings.TrimSpace(get("target_type")),
		Target:     strings.TrimSpace(get("target")),
		Outcome:    strings.TrimSpace(get("outcome")),
	}
	bad := map[string]string{}
	if f.FromText != "" {
		t, _, err := ParseTime(f.FromText)
		if err != nil {
			bad["from"] = "From: " + err.Error()
		} else {
			f.From = &t
		}
	}
	if f.ToText != "" {
		t, unit, err := ParseTime(f.ToText)
		if err != nil {
			bad["to"] = "To: " + err.Error()
		} else {
			end := t.Add(unit)
			f.To = &end
		}
	}
	if f.From != nil && f.To != nil && !f.From.Before(*f.To) {
		bad["to"] = "To must be after From."
	}
	if f.Action != "" && (len(f.Action) > 100 || !actionPattern.MatchString(f.Action)) {
		bad["action"] = "Action: use an action name such as api_credential.rotate, or a prefix ending in a dot such as auth."
	}
	switch f.Outcome {
	case "", OutcomeSuccess, OutcomeFailure, OutcomeDenied:
	default:
		bad["outcome"] = "Outcome must be success, failure or denied."
	}
	for key, v := range map[string]string{"actor": f.Actor, "target_type": f.TargetType, "target": f.Target} {
		if len(v) > 300 {
			bad[key] = "Keep " + strings.ReplaceAll(key, "_", " ") + " under 300 characters."
		}
	}
	if len(bad) > 0 {
		return Filter{}, &FilterError{Fields: bad}
	}
	return f, nil
}

// ParseTime reads a UTC date or date-time and returns it with the length of
// the span it names (a day, minute, second or, for RFC 3339, a microsecond).
func ParseTime(s string) (time.Time, time.Duration, error) {
	for _, l := range []struct {
		layout string
		unit   time.Duration
	}{
		{"2006-01-02", 24 * time.Hour},
		{"2006-01-02T15:04", time.Minute},
		{"2006-01-02 15:04", time.Minute},
		{"2006-01-02T15:04:05", time.Second},
		{"2006-01-02 15:04:05", time.Second},
	} {
		if t, err := time.ParseInLocation(l.layout, s, time.UTC); err == nil {
			return t, l.unit, nil
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC().Truncate(time.Microsecond), time.Microsecond, nil
	}
	return time.Time{}, 0, fmt.Errorf("%q is not a date (YYYY-MM-DD) or a UTC date and time (YYYY-MM-DDTHH:MM[:SS])", s)
}

// Model returns the store filter of the view for an agency.
func (f Filter) Model(agencyID int64) models.AuditFilter {
	return models.AuditFilter{AgencyID: agencyID, From: f.From, To: f.To, Actor: f.Actor, Action: f.Action,
		TargetType: f.TargetType, Target: f.Target, Outcome: f.Outcome}
}

// Values returns the filter as a query string, the permalink of the view.
func (f Filter) Values() url.Values {
	v := url.Values{}
	for _, kv := range f.Pairs() {
		v.Set(kv[0], kv[1])
	}
	return v
}

// Pairs lists the set fields as key/value pairs in FilterKeys order.
func (f Filter) Pairs() [][2]string {
	var out [][2]string
	for _, k := range FilterKeys() {
		if v := f.get(k); v != "" {
			out = append(out, [2]string{k, v})
		}
	}
	return out
}

func (f Filter) get(key string) string {
	switch key {
	case "from":
		return f.FromText
	case "to":
		return f.ToText
	case "actor":
		return f.Actor
	case "action":
		return f.Action
	case "target_type":
		return f.TargetType
	case "target":
		return f.Target
	case "outcome":
		return f.Outcome
	}
	return ""
}

// Empty reports whether the filter selects everything.
func (f Filter) Empty() bool { return len(f.Pairs()) == 0 }

// RangeText describes the time range in words.
func (f Filter) RangeText() string {
	const layout = "2006-01-02 15:04:05 UTC"
	switch {
	case f.From != nil && f.To != nil:
		return "from " + f.From.UTC().Format(layout) + " up to " + f.To.UTC().Format(layout)
	case f.From != nil:
		return "from " + f.From.UTC().Format(layout)
	case f.To != nil:
		return "up to " + f.To.UTC().Format(layout)
	}
	return "all records"
}

// Text describes the non-time filters, or "none".
func (f Filter) Text() string {
	var parts []string
	for _, kv := range f.Pairs() {
		if kv[0] == "from" || kv[0] == "to" {
			continue
		}
		parts = append(parts, kv[0]+"="+kv[1])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
