-- Orgs (tenants), their teams, memberships, invitations, and preferences
-- on an org, a team or a user. Every org-owned row carries its org_id and
-- is reached through the tenant context, which binds it. Times are unix
-- seconds.

CREATE TABLE IF NOT EXISTS orgs (
    org_id        TEXT    PRIMARY KEY,                -- org_<32 hex>
    handle        TEXT    NOT NULL,                   -- lower-case, unique: names the org in URLs and X-Org
    name          TEXT    NOT NULL,
    address       TEXT,                               -- JSON object; NULL when not given
    contact       TEXT,                               -- JSON object (email, phone, website); NULL when not given
    created_by    TEXT    NOT NULL,                   -- user id
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS orgs_handle ON orgs (handle);

CREATE TABLE IF NOT EXISTS memberships (
    org_id     TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT    NOT NULL CHECK (role IN ('admin', 'member')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX IF NOT EXISTS memberships_user ON memberships (user_id);

-- A tree per org: parent_team_id is NULL for a top-level team. Depth is
-- bounded and cycles are refused by the component.
CREATE TABLE IF NOT EXISTS teams (
    org_id         TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    team_id        TEXT    NOT NULL PRIMARY KEY,      -- team_<32 hex>
    name           TEXT    NOT NULL,
    description    TEXT    NOT NULL DEFAULT '',
    parent_team_id TEXT,                              -- NULL: a top-level team
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS teams_parent ON teams (org_id, parent_team_id, name);

CREATE TABLE IF NOT EXISTS team_members (
    org_id     TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    team_id    TEXT    NOT NULL REFERENCES teams (team_id) ON DELETE CASCADE,
    user_id    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX IF NOT EXISTS team_members_user ON team_members (org_id, user_id);

CREATE TABLE IF NOT EXISTS invitations (
    org_id           TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    invitation_id    TEXT    NOT NULL PRIMARY KEY,    -- inv_<32 hex>
    email            TEXT    NOT NULL,
    email_normalized TEXT    NOT NULL,
    role             TEXT    NOT NULL CHECK (role IN ('admin', 'member')),
    team_ids         TEXT    NOT NULL DEFAULT '[]',   -- JSON array of team ids joined on acceptance
    token_digest     TEXT    NOT NULL UNIQUE,         -- SHA-256 of the mailed token
    invited_by       TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    accepted_at      INTEGER,                         -- NULL until accepted
    accepted_by      TEXT,                            -- NULL until accepted
    revoked_at       INTEGER                          -- NULL unless revoked (or replaced by a newer invitation)
);
CREATE INDEX IF NOT EXISTS invitations_org ON invitations (org_id, created_at);

-- JSON settings on an org, a team, or a user. org_id is NULL for a user's
-- own settings, which follow the user into every org.
CREATE TABLE IF NOT EXISTS preferences (
    scope      TEXT    NOT NULL CHECK (scope IN ('org', 'team', 'user')),
    scope_id   TEXT    NOT NULL,                      -- the org, team or user id
    org_id     TEXT    REFERENCES orgs (org_id) ON DELETE CASCADE,
    settings   TEXT    NOT NULL,                      -- a JSON object
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (scope, scope_id)
);
