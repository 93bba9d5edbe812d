package models

import "errors"

// Sentinel errors every store returns (wrapped); callers test them with
// errors.Is. They are also the general kinds service errors unwrap to, and
// web/errors.go answers each kind with one status.
var (
	// ErrNotFound means the record does not exist, or belongs to another agency.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a uniqueness rule, a concurrent change or the
	// record's current state refused the write.
	ErrConflict = errors.New("conflict")
	// ErrLimited means the caller asked too often; nothing was done.
	ErrLimited = errors.New("too many requests")
	// ErrUnavailable means the database could not be reached.
	ErrUnavailable = errors.New("database unavailable")
	// ErrStorageFull means the database refused a write because it cannot
	// store more: its disk is full (SQLITE_FULL, ENOSPC, PostgreSQL's
	// disk_full 53100) or its file is read-only (SQLITE_READONLY, EROFS).
	// Nothing of the transaction was written.
	ErrStorageFull = errors.New("database storage is full")
)

// Refusal is a service's sentinel error that explains itself to the person
// who made the request. It unwraps to its general kind (ErrConflict,
// ErrLimited, ...), which decides the status; Heading and Message are shown
// instead of the kind's generic text. Error returns the text for logs.
type Refusal struct {
	kind             error
	text             string
	Heading, Message string
}

// NewRefusal returns a sentinel of the given kind.
func NewRefusal(kind error, text, heading, message string) *Refusal {
	return &Refusal{kind: kind, text: text, Heading: heading, Message: message}
}

// Error returns the text for logs.
func (r *Refusal) Error() string { return r.text }

// Unwrap returns the general kind.
func (r *Refusal) Unwrap() error { return r.kind }
