-- Services of an org and the public keys they sign their own short-lived
-- JWTs with; Gatehouse verifies those tokens against this registry.
-- Times are unix seconds.

CREATE TABLE IF NOT EXISTS services (
    org_id      TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    service_id  TEXT    NOT NULL PRIMARY KEY,         -- svc_<32 hex>
    name        TEXT    NOT NULL,                     -- also the `iss` of its tokens
    description TEXT    NOT NULL DEFAULT '',
    permissions TEXT    NOT NULL DEFAULT '[]',        -- JSON array: what its tokens may do
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS services_name ON services (org_id, name);

CREATE TABLE IF NOT EXISTS service_keys (
    org_id     TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    kid        TEXT    NOT NULL PRIMARY KEY,          -- RFC 7638 thumbprint of the public key
    service_id TEXT    NOT NULL REFERENCES services (service_id) ON DELETE CASCADE,
    public_jwk TEXT    NOT NULL,                      -- JSON (OKP Ed25519 or EC P-256)
    created_at INTEGER NOT NULL,
    revoked_at INTEGER                                -- NULL while its tokens verify
);
CREATE INDEX IF NOT EXISTS service_keys_service ON service_keys (service_id);
