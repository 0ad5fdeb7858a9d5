-- The deployment's JWT signing keys. Private keys are sealed (AES-256-GCM
-- under a key derived from master_key, bound to the kid); public keys are
-- published in JWKS from creation until every token they signed has
-- expired. Times are unix seconds.

CREATE TABLE IF NOT EXISTS signing_keys (
    kid             TEXT    PRIMARY KEY,              -- RFC 7638 thumbprint of the public key
    alg             TEXT    NOT NULL CHECK (alg IN ('EdDSA', 'ES256')),
    public_jwk      TEXT    NOT NULL,                 -- JSON
    private_sealed  TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,                 -- published in JWKS from here
    active_from     INTEGER NOT NULL,                 -- signs from here (the newest active key signs)
    published_until INTEGER                           -- NULL while current; else dropped from JWKS after this
);
