-- +goose Up
-- Webhook endpoints of an agency. Secrets are not here: they live sealed in
-- sealed_secrets (record type webhook_secret, record id "<endpoint id>:<version>").
-- secret_version is the current secret; previous_version the one kept during a
-- rotation overlap until overlap_ends_at.
CREATE TABLE webhook_endpoints (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    agency_id              INTEGER NOT NULL REFERENCES agencies(id) ON DELETE CASCADE,
    environment            TEXT NOT NULL CHECK (environment IN ('staging', 'production')),
    name                   TEXT NOT NULL,
    url                    TEXT NOT NULL,
    description            TEXT NOT NULL DEFAULT '',
    event_types            TEXT NOT NULL DEFAULT '',
    enabled                BOOLEAN NOT NULL DEFAULT TRUE,
    secret_version         INTEGER NOT NULL DEFAULT 0,
    secret_set_at          DATETIME,
    previous_version       INTEGER NOT NULL DEFAULT 0,
    overlap_ends_at        DATETIME,
    new_secret_verified_at DATETIME,
    last_delivery_at       DATETIME,
    created_by             TEXT NOT NULL DEFAULT '',
    created_at             DATETIME NOT NULL,
    updated_at             DATETIME NOT NULL,
    UNIQUE (agency_id, name)
);
CREATE INDEX webhook_endpoints_agency ON webhook_endpoints (agency_id, environment, id);
CREATE INDEX webhook_endpoints_overlap ON webhook_endpoints (overlap_ends_at) WHERE previous_version <> 0;

-- One event to deliver to one endpoint, at least once. A worker claims a row by
-- moving it from pending to delivering with its claim token (a conditional
-- update), so two replicas never make the same attempt.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    agency_id       INTEGER NOT NULL,
    endpoint_id     INTEGER NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    msg_id          TEXT NOT NULL UNIQUE,
    event_type      TEXT NOT NULL,
    payload         BLOB NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivering', 'succeeded', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DATETIME NOT NULL,
    claim_token     TEXT NOT NULL DEFAULT '',
    lease_until     DATETIME,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      DATETIME NOT NULL,
    updated_at      DATETIME NOT NULL,
    completed_at    DATETIME
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);

-- The delivery log: one row per attempt (events and test events), with what the
-- receiver answered. Never a secret or a signature.
CREATE TABLE webhook_attempts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    agency_id     INTEGER NOT NULL,
    endpoint_id   INTEGER NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    delivery_id   INTEGER,
    msg_id        TEXT NOT NULL,
    event_type    TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('event', 'test', 'test_new_secret')),
    attempt       INTEGER NOT NULL,
    signed_with   TEXT NOT NULL DEFAULT '',
    status_code   INTEGER NOT NULL DEFAULT 0,
    latency_ms    INTEGER NOT NULL DEFAULT 0,
    response_head TEXT NOT NULL DEFAULT '',
    error         TEXT NOT NULL DEFAULT '',
    refused       BOOLEAN NOT NULL DEFAULT FALSE,
    ok            BOOLEAN NOT NULL DEFAULT FALSE,
    attempted_at  DATETIME NOT NULL
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id);

-- +goose Down
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
