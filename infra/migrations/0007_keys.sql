-- API keys v2. A key belongs to an org and is named in it; its secrets
-- (the current one, and the previous one during a rotation's grace
-- period) are stored only as SHA-256 digests. Times are unix seconds.

CREATE TABLE IF NOT EXISTS api_keys (
    org_id           TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    key_id           TEXT    NOT NULL PRIMARY KEY,    -- key_<32 hex>
    name             TEXT    NOT NULL,
    owner_user_id    TEXT    NOT NULL,                -- the member who created it
    inherits         INTEGER NOT NULL DEFAULT 0,      -- 1: holds its owner's permissions, live, instead of its own roles
    expires_at       INTEGER,                         -- NULL: never expires
    not_before       INTEGER,                         -- NULL: valid from creation
    ratelimit_limit  INTEGER,                         -- NULL: no rate limit; else requests per window
    ratelimit_window INTEGER,                         -- window in seconds; NULL with ratelimit_limit NULL
    remaining        INTEGER,                         -- NULL: unlimited uses; else uses left, never below 0
    metadata         TEXT,                            -- JSON object; NULL when none
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    revoked_at       INTEGER                          -- NULL while usable; revoked keys stay for audit
);
-- Names are unique among a tenant's live keys; a revoked key's name may be reused.
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_name ON api_keys (org_id, name) WHERE revoked_at IS NULL;

CREATE TABLE IF NOT EXISTS api_key_secrets (
    digest     TEXT    PRIMARY KEY,                   -- SHA-256 (hex) of the whole key
    org_id     TEXT    NOT NULL,
    key_id     TEXT    NOT NULL REFERENCES api_keys (key_id) ON DELETE CASCADE,
    start      TEXT    NOT NULL,                      -- the key's first characters, for people to recognise it
    imported   INTEGER NOT NULL DEFAULT 0,            -- 1: brought in by hash from another system
    created_at INTEGER NOT NULL,
    expires_at INTEGER                                -- NULL: current; else the end of a rotation's grace period
);
CREATE INDEX IF NOT EXISTS api_key_secrets_key ON api_key_secrets (key_id);

-- Fixed-window request counts for rate-limited keys.
CREATE TABLE IF NOT EXISTS api_key_windows (
    key_id       TEXT    NOT NULL,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (key_id, window_start)
);
