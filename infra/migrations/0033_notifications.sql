-- Notifications: what happened to a user (a new sign-in, a changed
-- password, a key about to expire, ...), delivered by a job on the
-- channels the user's preferences leave on. Times are unix seconds.
--
-- A notification is about its user's account (org_id NULL) or about an
-- org; both go with the user, the latter with the org too.
CREATE TABLE IF NOT EXISTS notifications (
    notification_id TEXT    PRIMARY KEY,              -- ntf_<16 hex of time><16 hex random>
    user_id         TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id          TEXT    REFERENCES orgs (org_id) ON DELETE CASCADE, -- NULL: about the user's account
    kind            TEXT    NOT NULL,                 -- sign_in.new_device, password.changed, ...
    data            TEXT    NOT NULL,                 -- JSON object of plain fields
    dedupe_key      TEXT,                             -- NULL: none; else one notification per user, kind and key
    in_app          INTEGER NOT NULL DEFAULT 0,       -- 1 once the job found the in_app channel on: listed
    read_at         INTEGER,                          -- NULL while unread
    deleted_at      INTEGER,                          -- NULL until the user deletes it from the list
    created_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_inbox ON notifications (user_id, created_at, notification_id);
CREATE INDEX IF NOT EXISTS notifications_org ON notifications (org_id);
CREATE UNIQUE INDEX IF NOT EXISTS notifications_once ON notifications (user_id, kind, dedupe_key)
    WHERE dedupe_key IS NOT NULL;

-- Each channel a notification was delivered on (or skipped, or refused
-- for good): a retried job skips the channels found here, so nothing is
-- sent twice where an earlier attempt succeeded.
CREATE TABLE IF NOT EXISTS notification_deliveries (
    notification_id TEXT    NOT NULL REFERENCES notifications (notification_id) ON DELETE CASCADE,
    channel         TEXT    NOT NULL CHECK (channel IN ('email', 'in_app', 'sms')),
    outcome         TEXT    NOT NULL CHECK (outcome IN ('sent', 'skipped', 'failed')),
    detail          TEXT,                             -- the mail id or the provider's message sid; or why not sent
    delivered_at    INTEGER NOT NULL,
    PRIMARY KEY (notification_id, channel)
);

-- The day (unix seconds / 86400) of the latest daily scan, by name: the
-- first job run of a day claims the day and scans (for API keys about to
-- expire), in the transaction that notifies what it finds.
CREATE TABLE IF NOT EXISTS notification_scans (
    scan TEXT    PRIMARY KEY,                         -- key.expiring
    day  INTEGER NOT NULL
);
