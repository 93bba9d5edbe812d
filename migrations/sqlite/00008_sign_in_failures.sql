-- +goose Up
-- Failed sign-ins per account (provider and subject), for the CJIS limit of
-- consecutive failures; a successful sign-in clears the account's rows.
CREATE TABLE sign_in_failures (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    provider  TEXT NOT NULL,
    subject   TEXT NOT NULL,
    reason    TEXT NOT NULL DEFAULT '',
    failed_at DATETIME NOT NULL
);
CREATE INDEX sign_in_failures_account ON sign_in_failures (provider, subject, failed_at);
CREATE INDEX sign_in_failures_failed_at ON sign_in_failures (failed_at);

-- +goose Down
DROP TABLE sign_in_failures;
