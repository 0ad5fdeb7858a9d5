//! `POST`/`GET /v1/quotas`, `GET`/`DELETE /v1/quotas/{id}`: limits on the
//! org's additive meters, for the org, a team or a member, managed by the
//! org's admins.

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::json;
use gatehouse_http::pagination::PageRequest;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, response};
use spin_sdk::http::Request;
use spin_sdk::sqlite::RowResult;

use crate::caller;
use crate::model::{CreateQuota, Enforcement, Quota};
use crate::period::Period;
use crate::store;
use crate::subject;

const WHAT: &str = "quotas";

/// The columns [`quota_of`] reads.
pub const QUOTA_COLUMNS: &str =
    "quota_id, entity_type, entity_id, meter_key, limit_units, period, enforcement, created_at";

/// A quota from a row of [`QUOTA_COLUMNS`].
pub fn quota_of(row: &RowResult) -> Quota {
    Quota {
        id: db::get_text(row, 0),
        entity: format!("{}:{}", db::get_text(row, 1), db::get_text(row, 2)),
        meter: db::get_text(row, 3),
        limit: db::get_int(row, 4).unwrap_or_default(),
        // The columns' CHECKs admit only known names.
        period: Period::parse(&db::get_text(row, 5)).unwrap_or(Period::Lifetime),
        enforcement: if db::get_text(row, 6) == "soft" {
            Enforcement::Soft
        } else {
            Enforcement::Hard
        },
        created_at: db::get_int(row, 7).unwrap_or_default(),
    }
}

fn no_quota() -> Problem {
    Problem::not_found().detail("no such quota")
}

fn invalid(pointer: &str, code: &str, message: &str) -> Problem {
    Problem::new(ErrorCode::ValidationFailed)
        .detail("the request body has invalid fields")
        .errors(vec![FieldError::new(pointer, code, message)])
}

async fn load(tenant: &Tenant<'_>, id: &str) -> Result<Quota, Problem> {
    let rows = tenant
        .query(
            &format!("SELECT {QUOTA_COLUMNS} FROM quotas WHERE org_id = ?1 AND quota_id = ?2"),
            vec![db::text(id)],
        )
        .await?;
    rows.first().map(quota_of).ok_or_else(no_quota)
}

/// `POST /v1/quotas`.
pub async fn create(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = caller::admin(&req, WHAT).await?;
    let tenant = caller.tenant()?;
    let body: CreateQuota = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let entity = subject::parse_entity(&body.entity, tenant.org_id()).ok_or_else(|| {
        invalid(
            "/entity",
            "invalid_entity",
            "entity must be org, team:<id> or user:<id>",
        )
    })?;
    if !store::belongs(&tenant, &entity).await? {
        return Err(invalid(
            "/entity",
            "unknown_entity",
            "the entity is not this organization, one of its teams or one of its members",
        ));
    }
    let meter = store::meter(&tenant, &body.meter).await?.ok_or_else(|| {
        invalid(
            "/meter",
            "unknown_meter",
            "the org has no meter with this key",
        )
    })?;
    if !meter.aggregation.is_additive() {
        return Err(invalid(
            "/meter",
            "not_additive",
            "quotas count count or sum meters only",
        ));
    }
    let id = db::new_id("quo_");
    tenant
        .exec(
            "INSERT INTO quotas (org_id, quota_id, entity_type, entity_id, meter_key, limit_units, period, enforcement, created_by, created_at)
             VALUES (?1, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                db::text(&id),
                db::text(entity.kind.as_str()),
                db::text(&entity.id),
                db::text(&body.meter),
                db::int(body.limit),
                db::text(body.period.as_str()),
                db::text(body.enforcement.as_str()),
                db::text(caller::actor_id(&caller)),
                db::int(unix_now()),
            ],
        )
        .await?;
    let quota = load(&tenant, &id).await?;
    Ok(response::json(201, &quota, request_id))
}

/// `GET /v1/quotas`: by id.
pub async fn list(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = caller::admin(&req, WHAT).await?;
    let tenant = caller.tenant()?;
    let page = PageRequest::from_query(req.uri().query())?;
    let after = page.cursor.clone().unwrap_or_default();
    let rows = tenant
        .query(
            &format!(
                "SELECT {QUOTA_COLUMNS} FROM quotas WHERE org_id = ?1 AND quota_id > ?2
                 ORDER BY quota_id LIMIT ?3"
            ),
            vec![db::text(after), db::int(i64::from(page.fetch_count()))],
        )
        .await?;
    let quotas = rows.iter().map(quota_of).collect();
    let page = page.page(quotas, |q| q.id.clone());
    Ok(response::json(200, &page, request_id))
}

/// `GET /v1/quotas/{id}`.
pub async fn get(req: Request, id: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = caller::admin(&req, WHAT).await?;
    let tenant = caller.tenant()?;
    let quota = load(&tenant, id).await?;
    Ok(response::json(200, &quota, request_id))
}

/// `DELETE /v1/quotas/{id}`: the quota, its counters and the holds on it.
pub async fn delete(req: Request, id: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = caller::admin(&req, WHAT).await?;
    let tenant = caller.tenant()?;
    load(&tenant, id).await?;
    // Open reservations keep holding against the meter's other quotas.
    tenant
        .exec(
            "DELETE FROM quota_holds WHERE org_id = ?1 AND quota_id = ?2",
            vec![db::text(id)],
        )
        .await?;
    tenant
        .exec(
            "DELETE FROM quota_counters WHERE org_id = ?1 AND quota_id = ?2",
            vec![db::text(id)],
        )
        .await?;
    tenant
        .exec(
            "DELETE FROM quotas WHERE org_id = ?1 AND quota_id = ?2",
            vec![db::text(id)],
        )
        .await?;
    Ok(response::no_content(request_id))
}
