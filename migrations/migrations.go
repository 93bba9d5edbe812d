// Package migrations holds the versioned SQL schema of keyconsole, one directory
// per database dialect, embedded in the binary.
package migrations

import "embed"

// SQLite is the schema history for the embedded SQLite database.
//
//go:embed sqlite/*.sql
var SQLite embed.FS

// Postgres is the schema history for PostgreSQL.
//
//go:embed postgres/*.sql
var Postgres embed.FS
