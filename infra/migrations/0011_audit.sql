-- The org's audit trail: one row per audited event, newest read first.
-- Today: every request made while an admin acts as another member
-- (`impersonation.request`). Times are unix seconds.

CREATE TABLE IF NOT EXISTS audit_events (
    org_id          TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    event_id        TEXT    NOT NULL PRIMARY KEY,     -- aud_<32 hex>
    occurred_at     INTEGER NOT NULL,
    action          TEXT    NOT NULL,                 -- e.g. impersonation.request
    actor_user_id   TEXT    NOT NULL,                 -- who did it (the impersonating admin)
    subject_user_id TEXT,                             -- on whose behalf
    method          TEXT,
    path            TEXT,
    credential      TEXT,                             -- session, api_key or jwt
    request_id      TEXT                              -- the client's X-Request-Id, if it sent one
);
CREATE INDEX IF NOT EXISTS audit_events_org ON audit_events (org_id, occurred_at DESC, event_id DESC);
