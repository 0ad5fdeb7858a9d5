//! Resource grants: `(service, collection, role) -> ids`, one record per
//! triple. Members read them; admins and holders of `authz:resources`
//! grant and revoke ids. Grants are not part of any cached credential:
//! checks and filters read them live.

use access_core::names::query_param;
use access_core::roles::AUTHZ_RESOURCES;
use gatehouse_auth::db;
use gatehouse_http::json::{self, Validate};
use gatehouse_http::pagination::{PageRequest, json_position};
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, idempotency::unix_now, response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use spin_sdk::http::Request;

use crate::context::Caller;
use crate::fields::{Fields, resource_segments, role_segment};
use crate::roles;

/// The most ids one request grants or revokes.
const MAX_IDS: usize = 500;

#[derive(Serialize)]
struct Record {
    service: String,
    collection: String,
    role: String,
    /// How many ids the record holds.
    count: i64,
}

#[derive(Serialize, Deserialize)]
struct RecordPosition {
    service: String,
    collection: String,
    role: String,
}

fn invalid_query(pointer: &str, message: &str) -> Problem {
    Problem::new(ErrorCode::InvalidQuery)
        .detail(message.to_string())
        .errors(vec![FieldError::new(pointer, "invalid", message)])
}

/// `GET /v1/authz/grants[?service=&collection=&role=]`: members; the
/// records, by service, collection and role, each with its id count.
pub async fn list(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let query = req.uri().query();
    let page = PageRequest::from_query(query)?;
    let after: Option<RecordPosition> = page.json_cursor()?;
    let filter = |key: &str| query_param(query, key).filter(|v| !v.is_empty());
    let (service, collection, role) = (filter("service"), filter("collection"), filter("role"));
    if role
        .as_deref()
        .is_some_and(|r| !access_core::names::valid_role_name(r))
    {
        return Err(invalid_query("/role", "role must be a role name"));
    }
    let tenant = caller.tenant()?;
    let after = after.map_or((String::new(), String::new(), String::new()), |p| {
        (p.service, p.collection, p.role)
    });
    // NULL filters match everything.
    let rows = tenant
        .query(
            "SELECT g.service, g.collection, r.name, COUNT(*) FROM resource_grants g JOIN roles r ON r.role_id = g.role_id
             WHERE g.org_id = ?1 AND (?2 IS NULL OR g.service = ?2) AND (?3 IS NULL OR g.collection = ?3) AND (?4 IS NULL OR r.name = ?4)
               AND (g.service, g.collection, r.name) > (?5, ?6, ?7)
             GROUP BY g.service, g.collection, r.name ORDER BY g.service, g.collection, r.name LIMIT ?8",
            vec![
                db::opt_text(service),
                db::opt_text(collection),
                db::opt_text(role),
                db::text(after.0),
                db::text(after.1),
                db::text(after.2),
                db::int(i64::from(page.fetch_count())),
            ],
        )
        .await?;
    let records: Vec<Record> = rows
        .iter()
        .map(|r| Record {
            service: db::get_text(r, 0),
            collection: db::get_text(r, 1),
            role: db::get_text(r, 2),
            count: db::get_int(r, 3).unwrap_or_default(),
        })
        .collect();
    let page = page.page(records, |r| {
        json_position(&RecordPosition {
            service: r.service.clone(),
            collection: r.collection.clone(),
            role: r.role.clone(),
        })
    });
    Ok(response::json(200, &page, request_id))
}

#[derive(Serialize)]
struct GrantedId {
    id: String,
    granted_at: i64,
}

/// `GET /v1/authz/grants/{service}/{collection}/{role}`: members; the
/// record's ids, in order (empty when none are granted).
pub async fn get(
    req: Request,
    path: (&str, &str, &str),
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let page = PageRequest::from_query(req.uri().query())?;
    let (service, collection, _) = resource_segments(path.0, path.1, None)?;
    let name = role_segment(path.2)?;
    let tenant = caller.tenant()?;
    let role = roles::load(&tenant, &name).await?;
    let rows = tenant
        .query(
            "SELECT resource_id, created_at FROM resource_grants
             WHERE org_id = ?1 AND service = ?2 AND collection = ?3 AND role_id = ?4 AND resource_id > ?5
             ORDER BY resource_id LIMIT ?6",
            vec![
                db::text(&service),
                db::text(&collection),
                db::text(&role.id),
                db::text(page.cursor.clone().unwrap_or_default()),
                db::int(i64::from(page.fetch_count())),
            ],
        )
        .await?;
    let ids: Vec<GrantedId> = rows
        .iter()
        .map(|r| GrantedId {
            id: db::get_text(r, 0),
            granted_at: db::get_int(r, 1).unwrap_or_default(),
        })
        .collect();
    let page = page.page(ids, |g| g.id.clone());
    let body = json!({
        "service": service,
        "collection": collection,
        "role": role.name,
        "items": page.items,
        "next_cursor": page.next_cursor,
    });
    Ok(response::json(200, &body, request_id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeGrants {
    #[serde(default)]
    grant: Vec<String>,
    #[serde(default)]
    revoke: Vec<String>,
}

impl Validate for ChangeGrants {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut fields = Fields::default();
        for (pointer, ids) in [("/grant", &self.grant), ("/revoke", &self.revoke)] {
            if ids.len() > MAX_IDS {
                fields.push(pointer, "too_many", "at most 500 ids per request");
            }
            for (i, id) in ids.iter().enumerate() {
                fields.resource_id(&format!("{pointer}/{i}"), id);
            }
        }
        if self.grant.is_empty() && self.revoke.is_empty() {
            fields.push("", "required", "name ids to grant or to revoke");
        }
        if let Some(i) = self.revoke.iter().position(|id| self.grant.contains(id)) {
            fields.push(
                &format!("/revoke/{i}"),
                "conflict",
                "an id cannot be granted and revoked at once",
            );
        }
        fields.finish()
    }
}

/// `POST /v1/authz/grants/{service}/{collection}/{role}`: admins and
/// holders of `authz:resources`; grants and revokes ids (both idempotent).
pub async fn change(
    req: Request,
    path: (&str, &str, &str),
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    caller.require_admin_or(AUTHZ_RESOURCES)?;
    let (service, collection, _) = resource_segments(path.0, path.1, None)?;
    let name = role_segment(path.2)?;
    let body: ChangeGrants = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let tenant = caller.tenant()?;
    let role = roles::load(&tenant, &name).await?;
    let ids = |list: &[String]| serde_json::to_string(list).unwrap_or_else(|_| "[]".into());
    // The role is joined so that only this org's role can take a grant.
    let granted = tenant
        .exec(
            "INSERT INTO resource_grants (org_id, service, collection, role_id, resource_id, created_at)
             SELECT ?1, ?2, ?3, r.role_id, j.value, ?5 FROM roles r, json_each(?6) j
             WHERE r.org_id = ?1 AND r.role_id = ?4
             ON CONFLICT DO NOTHING",
            vec![
                db::text(&service),
                db::text(&collection),
                db::text(&role.id),
                db::int(unix_now()),
                db::text(ids(&body.grant)),
            ],
        )
        .await?;
    let revoked = tenant
        .exec(
            "DELETE FROM resource_grants WHERE org_id = ?1 AND service = ?2 AND collection = ?3 AND role_id = ?4
             AND resource_id IN (SELECT value FROM json_each(?5))",
            vec![
                db::text(&service),
                db::text(&collection),
                db::text(&role.id),
                db::text(ids(&body.revoke)),
            ],
        )
        .await?;
    let body = json!({
        "service": service,
        "collection": collection,
        "role": role.name,
        "granted": granted,
        "revoked": revoked,
    });
    Ok(response::json(200, &body, request_id))
}
