-- Usage on metered prices (billing_plans' "metered"): what each org's
-- meters counted, reported to Stripe's billing meters by the
-- billing.report_usage jobs (components/lib/billing/src/usage_report.rs).
-- Times are unix seconds.

-- Where reporting stands, per org and meter: the usage before reported_to
-- is reported (or was none), for the subscription named; the next window
-- starts there. Another subscription starts at its own period's start.
CREATE TABLE IF NOT EXISTS billing_usage_cursors (
    org_id          TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    meter_key       TEXT    NOT NULL,
    subscription_id TEXT    NOT NULL,             -- sub_…: the subscription the watermark is of
    reported_to     INTEGER NOT NULL,             -- the watermark
    carry           REAL    NOT NULL DEFAULT 0,   -- a sum's part of a unit (or negative total) left for the next window
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (org_id, meter_key)
);

-- Each window reported, [window_start, window_end): planned ('pending')
-- before it is sent, so that every attempt sends the same units under the
-- same identifier; 'reported' once Stripe took it, 'duplicate' when Stripe
-- said it had it already (an earlier attempt's answer was lost). The
-- watermark moves past a window in the transaction that records it. A
-- window without units is not sent and has no row.
CREATE TABLE IF NOT EXISTS billing_usage_reports (
    org_id             TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    meter_key          TEXT    NOT NULL,
    window_start       INTEGER NOT NULL,
    window_end         INTEGER NOT NULL,
    units              INTEGER NOT NULL CHECK (units > 0),
    carry              REAL    NOT NULL,          -- the watermark's carry once this window is reported
    event_name         TEXT    NOT NULL,          -- the Stripe billing meter's event_name
    stripe_customer_id TEXT    NOT NULL,          -- cus_…
    identifier         TEXT    NOT NULL UNIQUE,   -- the meter event's identifier: the org, meter and window
    state              TEXT    NOT NULL CHECK (state IN ('pending', 'reported', 'duplicate')),
    planned_at         INTEGER NOT NULL,
    reported_at        INTEGER,                   -- NULL while pending
    CHECK (window_end > window_start),
    PRIMARY KEY (org_id, meter_key, window_start)
);
