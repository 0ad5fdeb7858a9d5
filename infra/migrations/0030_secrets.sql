-- Secrets of orgs, teams and users, sealed by envelope encryption: each
-- org has data keys (versioned), each a random AES-256 key sealed by a key
-- derived from the master key (the org and version as associated data);
-- each value is sealed by its org's data key with the org, scope, name and
-- key version as associated data, so a value copied into another row does
-- not open. Deleting an org deletes its data keys: its secrets are then
-- unreadable even in a backup that still holds them.
CREATE TABLE IF NOT EXISTS org_data_keys (
    org_id     TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    version    INTEGER NOT NULL CHECK (version >= 1),
    wrapped    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, version)
);

CREATE TABLE IF NOT EXISTS secrets (
    org_id       TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    secret_id    TEXT    NOT NULL PRIMARY KEY,            -- sec_<32 hex>
    scope_type   TEXT    NOT NULL CHECK (scope_type IN ('org', 'team', 'user')),
    scope_id     TEXT    NOT NULL,                        -- the org, team or user id
    name         TEXT    NOT NULL,
    key_version  INTEGER NOT NULL,                        -- the org data key it is sealed with
    sealed       TEXT    NOT NULL,
    description  TEXT,
    created_by   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    last_read_at INTEGER,
    UNIQUE (org_id, scope_type, scope_id, name)
);
