-- Outgoing webhooks: each org's endpoints, the messages its events make
-- for them, and every attempt to deliver one. Signed as Standard Webhooks;
-- delivered by background jobs on the Standard Webhooks retry schedule.
-- Times are unix seconds.

-- An endpoint's secrets are sealed (a key derived from the master key, the
-- endpoint id as associated data): `secret` signs every delivery (`v1`);
-- after a rotation `previous_secret` signs beside it until
-- `previous_expires_at`; `signing_key`, when set, adds an Ed25519 `v1a`
-- signature. Its public half is kept apart in `public_key`, so reading or
-- listing endpoints never opens a sealed key.
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    org_id              TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    endpoint_id         TEXT    NOT NULL PRIMARY KEY,   -- whep_<32 hex>
    url                 TEXT    NOT NULL,
    description         TEXT,
    event_types         TEXT,                           -- JSON array of types; NULL takes every type
    enabled             INTEGER NOT NULL DEFAULT 1,
    -- why it is off: admin (turned off by an admin), gone (answered 410),
    -- failing (every attempt failed for 5 days); NULL while enabled
    disabled_reason     TEXT CHECK (disabled_reason IN ('admin', 'gone', 'failing')),
    disabled_at         INTEGER,
    secret              TEXT    NOT NULL,               -- sealed whsec_
    previous_secret     TEXT,                           -- sealed whsec_, until previous_expires_at
    previous_expires_at INTEGER,
    signing_key         TEXT,                           -- sealed Ed25519 seed; NULL: no v1a
    public_key          TEXT,                           -- whpk_ of signing_key; NULL exactly when it is
    failing_since       INTEGER,                        -- the first failed attempt since the last success
    created_by          TEXT    NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    deleted_at          INTEGER                         -- a deleted endpoint gets nothing more
);
CREATE INDEX IF NOT EXISTS webhook_endpoints_by_org ON webhook_endpoints (org_id, created_at, endpoint_id);

-- One message per org event and endpoint that takes its type. Its body is
-- the event (org_events) as it was recorded, so every attempt and resend
-- sends the same bytes; its webhook-id is the event id.
CREATE TABLE IF NOT EXISTS webhook_messages (
    org_id          TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    message_id      TEXT    NOT NULL PRIMARY KEY,       -- msg_<32 hex>
    endpoint_id     TEXT    NOT NULL,
    event_id        TEXT    NOT NULL,                   -- org_events.event_id
    event_type      TEXT    NOT NULL,
    -- pending: an attempt is due; delivered: a 2xx came; failed: the
    -- schedule ran out, the endpoint answered 410, or it was off
    status          TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX IF NOT EXISTS webhook_messages_by_endpoint ON webhook_messages (org_id, endpoint_id, created_at, message_id);

-- Every attempt: when, how it ended, the response code and how long it
-- took; the error is short and never holds a secret or the body.
CREATE TABLE IF NOT EXISTS webhook_attempts (
    org_id        TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    attempt_id    TEXT    NOT NULL PRIMARY KEY,         -- atmpt_<32 hex>
    message_id    TEXT    NOT NULL,
    endpoint_id   TEXT    NOT NULL,
    -- scheduled, resend (an admin sent one message again), recover (an
    -- admin sent everything failed since a time again)
    trigger       TEXT    NOT NULL CHECK (trigger IN ('scheduled', 'resend', 'recover')),
    status        TEXT    NOT NULL CHECK (status IN ('succeeded', 'failed')),
    response_code INTEGER,
    duration_ms   INTEGER NOT NULL,
    error         TEXT,
    attempted_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_attempts_by_message ON webhook_attempts (message_id, attempted_at, attempt_id);

-- Retention: the jobs runner deletes attempts, and messages no longer
-- pending, once they are 30 days old, oldest first, a batch at a time.
CREATE INDEX IF NOT EXISTS webhook_attempts_by_time ON webhook_attempts (attempted_at);
CREATE INDEX IF NOT EXISTS webhook_messages_by_age ON webhook_messages (updated_at)
    WHERE status <> 'pending';
