-- Quotas, second form: a limit on a meter's units or on spend in one
-- currency, for all items or one item type or item, per calendar day,
-- week or month in the org's time zone, per rolling window, or for all
-- time; alert thresholds; temporary overrides. Times are unix seconds.

-- The zone an org's calendar periods follow (an IANA name).
ALTER TABLE orgs ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';

-- The quotas table is rebuilt for its new checks. Its children are
-- rebuilt beside it first, so dropping the old tables deletes nothing
-- through their cascades; renaming the new parent carries the children's
-- references with it.
CREATE TABLE quotas_v2 (
    org_id         TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    quota_id       TEXT    NOT NULL PRIMARY KEY,      -- quo_<32 hex>
    entity_type    TEXT    NOT NULL CHECK (entity_type IN ('org', 'team', 'user')),
    entity_id      TEXT    NOT NULL,                  -- the org, team or user id
    meter_key      TEXT,                              -- a limit on this meter's units, or
    currency       TEXT,                              -- a limit on spend in this currency (ISO 4217)
    item_type      TEXT,                              -- NULL: every item
    item_id        TEXT,                              -- NULL: every item of item_type
    limit_units    INTEGER NOT NULL CHECK (limit_units >= 0), -- units, or spend in billionths
    period         TEXT    NOT NULL CHECK (period IN ('day', 'week', 'month', 'rolling', 'lifetime')),
    window_seconds INTEGER CHECK (window_seconds >= 60), -- the rolling window
    enforcement    TEXT    NOT NULL CHECK (enforcement IN ('hard', 'soft')),
    thresholds     TEXT    NOT NULL DEFAULT '[]',     -- JSON array: alert thresholds
    created_by     TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    CHECK ((meter_key IS NULL) <> (currency IS NULL)),
    CHECK (item_id IS NULL OR item_type IS NOT NULL),
    CHECK ((period = 'rolling') = (window_seconds IS NOT NULL)),
    FOREIGN KEY (org_id, meter_key) REFERENCES meters (org_id, meter_key)
);
INSERT INTO quotas_v2 (org_id, quota_id, entity_type, entity_id, meter_key, limit_units, period,
                       enforcement, created_by, created_at, updated_at)
    SELECT org_id, quota_id, entity_type, entity_id, meter_key, limit_units, period,
           enforcement, created_by, created_at, created_at
    FROM quotas;

-- A rolling quota's counters are buckets (period_start: the bucket's
-- first second); a calendar quota's, one per period.
CREATE TABLE quota_counters_v2 (
    org_id       TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    quota_id     TEXT    NOT NULL REFERENCES quotas_v2 (quota_id) ON DELETE CASCADE,
    period_start INTEGER NOT NULL,
    used         INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0),
    PRIMARY KEY (quota_id, period_start)
);
INSERT INTO quota_counters_v2 SELECT org_id, quota_id, period_start, used FROM quota_counters;

CREATE TABLE quota_holds_v2 (
    org_id         TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    reservation_id TEXT    NOT NULL REFERENCES quota_reservations (reservation_id) ON DELETE CASCADE,
    quota_id       TEXT    NOT NULL REFERENCES quotas_v2 (quota_id) ON DELETE CASCADE,
    meter_key      TEXT    NOT NULL,
    period_start   INTEGER NOT NULL,
    amount         INTEGER NOT NULL CHECK (amount >= 1), -- in the quota's units
    expires_at     INTEGER NOT NULL,
    PRIMARY KEY (reservation_id, quota_id)
);
INSERT INTO quota_holds_v2
    SELECT org_id, reservation_id, quota_id, meter_key, period_start, amount, expires_at FROM quota_holds;

DROP TABLE quota_holds;
DROP TABLE quota_counters;
DROP TABLE quotas;
ALTER TABLE quotas_v2 RENAME TO quotas;
ALTER TABLE quota_counters_v2 RENAME TO quota_counters;
ALTER TABLE quota_holds_v2 RENAME TO quota_holds;
CREATE INDEX IF NOT EXISTS quotas_by_meter ON quotas (org_id, meter_key);
CREATE INDEX IF NOT EXISTS quotas_by_currency ON quotas (org_id, currency);
CREATE INDEX IF NOT EXISTS quota_holds_by_counter ON quota_holds (quota_id, period_start, expires_at);
CREATE INDEX IF NOT EXISTS quota_holds_by_meter ON quota_holds (org_id, meter_key, expires_at);

-- What a reservation is for, so its commit is counted against the same
-- item quotas it held.
ALTER TABLE quota_reservations ADD COLUMN item_type TEXT;
ALTER TABLE quota_reservations ADD COLUMN item_id TEXT;

-- A temporary limit in place of a quota's own: the newest unexpired
-- override of a quota decides its limit.
CREATE TABLE IF NOT EXISTS quota_overrides (
    org_id      TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    override_id TEXT    NOT NULL PRIMARY KEY,         -- qov_<32 hex>
    quota_id    TEXT    NOT NULL REFERENCES quotas (quota_id) ON DELETE CASCADE,
    limit_units INTEGER NOT NULL CHECK (limit_units >= 0),
    reason      TEXT,
    expires_at  INTEGER NOT NULL,
    created_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS quota_overrides_by_quota ON quota_overrides (quota_id, expires_at);
