-- +goose Up
-- API credentials of an agency. The client secret is never stored: only its
-- HMAC-SHA256 under a server-side pepper (pepper_id names which one).
CREATE TABLE api_credentials (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    agency_id       INTEGER NOT NULL REFERENCES agencies(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    environment     TEXT NOT NULL CHECK (environment IN ('staging', 'production')),
    client_id       TEXT NOT NULL UNIQUE,
    secret_hash     BLOB NOT NULL,
    pepper_id       TEXT NOT NULL,
    secret_version  INTEGER NOT NULL DEFAULT 1,
    create_nonce    TEXT,
    created_by_id   INTEGER,
    created_by_name TEXT NOT NULL DEFAULT '',
    created_at      DATETIME NOT NULL,
    rotated_at      DATETIME,
    rotated_by_name TEXT NOT NULL DEFAULT '',
    expires_at      DATETIME,
    expired_at      DATETIME,
    revoked_at      DATETIME,
    revoked_by_name TEXT NOT NULL DEFAULT '',
    last_used_at    DATETIME,
    updated_at      DATETIME NOT NULL
);
CREATE INDEX api_credentials_agency ON api_credentials (agency_id, environment, id);
CREATE UNIQUE INDEX api_credentials_live_name ON api_credentials (agency_id, environment, name) WHERE revoked_at IS NULL;
CREATE UNIQUE INDEX api_credentials_nonce ON api_credentials (agency_id, create_nonce);
CREATE INDEX api_credentials_expiry ON api_credentials (expires_at) WHERE expired_at IS NULL AND revoked_at IS NULL;

-- Keys that sign access tokens. The private keys live in sealed_secrets
-- (record type token_signing_key, agency 0, record id = kid); this table is
-- the shared list every replica loads. status: active (the current key; it
-- signs from activates_at), retired (signs until not_after, published until
-- publish_until), expired (no longer published; private key destroyed).
CREATE TABLE token_signing_keys (
    kid           TEXT PRIMARY KEY,
    status        TEXT NOT NULL CHECK (status IN ('active', 'retired', 'expired')),
    created_at    DATETIME NOT NULL,
    activates_at  DATETIME NOT NULL,
    not_after     DATETIME,
    publish_until DATETIME,
    updated_at    DATETIME NOT NULL
);
CREATE UNIQUE INDEX token_signing_keys_one_active ON token_signing_keys (status) WHERE status = 'active';

-- +goose Down
DROP TABLE token_signing_keys;
DROP TABLE api_credentials;
