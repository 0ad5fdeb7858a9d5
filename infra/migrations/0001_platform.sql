-- Platform: records of Idempotency-Key use for creating POSTs.
-- A row is claimed with state 'running' by the first request and becomes
-- 'done' with the stored response; rows past expires_at count as absent.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope        TEXT    NOT NULL,                -- tenant + caller + route
    idem_key     TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL,                -- SHA-256 of method, path, body
    state        TEXT    NOT NULL CHECK (state IN ('running', 'done')),
    status       INTEGER,                         -- NULL while running
    content_type TEXT,                            -- NULL while running
    body         BLOB,                            -- NULL while running
    created_at   INTEGER NOT NULL,                -- unix seconds
    expires_at   INTEGER NOT NULL,                -- unix seconds
    PRIMARY KEY (scope, idem_key)
);

CREATE INDEX IF NOT EXISTS idempotency_keys_expires_at ON idempotency_keys (expires_at);
