//! `GET /v1/plans`: the deployment's plans and what each grants, for
//! anyone (a pricing page reads it without signing in).

use gatehouse_http::{Problem, Response, response};
use serde_json::json;

/// `GET /v1/plans`.
pub async fn list(request_id: &str) -> Result<Response, Problem> {
    let settings = gatehouse_billing::settings().await?;
    let items: Vec<_> = settings
        .plans
        .all()
        .iter()
        .map(|plan| {
            json!({
                "key": plan.key,
                "name": plan.name,
                "default": plan.default,
                "price": plan.price,
                "features": plan.features,
                "limits": plan.limits,
                "seats": plan.seats,
            })
        })
        .collect();
    Ok(response::json(200, &json!({"items": items}), request_id))
}
