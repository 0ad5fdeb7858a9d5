//! One meter's window: planned from its watermark, sent to Stripe as a
//! meter event, recorded with the watermark moved past it.

use gatehouse_auth::db;
use gatehouse_jobs::JobError;
use spin_sdk::sqlite::{Connection, RowResult, Value};

use super::{Total, billable, duplicate_identifier, idempotency_key, identifier, json_path, sql};
use crate::plans::Metered;
use crate::stripe::{Failure, Stripe};

/// What the job knows of the org while it reports.
pub(super) struct Account<'a> {
    pub(super) org_id: &'a str,
    pub(super) customer: &'a str,
    pub(super) subscription: &'a str,
    pub(super) period_start: i64,
}

/// Why a meter's usage was not reported this time.
pub(super) enum Trouble {
    /// Stripe did not answer: the other meters wait too.
    Unreachable(String),
    /// Stripe refused the report; worth another attempt.
    Refused(String),
    /// The deployment's plan and the org's meter do not go together.
    Misconfigured(String),
}

/// A window planned and waiting to be sent (or being sent).
struct Planned {
    to: i64,
    units: i64,
    carry: f64,
    event_name: String,
    customer: String,
    identifier: String,
}

/// A meter's watermark, and the window planned from it if one waits.
struct Cursor {
    subscription: String,
    reported_to: i64,
    carry: f64,
    planned: Option<Planned>,
}

fn real(row: &RowResult, i: usize) -> f64 {
    match row.values.get(i) {
        Some(Value::Real(x)) => *x,
        Some(Value::Integer(n)) => *n as f64,
        _ => 0.0,
    }
}

async fn cursor(conn: &Connection, org_id: &str, meter: &str) -> Result<Option<Cursor>, JobError> {
    let rows =
        gatehouse_jobs::rows(conn, sql::CURSOR, vec![db::text(org_id), db::text(meter)]).await?;
    Ok(rows.first().map(|row| Cursor {
        subscription: db::get_text(row, 0),
        reported_to: db::get_int(row, 1).unwrap_or_default(),
        carry: real(row, 2),
        planned: db::get_int(row, 3).map(|to| Planned {
            to,
            units: db::get_int(row, 4).unwrap_or_default(),
            carry: real(row, 5),
            event_name: db::get_text(row, 6),
            customer: db::get_text(row, 7),
            identifier: db::get_text(row, 8),
        }),
    }))
}

/// How a meter adds up its events.
enum Counting {
    Count,
    Sum(String),
}

/// Reports the org's meter `m` up to `to`: the window planned already if
/// one waits, else the next one.
pub(super) async fn report_meter(
    conn: &Connection,
    stripe: &Stripe,
    account: &Account<'_>,
    m: &Metered,
    to: i64,
    now: i64,
) -> Result<Result<(), Trouble>, JobError> {
    let (org, key) = (|| db::text(account.org_id), || db::text(&m.meter));
    let meters = gatehouse_jobs::rows(conn, sql::METER, vec![org(), key()]).await?;
    // A meter the org has not made counts nothing yet.
    let Some(meter) = meters.first() else {
        return Ok(Ok(()));
    };
    let event_type = db::get_text(meter, 0);
    let counting = match (db::get_text(meter, 1).as_str(), db::get_opt_text(meter, 2)) {
        ("count", _) => Counting::Count,
        ("sum", Some(path)) => Counting::Sum(json_path(&path)),
        (aggregation, _) => {
            return Ok(Err(Trouble::Misconfigured(format!(
                "meter `{}` is a {aggregation} meter: only count and sum meters are reported to Stripe",
                m.meter
            ))));
        }
    };
    gatehouse_jobs::rows(
        conn,
        sql::CURSOR_START,
        vec![
            org(),
            key(),
            db::text(account.subscription),
            db::int(account.period_start),
            db::int(now),
        ],
    )
    .await?;
    let Some(mut at) = cursor(conn, account.org_id, &m.meter).await? else {
        return Ok(Ok(()));
    };
    if let Some(planned) = &at.planned {
        return send(
            conn,
            stripe,
            account.org_id,
            &m.meter,
            at.reported_to,
            planned,
            now,
        )
        .await;
    }
    if at.subscription != account.subscription {
        // Another subscription's watermark: this one's usage counts from
        // its own period's start.
        let moved = gatehouse_jobs::rows(
            conn,
            sql::CURSOR_MOVE,
            vec![
                org(),
                key(),
                db::int(at.reported_to),
                db::text(&at.subscription),
                db::int(account.period_start),
                db::text(account.subscription),
                Value::Real(0.0),
                db::int(now),
            ],
        )
        .await?;
        if moved.is_empty() {
            return Ok(Ok(()));
        }
        at = Cursor {
            subscription: account.subscription.to_string(),
            reported_to: account.period_start,
            carry: 0.0,
            planned: None,
        };
    }
    let from = at.reported_to;
    if to <= from {
        return Ok(Ok(()));
    }
    let total = counted(conn, account.org_id, &event_type, &counting, from, to).await?;
    let (units, carry) = billable(total, at.carry);
    if units == 0 {
        // Nothing to bill: the watermark moves on (unless another job
        // planned or moved it meanwhile: then that one stands).
        gatehouse_jobs::rows(
            conn,
            sql::CURSOR_MOVE,
            vec![
                org(),
                key(),
                db::int(from),
                db::text(account.subscription),
                db::int(to),
                db::text(account.subscription),
                Value::Real(carry),
                db::int(now),
            ],
        )
        .await?;
        return Ok(Ok(()));
    }
    let planned = Planned {
        to,
        units,
        carry,
        event_name: m.event_name.clone(),
        customer: account.customer.to_string(),
        identifier: identifier(account.org_id, &m.meter, from, to),
    };
    let plan = gatehouse_jobs::rows(
        conn,
        sql::PLAN,
        vec![
            org(),
            key(),
            db::int(from),
            db::text(account.subscription),
            db::int(planned.to),
            db::int(planned.units),
            Value::Real(planned.carry),
            db::text(&planned.event_name),
            db::text(&planned.customer),
            db::text(&planned.identifier),
            db::int(now),
        ],
    )
    .await?;
    // Another job planned from here, or moved on, first: it sends its own.
    if plan.is_empty() {
        return Ok(Ok(()));
    }
    send(conn, stripe, account.org_id, &m.meter, from, &planned, now).await
}

/// What the meter counted in `[from, to)`.
async fn counted(
    conn: &Connection,
    org_id: &str,
    event_type: &str,
    counting: &Counting,
    from: i64,
    to: i64,
) -> Result<Total, JobError> {
    let mut params = vec![
        db::text(org_id),
        db::text(event_type),
        db::int(from),
        db::int(to),
    ];
    let statement = match counting {
        Counting::Count => sql::COUNT,
        Counting::Sum(path) => {
            params.push(db::text(path));
            sql::SUM
        }
    };
    let rows = gatehouse_jobs::rows(conn, statement, params).await?;
    Ok(match rows.first().and_then(|row| row.values.first()) {
        Some(Value::Integer(n)) => Total::Whole(*n),
        Some(Value::Real(x)) => Total::Fraction(*x),
        _ => Total::Whole(0),
    })
}

/// Sends the window of the org's `meter` from `from` as planned, and once
/// Stripe has it, records it and moves the watermark past it together.
async fn send(
    conn: &Connection,
    stripe: &Stripe,
    org_id: &str,
    meter: &str,
    from: i64,
    planned: &Planned,
    now: i64,
) -> Result<Result<(), Trouble>, JobError> {
    let params = [
        ("event_name", planned.event_name.clone()),
        ("payload[stripe_customer_id]", planned.customer.clone()),
        ("payload[value]", planned.units.to_string()),
        ("identifier", planned.identifier.clone()),
        ("timestamp", planned.to.to_string()),
    ]
    .map(|(name, value)| (name.to_string(), value));
    let key = idempotency_key(&planned.identifier);
    let state = match stripe.post("/v1/billing/meter_events", &params, &key).await {
        Ok(_) => "reported",
        // Taken by an earlier attempt whose answer was lost.
        Err(Failure::Refused {
            status, message, ..
        }) if duplicate_identifier(status, &message) => "duplicate",
        Err(Failure::Unreachable(why)) => {
            return Ok(Err(Trouble::Unreachable(format!(
                "Stripe did not answer the report of meter `{meter}`: {why}"
            ))));
        }
        Err(Failure::Refused {
            status,
            kind,
            message,
            ..
        }) => {
            eprintln!(
                "billing: Stripe refused the usage of {org_id}'s meter {meter}: {status} {kind}: {message}"
            );
            return Ok(Err(Trouble::Refused(format!(
                "Stripe refused the report of meter `{meter}` ({status} {kind})"
            ))));
        }
    };
    let text = |v: &str| db::text(v);
    gatehouse_jobs::transaction(conn, async {
        gatehouse_jobs::rows(
            conn,
            sql::RECORD,
            vec![
                text(org_id),
                text(meter),
                db::int(from),
                text(state),
                db::int(now),
            ],
        )
        .await?;
        gatehouse_jobs::rows(
            conn,
            sql::CURSOR_PAST,
            vec![
                text(org_id),
                text(meter),
                db::int(from),
                db::int(planned.to),
                Value::Real(planned.carry),
                db::int(now),
            ],
        )
        .await?;
        Ok(())
    })
    .await?;
    Ok(Ok(()))
}
