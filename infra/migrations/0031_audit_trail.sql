-- The audit trail of every mutation (see gatehouse_http::audit): each
-- request to a recorded route leaves one row before its answer. A row
-- with an org belongs to that org's trail (its admins read it); a row
-- without one is the deployment's (sign-ins, sign-ups, operator routes,
-- requests refused for an org the caller is not in), read by the
-- operator. The table is rebuilt because org_id becomes optional; the
-- impersonation records already held keep their meaning.
CREATE TABLE audit_events_v2 (
    event_id        TEXT    NOT NULL PRIMARY KEY,     -- aud_<32 hex>
    org_id          TEXT    REFERENCES orgs (org_id) ON DELETE CASCADE,
    occurred_at     INTEGER NOT NULL,                 -- unix seconds
    action          TEXT    NOT NULL,                 -- <resource>.<verb>, e.g. team.delete
    actor_type      TEXT    NOT NULL CHECK (actor_type IN ('user', 'api_key', 'service', 'external', 'operator', 'anonymous')),
    actor_id        TEXT,                             -- user, key, service or provider:sub
    actor_user_id   TEXT,                             -- the person behind it (a key's owner, the impersonating admin)
    subject_user_id TEXT,                             -- the member an admin acted as
    credential      TEXT,                             -- session, api_key or jwt
    resource_type   TEXT,
    resource_id     TEXT,
    method          TEXT,
    path            TEXT,
    request_id      TEXT,
    client_address  TEXT,
    outcome         INTEGER,                          -- the HTTP status answered
    changed_fields  TEXT,                             -- JSON array of the body's top-level field names
    digest          TEXT                              -- SHA-256 (hex) of a successful answer's body
);

INSERT INTO audit_events_v2 (event_id, org_id, occurred_at, action, actor_type, actor_id,
    actor_user_id, subject_user_id, credential, method, path, request_id)
SELECT event_id, org_id, occurred_at, action, 'user', actor_user_id, actor_user_id,
    subject_user_id, credential, method, path, request_id
FROM audit_events;

DROP TABLE audit_events;
ALTER TABLE audit_events_v2 RENAME TO audit_events;

CREATE INDEX audit_events_org ON audit_events (org_id, occurred_at DESC, event_id DESC);
CREATE INDEX audit_events_time ON audit_events (occurred_at DESC, event_id DESC);

-- How long an org's trail is kept; the jobs run deletes what is older.
ALTER TABLE orgs ADD COLUMN audit_retention_days INTEGER NOT NULL DEFAULT 365
    CHECK (audit_retention_days BETWEEN 90 AND 3650);
