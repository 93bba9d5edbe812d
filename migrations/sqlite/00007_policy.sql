-- +goose Up
-- An agency's rotation policy; an agency without a row has the default policy.
CREATE TABLE agency_policies (
    agency_id                   INTEGER PRIMARY KEY REFERENCES agencies(id) ON DELETE CASCADE,
    api_credential_max_age_days INTEGER NOT NULL,
    ssh_key_max_age_days        INTEGER NOT NULL,
    webhook_secret_max_age_days INTEGER NOT NULL,
    due_soon_days               INTEGER NOT NULL,
    unused_days                 INTEGER NOT NULL,
    min_rsa_bits                INTEGER NOT NULL,
    idp_warning_days            INTEGER NOT NULL,
    updated_by_user_id          INTEGER,
    created_at                  DATETIME NOT NULL,
    updated_at                  DATETIME NOT NULL
);

-- Expiry dates of the client secrets of the agency's IdP applications. The
-- secret itself stays in the IdP; only its date is recorded here.
CREATE TABLE idp_secret_expiries (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    agency_id           INTEGER NOT NULL REFERENCES agencies(id) ON DELETE CASCADE,
    provider            TEXT NOT NULL,
    expires_at          DATETIME NOT NULL,
    note                TEXT NOT NULL DEFAULT '',
    recorded_by_user_id INTEGER,
    created_at          DATETIME NOT NULL,
    updated_at          DATETIME NOT NULL,
    UNIQUE (agency_id, provider)
);

-- +goose Down
DROP TABLE idp_secret_expiries;
DROP TABLE agency_policies;
