-- Alerts and org events: quota thresholds that fired, days of unusual
-- spend, and the events both record for the org (the rows outgoing
-- webhooks will deliver). Times are unix seconds.

-- One row per quota, period and threshold that fired. The primary key is
-- the decision: of the consumes that reach a threshold at once, the one
-- whose insert takes the row fires it; the others find it there.
CREATE TABLE IF NOT EXISTS quota_alerts (
    org_id       TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    quota_id     TEXT    NOT NULL REFERENCES quotas (quota_id) ON DELETE CASCADE,
    period_start INTEGER NOT NULL,                    -- the counter's first second; 0 for lifetime
    threshold    TEXT    NOT NULL,                    -- canonical key: percent:80, units:5000
    used         INTEGER NOT NULL,                    -- the quota's use once the firing consume counted
    limit_units  INTEGER NOT NULL,                    -- the limit then (an override's while one ran)
    event_id     TEXT    NOT NULL,                    -- the org_events row it recorded
    fired_at     INTEGER NOT NULL,
    PRIMARY KEY (quota_id, period_start, threshold)
);
CREATE INDEX IF NOT EXISTS quota_alerts_by_time ON quota_alerts (org_id, fired_at);

-- What happened in an org, for its admins and, later, its webhooks: one
-- row per event, its type (quota.threshold_reached, spend.unusual, ...)
-- and a JSON object of data whose shape the type decides.
CREATE TABLE IF NOT EXISTS org_events (
    org_id     TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    event_id   TEXT    NOT NULL PRIMARY KEY,          -- evt_<32 hex>
    event_type TEXT    NOT NULL,
    data       TEXT    NOT NULL DEFAULT '{}',         -- JSON object
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS org_events_by_time ON org_events (org_id, created_at, event_id);
CREATE INDEX IF NOT EXISTS org_events_by_type ON org_events (org_id, event_type, created_at, event_id);

-- A day of unusual spend in one currency, flagged once: the primary key
-- keeps a second check that day from alerting again.
CREATE TABLE IF NOT EXISTS spend_flags (
    org_id        TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    currency      TEXT    NOT NULL,                   -- ISO 4217
    day_start     INTEGER NOT NULL,                   -- the day's first second in the org's time zone
    amount        INTEGER NOT NULL,                   -- the day's spend when flagged, billionths
    trailing_mean INTEGER NOT NULL,                   -- the mean day it was compared with, billionths
    event_id      TEXT    NOT NULL,                   -- the org_events row it recorded
    flagged_at    INTEGER NOT NULL,
    PRIMARY KEY (org_id, currency, day_start)
);
CREATE INDEX IF NOT EXISTS spend_flags_by_time ON spend_flags (org_id, flagged_at);
