-- Service keys belong to the org that registered them. A key id is the
-- key's RFC 7638 thumbprint, the same in every org, so it is unique per
-- org, not across orgs: whether another org holds a key is never visible.
-- Registering a key proves possession of its private half by signing a
-- single-use challenge. Times are unix seconds.

-- SQLite cannot change a table's primary key in place: the table is
-- rebuilt and its rows copied.
CREATE TABLE service_keys_by_org (
    org_id     TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    kid        TEXT    NOT NULL,                      -- RFC 7638 thumbprint of the public key
    service_id TEXT    NOT NULL REFERENCES services (service_id) ON DELETE CASCADE,
    public_jwk TEXT    NOT NULL,                      -- JSON (OKP Ed25519 or EC P-256)
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,                               -- NULL while its tokens verify
    -- NULL: registered before proof was required. Such a key keeps working
    -- until a registration of the same key with proof exists, which then
    -- outranks it (it may have been made by someone without the private key).
    proved_at  INTEGER,
    PRIMARY KEY (org_id, kid)
);
INSERT INTO service_keys_by_org (org_id, kid, service_id, public_jwk, created_at, revoked_at, proved_at)
    SELECT org_id, kid, service_id, public_jwk, created_at, revoked_at, NULL FROM service_keys;
DROP TABLE service_keys;
ALTER TABLE service_keys_by_org RENAME TO service_keys;
CREATE INDEX IF NOT EXISTS service_keys_service ON service_keys (service_id);
-- Verifying a token looks its key up by kid alone, in whichever orgs hold it.
CREATE INDEX IF NOT EXISTS service_keys_kid ON service_keys (kid);

-- Challenges an org admin signs with the private key being registered.
-- Only the digest is kept; each is used up by the registration that
-- presents it, and expires minutes after it was issued.
CREATE TABLE IF NOT EXISTS service_key_challenges (
    org_id     TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    digest     TEXT    NOT NULL PRIMARY KEY,          -- SHA-256 of the challenge, hex
    service_id TEXT    NOT NULL REFERENCES services (service_id) ON DELETE CASCADE,
    kid        TEXT    NOT NULL,                      -- the key it may register
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS service_key_challenges_service
    ON service_key_challenges (org_id, service_id, created_at);
