-- Identity: accounts, single-use mailed tokens, sessions, and the outbox
-- that carries mail to the provider. Times are unix seconds.

CREATE TABLE IF NOT EXISTS users (
    id                TEXT    PRIMARY KEY,            -- usr_<32 hex>
    email             TEXT    NOT NULL,               -- as the user typed it, for display and mail
    email_normalized  TEXT    NOT NULL UNIQUE,        -- trimmed, lower-case: what lookups use
    display_name      TEXT    NOT NULL,
    password_hash     TEXT    NOT NULL,               -- argon2id PHC string
    status            TEXT    NOT NULL CHECK (status IN ('pending', 'active', 'inactive')),
    email_verified_at INTEGER,                        -- NULL until the address is verified
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

-- Tokens mailed to a user (email verification, password reset); only the
-- SHA-256 digest of the token is kept.
CREATE TABLE IF NOT EXISTS user_tokens (
    digest     TEXT    PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT    NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,                               -- NULL until used; a token works once
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS user_tokens_user ON user_tokens (user_id, purpose);

CREATE TABLE IF NOT EXISTS sessions (
    id                  TEXT    PRIMARY KEY,          -- ses_<32 hex>, safe to show
    token_digest        TEXT    NOT NULL UNIQUE,      -- SHA-256 of the bearer token
    user_id             TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_agent          TEXT,                         -- NULL when the client sent none
    client_address      TEXT,                         -- NULL when unknown
    created_at          INTEGER NOT NULL,
    last_seen_at        INTEGER NOT NULL,
    idle_expires_at     INTEGER NOT NULL,             -- slides forward with use
    absolute_expires_at INTEGER NOT NULL,             -- never moves
    revoked_at          INTEGER                       -- NULL while the session may be used
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id);

CREATE TABLE IF NOT EXISTS email_outbox (
    id         TEXT    PRIMARY KEY,                   -- mail_<32 hex>
    to_address TEXT    NOT NULL,
    kind       TEXT    NOT NULL,                      -- verify_email, account_exists, ...
    subject    TEXT    NOT NULL,
    body_text  TEXT    NOT NULL,
    status     TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    sent_at    INTEGER                                -- NULL until delivered
);
CREATE INDEX IF NOT EXISTS email_outbox_pending ON email_outbox (status, created_at);

-- Every login attempt, for throttling, the user's security history and
-- spotting sign-ins from devices never seen before.
CREATE TABLE IF NOT EXISTS login_attempts (
    id               INTEGER PRIMARY KEY,
    user_id          TEXT,                            -- NULL when the email matched no account
    email_normalized TEXT    NOT NULL,
    client_address   TEXT,                            -- NULL when unknown
    user_agent       TEXT,                            -- NULL when the client sent none
    outcome          TEXT    NOT NULL CHECK (outcome IN ('success', 'bad_credentials', 'not_verified', 'inactive', 'throttled')),
    new_device       INTEGER NOT NULL DEFAULT 0,      -- 1: a success from an address and agent never seen for this user
    created_at       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS login_attempts_email ON login_attempts (email_normalized, created_at);
CREATE INDEX IF NOT EXISTS login_attempts_address ON login_attempts (client_address, created_at);
CREATE INDEX IF NOT EXISTS login_attempts_user ON login_attempts (user_id, outcome);
