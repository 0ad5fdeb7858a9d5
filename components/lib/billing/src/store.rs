//! The Spin side: the deployment's billing settings, an org's state, and
//! taking a seat inside the transaction that adds a member.

use std::cell::RefCell;
use std::rc::Rc;

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::{ErrorCode, Problem};

use crate::plans::Plans;
use crate::standing::{BillingState, Entitlements, entitlements};

/// The grace after a failed payment when `billing_grace_days` is unset.
pub const DEFAULT_GRACE_DAYS: i64 = 7;

thread_local! {
    /// The settings this instance read and checked, once: every gated
    /// request needs them, and an instance serves a bounded number of
    /// requests, so a changed setting reaches the next instances.
    static SETTINGS: RefCell<Option<Settings>> = const { RefCell::new(None) };
}

/// The deployment's billing settings.
#[derive(Clone)]
pub struct Settings {
    /// Its plans (`billing_plans`).
    pub plans: Rc<Plans>,
    /// The grace after a failed payment, in seconds (`billing_grace_days`).
    pub grace_seconds: i64,
}

/// The deployment's billing settings. A `billing_plans` or
/// `billing_grace_days` that does not parse is logged and answered with a
/// 500: gating on a guess would give away or take away what orgs paid for.
pub async fn settings() -> Result<Settings, Problem> {
    if let Some(read) = SETTINGS.with(|s| s.borrow().clone()) {
        return Ok(read);
    }
    // A component not granted the variable must not read it as "no
    // plans" (no seat limit): that is a deployment error.
    let read = |name: &'static str| async move {
        spin_sdk::variables::get(name).await.map_err(|e| {
            eprintln!("billing: the {name} variable cannot be read: {e:?}");
            Problem::internal()
        })
    };
    let plans = read("billing_plans").await?;
    let plans = Plans::parse(&plans).map_err(|e| {
        eprintln!("billing: {e}");
        Problem::internal()
    })?;
    let days = read("billing_grace_days").await?;
    let days = match days.trim() {
        "" => DEFAULT_GRACE_DAYS,
        text => match text.parse::<i64>() {
            Ok(days) if (0..=365).contains(&days) => days,
            _ => {
                eprintln!(
                    "billing: billing_grace_days is not a whole number of days from 0 to 365"
                );
                return Err(Problem::internal());
            }
        },
    };
    let read = Settings {
        plans: Rc::new(plans),
        grace_seconds: days * 86_400,
    };
    SETTINGS.with(|s| *s.borrow_mut() = Some(read.clone()));
    Ok(read)
}

/// The columns [`state_of`] reads, from `org_billing`.
pub const STATE_COLUMNS: &str = "plan_key, status, seats_bought, past_due_since, stripe_features";

/// A billing state from a row of [`STATE_COLUMNS`] (starting at `at`).
pub fn state_of(row: &spin_sdk::sqlite::RowResult, at: usize) -> BillingState {
    BillingState {
        plan_key: db::get_opt_text(row, at),
        status: db::get_opt_text(row, at + 1),
        seats_bought: db::get_int(row, at + 2).unwrap_or(0),
        past_due_since: db::get_int(row, at + 3),
        // Written only as a JSON array of text.
        stripe_features: db::get_opt_text(row, at + 4)
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default(),
    }
}

/// The org's billing state; `None` before it ever had one.
pub async fn load(tenant: &Tenant<'_>) -> Result<Option<BillingState>, Problem> {
    let rows = tenant
        .query(
            &format!("SELECT {STATE_COLUMNS} FROM org_billing WHERE org_id = ?1"),
            vec![],
        )
        .await?;
    Ok(rows.first().map(|row| state_of(row, 0)))
}

/// What the org is entitled to at `now`.
pub async fn granted(tenant: &Tenant<'_>, now: i64) -> Result<Entitlements, Problem> {
    let settings = settings().await?;
    let state = load(tenant).await?;
    Ok(entitlements(
        &settings.plans,
        state.as_ref(),
        now,
        settings.grace_seconds,
    ))
}

/// Takes a seat for `user_id` joining the org, inside the caller's write
/// transaction (which then adds the membership): refused with a `402
/// seat_limit_reached` problem when every seat the org's plan gives is
/// held by a member. A user who is a member already takes none. Pending
/// invitations hold no seat: the acceptance that finds the seats full is
/// refused, and the invitation stays open.
pub async fn take_seat(tenant: &Tenant<'_>, user_id: &str, now: i64) -> Result<(), Problem> {
    let settings = settings().await?;
    if settings.plans.is_empty() {
        return Ok(());
    }
    let rows = tenant
        .query(
            &format!(
                "SELECT (SELECT COUNT(*) FROM memberships WHERE org_id = ?1),
                        EXISTS (SELECT 1 FROM memberships WHERE org_id = ?1 AND user_id = ?2),
                        b.*
                 FROM (SELECT 1) LEFT JOIN (SELECT {STATE_COLUMNS} FROM org_billing WHERE org_id = ?1) b"
            ),
            vec![db::text(user_id)],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Err(Problem::internal());
    };
    if db::get_int(row, 1) == Some(1) {
        return Ok(());
    }
    let used = db::get_int(row, 0).unwrap_or(0);
    // No row: the LEFT JOIN's columns are NULL, and so is the status.
    let state = state_of(row, 2);
    let state = state.status.is_some().then_some(state);
    let granted = entitlements(&settings.plans, state.as_ref(), now, settings.grace_seconds);
    match granted.seat_limit {
        Some(limit) if used >= limit => Err(seats_full(limit, granted.plan.as_deref())),
        _ => Ok(()),
    }
}

/// The problem of a join refused because the org's seats are taken.
pub fn seats_full(limit: i64, plan: Option<&str>) -> Problem {
    let plan = plan.unwrap_or("current");
    Problem::new(ErrorCode::SeatLimitReached).detail(format!(
        "all {limit} seats of the organization's {plan} plan are taken: an admin can buy more seats or remove a member"
    ))
}
