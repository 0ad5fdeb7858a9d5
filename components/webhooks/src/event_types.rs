//! `GET /v1/webhooks/event-types`: the event catalog an org's endpoints
//! subscribe to, each type with what it means and the JSON Schema (draft
//! 2020-12) of its `data`. The same for every org and published in the
//! OpenAPI document too; any credential acting in an org reads it.

use gatehouse_http::{Problem, Response, response};
use gatehouse_webhook_delivery::catalog;
use serde_json::{Value, json};
use spin_sdk::http::Request;

/// The dialect each schema declares.
const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The catalog as answered: one page holding every type.
fn page() -> Value {
    let items: Vec<Value> = catalog::all()
        .iter()
        .map(|t| {
            let mut schema = json!({"$schema": DIALECT});
            if let (Some(out), Some(fields)) = (schema.as_object_mut(), t.schema.as_object()) {
                out.extend(fields.clone());
            }
            json!({"type": t.name, "description": t.description, "schema": schema})
        })
        .collect();
    json!({"items": items, "next_cursor": null})
}

/// `GET /v1/webhooks/event-types`, with an ETag: the catalog changes only
/// with a new build.
pub async fn list(req: Request, request_id: &str) -> Result<Response, Problem> {
    let principal = gatehouse_auth::authenticate(&req).await?;
    principal.require_org()?;
    let body = page().to_string();
    let if_none_match = req
        .headers()
        .get(http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    Ok(response::cacheable(
        "application/json",
        body.as_bytes(),
        if_none_match,
        request_id,
    ))
}
