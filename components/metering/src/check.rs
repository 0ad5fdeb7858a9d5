//! `POST /v1/quotas/check` and `POST /v1/quotas/consume`.
//!
//! Every quota on the meter that applies to the user counts: the user's
//! own, each team's the user is in (and the teams above them), and the
//! org's. The decision is [`decide`]'s.
//!
//! A consume reads the counters and raises them in one `IMMEDIATE`
//! transaction, so no two consumes see the same standing: each hard
//! counter rises only while it stays within its limit, and if any would
//! not, nothing is counted. An allowed consume also records a usage event
//! of the meter's type (source [`CONSUME_SOURCE`](crate::events::CONSUME_SOURCE),
//! the amount at the meter's value path) in the same transaction, so
//! usage shows what quotas counted. Events sent to `/v1/usage/events` do
//! not move quota counters.
//!
//! Units held by open reservations count as used (see [`holds`]): a
//! quota's standing is its counter plus its unexpired holds, so consumes
//! and reserves together never pass a hard limit. A check and a consume
//! first end the meter's expired reservations, in their transaction.

use gatehouse_auth::caller::OrgCaller;
use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::idempotency::sqlite::create_once;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::json;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, response};
use spin_sdk::http::Request;

use crate::caller;
use crate::decision::{Decision, Standing, decide};
use crate::events;
use crate::holds;
use crate::model::{Aggregation, Enforcement, Meter, Quota, Use, recorded_data};
use crate::quotas::{QUOTA_COLUMNS, quota_of};
use crate::store;
use crate::subject::{self, Subject};

pub(crate) fn invalid(pointer: &str, code: &str, message: &str) -> Problem {
    Problem::new(ErrorCode::ValidationFailed)
        .detail("the request body has invalid fields")
        .errors(vec![FieldError::new(pointer, code, message)])
}

/// What a use is counted against.
pub(crate) struct Target {
    pub meter: Meter,
    pub user: Subject,
    pub quotas: Vec<Quota>,
}

/// The meter, the user (a member of the org) and the quotas that apply.
pub(crate) async fn target(tenant: &Tenant<'_>, body: &Use) -> Result<Target, Problem> {
    let user = subject::parse(&body.subject)
        .ok_or_else(|| invalid("/subject", "invalid_subject", "subject must be user:<id>"))?;
    if !store::belongs(tenant, &user).await? {
        return Err(invalid(
            "/subject",
            "unknown_subject",
            "the subject is not a member of this organization",
        ));
    }
    let meter = store::meter(tenant, &body.meter).await?.ok_or_else(|| {
        invalid(
            "/meter",
            "unknown_meter",
            "the org has no meter with this key",
        )
    })?;
    let teams = store::teams_of(tenant, &user.id).await?;
    let rows = tenant
        .query(
            &format!("SELECT {QUOTA_COLUMNS} FROM quotas WHERE org_id = ?1 AND meter_key = ?2"),
            vec![db::text(&meter.key)],
        )
        .await?;
    let org = format!("org:{}", tenant.org_id());
    let mine = format!("user:{}", user.id);
    let quotas = rows
        .iter()
        .map(quota_of)
        .filter(|q| {
            q.entity == org
                || q.entity == mine
                || q.entity
                    .strip_prefix("team:")
                    .is_some_and(|team| teams.iter().any(|t| t == team))
        })
        .collect();
    Ok(Target {
        meter,
        user,
        quotas,
    })
}

/// A quota's standing in its current period: `standing.used` counts the
/// units held too; `start` is the period's first second.
#[derive(Clone)]
pub(crate) struct Counted {
    pub standing: Standing,
    pub start: i64,
    pub held: i64,
}

/// Where each quota stands in its current period.
pub(crate) async fn standings(
    tenant: &Tenant<'_>,
    quotas: &[Quota],
    now: i64,
) -> Result<Vec<Counted>, Problem> {
    let mut out = Vec::with_capacity(quotas.len());
    for q in quotas {
        let (start, reset_at) = q.period.window(now);
        let rows = tenant
            .query(
                "SELECT used FROM quota_counters WHERE org_id = ?1 AND quota_id = ?2 AND period_start = ?3",
                vec![db::text(&q.id), db::int(start)],
            )
            .await?;
        let used = rows.first().and_then(|r| db::get_int(r, 0)).unwrap_or(0);
        let held = holds::held(tenant, &q.id, start, now).await?;
        let standing = Standing {
            id: q.id.clone(),
            entity: q.entity.clone(),
            limit: q.limit,
            used: used.saturating_add(held),
            hard: q.enforcement == Enforcement::Hard,
            reset_at,
        };
        out.push(Counted {
            standing,
            start,
            held,
        });
    }
    Ok(out)
}

/// `POST /v1/quotas/check`: the decision, nothing counted.
pub async fn check(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = caller::holding(&req, caller::CONSUME).await?;
    let tenant = caller.tenant()?;
    let body: Use = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let target = target(&tenant, &body).await?;
    let now = unix_now();
    store::begin(&caller.conn).await?;
    let outcome = async {
        holds::expire(&tenant, &target.meter.key, now).await?;
        standings(&tenant, &target.quotas, now).await
    }
    .await;
    let ended = store::end(&caller.conn, outcome.is_ok()).await;
    let quotas: Vec<Standing> = outcome?.into_iter().map(|c| c.standing).collect();
    ended?;
    Ok(response::json(
        200,
        &decide(&quotas, body.amount),
        request_id,
    ))
}

/// `POST /v1/quotas/consume`: check and count at once. With an
/// `Idempotency-Key`, a retry answers what the first call answered and
/// counts nothing more.
pub async fn consume(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = caller::holding(&req, caller::CONSUME).await?;
    let scope = caller::scope(&caller);
    let caller = &caller;
    create_once(
        &caller.conn,
        &scope,
        req,
        request_id,
        |body: Use| async move {
            let decision = consume_in_transaction(caller, &body).await?;
            Ok(response::json(200, &decision, request_id))
        },
    )
    .await
}

async fn consume_in_transaction(caller: &OrgCaller, body: &Use) -> Result<Decision, Problem> {
    let tenant = caller.tenant()?;
    store::begin(&caller.conn).await?;
    let outcome = consume_now(&tenant, body).await;
    let keep = matches!(&outcome, Ok(decision) if decision.allowed);
    let ended = store::end(&caller.conn, keep).await;
    let decision = outcome?;
    ended?;
    Ok(decision)
}

async fn consume_now(tenant: &Tenant<'_>, body: &Use) -> Result<Decision, Problem> {
    let target = target(tenant, body).await?;
    if target.meter.aggregation == Aggregation::Count && body.amount != 1 {
        return Err(invalid(
            "/amount",
            "count_meter_amount",
            "a count meter counts one event per consume: amount must be 1",
        ));
    }
    let now = unix_now();
    holds::expire(tenant, &target.meter.key, now).await?;
    let standings = standings(tenant, &target.quotas, now).await?;
    let quotas: Vec<Standing> = standings.iter().map(|c| c.standing.clone()).collect();
    let decision = decide(&quotas, body.amount);
    if !decision.allowed {
        return Ok(decision);
    }
    for Counted {
        standing: quota,
        start,
        held,
    } in &standings
    {
        tenant
            .exec(
                "INSERT INTO quota_counters (org_id, quota_id, period_start, used) VALUES (?1, ?, ?, 0)
                 ON CONFLICT DO NOTHING",
                vec![db::text(&quota.id), db::int(*start)],
            )
            .await?;
        // The limit is checked again by the statement itself: the counter
        // and the holds never pass a hard limit, whatever else ran.
        let raised = tenant
            .exec(
                "UPDATE quota_counters SET used = used + ?2
                 WHERE org_id = ?1 AND quota_id = ?3 AND period_start = ?4 AND (?5 = 0 OR used + ?2 <= ?6)",
                vec![
                    db::int(body.amount),
                    db::text(&quota.id),
                    db::int(*start),
                    db::int(i64::from(quota.hard)),
                    db::int(quota.limit.saturating_sub(*held)),
                ],
            )
            .await?;
        if raised != 1 {
            eprintln!(
                "metering: counter {} moved inside a write transaction",
                quota.id
            );
            return Err(Problem::internal());
        }
    }
    let data = recorded_data(&target.meter, body.amount);
    events::record(tenant, &target.meter.event_type, &target.user, &data, now).await?;
    Ok(decision)
}
