-- A consume decided by a read, written by one statement. Inserting a row
-- into this view (it never holds any) runs the trigger below, which in
-- the statement's own transaction:
--   1. checks that nothing the decision rested on has changed since the
--      read but the quotas' counts: the org's metering epoch (below) is
--      the one read (`epoch`); and rechecks every quota the decision
--      counted on against what counts now (its counters in the period,
--      plus what open reservations hold): a hard quota must still have
--      room (`l`), and no alert threshold may lie between what counts now
--      and that plus the use (`lo`, `hi`: the levels on either side of the
--      use as it was read). Otherwise it aborts with 'quota_moved', and
--      nothing is written: the consume is then decided again in a
--      transaction;
--   2. raises each counter by the use (`n`), up to `ceiling`;
--   3. drops a rolling quota's buckets that no longer count (before `d`);
--   4. records the usage event.
-- `counters` is a JSON array of objects: `q` the quota, `s` the counter's
-- period start, `n` what the use adds, `f` the first period start that
-- counts, and `l`, `lo`, `hi`, `d` as above (absent: no such bound).
-- `now` is unix seconds. The write lock is held for this one statement,
-- not across the round trips of a transaction.

-- An org's metering epoch moves whenever something a consume's decision
-- rests on changes, other than counts: its quotas and their overrides,
-- its meters, its members and teams and who is in them, its keys' owners
-- and its time zone. The triggers below move it, whichever component
-- writes; an update that names a column but leaves it as it was moves
-- nothing (an org's rename is no change to its time zone). A migration
-- that rebuilds one of these tables must create its trigger again.
ALTER TABLE orgs ADD COLUMN metering_epoch INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER IF NOT EXISTS quotas_epoch_insert AFTER INSERT ON quotas
BEGIN UPDATE orgs SET metering_epoch = metering_epoch + 1 WHERE org_id = NEW.org_id; END;
CREATE TRIGGER IF NOT EXISTS quotas_epoch_update AFTER UPDATE ON quotas
BEGIN UPDATE orgs SET metering_epoch = metering_epoch + 1 WHERE org_id = NEW.org_id; END;
CREATE TRIGGER IF NOT EXISTS quotas_epoch_delete AFTER DELETE ON quotas
BEGIN UPDATE orgs SET metering_epoch = metering_epoch + 1 WHERE org_id = OLD.org_id; END;

CREATE TRIGGER IF NOT EXISTS quota_overrides_epoch_insert AFTER INSERT ON quota_overrides
BEGIN UPDATE orgs SET metering_epoch = metering_epoch + 1 WHERE org_id = NEW.org_id; END;
CREATE TRIGGER IF NOT EXISTS quota_overrides_epoch_update AFTER UPDATE ON quota_overrides
BEGIN UPDATE orgs SET metering_epoch = metering_epoch + 1 WHERE org_id = NEW.org_id; END;
CREATE TRIGGER IF NOT EXISTS quota_overrides_epoch_delete AFTER DELETE ON quota_overrides
BEGIN UPDATE orgs SET metering_epoch = metering_epoch + 1 WHERE org_id = OLD.org_id; END;

CREATE TRIGGER IF NOT EXISTS meters_epoch_update AFTER UPDATE ON meters
BEGIN UPDATE orgs SET metering_epoch = metering_epoch + 1 WHERE org_id = NEW.org_id; END;
CREATE TRIGGER IF NOT EXISTS meters_epoch_delete AFTER DELETE ON meters
BEGIN UPDATE orgs SET metering_epoch = metering_epoch + 1 WHERE org_id = OLD.org_id; END;

CREATE TRIGGER IF NOT EXISTS memberships_epoch_insert AFTER INSERT ON memberships
BEGIN UPDATE orgs SET metering_epoch = metering_epoch + 1 WHERE org_id = NEW.org_id; END;
CREATE TRIGGER IF NOT EXISTS memberships_epoch_delete AFTER DELETE ON memberships
BEGIN UPDATE orgs SET metering_epoch = metering_epoch + 1 WHERE org_id = OLD.org_id; END;

CREATE TRIGGER IF NOT EXISTS team_members_epoch_insert AFTER INSERT ON team_members
BEGIN UPDATE orgs SET metering_epoch = metering_epoch + 1 WHERE org_id = NEW.org_id; END;
CREATE TRIGGER IF NOT EXISTS team_members_epoch_delete AFTER DELETE ON team_members
BEGIN UPDATE orgs SET metering_epoch = metering_epoch + 1 WHERE org_id = OLD.org_id; END;

CREATE TRIGGER IF NOT EXISTS teams_epoch_update AFTER UPDATE OF parent_team_id ON teams
WHEN OLD.parent_team_id IS NOT NEW.parent_team_id
BEGIN UPDATE orgs SET metering_epoch = metering_epoch + 1 WHERE org_id = NEW.org_id; END;
CREATE TRIGGER IF NOT EXISTS teams_epoch_delete AFTER DELETE ON teams
BEGIN UPDATE orgs SET metering_epoch = metering_epoch + 1 WHERE org_id = OLD.org_id; END;

CREATE TRIGGER IF NOT EXISTS api_keys_epoch_update AFTER UPDATE OF owner_user_id ON api_keys
WHEN OLD.owner_user_id IS NOT NEW.owner_user_id
BEGIN UPDATE orgs SET metering_epoch = metering_epoch + 1 WHERE org_id = NEW.org_id; END;
CREATE TRIGGER IF NOT EXISTS api_keys_epoch_delete AFTER DELETE ON api_keys
BEGIN UPDATE orgs SET metering_epoch = metering_epoch + 1 WHERE org_id = OLD.org_id; END;

CREATE TRIGGER IF NOT EXISTS orgs_epoch_zone AFTER UPDATE OF time_zone ON orgs
WHEN OLD.time_zone IS NOT NEW.time_zone
BEGIN UPDATE orgs SET metering_epoch = metering_epoch + 1 WHERE org_id = NEW.org_id; END;

CREATE VIEW IF NOT EXISTS quota_consumes (
    org_id, now, counters, ceiling,
    source, event_id, event_type, subject_type, subject_id, data, epoch
) AS SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL WHERE 0;

CREATE TRIGGER IF NOT EXISTS quota_consumes_insert
INSTEAD OF INSERT ON quota_consumes
BEGIN
    SELECT RAISE(ABORT, 'quota_moved')
    WHERE (SELECT o.metering_epoch FROM orgs o WHERE o.org_id = NEW.org_id) IS NOT NEW.epoch;

    SELECT RAISE(ABORT, 'quota_moved')
    FROM (
        SELECT json_extract(j.value, '$.n') AS n,
               json_extract(j.value, '$.l') AS l,
               json_extract(j.value, '$.lo') AS lo,
               json_extract(j.value, '$.hi') AS hi,
               (SELECT COALESCE(SUM(c.used), 0) FROM quota_counters c
                 WHERE c.org_id = NEW.org_id AND c.quota_id = json_extract(j.value, '$.q')
                   AND c.period_start >= json_extract(j.value, '$.f') AND c.period_start <= NEW.now)
             + (SELECT COALESCE(SUM(h.amount), 0) FROM quota_holds h
                 WHERE h.org_id = NEW.org_id AND h.quota_id = json_extract(j.value, '$.q')
                   AND h.expires_at > NEW.now) AS u
        FROM json_each(NEW.counters) j
    )
    WHERE (l IS NOT NULL AND u + n > l) OR (lo IS NOT NULL AND u < lo) OR (hi IS NOT NULL AND u + n >= hi);

    INSERT INTO quota_counters (org_id, quota_id, period_start, used)
    SELECT NEW.org_id, q.quota_id, json_extract(j.value, '$.s'),
           MIN(json_extract(j.value, '$.n'), NEW.ceiling)
    FROM json_each(NEW.counters) j
    JOIN quotas q ON q.org_id = NEW.org_id AND q.quota_id = json_extract(j.value, '$.q')
    WHERE json_extract(j.value, '$.n') > 0
    ON CONFLICT (quota_id, period_start) DO UPDATE
    SET used = CASE WHEN used > NEW.ceiling - excluded.used THEN NEW.ceiling ELSE used + excluded.used END;

    DELETE FROM quota_counters
    WHERE (quota_id, period_start) IN (
        SELECT c.quota_id, c.period_start
        FROM json_each(NEW.counters) j
        JOIN quota_counters c
          ON c.quota_id = json_extract(j.value, '$.q') AND c.org_id = NEW.org_id
         AND c.period_start < json_extract(j.value, '$.d')
        WHERE json_extract(j.value, '$.d') IS NOT NULL AND json_extract(j.value, '$.n') > 0
    );

    INSERT INTO usage_events (org_id, source, event_id, event_type, subject_type, subject_id, occurred_at, data, received_at)
    VALUES (NEW.org_id, NEW.source, NEW.event_id, NEW.event_type, NEW.subject_type, NEW.subject_id, NEW.now, NEW.data, NEW.now)
    ON CONFLICT DO NOTHING;
END;
