//! `POST`/`GET /v1/quotas`, `GET`/`PATCH`/`DELETE /v1/quotas/{id}` and a
//! quota's overrides (`POST`/`GET /v1/quotas/{id}/overrides`, `DELETE
//! /v1/quotas/{id}/overrides/{override}`).
//!
//! The org's admins manage every quota. A team admin (a member of a team
//! holding [`MANAGE_TEAM`](crate::caller::MANAGE_TEAM)) manages the quotas
//! of that team, the teams below it and their members other than itself,
//! within the org's: a limit (or an override's) may not exceed any
//! org-wide quota on the same measure, period and items, and a quota an
//! org admin set is the org admins' to change, override or delete. Another
//! org's quotas are not found.

use gatehouse_auth::caller::OrgCaller;
use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::json;
use gatehouse_http::pagination::PageRequest;
use gatehouse_http::{ErrorCode, Problem, Response, response};
use serde::Serialize;
use spin_sdk::http::Request;
use spin_sdk::sqlite::{RowResult, Value};

use crate::caller;
use crate::check::invalid;
use crate::model::{
    CreateOverride, CreateQuota, Enforcement, Measure, PatchQuota, Quota, parse_limit, show_amount,
};
use crate::period::{Period, parse_rfc3339};
use crate::store;
use crate::subject::{self, Kind, Subject};

/// The columns [`quota_of`] reads.
pub const QUOTA_COLUMNS: &str = "quota_id, entity_type, entity_id, meter_key, currency, item_type, item_id, limit_units, period, window_seconds, enforcement, thresholds, created_at, updated_at, managed_by";
/// [`QUOTA_COLUMNS`] of the table aliased `q`.
pub const QUOTA_COLUMNS_Q: &str = "q.quota_id, q.entity_type, q.entity_id, q.meter_key, q.currency, q.item_type, q.item_id, q.limit_units, q.period, q.window_seconds, q.enforcement, q.thresholds, q.created_at, q.updated_at, q.managed_by";

/// A quota from a row starting with [`QUOTA_COLUMNS`].
pub fn quota_of(row: &RowResult) -> Quota {
    let measure = match (db::get_opt_text(row, 3), db::get_opt_text(row, 4)) {
        (Some(key), _) => Measure::Meter(key),
        // The table's CHECK holds exactly one of the two.
        (None, currency) => Measure::Spend(currency.unwrap_or_default()),
    };
    Quota {
        id: db::get_text(row, 0),
        entity: format!("{}:{}", db::get_text(row, 1), db::get_text(row, 2)),
        measure,
        item_type: db::get_opt_text(row, 5),
        item_id: db::get_opt_text(row, 6),
        limit: db::get_int(row, 7).unwrap_or_default(),
        // The columns' CHECKs admit only known periods.
        period: Period::parse(&db::get_text(row, 8), db::get_int(row, 9))
            .unwrap_or(Period::Lifetime),
        enforcement: Enforcement::parse(&db::get_text(row, 10)),
        thresholds: db::get_json(row, 11).unwrap_or_else(|| serde_json::json!([])),
        created_at: db::get_int(row, 12).unwrap_or_default(),
        updated_at: db::get_int(row, 13).unwrap_or_default(),
        managed_by: db::get_opt_text(row, 14),
    }
}

fn no_quota() -> Problem {
    Problem::not_found().detail("no such quota")
}

/// Whom a caller manages quotas for.
enum Scope {
    /// An admin: the whole org.
    Org,
    /// A team admin: these teams and members (never itself).
    Teams {
        teams: Vec<String>,
        users: Vec<String>,
    },
}

impl Scope {
    fn covers(&self, entity: &Subject) -> bool {
        match self {
            Scope::Org => true,
            Scope::Teams { teams, users } => match entity.kind {
                Kind::Team => teams.contains(&entity.id),
                Kind::User => users.contains(&entity.id),
                _ => false,
            },
        }
    }
}

/// The caller and whom it manages: an admin, or a team admin over the
/// teams it is in (with those below) and their members; 403 otherwise.
async fn manager(req: &Request) -> Result<(OrgCaller, Scope), Problem> {
    let caller = OrgCaller::of(req).await?;
    if caller.principal.is_org_admin() {
        return Ok((caller, Scope::Org));
    }
    let own = &caller.principal.team_ids;
    if !caller.principal.has_permission(caller::MANAGE_TEAM) || own.is_empty() {
        return Err(Problem::new(ErrorCode::Forbidden).detail(format!(
            "this needs an admin of the organization, or a team member holding {}",
            caller::MANAGE_TEAM
        )));
    }
    let tenant = caller.tenant()?;
    let rows = tenant
        .query(
            "WITH RECURSIVE down(team_id) AS (
                 SELECT team_id FROM teams WHERE org_id = ?1 AND team_id IN (SELECT value FROM json_each(?2))
                 UNION
                 SELECT t.team_id FROM teams t JOIN down ON t.parent_team_id = down.team_id WHERE t.org_id = ?1)
             SELECT 'team', team_id FROM down
             UNION
             SELECT 'user', user_id FROM team_members
             WHERE org_id = ?1 AND team_id IN (SELECT team_id FROM down)",
            vec![db::text(serde_json::to_string(own).unwrap_or_default())],
        )
        .await?;
    let (mut teams, mut users) = (Vec::new(), Vec::new());
    for row in &rows {
        let id = db::get_text(row, 1);
        if db::get_text(row, 0) == "team" {
            teams.push(id);
        } else {
            users.push(id);
        }
    }
    // A team admin's own quotas are set above it.
    let me = tenant.actor().user_id.clone();
    users.retain(|u| *u != me);
    drop(tenant);
    Ok((caller, Scope::Teams { teams, users }))
}

fn entity_of(quota: &Quota) -> Option<Subject> {
    subject::parse(&quota.entity)
}

/// The org's quota `id`, if the scope covers it; not found otherwise.
async fn load(tenant: &Tenant<'_>, scope: &Scope, id: &str) -> Result<Quota, Problem> {
    let rows = tenant
        .query(
            &format!("SELECT {QUOTA_COLUMNS} FROM quotas WHERE org_id = ?1 AND quota_id = ?2"),
            vec![db::text(id)],
        )
        .await?;
    rows.first()
        .map(quota_of)
        .filter(|q| entity_of(q).is_some_and(|e| scope.covers(&e)))
        .ok_or_else(no_quota)
}

/// 409 for a quota the org's plan sets: billing keeps it in line with
/// the plan; an override lowers its limit for a while.
fn not_the_plans(quota: &Quota) -> Result<(), Problem> {
    if quota.managed_by.is_some() {
        return Err(Problem::new(ErrorCode::Conflict).detail(
            "the organization's plan sets this quota: an override (POST …/overrides) may lower its limit until the override expires",
        ));
    }
    Ok(())
}

/// 403 when a team admin would change a quota an org admin set.
async fn changeable(tenant: &Tenant<'_>, scope: &Scope, id: &str) -> Result<(), Problem> {
    if matches!(scope, Scope::Org) {
        return Ok(());
    }
    let set_by_admin = tenant
        .query(
            "SELECT 1 FROM quotas q JOIN memberships m ON m.org_id = q.org_id AND m.user_id = q.created_by
             WHERE q.org_id = ?1 AND q.quota_id = ?2 AND m.role = 'admin'",
            vec![db::text(id)],
        )
        .await?;
    if set_by_admin.is_empty() {
        Ok(())
    } else {
        Err(Problem::new(ErrorCode::Forbidden)
            .detail("an org admin set this quota: only an org admin changes it"))
    }
}

/// 422 when a team admin's `limit` passes an org-wide quota on the same
/// measure, period and items.
async fn within_org(
    tenant: &Tenant<'_>,
    scope: &Scope,
    quota: &Quota,
    limit: i64,
) -> Result<(), Problem> {
    if matches!(scope, Scope::Org) {
        return Ok(());
    }
    let (meter, currency) = match &quota.measure {
        Measure::Meter(key) => (db::text(key), Value::Null),
        Measure::Spend(currency) => (Value::Null, db::text(currency)),
    };
    let rows = tenant
        .query(
            "SELECT MIN(limit_units) FROM quotas
             WHERE org_id = ?1 AND entity_type = 'org' AND (meter_key = ?2 OR currency = ?3)
               AND period = ?4 AND COALESCE(window_seconds, 0) = ?5
               AND (item_type IS NULL OR (item_type = ?6 AND (item_id IS NULL OR item_id = ?7)))",
            vec![
                meter,
                currency,
                db::text(quota.period.as_str()),
                db::int(quota.period.window_seconds().unwrap_or(0)),
                quota.item_type.as_deref().map_or(Value::Null, db::text),
                quota.item_id.as_deref().map_or(Value::Null, db::text),
            ],
        )
        .await?;
    match rows.first().and_then(|r| db::get_int(r, 0)) {
        Some(org_limit) if limit > org_limit => Err(invalid(
            "/limit",
            "exceeds_org_quota",
            &format!(
                "the org allows at most {} on this measure and period",
                show_amount(&quota.measure, org_limit)
            ),
        )),
        _ => Ok(()),
    }
}

/// `POST /v1/quotas`.
pub async fn create(req: Request, request_id: &str) -> Result<Response, Problem> {
    let (caller, scope) = manager(&req).await?;
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
    if !scope.covers(&entity) {
        return Err(Problem::new(ErrorCode::Forbidden)
            .detail("a team admin sets quotas for its teams and their members only"));
    }
    let measure = body.measure();
    if let Measure::Meter(key) = &measure {
        let meter = store::meter(&tenant, key).await?.ok_or_else(|| {
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
    }
    let now = unix_now();
    let quota = Quota {
        id: db::new_id("quo_"),
        entity: format!("{}:{}", entity.kind.as_str(), entity.id),
        measure,
        item_type: body.item_type.clone(),
        item_id: body.item_id.clone(),
        limit: parse_limit(&body.measure(), &body.limit).unwrap_or_default(),
        period: body.period(),
        enforcement: body.enforcement,
        thresholds: body.thresholds.clone(),
        created_at: now,
        updated_at: now,
        managed_by: None,
    };
    within_org(&tenant, &scope, &quota, quota.limit).await?;
    let (meter, currency) = match &quota.measure {
        Measure::Meter(key) => (db::text(key), Value::Null),
        Measure::Spend(currency) => (Value::Null, db::text(currency)),
    };
    tenant
        .exec(
            "INSERT INTO quotas (org_id, quota_id, entity_type, entity_id, meter_key, currency, item_type, item_id,
                                 limit_units, period, window_seconds, enforcement, thresholds, created_by, created_at, updated_at)
             VALUES (?1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                db::text(&quota.id),
                db::text(entity.kind.as_str()),
                db::text(&entity.id),
                meter,
                currency,
                quota.item_type.as_deref().map_or(Value::Null, db::text),
                quota.item_id.as_deref().map_or(Value::Null, db::text),
                db::int(quota.limit),
                db::text(quota.period.as_str()),
                quota.period.window_seconds().map_or(Value::Null, db::int),
                db::text(quota.enforcement.as_str()),
                db::text(quota.thresholds.to_string()),
                db::text(caller::actor_id(&caller)),
                db::int(now),
                db::int(now),
            ],
        )
        .await?;
    Ok(response::json(201, &quota, request_id))
}

/// `GET /v1/quotas`: by id; a team admin sees those it manages.
pub async fn list(req: Request, request_id: &str) -> Result<Response, Problem> {
    let (caller, scope) = manager(&req).await?;
    let tenant = caller.tenant()?;
    let page = PageRequest::from_query(req.uri().query())?;
    let after = page.cursor.clone().unwrap_or_default();
    let (all, teams, users) = match &scope {
        Scope::Org => (1, String::from("[]"), String::from("[]")),
        Scope::Teams { teams, users } => (
            0,
            serde_json::to_string(teams).unwrap_or_default(),
            serde_json::to_string(users).unwrap_or_default(),
        ),
    };
    let rows = tenant
        .query(
            &format!(
                "SELECT {QUOTA_COLUMNS} FROM quotas WHERE org_id = ?1 AND quota_id > ?2
                 AND (?4 = 1
                      OR (entity_type = 'team' AND entity_id IN (SELECT value FROM json_each(?5)))
                      OR (entity_type = 'user' AND entity_id IN (SELECT value FROM json_each(?6))))
                 ORDER BY quota_id LIMIT ?3"
            ),
            vec![
                db::text(after),
                db::int(i64::from(page.fetch_count())),
                db::int(all),
                db::text(teams),
                db::text(users),
            ],
        )
        .await?;
    let quotas = rows.iter().map(quota_of).collect();
    let page = page.page(quotas, |q: &Quota| q.id.clone());
    Ok(response::json(200, &page, request_id))
}

/// `GET /v1/quotas/{id}`.
pub async fn get(req: Request, id: &str, request_id: &str) -> Result<Response, Problem> {
    let (caller, scope) = manager(&req).await?;
    let tenant = caller.tenant()?;
    let quota = load(&tenant, &scope, id).await?;
    Ok(response::json(200, &quota, request_id))
}

/// `PATCH /v1/quotas/{id}`: its limit, enforcement or thresholds.
pub async fn patch(req: Request, id: &str, request_id: &str) -> Result<Response, Problem> {
    let (caller, scope) = manager(&req).await?;
    let tenant = caller.tenant()?;
    let body: PatchQuota = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let mut quota = load(&tenant, &scope, id).await?;
    not_the_plans(&quota)?;
    changeable(&tenant, &scope, id).await?;
    if let Some(limit) = &body.limit {
        quota.limit = parse_limit(&quota.measure, limit).ok_or_else(|| {
            invalid(
                "/limit",
                "invalid_range",
                "limit must be a whole number of units, or for spend a decimal string",
            )
        })?;
        within_org(&tenant, &scope, &quota, quota.limit).await?;
    }
    if let Some(enforcement) = body.enforcement {
        quota.enforcement = enforcement;
    }
    if let Some(thresholds) = &body.thresholds {
        quota.thresholds = thresholds.clone();
    }
    quota.updated_at = unix_now();
    tenant
        .exec(
            "UPDATE quotas SET limit_units = ?2, enforcement = ?3, thresholds = ?4, updated_at = ?5
             WHERE org_id = ?1 AND quota_id = ?6",
            vec![
                db::int(quota.limit),
                db::text(quota.enforcement.as_str()),
                db::text(quota.thresholds.to_string()),
                db::int(quota.updated_at),
                db::text(&quota.id),
            ],
        )
        .await?;
    Ok(response::json(200, &quota, request_id))
}

/// `DELETE /v1/quotas/{id}`: the quota, its counters, overrides and the
/// holds on it. Deleted one by one: a host may run SQLite without
/// foreign-key enforcement, so cascades are not relied on.
pub async fn delete(req: Request, id: &str, request_id: &str) -> Result<Response, Problem> {
    let (caller, scope) = manager(&req).await?;
    let tenant = caller.tenant()?;
    not_the_plans(&load(&tenant, &scope, id).await?)?;
    changeable(&tenant, &scope, id).await?;
    // Open reservations keep holding against the meter's other quotas.
    for table in ["quota_holds", "quota_counters", "quota_overrides", "quotas"] {
        tenant
            .exec(
                &format!("DELETE FROM {table} WHERE org_id = ?1 AND quota_id = ?2"),
                vec![db::text(id)],
            )
            .await?;
    }
    Ok(response::no_content(request_id))
}

/// An override as shown.
#[derive(Serialize)]
struct Override {
    id: String,
    quota_id: String,
    limit: serde_json::Value,
    reason: Option<String>,
    expires_at: i64,
    active: bool,
    created_at: i64,
}

const OVERRIDE_COLUMNS: &str = "override_id, quota_id, limit_units, reason, expires_at, created_at";

fn override_of(row: &RowResult, measure: &Measure, now: i64) -> Override {
    let expires_at = db::get_int(row, 4).unwrap_or_default();
    Override {
        id: db::get_text(row, 0),
        quota_id: db::get_text(row, 1),
        limit: show_amount(measure, db::get_int(row, 2).unwrap_or_default()),
        reason: db::get_opt_text(row, 3),
        expires_at,
        active: expires_at > now,
        created_at: db::get_int(row, 5).unwrap_or_default(),
    }
}

/// `POST /v1/quotas/{id}/overrides`: from now until it expires, the
/// quota's limit is the override's (the newest one's, if several run).
pub async fn create_override(
    req: Request,
    id: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let (caller, scope) = manager(&req).await?;
    let tenant = caller.tenant()?;
    let body: CreateOverride = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let quota = load(&tenant, &scope, id).await?;
    changeable(&tenant, &scope, id).await?;
    let limit = parse_limit(&quota.measure, &body.limit).ok_or_else(|| {
        invalid(
            "/limit",
            "invalid_range",
            "limit must be a whole number of units, or for spend a decimal string",
        )
    })?;
    within_org(&tenant, &scope, &quota, limit).await?;
    // The org's plan is what it pays for: its admins may hold a plan's
    // quota lower for a while, never above what the plan sets.
    if quota.managed_by.is_some() && limit > quota.limit {
        return Err(invalid(
            "/limit",
            "exceeds_plan_limit",
            &format!(
                "the organization's plan sets this quota to {}: an override may only lower it",
                show_amount(&quota.measure, quota.limit)
            ),
        ));
    }
    let now = unix_now();
    let expires_at = match (&body.expires_at, body.ttl_seconds) {
        (Some(at), _) => parse_rfc3339(at).unwrap_or(now),
        (None, ttl) => now + ttl.unwrap_or(0),
    };
    if expires_at <= now || expires_at > now + crate::model::MAX_OVERRIDE_SECONDS {
        return Err(invalid(
            "/expires_at",
            "invalid_range",
            "an override must expire after now and within a year",
        ));
    }
    let override_id = db::new_id("qov_");
    tenant
        .exec(
            "INSERT INTO quota_overrides (org_id, override_id, quota_id, limit_units, reason, expires_at, created_by, created_at)
             VALUES (?1, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                db::text(&override_id),
                db::text(&quota.id),
                db::int(limit),
                body.reason.as_deref().map_or(Value::Null, db::text),
                db::int(expires_at),
                db::text(caller::actor_id(&caller)),
                db::int(now),
            ],
        )
        .await?;
    let shown = Override {
        id: override_id,
        quota_id: quota.id,
        limit: show_amount(&quota.measure, limit),
        reason: body.reason,
        expires_at,
        active: true,
        created_at: now,
    };
    Ok(response::json(201, &shown, request_id))
}

/// `GET /v1/quotas/{id}/overrides`: newest first, expired ones too.
pub async fn list_overrides(req: Request, id: &str, request_id: &str) -> Result<Response, Problem> {
    let (caller, scope) = manager(&req).await?;
    let tenant = caller.tenant()?;
    let quota = load(&tenant, &scope, id).await?;
    let rows = tenant
        .query(
            &format!(
                "SELECT {OVERRIDE_COLUMNS} FROM quota_overrides WHERE org_id = ?1 AND quota_id = ?2
                 ORDER BY created_at DESC, override_id DESC LIMIT 100"
            ),
            vec![db::text(&quota.id)],
        )
        .await?;
    let now = unix_now();
    let items: Vec<Override> = rows
        .iter()
        .map(|r| override_of(r, &quota.measure, now))
        .collect();
    Ok(response::json(
        200,
        &serde_json::json!({ "items": items }),
        request_id,
    ))
}

/// `DELETE /v1/quotas/{id}/overrides/{override}`: the quota's own limit
/// (or an older override's) applies again at once.
pub async fn delete_override(
    req: Request,
    id: &str,
    override_id: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let (caller, scope) = manager(&req).await?;
    let tenant = caller.tenant()?;
    let quota = load(&tenant, &scope, id).await?;
    changeable(&tenant, &scope, id).await?;
    let deleted = tenant
        .exec(
            "DELETE FROM quota_overrides WHERE org_id = ?1 AND quota_id = ?2 AND override_id = ?3",
            vec![db::text(&quota.id), db::text(override_id)],
        )
        .await?;
    if deleted == 0 {
        return Err(Problem::not_found().detail("no such override"));
    }
    Ok(response::no_content(request_id))
}
