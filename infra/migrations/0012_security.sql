-- Revocation of issued JWTs, a second factor that cannot be guessed
-- across challenges, and sign-in throttling by device. Times are unix
-- seconds.

-- Every JWT issued for the user carries the generation current at issue
-- (claim `gen`); signing out everywhere, a password reset or change, and
-- deactivation raise it, and Gatehouse's routes refuse older tokens.
ALTER TABLE users ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 0;

-- Wrong second-factor codes per user, across every login challenge. A try
-- claims its slot before it is judged, so parallel guesses are counted too;
-- a right code sets failures back to 0.
CREATE TABLE IF NOT EXISTS mfa_guards (
    user_id         TEXT    PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    failures        INTEGER NOT NULL DEFAULT 0,   -- tries since the last right code
    next_attempt_at INTEGER NOT NULL DEFAULT 0,   -- 0: no wait; else no try before this
    locked_until    INTEGER NOT NULL DEFAULT 0,   -- 0: not locked; else the factor refuses every try until then
    notified_at     INTEGER                       -- NULL until the user was told of a lock
);

-- Throttling reads failures per (email, address) and per email in a window.
CREATE INDEX IF NOT EXISTS login_attempts_email_address
    ON login_attempts (email_normalized, client_address, created_at);
