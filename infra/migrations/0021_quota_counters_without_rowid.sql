-- Quota counters are small rows looked up and raised by their key alone:
-- kept in the key's own tree (WITHOUT ROWID), a consume writes one tree
-- instead of a rowid table and an index beside it.
CREATE TABLE quota_counters_v3 (
    org_id       TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    quota_id     TEXT    NOT NULL REFERENCES quotas (quota_id) ON DELETE CASCADE,
    period_start INTEGER NOT NULL,
    used         INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0),
    PRIMARY KEY (quota_id, period_start)
) WITHOUT ROWID;
INSERT INTO quota_counters_v3 (org_id, quota_id, period_start, used)
    SELECT org_id, quota_id, period_start, used FROM quota_counters;
DROP TABLE quota_counters;
ALTER TABLE quota_counters_v3 RENAME TO quota_counters;
