-- Metering: meters per org, usage events (CloudEvents-shaped) kept with a
-- duplicate check that never expires, quotas on additive meters, and the
-- counters that quota checks consume atomically. Times are unix seconds.

-- What an org counts: events of one type, aggregated over a path in their
-- data. Deleting a meter that a quota still names is refused.
CREATE TABLE IF NOT EXISTS meters (
    org_id      TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    meter_key   TEXT    NOT NULL,                     -- a slug, unique per org
    event_type  TEXT    NOT NULL,                     -- the events' `type`
    aggregation TEXT    NOT NULL CHECK (aggregation IN ('count', 'sum', 'max', 'unique_count', 'latest')),
    value_path  TEXT,                                 -- dotted path into `data`; NULL for count
    group_by    TEXT    NOT NULL DEFAULT '[]',        -- JSON array of dotted paths
    created_by  TEXT    NOT NULL,                     -- user id
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, meter_key)
);

-- Every accepted event. The primary key is the duplicate check: an event
-- whose (org, source, id) is stored is a duplicate, however late it comes.
CREATE TABLE IF NOT EXISTS usage_events (
    org_id       TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    source       TEXT    NOT NULL,
    event_id     TEXT    NOT NULL,
    event_type   TEXT    NOT NULL,
    subject_type TEXT    NOT NULL CHECK (subject_type IN ('org', 'team', 'user', 'key')),
    subject_id   TEXT    NOT NULL,
    occurred_at  INTEGER NOT NULL,                    -- the event's `time`
    data         TEXT    NOT NULL DEFAULT '{}',       -- JSON object
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, source, event_id)
);
CREATE INDEX IF NOT EXISTS usage_events_by_type ON usage_events (org_id, event_type, occurred_at);
CREATE INDEX IF NOT EXISTS usage_events_by_subject ON usage_events (org_id, subject_type, subject_id, occurred_at);

-- A limit on an additive meter (count or sum) for the org, a team or a
-- user, per calendar day or month (UTC) or for all time.
CREATE TABLE IF NOT EXISTS quotas (
    org_id      TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    quota_id    TEXT    NOT NULL PRIMARY KEY,         -- quo_<32 hex>
    entity_type TEXT    NOT NULL CHECK (entity_type IN ('org', 'team', 'user')),
    entity_id   TEXT    NOT NULL,                     -- the org, team or user id
    meter_key   TEXT    NOT NULL,
    limit_units INTEGER NOT NULL CHECK (limit_units >= 0),
    period      TEXT    NOT NULL CHECK (period IN ('day', 'month', 'lifetime')),
    enforcement TEXT    NOT NULL CHECK (enforcement IN ('hard', 'soft')),
    created_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    FOREIGN KEY (org_id, meter_key) REFERENCES meters (org_id, meter_key)
);
CREATE INDEX IF NOT EXISTS quotas_by_meter ON quotas (org_id, meter_key);

-- Units consumed per quota and period (period_start: the period's first
-- second; 0 for lifetime). A consume raises every applicable counter in
-- one transaction, each hard one only while it stays within its limit.
CREATE TABLE IF NOT EXISTS quota_counters (
    org_id       TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    quota_id     TEXT    NOT NULL REFERENCES quotas (quota_id) ON DELETE CASCADE,
    period_start INTEGER NOT NULL,
    used         INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0),
    PRIMARY KEY (quota_id, period_start)
);
