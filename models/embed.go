package models

import "keyconsole/migrations"

var (
	migrationsSQLite   = migrations.SQLite
	migrationsPostgres = migrations.Postgres
)
