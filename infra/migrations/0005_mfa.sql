-- TOTP multi-factor authentication: one authenticator per user, its
-- recovery codes, and the login challenges a second factor completes.
-- Times are unix seconds.

CREATE TABLE IF NOT EXISTS mfa_totp (
    user_id        TEXT    PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed  TEXT    NOT NULL,                  -- AES-256-GCM under a key derived from master_key, bound to user_id
    confirmed_at   INTEGER,                           -- NULL while enrolment awaits its first code
    last_used_step INTEGER,                           -- NULL before any code; a code at or before this step is refused
    created_at     INTEGER NOT NULL
);

-- Single-use recovery codes, stored as SHA-256 digests of their normalized form.
CREATE TABLE IF NOT EXISTS mfa_recovery_codes (
    digest     TEXT    PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    used_at    INTEGER,                               -- NULL until used
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS mfa_recovery_codes_user ON mfa_recovery_codes (user_id);

-- A password checked, a second factor due: the challenge login hands out.
CREATE TABLE IF NOT EXISTS mfa_challenges (
    digest         TEXT    PRIMARY KEY,               -- SHA-256 of the gmc_ token
    user_id        TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_agent     TEXT,                              -- NULL when the client sent none
    client_address TEXT,                              -- NULL when unknown
    attempts       INTEGER NOT NULL DEFAULT 0,        -- codes tried
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER,                           -- NULL until completed
    created_at     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS mfa_challenges_user ON mfa_challenges (user_id);
