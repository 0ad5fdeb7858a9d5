//! Usage-based prices: what an org's meters count, reported to Stripe's
//! billing meters while the org has the grants of a plan that lists them
//! (`billing_plans`' `"metered"`, see [`crate::plans::Metered`]).
//!
//! A background job of kind [`REPORT_JOB`] (payload: the org's id) reports
//! each metered meter of the org's plan, one window at a time: from where
//! the last report ended (the meter's watermark, at first the
//! subscription's current period start) to the job's time less
//! [`SETTLE_SECONDS`], floored to the minute, so usage that arrives a
//! little late still falls in its window. The window's units go to
//! `POST /v1/billing/meter_events` as one event stamped with the window's
//! end, under an [`identifier`] made of the org, the meter and the window:
//! Stripe refuses an identifier it has seen, so a retry never bills
//! twice. A window is planned (stored, value and identifier included)
//! before it is sent, and every attempt sends what was planned, so two
//! jobs at once, or a retry after more usage came in, send the same event;
//! the report is recorded and the watermark moved in one transaction once
//! Stripe took it (or said it had it). A window without units sends
//! nothing and moves the watermark. Each run queues the next at the next
//! hour (the chain) while the org has a metered plan; billing starts the
//! chain when it takes a subscription to such a plan.
//!
//! Only `count` and `sum` meters add up per window; a plan that names a
//! meter of another aggregation fails its jobs with that in their error.
//! A sum carries the part of a unit it could not report (Stripe takes
//! whole units) to the next window, and a negative total with it.

use sha2::{Digest, Sha256};

#[cfg(target_arch = "wasm32")]
mod job;
#[cfg(target_arch = "wasm32")]
mod meter;

#[cfg(target_arch = "wasm32")]
pub use job::{queue, run_job, start};

/// The jobs' kind.
pub const REPORT_JOB: &str = "billing.report_usage";

/// How long after a window ends it is reported: usage events of its last
/// seconds have this long to arrive.
pub const SETTLE_SECONDS: i64 = 60;

/// The longest identifier Stripe takes for a meter event.
pub const MAX_IDENTIFIER_CHARS: usize = 100;

/// The end of the window a run at `now` reports up to: `now` less
/// [`SETTLE_SECONDS`], floored to the minute.
pub fn window_end(now: i64) -> i64 {
    (now - SETTLE_SECONDS).div_euclid(60) * 60
}

/// When the run after one at `now` is due: the next hour's start, plus
/// [`SETTLE_SECONDS`] so that its window ends on the hour.
pub fn next_run(now: i64) -> i64 {
    (now.div_euclid(3600) + 1) * 3600 + SETTLE_SECONDS
}

/// The idempotency key of the org's job due at `run_at`: one per org and
/// hour, so queueing twice in an hour is one job.
pub fn job_key(org_id: &str, run_at: i64) -> String {
    format!("{org_id} {}", run_at.div_euclid(3600) * 3600)
}

/// The meter event's identifier for the org's `meter` over `[from, to)`:
/// `{org}:{meter}:{from}-{to}`, the same for every attempt. When that is
/// longer than Stripe takes, the org and meter are named by a hash of
/// them, after a `#` (no org id or meter key holds one, so the two forms
/// never meet).
pub fn identifier(org_id: &str, meter: &str, from: i64, to: i64) -> String {
    let plain = format!("{org_id}:{meter}:{from}-{to}");
    if plain.len() <= MAX_IDENTIFIER_CHARS {
        return plain;
    }
    let digest = Sha256::new()
        .chain_update(org_id.as_bytes())
        .chain_update([0])
        .chain_update(meter.as_bytes())
        .finalize();
    let hash: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("#{hash}:{from}-{to}")
}

/// The `Idempotency-Key` of the request that sends `identifier`.
pub fn idempotency_key(identifier: &str) -> String {
    format!("gatehouse-usage-{identifier}")
}

/// Whether Stripe's refusal (`status`, `message`) says an event with the
/// identifier exists already: the window was reported by an earlier
/// attempt whose answer was lost.
pub fn duplicate_identifier(status: u16, message: &str) -> bool {
    status == 400 && message.starts_with("An event already exists with identifier")
}

/// What a meter counted in a window, as SQLite summed it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Total {
    /// A count, or a sum of whole numbers.
    Whole(i64),
    /// A sum with a fraction in it.
    Fraction(f64),
}

/// The whole units to report for `total` with `carry` left from the
/// window before, and what is left for the next: never below zero units;
/// a fraction, or a negative total (a correction), is carried on.
pub fn billable(total: Total, carry: f64) -> (i64, f64) {
    if let Total::Whole(n) = total
        && carry == 0.0
    {
        let units = n.max(0);
        return (units, (n - units) as f64);
    }
    let exact = match total {
        Total::Whole(n) => n as f64,
        Total::Fraction(x) => x,
    } + carry;
    // Sums of decimals land a hair off (2.9999999999999996): round to
    // billionths, the finest unit metering keeps, before flooring.
    let exact = (exact * 1e9).round() / 1e9;
    if !exact.is_finite() || exact < 1.0 {
        return (0, if exact.is_finite() { exact } else { 0.0 });
    }
    // `as` saturates at i64::MAX, far past any real usage.
    let units = exact.floor() as i64;
    (units, exact - units as f64)
}

/// A dotted data path as an SQLite JSON path, each name quoted
/// (`usage.seconds` → `$."usage"."seconds"`); meters' paths hold no quotes.
pub fn json_path(path: &str) -> String {
    path.split('.').fold(String::from("$"), |mut out, name| {
        out.push_str(&format!(".\"{name}\""));
        out
    })
}

/// The statements the job runs, each bound to the org in `?1` as the
/// tenant context requires (the job has no member to make one from).
pub mod sql {
    /// After the state columns of `org_billing` (`STATE_COLUMNS`), what
    /// else the job reads of it: the customer, subscription and period
    /// start.
    pub const BILLING_REST: &str =
        "stripe_customer_id, subscription_id, period_start FROM org_billing WHERE org_id = ?1";

    /// The meter `?2`: its event type, aggregation and value path.
    pub const METER: &str = "SELECT event_type, aggregation, value_path FROM meters WHERE org_id = ?1 AND meter_key = ?2";

    /// The events of type `?2` in `[?3, ?4)`.
    pub const COUNT: &str = "SELECT COUNT(*) FROM usage_events
     WHERE org_id = ?1 AND event_type = ?2 AND occurred_at >= ?3 AND occurred_at < ?4";

    /// The sum of the numbers at path `?5` of those events (NULL: none).
    pub const SUM: &str = "SELECT SUM(json_extract(data, ?5)) FROM usage_events
     WHERE org_id = ?1 AND event_type = ?2 AND occurred_at >= ?3 AND occurred_at < ?4
       AND json_type(data, ?5) IN ('integer', 'real')";

    /// The meter `?2`'s watermark, made at `?4` for subscription `?3`
    /// unless it has one.
    pub const CURSOR_START: &str = "INSERT INTO billing_usage_cursors (org_id, meter_key, subscription_id, reported_to, carry, updated_at)
     VALUES (?1, ?2, ?3, ?4, 0, ?5) ON CONFLICT DO NOTHING";

    /// The meter `?2`'s watermark and the window planned from it, if one
    /// waits to be sent (its columns NULL otherwise).
    pub const CURSOR: &str = "SELECT c.subscription_id, c.reported_to, c.carry,
            r.window_end, r.units, r.carry, r.event_name, r.stripe_customer_id, r.identifier
     FROM billing_usage_cursors c
     LEFT JOIN billing_usage_reports r ON r.org_id = c.org_id AND r.meter_key = c.meter_key
          AND r.window_start = c.reported_to AND r.state = 'pending'
     WHERE c.org_id = ?1 AND c.meter_key = ?2";

    /// Moves the meter `?2`'s watermark from `?3` (for subscription `?4`)
    /// to `?5` for subscription `?6` with carry `?7`, at `?8`, while no
    /// window waits to be sent: another job's move or plan wins.
    pub const CURSOR_MOVE: &str = "UPDATE billing_usage_cursors SET reported_to = ?5, subscription_id = ?6, carry = ?7, updated_at = ?8
     WHERE org_id = ?1 AND meter_key = ?2 AND reported_to = ?3 AND subscription_id = ?4
       AND NOT EXISTS (SELECT 1 FROM billing_usage_reports
                       WHERE org_id = ?1 AND meter_key = ?2 AND state = 'pending')
     RETURNING reported_to";

    /// Plans the window from the meter `?2`'s watermark `?3` (for
    /// subscription `?4`) to `?5`: `?6` units, carry `?7` after it, event
    /// `?8` of customer `?9`, identifier `?10`, at `?11`. Nothing when the
    /// watermark moved or a window from it is planned already.
    pub const PLAN: &str = "INSERT INTO billing_usage_reports (org_id, meter_key, window_start, window_end, units, carry,
                                        event_name, stripe_customer_id, identifier, state, planned_at)
     SELECT c.org_id, c.meter_key, c.reported_to, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', ?11
     FROM billing_usage_cursors c
     WHERE c.org_id = ?1 AND c.meter_key = ?2 AND c.reported_to = ?3 AND c.subscription_id = ?4
     ON CONFLICT DO NOTHING RETURNING window_start";

    /// Records the window from `?3` as `?4` (`reported` or `duplicate`) at `?5`.
    pub const RECORD: &str = "UPDATE billing_usage_reports SET state = ?4, reported_at = ?5
     WHERE org_id = ?1 AND meter_key = ?2 AND window_start = ?3 AND state = 'pending'";

    /// Moves the watermark past a recorded window: from `?3` to `?4`, with
    /// carry `?5`, at `?6`.
    pub const CURSOR_PAST: &str =
        "UPDATE billing_usage_cursors SET reported_to = ?4, carry = ?5, updated_at = ?6
     WHERE org_id = ?1 AND meter_key = ?2 AND reported_to = ?3";

    /// Every statement, for the check that each is bound to the org.
    pub const ALL: [&str; 9] = [
        METER,
        COUNT,
        SUM,
        CURSOR_START,
        CURSOR,
        CURSOR_MOVE,
        PLAN,
        RECORD,
        CURSOR_PAST,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3600;
    const T: i64 = 1_800_000_000;

    #[test]
    fn windows_end_a_settle_delay_before_the_run_on_a_whole_minute() {
        assert_eq!(window_end(T + 60), T);
        assert_eq!(window_end(T + 119), T);
        assert_eq!(window_end(T + 120), T + 60);
        assert_eq!(window_end(T + 59), T - 60);
    }

    #[test]
    fn the_next_run_is_due_when_the_next_hours_window_can_end_on_the_hour() {
        assert_eq!(next_run(T), T + HOUR + SETTLE_SECONDS);
        assert_eq!(next_run(T + HOUR - 1), T + HOUR + SETTLE_SECONDS);
        assert_eq!(
            next_run(T + HOUR + SETTLE_SECONDS),
            T + 2 * HOUR + SETTLE_SECONDS
        );
        assert_eq!(window_end(next_run(T + 5)), T + HOUR);
    }

    #[test]
    fn one_job_key_per_org_and_hour() {
        assert_eq!(job_key("org_1", T + 5), job_key("org_1", T + HOUR - 1));
        assert_ne!(job_key("org_1", T), job_key("org_1", T + HOUR));
        assert_ne!(job_key("org_1", T), job_key("org_2", T));
    }

    #[test]
    fn identifiers_name_the_org_meter_and_window_and_fit_stripes_limit() {
        let org = format!("org_{}", "a".repeat(32));
        assert_eq!(
            identifier(&org, "requests", T, T + HOUR),
            format!("{org}:requests:{T}-{}", T + HOUR)
        );
        assert_eq!(
            identifier(&org, "requests", T, T + HOUR),
            identifier(&org, "requests", T, T + HOUR)
        );
        assert_ne!(
            identifier(&org, "requests", T, T + HOUR),
            identifier(&org, "requests", T, T + 2 * HOUR)
        );
        let long = "m".repeat(64);
        let hashed = identifier(&org, &long, T, T + HOUR);
        assert!(hashed.len() <= MAX_IDENTIFIER_CHARS, "{hashed}");
        assert!(hashed.starts_with('#') && hashed.ends_with(&format!(":{T}-{}", T + HOUR)));
        assert_ne!(hashed, identifier("org_other", &long, T, T + HOUR));
        assert_ne!(hashed, identifier(&org, &"n".repeat(64), T, T + HOUR));
        assert_eq!(hashed, identifier(&org, &long, T, T + HOUR));
    }

    #[test]
    fn only_stripes_duplicate_identifier_refusal_counts_as_reported() {
        assert!(duplicate_identifier(
            400,
            "An event already exists with identifier org_1:requests:1-2."
        ));
        assert!(!duplicate_identifier(
            400,
            "Missing required param: identifier."
        ));
        assert!(!duplicate_identifier(
            409,
            "An event already exists with identifier x."
        ));
    }

    #[test]
    fn whole_totals_are_reported_as_they_are() {
        assert_eq!(billable(Total::Whole(12), 0.0), (12, 0.0));
        assert_eq!(billable(Total::Whole(0), 0.0), (0, 0.0));
        assert_eq!(billable(Total::Whole(i64::MAX), 0.0), (i64::MAX, 0.0));
    }

    #[test]
    fn fractions_and_corrections_carry_to_the_next_window() {
        assert_eq!(billable(Total::Fraction(12.5), 0.0), (12, 0.5));
        assert_eq!(billable(Total::Fraction(0.5), 0.5), (1, 0.0));
        assert_eq!(billable(Total::Fraction(0.1 + 0.2), 2.7), (3, 0.0));
        assert_eq!(billable(Total::Fraction(0.25), 0.0), (0, 0.25));
        // A negative total is reported as nothing and offsets what follows.
        assert_eq!(billable(Total::Whole(-3), 0.0), (0, -3.0));
        assert_eq!(billable(Total::Whole(5), -3.0), (2, 0.0));
        assert_eq!(billable(Total::Fraction(f64::NAN), 0.0), (0, 0.0));
    }

    #[test]
    fn paths_become_quoted_json_paths() {
        assert_eq!(json_path("usage.seconds"), "$.\"usage\".\"seconds\"");
        assert_eq!(json_path("tokens"), "$.\"tokens\"");
    }

    #[test]
    fn every_statement_is_bound_to_the_org() {
        for statement in sql::ALL {
            assert!(gatehouse_auth::tenant::is_scoped(statement), "{statement}");
        }
        let billing = format!("SELECT plan_key, {}", sql::BILLING_REST);
        assert!(gatehouse_auth::tenant::is_scoped(&billing), "{billing}");
    }
}
