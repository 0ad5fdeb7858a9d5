-- Expenditure: what an org spends, in exact amounts, per entity (the org,
-- a team, a member) and item; written directly or derived from metered
-- usage through a meter's price. Amounts are integers of billionths
-- (10^-9) of the currency's unit; times are unix seconds.

-- A meter's price (JSON: a currency and a unit price or graduated tiers);
-- NULL: the meter is not priced.
ALTER TABLE meters ADD COLUMN price TEXT;

-- One row per spend. Records are never changed: a correction is another
-- record (a negative amount for a refund or a credit).
CREATE TABLE IF NOT EXISTS expenditure_records (
    org_id      TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    record_id   TEXT    NOT NULL PRIMARY KEY,         -- exp_<32 hex>
    entity_type TEXT    NOT NULL CHECK (entity_type IN ('org', 'team', 'user')),
    entity_id   TEXT    NOT NULL,                     -- the org, team or user id
    amount      INTEGER NOT NULL,                     -- billionths of the currency's unit
    currency    TEXT    NOT NULL,                     -- ISO 4217-shaped: three upper-case letters
    item_type   TEXT,                                 -- NULL: spend on no item in particular
    item_id     TEXT,                                 -- NULL: no item of item_type in particular
    meter_key   TEXT,                                 -- derived spend: the meter priced; NULL for direct
    units       INTEGER,                              -- derived spend: the units priced; NULL for direct
    source      TEXT    NOT NULL CHECK (source IN ('direct', 'consume', 'commit')),
    occurred_at INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    created_by  TEXT    NOT NULL,                     -- user id (or service name) that wrote it
    external_id TEXT,                                 -- the writer's id: a re-sent record is a duplicate
    CHECK (item_id IS NULL OR item_type IS NOT NULL),
    CHECK ((meter_key IS NULL) = (units IS NULL)),
    UNIQUE (org_id, external_id)
);
CREATE INDEX IF NOT EXISTS expenditure_records_by_time ON expenditure_records (org_id, occurred_at);

-- One row per entity a record counts for, written with the record in its
-- transaction: a member's spend counts for the member, every team the
-- member is in and every team above those, and the org; a team's for the
-- team, the teams above it and the org; the org's for the org. Teams are
-- those of the moment the record is written: moving a member later does
-- not move past spend. Reads by entity sum these rows.
CREATE TABLE IF NOT EXISTS expenditure_rollup (
    org_id      TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    record_id   TEXT    NOT NULL REFERENCES expenditure_records (record_id) ON DELETE CASCADE,
    entity_type TEXT    NOT NULL CHECK (entity_type IN ('org', 'team', 'user')),
    entity_id   TEXT    NOT NULL,
    currency    TEXT    NOT NULL,
    amount      INTEGER NOT NULL,
    item_type   TEXT,
    item_id     TEXT,
    occurred_at INTEGER NOT NULL,
    PRIMARY KEY (record_id, entity_type, entity_id)
);
CREATE INDEX IF NOT EXISTS expenditure_rollup_by_entity
    ON expenditure_rollup (org_id, entity_type, entity_id, currency, occurred_at);

-- Units of a priced meter the org used per calendar month (month_start:
-- the month's first second in the org's time zone), for graduated tiers.
CREATE TABLE IF NOT EXISTS meter_month_units (
    org_id      TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    meter_key   TEXT    NOT NULL,
    month_start INTEGER NOT NULL,
    units       INTEGER NOT NULL DEFAULT 0 CHECK (units >= 0),
    PRIMARY KEY (org_id, meter_key, month_start),
    FOREIGN KEY (org_id, meter_key) REFERENCES meters (org_id, meter_key) ON DELETE CASCADE
);
