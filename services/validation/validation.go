// Package validation holds the one error every service returns for refused
// input, so the web layer answers every refused form the same way (422).
package validation

import (
	"sort"
	"strings"
)

// Error is refused input: field name to a message for the person who filled
// it in. Messages never repeat a secret. Services return it (or an error that
// unwraps to it); callers test it with errors.As.
type Error struct {
	Fields map[string]string
}

// New returns a refusal of the given fields.
func New(fields map[string]string) *Error { return &Error{Fields: fields} }

// Field returns a refusal of one field.
func Field(name, message string) *Error { return &Error{Fields: map[string]string{name: message}} }

// Error lists the refused fields and their messages, by field name.
func (e *Error) Error() string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+e.Fields[k])
	}
	return "invalid input: " + strings.Join(parts, "; ")
}
