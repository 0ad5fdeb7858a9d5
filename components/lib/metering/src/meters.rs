//! `POST`/`GET /v1/meters`, `GET`/`PATCH`/`DELETE /v1/meters/{key}`: the
//! org's meters, managed by its admins. A meter may have a price (see
//! [`price`](crate::price)); a `PATCH` sets or clears it, and only it. A
//! new price prices uses from then on: spend recorded before keeps its
//! amounts.

use gatehouse_auth::db;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::json;
use gatehouse_http::pagination::PageRequest;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, response};
use spin_sdk::http::Request;

use crate::caller;
use crate::model::CreateMeter;
use crate::price::{MeterPatch, Price};
use crate::store::{self, METER_COLUMNS, meter_of};

const WHAT: &str = "meters";

/// A meter that does not exist, or is another org's.
pub fn no_meter() -> Problem {
    Problem::not_found().detail("no such meter")
}

/// `POST /v1/meters`.
pub async fn create(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = caller::admin(&req, WHAT).await?;
    let tenant = caller.tenant()?;
    let body: CreateMeter = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let group_by = serde_json::to_string(&body.group_by).map_err(|_| Problem::internal())?;
    let price = stored_price(body.price.as_ref())?;
    let settings = gatehouse_billing::settings().await?;
    let limited = settings
        .plans
        .all()
        .iter()
        .any(|plan| plan.quotas.iter().any(|q| q.meter == body.key));
    if limited && !body.aggregation.is_additive() {
        return Err(Problem::new(ErrorCode::ValidationFailed)
            .detail("the request body has invalid fields")
            .errors(vec![FieldError::new(
                "/aggregation",
                "plan_limited_meter",
                "this deployment's plans set quotas on a meter with this key: it must count or sum",
            )]));
    }
    // The meter and the quota its org's plan sets on it come together.
    let org = tenant.org_id().to_string();
    let making = async {
        let inserted = tenant
            .exec(
                "INSERT INTO meters (org_id, meter_key, event_type, aggregation, value_path, group_by, created_by, created_at, price)
                 VALUES (?1, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                vec![
                    db::text(&body.key),
                    db::text(&body.event_type),
                    db::text(body.aggregation.as_str()),
                    db::opt_text(body.value_path.clone()),
                    db::text(group_by),
                    db::text(caller::actor_id(&caller)),
                    db::int(unix_now()),
                    db::opt_text(price),
                ],
            )
            .await?;
        if inserted == 0 {
            return Err(Problem::new(ErrorCode::Conflict)
                .detail("the org has a meter with this key")
                .errors(vec![FieldError::new("/key", "taken", "the key is taken")]));
        }
        gatehouse_billing::plan_quotas::sync(&caller.conn, &org, unix_now()).await
    };
    db::transaction(&caller.conn, making).await?;
    let meter = store::meter(&tenant, &body.key)
        .await?
        .ok_or_else(no_meter)?;
    Ok(response::json(201, &meter, request_id))
}

/// A price as stored: its canonical JSON. The body was validated, so a
/// price that does not check here is a fault of this code.
fn stored_price(body: Option<&crate::price::PriceBody>) -> Result<Option<String>, Problem> {
    body.map(|b| {
        Price::from_body(b, "/price")
            .map(|p| p.to_stored())
            .map_err(|_| Problem::internal())
    })
    .transpose()
}

/// `PATCH /v1/meters/{key}`: `{"price": {...}}` sets the price,
/// `{"price": null}` clears it.
pub async fn update(req: Request, key: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = caller::admin(&req, WHAT).await?;
    let tenant = caller.tenant()?;
    let body: MeterPatch = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let price = stored_price(body.price.flatten().as_ref())?;
    let changed = tenant
        .exec(
            "UPDATE meters SET price = ?2 WHERE org_id = ?1 AND meter_key = ?3",
            vec![db::opt_text(price), db::text(key)],
        )
        .await?;
    if changed == 0 {
        return Err(no_meter());
    }
    let meter = store::meter(&tenant, key).await?.ok_or_else(no_meter)?;
    Ok(response::json(200, &meter, request_id))
}

/// `GET /v1/meters`: by key.
pub async fn list(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = caller::admin(&req, WHAT).await?;
    let tenant = caller.tenant()?;
    let page = PageRequest::from_query(req.uri().query())?;
    let after = page.cursor.clone().unwrap_or_default();
    let rows = tenant
        .query(
            &format!(
                "SELECT {METER_COLUMNS} FROM meters WHERE org_id = ?1 AND meter_key > ?2
                 ORDER BY meter_key LIMIT ?3"
            ),
            vec![db::text(after), db::int(i64::from(page.fetch_count()))],
        )
        .await?;
    let meters = rows.iter().map(meter_of).collect();
    let page = page.page(meters, |m| m.key.clone());
    Ok(response::json(200, &page, request_id))
}

/// `GET /v1/meters/{key}`.
pub async fn get(req: Request, key: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = caller::admin(&req, WHAT).await?;
    let tenant = caller.tenant()?;
    let meter = store::meter(&tenant, key).await?.ok_or_else(no_meter)?;
    Ok(response::json(200, &meter, request_id))
}

/// `DELETE /v1/meters/{key}`: refused while a quota counts the meter;
/// its events stay.
pub async fn delete(req: Request, key: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = caller::admin(&req, WHAT).await?;
    let tenant = caller.tenant()?;
    store::meter(&tenant, key).await?.ok_or_else(no_meter)?;
    let quotas = tenant
        .query(
            "SELECT quota_id FROM quotas WHERE org_id = ?1 AND meter_key = ?2 LIMIT 1",
            vec![db::text(key)],
        )
        .await?;
    if !quotas.is_empty() {
        return Err(
            Problem::new(ErrorCode::Conflict).detail("quotas count this meter: delete them first")
        );
    }
    tenant
        .exec(
            "DELETE FROM meters WHERE org_id = ?1 AND meter_key = ?2",
            vec![db::text(key)],
        )
        .await?;
    Ok(response::no_content(request_id))
}
