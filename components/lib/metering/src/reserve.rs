//! `POST /v1/quotas/reserve`, `POST /v1/quotas/reservations/{id}/commit`
//! and `…/release`: quota for work whose cost is known only after it ran.
//!
//! A reserve decides like a consume (every applicable quota, the most
//! restrictive wins) and, when allowed, holds the amount against each of
//! those quotas in the same `IMMEDIATE` transaction, so concurrent
//! consumes and reserves never pass a hard limit together: a hold counts
//! until its reservation expires, whatever period it was taken in. A
//! commit counts the actual amount (at most the reserved one; other
//! components' settlements may count more, see `holding`) in the
//! current periods like a consume that cannot be refused, frees the rest,
//! and records the usage event and the spend; a release frees everything. A reservation that reaches `expires_at`
//! holds nothing from then on (see [`holds`]); committing or releasing it
//! then is `409`, as is ending one that has ended.

use gatehouse_auth::caller::OrgCaller;
use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::idempotency::sqlite::create_once;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::json;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, response};
use serde::Serialize;
use spin_sdk::http::Request;
use spin_sdk::sqlite::Connection;

use crate::caller;
use crate::check::{self, invalid, text_or_null};
use crate::decision::{Decision, Standing, decide};
use crate::events;
use crate::holds;
use crate::model::{Use, recorded_data};
use crate::reservation::{Commit, Reservation, Reserve, State};
use crate::store;
use crate::subject::Kind;

/// The answer of a reserve: the decision, and the reservation when allowed.
#[derive(Serialize)]
pub(crate) struct Reserved {
    /// `rsv_…`; none when refused.
    pub reservation_id: Option<String>,
    /// Unix seconds; none when refused.
    pub expires_at: Option<i64>,
    #[serde(flatten)]
    pub decision: Decision,
}

/// Runs `work` in one write transaction: kept when it succeeds.
async fn in_transaction<T>(
    caller: &OrgCaller,
    work: impl AsyncFnOnce(&Tenant<'_>, &Connection) -> Result<T, Problem>,
) -> Result<T, Problem> {
    let tenant = caller.tenant()?;
    store::begin(&caller.conn).await?;
    let outcome = work(&tenant, &caller.conn).await;
    let ended = store::end(&caller.conn, outcome.is_ok()).await;
    let value = outcome?;
    ended?;
    Ok(value)
}

/// `POST /v1/quotas/reserve`. With an `Idempotency-Key`, a retry answers
/// what the first call answered and holds nothing more.
pub async fn reserve(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = caller::holding(&req, caller::CONSUME).await?;
    let scope = caller.idempotency_scope();
    let caller = &caller;
    create_once(
        &caller.conn,
        &scope,
        req,
        request_id,
        |body: Reserve| async move {
            let reserved = in_transaction(caller, async |t, _| reserve_now(t, &body).await).await?;
            Ok(response::json(200, &reserved, request_id))
        },
    )
    .await
}

pub(crate) async fn reserve_now(tenant: &Tenant<'_>, body: &Reserve) -> Result<Reserved, Problem> {
    let now = unix_now();
    let check::Resolved {
        target, counted, ..
    } = check::resolve(tenant, &body.as_use(), now, check::Costing::Read).await?;
    check::check_amount(&target.meter, body.amount)?;
    if counted.iter().any(|c| c.expired_holds) {
        holds::expire(tenant, &target.meter.key, now).await?;
    }
    let quotas: Vec<Standing> = counted.iter().map(|c| c.standing.clone()).collect();
    let decision = decide(&quotas);
    if !decision.allowed {
        return Ok(Reserved {
            reservation_id: None,
            expires_at: None,
            decision,
        });
    }
    let id = db::new_id("rsv_");
    let expires_at = now + body.ttl_seconds;
    tenant
        .exec(
            "INSERT INTO quota_reservations (org_id, reservation_id, meter_key, subject_type, subject_id, amount, state, created_at, expires_at, item_type, item_id)
             VALUES (?1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                db::text(&id),
                db::text(&target.meter.key),
                db::text(Kind::User.as_str()),
                db::text(&target.user.id),
                db::int(body.amount),
                db::text(State::Held.as_str()),
                db::int(now),
                db::int(expires_at),
                text_or_null(target.item_type.as_deref()),
                text_or_null(target.item_id.as_deref()),
            ],
        )
        .await?;
    for counted in counted.iter().filter(|c| c.standing.need > 0) {
        tenant
            .exec(
                "INSERT INTO quota_holds (org_id, reservation_id, quota_id, meter_key, period_start, amount, expires_at)
                 VALUES (?1, ?, ?, ?, ?, ?, ?)",
                vec![
                    db::text(&id),
                    db::text(&counted.standing.id),
                    db::text(&target.meter.key),
                    db::int(counted.start),
                    db::int(counted.standing.need),
                    db::int(expires_at),
                ],
            )
            .await?;
    }
    Ok(Reserved {
        reservation_id: Some(id),
        expires_at: Some(expires_at),
        decision,
    })
}

const RESERVATION_COLUMNS: &str = "reservation_id, meter_key, subject_type, subject_id, amount, committed, state, created_at, expires_at, item_type, item_id";

/// The org's reservation `id`; another org's is not found, like one that
/// does not exist.
async fn load(tenant: &Tenant<'_>, id: &str) -> Result<Reservation, Problem> {
    let rows = tenant
        .query(
            &format!(
                "SELECT {RESERVATION_COLUMNS} FROM quota_reservations WHERE org_id = ?1 AND reservation_id = ?2"
            ),
            vec![db::text(id)],
        )
        .await?;
    let row = rows
        .first()
        .ok_or_else(|| Problem::not_found().detail("no such reservation"))?;
    Ok(Reservation {
        id: db::get_text(row, 0),
        meter: db::get_text(row, 1),
        subject: format!("{}:{}", db::get_text(row, 2), db::get_text(row, 3)),
        amount: db::get_int(row, 4).unwrap_or_default(),
        committed: db::get_int(row, 5),
        // The column's CHECK admits only known names.
        state: State::parse(&db::get_text(row, 6)).unwrap_or(State::Expired),
        created_at: db::get_int(row, 7).unwrap_or_default(),
        expires_at: db::get_int(row, 8).unwrap_or_default(),
        item_type: db::get_opt_text(row, 9),
        item_id: db::get_opt_text(row, 10),
    })
}

fn ended(code: &str, message: &str) -> Problem {
    Problem::new(ErrorCode::Conflict)
        .detail(message.to_string())
        .errors(vec![FieldError::new("", code, message)])
}

/// 409 unless the reservation still holds at `now`.
fn still_held(reservation: &Reservation, now: i64) -> Result<(), Problem> {
    match reservation.state {
        State::Held if reservation.expires_at > now => Ok(()),
        State::Held | State::Expired => Err(ended(
            "reservation_expired",
            "the reservation has expired and holds nothing",
        )),
        State::Committed | State::Released => Err(ended(
            "reservation_finished",
            "the reservation was already committed or released",
        )),
    }
}

/// Marks the reservation ended and drops its holds.
async fn finish(
    tenant: &Tenant<'_>,
    reservation: &mut Reservation,
    state: State,
    committed: Option<i64>,
    now: i64,
) -> Result<(), Problem> {
    holds::drop_all(tenant, &reservation.id).await?;
    tenant
        .exec(
            "UPDATE quota_reservations SET state = ?2, committed = ?3, finished_at = ?4
             WHERE org_id = ?1 AND reservation_id = ?5",
            vec![
                db::text(state.as_str()),
                committed.map_or(spin_sdk::sqlite::Value::Null, db::int),
                db::int(now),
                db::text(&reservation.id),
            ],
        )
        .await?;
    reservation.state = state;
    reservation.committed = committed;
    Ok(())
}

/// `POST /v1/quotas/reservations/{id}/commit`.
pub async fn commit(req: Request, id: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = caller::holding(&req, caller::CONSUME).await?;
    let actor = caller::actor_id(&caller);
    let body: Commit = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let done = in_transaction(&caller, async |t, conn| {
        commit_now(t, conn, id, body.amount, &actor, false).await
    })
    .await?;
    Ok(response::json(200, &done.reservation, request_id))
}

/// A committed reservation and what it cost, when its meter has a price.
pub(crate) struct Settled {
    pub reservation: Reservation,
    pub cost: Option<check::Cost>,
}

/// Counts the actual amount like a consume that cannot be refused (the
/// reservation held room for it): every applicable quota's counter in
/// its current period, the usage event, the spend and the alerts. With
/// `overrun`, an amount above the one reserved is counted whole (work
/// that has happened, whose size was only estimated); without, it is
/// refused.
pub(crate) async fn commit_now(
    tenant: &Tenant<'_>,
    conn: &Connection,
    id: &str,
    amount: i64,
    actor: &str,
    overrun: bool,
) -> Result<Settled, Problem> {
    let now = unix_now();
    let mut reservation = load(tenant, id).await?;
    still_held(&reservation, now)?;
    if amount > reservation.amount && !overrun {
        return Err(invalid(
            "/amount",
            "exceeds_reservation",
            "amount may not exceed the amount reserved",
        ));
    }
    // Its holds go first, so the standings below do not count them.
    finish(
        tenant,
        &mut reservation,
        State::Committed,
        Some(amount),
        now,
    )
    .await?;
    if amount <= 0 {
        return Ok(Settled {
            reservation,
            cost: None,
        });
    }
    let used = Use {
        subject: reservation.subject.clone(),
        meter: reservation.meter.clone(),
        amount,
        item_type: reservation.item_type.clone(),
        item_id: reservation.item_id.clone(),
    };
    // A meter is deleted only once no quota counts it, and a member who
    // left counts nothing more: the commit then records nothing.
    let check::Resolved {
        target,
        cost,
        counted,
        ..
    } = match check::resolve(tenant, &used, now, check::Costing::Take).await {
        Ok(resolved) => resolved,
        // Only those two (validation problems); a failing store fails
        // the commit, and its transaction with it.
        Err(problem) if problem.status == 422 => {
            return Ok(Settled {
                reservation,
                cost: None,
            });
        }
        Err(problem) => return Err(problem),
    };
    check::count(tenant, conn, &counted, (now, now)).await?;
    let data = recorded_data(
        &target.meter,
        amount,
        target.item_type.as_deref(),
        target.item_id.as_deref(),
    );
    events::record(tenant, &target.meter.event_type, &target.user, &data, now).await?;
    if let Some(cost) = &cost {
        check::spend(tenant, conn, &target, amount, cost, ("commit", actor), now).await?;
    }
    Ok(Settled { reservation, cost })
}

/// `POST /v1/quotas/reservations/{id}/release`.
pub async fn release(req: Request, id: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = caller::holding(&req, caller::CONSUME).await?;
    let done = in_transaction(&caller, async |t, _| release_now(t, id, unix_now()).await).await?;
    Ok(response::json(200, &done, request_id))
}

/// Frees everything the reservation `id` holds; `409` once it has ended.
pub(crate) async fn release_now(
    tenant: &Tenant<'_>,
    id: &str,
    now: i64,
) -> Result<Reservation, Problem> {
    let mut reservation = load(tenant, id).await?;
    still_held(&reservation, now)?;
    finish(tenant, &mut reservation, State::Released, None, now).await?;
    Ok(reservation)
}
