-- Tools: what an org lets its members (and, later, its LLM runs) call by
-- name. A tool has a JSON Schema its arguments must satisfy and a kind
-- with its configuration: `static` answers a fixed JSON document with the
-- arguments filled in; `http` calls one URL. Secret header values are not
-- here: the configuration names a secret (`org/NAME`), read when the tool
-- is called. Times are unix seconds.
CREATE TABLE IF NOT EXISTS tools (
    org_id       TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    tool_id      TEXT    NOT NULL PRIMARY KEY,              -- tool_<32 hex>
    name         TEXT    NOT NULL,                          -- ^[A-Za-z0-9_-]{1,64}$, as function calling names them
    description  TEXT    NOT NULL DEFAULT '',               -- at most 1024 characters
    kind         TEXT    NOT NULL CHECK (kind IN ('http', 'static')),
    input_schema TEXT    NOT NULL,                          -- a JSON Schema of an object
    config       TEXT    NOT NULL,                          -- JSON: the kind's configuration
    permission   TEXT,                                      -- NULL: tools:run alone runs it
    enabled      INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_by   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (org_id, name)
);
