//! A consume decided by one read and written by one statement, outside a
//! transaction: how [`consume`](crate::check::consume) goes when it can.
//!
//! [`resolve`] reads where every applicable quota stands, in one statement
//! (so one snapshot), and [`decide`] decides. A refusal is answered as read:
//! it writes nothing. An allowed use is written by one insert into the
//! `quota_consumes` view (migration 0038), whose trigger, in the insert's
//! own transaction, rechecks that every hard quota still has room for the
//! use and that no alert threshold lies between what counts now and that
//! plus the use, then raises the counters and records the usage event.
//! The insert returns where each hard quota stands after it, so the
//! answer's `remaining` is exact however many consumes ran meanwhile.
//!
//! The trigger also checks the org's metering epoch, which every change to
//! what the decision rests on (quotas, overrides, meters, members, teams,
//! keys' owners, the time zone) moves: a decision read before such a
//! change is never written after it.
//!
//! The write lock is held for that one statement, where a transaction
//! holds it across four round trips to the database (on libSQL, network
//! round trips). A consume takes the transactional way instead when it
//! has more to write than counters and an event (a priced meter's spend,
//! an alert threshold it reaches, expired holds to tidy), or when the
//! recheck finds that another write moved a quota between the read and
//! the write: it is then decided again in the transaction.

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::Problem;
use gatehouse_http::idempotency::unix_now;
use serde_json::{Map, Value as Json, json};
use std::sync::LazyLock;

use crate::alerts;
use crate::check::{COUNTER_CEILING, Costing, Counted, Resolved, check_amount, resolve};
use crate::decision::{Decision, Standing, decide};
use crate::events::CONSUME_SOURCE;
use crate::model::{Use, recorded_data};
use crate::period::{Calendar, Period};

/// What the trigger raises when a quota moved between the read and the
/// write.
const MOVED: &str = "quota_moved";

/// Where a quota stands: its counters in the period from `$.f` to now
/// (`?2`) plus what open reservations hold; `j` is the quota's entry.
const STANDING: &str = "(SELECT COALESCE(SUM(c.used), 0) FROM quota_counters c
      WHERE c.org_id = ?1 AND c.quota_id = json_extract(j.value, '$.q')
        AND c.period_start >= json_extract(j.value, '$.f') AND c.period_start <= ?2)
    + (SELECT COALESCE(SUM(h.amount), 0) FROM quota_holds h
      WHERE h.org_id = ?1 AND h.quota_id = json_extract(j.value, '$.q') AND h.expires_at > ?2)";

/// The oldest counter in use that a quota counts (for a rolling window's
/// `reset_at`); `j` as in [`STANDING`].
const OLDEST: &str = "(SELECT MIN(c.period_start) FROM quota_counters c
      WHERE c.org_id = ?1 AND c.quota_id = json_extract(j.value, '$.q') AND c.used > 0
        AND c.period_start >= json_extract(j.value, '$.f') AND c.period_start <= ?2)";

/// The write (see the module's doc): `?2` now, `?3` the quotas' entries,
/// `?4` the counters' ceiling, `?5`–`?10` the event, `?11` the org's
/// metering epoch as read. It returns the hard quotas' standings after it
/// as `[[standing, oldest counter in use, quota id], …]`.
static WRITE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO quota_consumes (org_id, now, counters, ceiling, source, event_id, event_type, subject_type, subject_id, data, epoch)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         RETURNING (SELECT json_group_array(json_array({STANDING}, {OLDEST}, json_extract(j.value, '$.q')))
                    FROM json_each(?3) j WHERE json_extract(j.value, '$.l') IS NOT NULL)"
    )
});

/// The decision on `body`, counted when allowed; `None` when the consume
/// must be decided in a transaction instead (nothing was written).
pub(crate) async fn consume(tenant: &Tenant<'_>, body: &Use) -> Result<Option<Decision>, Problem> {
    let now = unix_now();
    let Resolved {
        target,
        counted,
        epoch,
        ..
    } = resolve(tenant, body, now, Costing::Skip).await?;
    check_amount(&target.meter, body.amount)?;
    if target.meter.price.is_some() || counted.iter().any(|c| c.expired_holds) {
        return Ok(None);
    }
    let mut quotas: Vec<Standing> = counted.iter().map(|c| c.standing.clone()).collect();
    let decision = decide(&quotas);
    if !decision.allowed {
        return Ok(Some(decision));
    }
    let Some(entries) = entries(&counted, &target.calendar, now) else {
        return Ok(None);
    };
    let data = recorded_data(
        &target.meter,
        body.amount,
        target.item_type.as_deref(),
        target.item_id.as_deref(),
    );
    let written = tenant
        .query_or_error(
            &WRITE_SQL,
            vec![
                db::int(now),
                db::text(entries.to_string()),
                db::int(COUNTER_CEILING),
                db::text(CONSUME_SOURCE),
                db::text(crate::org_events::new_event_id()),
                db::text(&target.meter.event_type),
                db::text(target.user.kind.as_str()),
                db::text(&target.user.id),
                db::text(data.to_string()),
                db::int(epoch),
            ],
        )
        .await?;
    let rows = match written {
        Ok(rows) => rows,
        Err(e) if format!("{e:?}").contains(MOVED) => return Ok(None),
        Err(e) => {
            eprintln!("database statement failed: {e:?}");
            return Err(Problem::internal());
        }
    };
    let after = rows
        .first()
        .and_then(|row| db::get_opt_text(row, 0))
        .and_then(|text| serde_json::from_str::<Vec<(i64, Option<i64>, String)>>(&text).ok())
        .ok_or_else(|| {
            eprintln!("a consume's write returned no standings");
            Problem::internal()
        })?;
    // Where each hard quota stood just before the use (what it stands at
    // now, less the use), and when what counts now stops counting.
    for (standing, oldest, id) in after {
        let Some(c) = counted.iter().find(|c| c.quota.id == id) else {
            continue;
        };
        if let Some(q) = quotas.iter_mut().find(|q| q.id == id) {
            q.used = standing.saturating_sub(q.need);
            q.reset_at = c.quota.period.reset_at(&target.calendar, now, oldest);
        }
    }
    Ok(Some(decide(&quotas)))
}

/// The quotas' entries for the write (see migration 0038); `None` when the
/// use reaches an alert threshold, which the transaction fires.
fn entries(counted: &[Counted], calendar: &Calendar, now: i64) -> Option<Json> {
    let mut out = Vec::with_capacity(counted.len());
    for c in counted {
        let need = c.standing.need;
        let from = c.quota.period.counting_from(calendar, now);
        let mut entry = Map::new();
        entry.insert("q".into(), json!(c.quota.id));
        entry.insert("s".into(), json!(c.start));
        entry.insert("n".into(), json!(need));
        entry.insert("f".into(), json!(from));
        if c.standing.hard {
            entry.insert("l".into(), json!(c.standing.limit));
        }
        if need > 0 {
            let thresholds = alerts::parse_thresholds(&c.quota.thresholds).unwrap_or_default();
            let (lo, hi) =
                alerts::levels_around(&thresholds, c.standing.limit, c.standing.used, need)?;
            if let Some(lo) = lo {
                entry.insert("lo".into(), json!(lo));
            }
            if let Some(hi) = hi {
                entry.insert("hi".into(), json!(hi));
            }
            if let Period::Rolling { .. } = c.quota.period {
                entry.insert("d".into(), json!(from));
            }
        }
        out.push(Json::Object(entry));
    }
    Some(Json::Array(out))
}
