-- Access: roles per org with their permissions, grants of roles to users
-- and API keys, resource grants per role, resource ownership, and
-- versioned policies. Times are unix seconds; every row carries its org.

-- A role belongs to an org; `name` is unique in it. Names of the form
-- `group:role` (e.g. `research:admin`) make up groups.
CREATE TABLE IF NOT EXISTS roles (
    org_id      TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    role_id     TEXT    NOT NULL PRIMARY KEY,         -- role_<32 hex>
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    permissions TEXT    NOT NULL DEFAULT '[]',        -- JSON array of permission strings, sorted, unique
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS roles_name ON roles (org_id, name);

-- Who holds which role: a member (subject_type 'user') or an API key
-- ('api_key'). Effective permissions are the union over held roles.
CREATE TABLE IF NOT EXISTS role_grants (
    org_id       TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    role_id      TEXT    NOT NULL REFERENCES roles (role_id) ON DELETE CASCADE,
    subject_type TEXT    NOT NULL CHECK (subject_type IN ('user', 'api_key')),
    subject_id   TEXT    NOT NULL,
    granted_by   TEXT,                                -- user id; NULL when granted by the system
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (role_id, subject_type, subject_id)
);
CREATE INDEX IF NOT EXISTS role_grants_subject ON role_grants (org_id, subject_type, subject_id);

-- (service, collection, role) -> resource ids the role's holders may reach.
CREATE TABLE IF NOT EXISTS resource_grants (
    org_id      TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    service     TEXT    NOT NULL,
    collection  TEXT    NOT NULL,
    role_id     TEXT    NOT NULL REFERENCES roles (role_id) ON DELETE CASCADE,
    resource_id TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, service, collection, role_id, resource_id)
);
CREATE INDEX IF NOT EXISTS resource_grants_role ON resource_grants (role_id);

-- Owners of a resource: its creator (a user), the org, or a team.
CREATE TABLE IF NOT EXISTS resource_owners (
    org_id      TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    service     TEXT    NOT NULL,
    collection  TEXT    NOT NULL,
    resource_id TEXT    NOT NULL,
    owner_type  TEXT    NOT NULL CHECK (owner_type IN ('user', 'org', 'team')),
    owner_id    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, service, collection, resource_id, owner_type, owner_id)
);
CREATE INDEX IF NOT EXISTS resource_owners_owner ON resource_owners (org_id, service, collection, owner_type, owner_id);

-- Policies are data: each change is a new version; the newest one applies.
CREATE TABLE IF NOT EXISTS policies (
    org_id     TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,                      -- e.g. datasources_filter
    version    INTEGER NOT NULL,                      -- 1, 2, ... per (org, name)
    document   TEXT    NOT NULL,                      -- JSON, see the access component
    created_by TEXT,                                  -- user id; NULL for built-in defaults
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, name, version)
);
