-- +goose Up
CREATE TABLE agencies (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  DATETIME NOT NULL,
    updated_at  DATETIME NOT NULL
);

CREATE TABLE users (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    provider        TEXT NOT NULL,
    subject         TEXT NOT NULL,
    email           TEXT NOT NULL DEFAULT '',
    name            TEXT NOT NULL DEFAULT '',
    is_operator     BOOLEAN NOT NULL DEFAULT FALSE,
    disabled_at     DATETIME,
    last_sign_in_at DATETIME,
    created_at      DATETIME NOT NULL,
    updated_at      DATETIME NOT NULL,
    UNIQUE (provider, subject)
);

CREATE TABLE role_mappings (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    agency_id   INTEGER NOT NULL REFERENCES agencies(id) ON DELETE CASCADE,
    provider    TEXT NOT NULL,
    group_value TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'reviewer', 'viewer')),
    created_at  DATETIME NOT NULL,
    UNIQUE (agency_id, provider, group_value, role)
);
CREATE INDEX role_mappings_lookup ON role_mappings (provider, group_value);

CREATE TABLE user_agency_roles (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    agency_id  INTEGER NOT NULL REFERENCES agencies(id) ON DELETE CASCADE,
    role       TEXT NOT NULL,
    updated_at DATETIME NOT NULL,
    PRIMARY KEY (user_id, agency_id)
);
CREATE INDEX user_agency_roles_agency ON user_agency_roles (agency_id);

CREATE TABLE sessions (
    id                TEXT PRIMARY KEY,
    user_id           INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider          TEXT NOT NULL,
    current_agency_id INTEGER,
    created_at        DATETIME NOT NULL,
    last_seen_at      DATETIME NOT NULL,
    auth_time         DATETIME NOT NULL,
    revoked_at        DATETIME,
    revoke_reason     TEXT NOT NULL DEFAULT '',
    source_ip         TEXT NOT NULL DEFAULT '',
    user_agent        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE login_attempts (
    state_hash  TEXT PRIMARY KEY,
    provider    TEXT NOT NULL,
    created_at  DATETIME NOT NULL,
    consumed_at DATETIME
);

CREATE TABLE audit_heads (
    agency_id  INTEGER PRIMARY KEY,
    seq        INTEGER NOT NULL,
    hash       TEXT NOT NULL,
    updated_at DATETIME NOT NULL
);

CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    agency_id   INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    occurred_at DATETIME NOT NULL,
    actor_type  TEXT NOT NULL,
    actor_id    TEXT NOT NULL DEFAULT '',
    actor_name  TEXT NOT NULL DEFAULT '',
    action      TEXT NOT NULL,
    target_type TEXT NOT NULL DEFAULT '',
    target_id   TEXT NOT NULL DEFAULT '',
    target_name TEXT NOT NULL DEFAULT '',
    outcome     TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    source_ip   TEXT NOT NULL DEFAULT '',
    user_agent  TEXT NOT NULL DEFAULT '',
    request_id  TEXT NOT NULL DEFAULT '',
    details     TEXT NOT NULL DEFAULT '',
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    UNIQUE (agency_id, seq)
);
CREATE INDEX audit_events_agency_id ON audit_events (agency_id, id);
CREATE INDEX audit_events_agency_time ON audit_events (agency_id, occurred_at, id);
CREATE INDEX audit_events_agency_action ON audit_events (agency_id, action, id);
CREATE INDEX audit_events_agency_actor ON audit_events (agency_id, actor_name, id);

-- +goose Down
DROP TABLE audit_events;
DROP TABLE audit_heads;
DROP TABLE login_attempts;
DROP TABLE sessions;
DROP TABLE user_agency_roles;
DROP TABLE role_mappings;
DROP TABLE users;
DROP TABLE agencies;
