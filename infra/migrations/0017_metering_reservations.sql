-- Quota reservations: an amount held against every applicable quota of a
-- meter until it is committed (the actual use counted, the rest freed),
-- released, or expires. Times are unix seconds.
--
-- Holds are the truth of what is held: a quota's standing is its counter's
-- `used` plus the amounts of its holds that have not expired. Expired holds
-- stop counting at once; each check, consume and reserve on a meter also
-- deletes that meter's expired holds (and marks their reservations expired)
-- in its own transaction, so no background runner is needed.
CREATE TABLE IF NOT EXISTS quota_reservations (
    org_id         TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    reservation_id TEXT    NOT NULL PRIMARY KEY,      -- rsv_<32 hex>
    meter_key      TEXT    NOT NULL,
    subject_type   TEXT    NOT NULL CHECK (subject_type IN ('user')),
    subject_id     TEXT    NOT NULL,
    amount         INTEGER NOT NULL CHECK (amount >= 1), -- units held
    state          TEXT    NOT NULL CHECK (state IN ('held', 'committed', 'released', 'expired')),
    committed      INTEGER CHECK (committed >= 0),    -- NULL unless committed: the units counted
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    finished_at    INTEGER                            -- NULL while held
);
CREATE INDEX IF NOT EXISTS quota_reservations_held ON quota_reservations (org_id, meter_key, state, expires_at);

-- One row per reservation and applicable quota, in the quota's period at
-- the time of the reservation; deleted when the reservation ends.
CREATE TABLE IF NOT EXISTS quota_holds (
    org_id         TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    reservation_id TEXT    NOT NULL REFERENCES quota_reservations (reservation_id) ON DELETE CASCADE,
    quota_id       TEXT    NOT NULL REFERENCES quotas (quota_id) ON DELETE CASCADE,
    meter_key      TEXT    NOT NULL,
    period_start   INTEGER NOT NULL,
    amount         INTEGER NOT NULL CHECK (amount >= 1),
    expires_at     INTEGER NOT NULL,                  -- the reservation's, copied for the standing's sum
    PRIMARY KEY (reservation_id, quota_id)
);
CREATE INDEX IF NOT EXISTS quota_holds_by_counter ON quota_holds (quota_id, period_start, expires_at);
CREATE INDEX IF NOT EXISTS quota_holds_by_meter ON quota_holds (org_id, meter_key, expires_at);
