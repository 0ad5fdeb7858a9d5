-- The deployment's data keys: versioned random AES-256 keys, each sealed
-- by a key derived from the master key (its version as associated data),
-- like an org's data keys (0030). They seal what belongs to no org: users'
-- TOTP secrets (0005) and the deployment's signing keys (0008). An org's
-- identity provider client secrets (0010) and webhook secrets (0022,
-- 0023) are sealed with the org's data keys. Such values are stored as
-- `v2.<key version>.<sealed>` and bound to their owner, kind, row and key
-- version; text sealed straight from the master key before (`v1.`) still
-- opens, and POST /v1/admin/secrets/$rewrap seals it again the new way.
CREATE TABLE IF NOT EXISTS deployment_data_keys (
    version    INTEGER NOT NULL PRIMARY KEY CHECK (version >= 1),
    wrapped    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
