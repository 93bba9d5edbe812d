-- +goose Up
-- A public key is active on one account per agency at most, and may be
-- active in several agencies independently: refusing it because another
-- agency uses it would tell the uploader that it is in use there. Logins find
-- the key by fingerprint and account name, so each agency's copy opens its
-- own account only. The index also serves those lookups (fingerprint first).
DROP INDEX ssh_keys_active_fingerprint;
CREATE UNIQUE INDEX ssh_keys_active_fingerprint_agency ON ssh_keys (fingerprint, agency_id) WHERE revoked_at IS NULL AND expired_at IS NULL;

-- +goose Down
-- Fails while one key is active in two agencies: revoke one copy first.
DROP INDEX ssh_keys_active_fingerprint_agency;
CREATE UNIQUE INDEX ssh_keys_active_fingerprint ON ssh_keys (fingerprint) WHERE revoked_at IS NULL AND expired_at IS NULL;
