-- MCP servers of an org, each served at /v1/mcp/<name>: either a named set
-- of the org's tools (`tools`), for agents that should see only those, or
-- a mounted remote MCP server (`remote`), whose tools, listed by
-- POST /v1/mcp-servers/<name>/$refresh and kept in `remote_tools`, are
-- offered as <name>__<tool> and called by forwarding to the remote. A
-- tool is named, not referenced: one deleted since is left out of the
-- listing. Secret header values are not here: `remote` names a secret
-- (`org/NAME`), read when the remote is called. Times are unix seconds.
CREATE TABLE IF NOT EXISTS mcp_servers (
    org_id      TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    server_id   TEXT    NOT NULL PRIMARY KEY,              -- mcps_<32 hex>
    name        TEXT    NOT NULL,                          -- ^[A-Za-z0-9_-]{1,64}$
    description TEXT    NOT NULL DEFAULT '',               -- at most 1024 characters
    tools       TEXT    NOT NULL DEFAULT '[]',             -- JSON array of tool names, at most 100
    remote      TEXT,                                      -- JSON: url, headers, timeout_ms; NULL: not a mount
    permission  TEXT,                                      -- a mount's tools take it besides tools:run; NULL: none
    remote_tools TEXT,                                     -- JSON: the remote's tools as last listed; NULL: never
    refreshed_at INTEGER,                                  -- when they were listed
    created_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (org_id, name)
);
