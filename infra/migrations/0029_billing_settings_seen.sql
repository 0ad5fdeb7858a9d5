-- What the deployment's billing settings were when the jobs runner last
-- brought the orgs' plan quotas in line with them: a changed
-- billing_plans (or grace) queues a plan quota job for every org it may
-- concern. One row per setting; not tenant data.
CREATE TABLE IF NOT EXISTS billing_settings_seen (
    name       TEXT    NOT NULL PRIMARY KEY,
    value      TEXT    NOT NULL,
    changed_at INTEGER NOT NULL
);
