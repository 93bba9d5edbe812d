-- +goose Up
-- One row that readiness probes update, so /readyz reports a database that
-- answers but cannot store a write (a full disk, a read-only file).
CREATE TABLE write_probe (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    probed_at DATETIME NOT NULL
);
INSERT INTO write_probe (id, probed_at) VALUES (1, CURRENT_TIMESTAMP);

-- +goose Down
DROP TABLE write_probe;
