-- +goose Up
-- SFTP accounts: one per agency and environment. The name is the SSH user
-- name (<agency slug>-<environment>), unique across the console.
CREATE TABLE sftp_accounts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    agency_id       INTEGER NOT NULL REFERENCES agencies(id) ON DELETE CASCADE,
    name            TEXT NOT NULL UNIQUE,
    environment     TEXT NOT NULL CHECK (environment IN ('prod', 'stg')),
    created_by_id   INTEGER,
    created_by_name TEXT NOT NULL DEFAULT '',
    created_at      DATETIME NOT NULL,
    UNIQUE (agency_id, environment)
);

-- Public keys of SFTP accounts. A key is active while revoked_at and
-- expired_at are both NULL (and expires_at, if set, lies ahead); expired_at
-- records when the expiry sweep noticed a passed expires_at.
CREATE TABLE ssh_keys (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    agency_id       INTEGER NOT NULL REFERENCES agencies(id) ON DELETE CASCADE,
    account_id      INTEGER NOT NULL REFERENCES sftp_accounts(id) ON DELETE CASCADE,
    key_type        TEXT NOT NULL,
    bits            INTEGER NOT NULL,
    fingerprint     TEXT NOT NULL,
    public_key      TEXT NOT NULL,
    comment         TEXT NOT NULL DEFAULT '',
    created_by_id   INTEGER,
    created_by_name TEXT NOT NULL DEFAULT '',
    created_at      DATETIME NOT NULL,
    expires_at      DATETIME,
    expired_at      DATETIME,
    revoked_at      DATETIME,
    revoked_by_name TEXT NOT NULL DEFAULT '',
    last_used_at    DATETIME
);
-- One active key per fingerprint in the whole console; also the index of
-- public-key authentication.
CREATE UNIQUE INDEX ssh_keys_active_fingerprint ON ssh_keys (fingerprint) WHERE revoked_at IS NULL AND expired_at IS NULL;
CREATE INDEX ssh_keys_account ON ssh_keys (account_id, id);
CREATE INDEX ssh_keys_agency ON ssh_keys (agency_id, id);
CREATE INDEX ssh_keys_expiry ON ssh_keys (expires_at) WHERE expired_at IS NULL AND revoked_at IS NULL;

-- +goose Down
DROP TABLE ssh_keys;
DROP TABLE sftp_accounts;
