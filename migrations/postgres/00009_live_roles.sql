-- +goose Up
-- The groups each user's provider sent at their latest sign-in. Agency
-- roles are no longer copied at sign-in: every request resolves them from
-- these groups and the role mappings as they are now, so removing or
-- changing a mapping, or deleting an agency, takes effect on the user's
-- next request on every replica.
CREATE TABLE user_groups (
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    group_value TEXT NOT NULL,
    PRIMARY KEY (user_id, group_value)
);
DROP TABLE user_agency_roles;
-- Live sessions carry roles copied at sign-in and no groups: end them, so
-- nobody keeps a role the mappings no longer give. Their users sign in
-- again and appear in their agencies' member lists from then on.
UPDATE sessions SET revoked_at = CURRENT_TIMESTAMP, revoke_reason = 'roles_resolved_live' WHERE revoked_at IS NULL;

-- +goose Down
CREATE TABLE user_agency_roles (
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    agency_id  BIGINT NOT NULL REFERENCES agencies(id) ON DELETE CASCADE,
    role       TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, agency_id)
);
CREATE INDEX user_agency_roles_agency ON user_agency_roles (agency_id);
DROP TABLE user_groups;
