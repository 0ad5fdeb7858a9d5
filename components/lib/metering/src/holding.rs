//! Quota for another component's work, taken in its own request: a tool
//! run holds quota before each completion and tool call, and settles it
//! with what was used, with the rules of `POST /v1/quotas/reserve` and
//! its commit and release (every applicable quota, the most restrictive
//! wins; spend recorded from the meter's price) but without a round trip
//! or a credential of its own: the caller's tenant context is the org.
//!
//! One difference from the routes: [`settle`] takes an amount above the
//! one held. A completion's tokens are known only after it ran, and they
//! were spent; they are counted whole, like a consume that cannot be
//! refused, and the next hold is refused if a hard limit is now passed.

use gatehouse_auth::tenant::Tenant;
use gatehouse_http::json::Validate;
use gatehouse_http::{ErrorCode, Problem};
use spin_sdk::sqlite::Connection;

use crate::decision::Decision;
use crate::reservation::Reserve;
use crate::reserve;
use crate::store;

/// What a hold asks for.
pub struct Ask<'a> {
    /// `user:<id>` or `key:<id>`: whom it counts for (a key's owner, and
    /// the owner's teams and org, too).
    pub subject: String,
    /// The meter's key.
    pub meter: &'a str,
    /// Units to hold.
    pub amount: i64,
    /// How long the hold lasts if never settled.
    pub ttl_seconds: i64,
    /// The item type (`model`, `tool`, …).
    pub item_type: &'a str,
    /// The item.
    pub item_id: &'a str,
}

/// The outcome of a hold.
pub enum Held {
    /// Granted: the reservation to settle or release.
    Granted(String),
    /// Refused by a hard quota: the decision, naming it.
    Refused(Decision),
}

/// What a settled hold cost, when its meter has a price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spent {
    /// ISO 4217 code.
    pub currency: String,
    /// The amount as an exact decimal.
    pub amount: String,
}

/// How a meter aggregates, as other components check their settings
/// against it: `count`, `sum`, …; none when the org has no such meter.
pub async fn meter_aggregation(
    tenant: &Tenant<'_>,
    key: &str,
) -> Result<Option<&'static str>, Problem> {
    Ok(store::meter(tenant, key)
        .await?
        .map(|m| m.aggregation.as_str()))
}

/// Holds `ask` in one write transaction on `conn` (the tenant's).
pub async fn hold(tenant: &Tenant<'_>, conn: &Connection, ask: Ask<'_>) -> Result<Held, Problem> {
    let body = Reserve {
        subject: ask.subject,
        meter: ask.meter.to_string(),
        amount: ask.amount,
        ttl_seconds: ask.ttl_seconds,
        item_type: Some(ask.item_type.to_string()),
        item_id: Some(ask.item_id.to_string()),
    };
    // The caller builds the ask from its settings; a bad one is its
    // settings' fault, named the way a reserve's body would be.
    body.validate().map_err(|errors| {
        Problem::new(ErrorCode::ValidationFailed)
            .detail("the quota hold is invalid")
            .errors(errors)
    })?;
    let reserved = in_transaction(conn, reserve::reserve_now(tenant, &body)).await?;
    Ok(match reserved.reservation_id {
        Some(id) => Held::Granted(id),
        None => Held::Refused(reserved.decision),
    })
}

/// Settles the hold `id` with `amount` used (above the amount held, if it
/// was so); its cost, when the meter has a price.
pub async fn settle(
    tenant: &Tenant<'_>,
    conn: &Connection,
    id: &str,
    amount: i64,
    actor: &str,
) -> Result<Option<Spent>, Problem> {
    let settled = in_transaction(
        conn,
        reserve::commit_now(tenant, conn, id, amount, actor, true),
    )
    .await?;
    Ok(settled.cost.map(|c| Spent {
        amount: crate::money::Amount::from_nanos(c.amount).to_string(),
        currency: c.currency,
    }))
}

async fn in_transaction<T>(
    conn: &Connection,
    work: impl Future<Output = Result<T, Problem>>,
) -> Result<T, Problem> {
    store::begin(conn).await?;
    let outcome = work.await;
    let ended = store::end(conn, outcome.is_ok()).await;
    let value = outcome?;
    ended?;
    Ok(value)
}
