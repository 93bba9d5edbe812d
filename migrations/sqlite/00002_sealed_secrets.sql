-- +goose Up
-- Every secret the console must read back, envelope-encrypted. The encryption
-- context (agency, record type, record id) is bound into each blob, so a blob
-- copied to another row does not open.
CREATE TABLE sealed_secrets (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    agency_id   INTEGER NOT NULL,
    record_type TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    provider    TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    blob        BLOB NOT NULL,
    created_at  DATETIME NOT NULL,
    updated_at  DATETIME NOT NULL,
    UNIQUE (record_type, record_id)
);
CREATE INDEX sealed_secrets_key ON sealed_secrets (key_id, id);

-- +goose Down
DROP TABLE sealed_secrets;
