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
	// ErrStorageFull means the database refused a write because it cannot
	// store more: its disk is full (SQLITE_FULL, ENOSPC, PostgreSQL's
	// disk_full 53100) or its file is read-only (SQLITE_READONLY, EROFS).
	// Nothing of the transaction was written.
	ErrStorageFull = errors.New("database storage is full")
)
