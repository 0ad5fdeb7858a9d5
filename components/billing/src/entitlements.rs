//! What an org may use: `GET /v1/entitlements` (any member, key or
//! service of the org) and `POST /v1/entitlements/check` (`feature`,
//! optional `quantity`), for the org the caller acts in. Both are
//! computed from the org's billing state and the deployment's plans at
//! the moment of the request, so a grace period that runs out takes
//! effect without anything being written.

use gatehouse_auth::caller::OrgCaller;
use gatehouse_auth::db;
use gatehouse_billing::standing::{self, Entitlements, SEATS};
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::json::{self, Validate};
use gatehouse_http::{FieldError, Problem, Response, response};
use serde::Deserialize;
use serde_json::json;
use spin_sdk::http::Request;

/// The org's members: the seats in use.
async fn seats_used(caller: &OrgCaller) -> Result<i64, Problem> {
    let tenant = caller.tenant()?;
    let rows = tenant
        .query("SELECT COUNT(*) FROM memberships WHERE org_id = ?1", vec![])
        .await?;
    Ok(rows.first().and_then(|r| db::get_int(r, 0)).unwrap_or(0))
}

async fn granted(caller: &OrgCaller) -> Result<Entitlements, Problem> {
    gatehouse_billing::granted(&caller.tenant()?, unix_now()).await
}

/// `GET /v1/entitlements`.
pub async fn list(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    let granted = granted(&caller).await?;
    let used = seats_used(&caller).await?;
    let body = json!({
        "org_id": caller.principal.org_id,
        "plan": granted.plan,
        "access": granted.access,
        "grace_ends_at": granted.grace_ends_at,
        "features": granted.features,
        "limits": granted.limits,
        "seats": {"limit": granted.seat_limit, "used": used},
    });
    Ok(response::json(200, &body, request_id))
}

/// `POST /v1/entitlements/check`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// A feature's or a limit's key, or `seats`.
    feature: String,
    /// How much of it: the number a limit is compared with, or the seats
    /// to add (default 1).
    quantity: Option<i64>,
}

impl Validate for Check {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.feature.is_empty() || self.feature.len() > 64 {
            errors.push(FieldError::new(
                "/feature",
                "invalid_length",
                "feature is 1 to 64 characters",
            ));
        }
        if self.quantity.is_some_and(|q| q < 0) {
            errors.push(FieldError::new(
                "/quantity",
                "out_of_range",
                "quantity is 0 or more",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// `POST /v1/entitlements/check`: `{allowed, feature, plan, limit?,
/// used?, reason?}`; a `200` either way.
pub async fn check(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    let body: Check = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let granted = granted(&caller).await?;
    // Only a question about seats needs them counted.
    let used = if body.feature == SEATS {
        seats_used(&caller).await?
    } else {
        0
    };
    let verdict = standing::check(&granted, &body.feature, body.quantity, used);
    Ok(response::json(200, &verdict, request_id))
}
