package models

import "errors"

// Sentinel errors every store returns (wrapped); callers test them with errors.Is.
var (
	// ErrNotFound means the record does not exist, or belongs to another agency.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a uniqueness rule or a concurrent change refused the write.
	ErrConflict = errors.New("conflict")
	// ErrUnavailable means the database could not be reached.
	ErrUnavailable = errors.New("database unavailable")
)
