//! Orgs: create (the creator becomes admin), list the caller's, read,
//! change and delete one.

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::json::{self, Validate};
use gatehouse_http::pagination::{PageRequest, json_position};
use gatehouse_http::principal::OrgRole;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, idempotency::unix_now, response};
use identity_core::email::valid_email;
use identity_core::org::valid_handle;
use serde::{Deserialize, Serialize};
use spin_sdk::http::Request;
use spin_sdk::sqlite::RowResult;

use crate::context::{Caller, memberships_changed};
use crate::fields::{Fields, patch_field};
use crate::member_events::{self, Member, Via};
use crate::no_content;
use crate::time_zone::{DEFAULT_TIME_ZONE, check_time_zone, stored_time_zone};

/// A postal address.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    line2: Option<String>,
    city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    country: String,
}

/// How to reach the org.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    website: Option<String>,
}

fn check_name(fields: &mut Fields, name: &str) {
    fields.length("/name", name.trim(), 1, 100);
}

fn check_handle(fields: &mut Fields, handle: &str) {
    if !valid_handle(handle) {
        fields.push(
            "/handle",
            "invalid_format",
            "handle must be 3 to 40 lower-case letters, digits and single hyphens, starting with a letter",
        );
    }
}

fn check_address(fields: &mut Fields, address: &Address) {
    fields.length("/address/line1", address.line1.trim(), 1, 200);
    fields.optional_length("/address/line2", address.line2.as_deref(), 200);
    fields.length("/address/city", address.city.trim(), 1, 100);
    fields.optional_length("/address/region", address.region.as_deref(), 100);
    fields.optional_length("/address/postal_code", address.postal_code.as_deref(), 20);
    let country = &address.country;
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        fields.push(
            "/address/country",
            "invalid_format",
            "country must be an ISO 3166-1 alpha-2 code such as DE or US",
        );
    }
}

fn check_contact(fields: &mut Fields, contact: &Contact) {
    if let Some(email) = &contact.email
        && !valid_email(email)
    {
        fields.push(
            "/contact/email",
            "invalid_format",
            "email must be a valid address",
        );
    }
    fields.optional_length("/contact/phone", contact.phone.as_deref(), 40);
    if let Some(site) = &contact.website
        && (!(site.starts_with("https://") || site.starts_with("http://")) || site.len() > 200)
    {
        fields.push(
            "/contact/website",
            "invalid_format",
            "website must be an http(s) URL of at most 200 characters",
        );
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateOrg {
    name: String,
    handle: String,
    #[serde(default)]
    address: Option<Address>,
    #[serde(default)]
    contact: Option<Contact>,
    #[serde(default)]
    time_zone: Option<String>,
}

impl Validate for CreateOrg {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut fields = Fields::default();
        check_name(&mut fields, &self.name);
        check_handle(&mut fields, &self.handle);
        if let Some(a) = &self.address {
            check_address(&mut fields, a);
        }
        if let Some(c) = &self.contact {
            check_contact(&mut fields, c);
        }
        if let Some(zone) = &self.time_zone {
            check_time_zone(&mut fields, zone);
        }
        fields.finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateOrg {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    handle: Option<String>,
    #[serde(default, deserialize_with = "patch_field")]
    address: Option<Option<Address>>,
    #[serde(default, deserialize_with = "patch_field")]
    contact: Option<Option<Contact>>,
    #[serde(default)]
    time_zone: Option<String>,
    #[serde(default)]
    audit_retention_days: Option<i64>,
}

impl Validate for UpdateOrg {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut fields = Fields::default();
        if let Some(name) = &self.name {
            check_name(&mut fields, name);
        }
        if let Some(handle) = &self.handle {
            check_handle(&mut fields, handle);
        }
        if let Some(Some(a)) = &self.address {
            check_address(&mut fields, a);
        }
        if let Some(Some(c)) = &self.contact {
            check_contact(&mut fields, c);
        }
        if let Some(zone) = &self.time_zone {
            check_time_zone(&mut fields, zone);
        }
        if self.audit_retention_days.is_some_and(|days| {
            !(MIN_AUDIT_RETENTION_DAYS..=MAX_AUDIT_RETENTION_DAYS).contains(&days)
        }) {
            fields.push(
                "/audit_retention_days",
                "out_of_range",
                &format!(
                    "must be from {MIN_AUDIT_RETENTION_DAYS} to {MAX_AUDIT_RETENTION_DAYS} days"
                ),
            );
        }
        fields.finish()
    }
}

/// The shortest an org may keep its audit trail: long enough that whoever
/// holds an admin's account cannot wipe the record of what they did
/// before anyone looks.
const MIN_AUDIT_RETENTION_DAYS: i64 = 90;
/// The longest an org may keep its audit trail (ten years).
const MAX_AUDIT_RETENTION_DAYS: i64 = 3650;

/// An org as its members see it.
#[derive(Serialize)]
struct Org {
    id: String,
    handle: String,
    name: String,
    address: Option<serde_json::Value>,
    contact: Option<serde_json::Value>,
    /// The IANA zone its calendar periods (quota days, weeks, months) follow.
    time_zone: String,
    /// How many days its audit trail is kept.
    audit_retention_days: i64,
    created_by: String,
    created_at: i64,
    updated_at: i64,
    /// The caller's role in it.
    role: OrgRole,
}

const ORG_COLUMNS: &str = "org_id, handle, name, address, contact, created_by, created_at, updated_at, time_zone, audit_retention_days";

fn org_from(row: &RowResult, role: OrgRole) -> Org {
    Org {
        id: db::get_text(row, 0),
        handle: db::get_text(row, 1),
        name: db::get_text(row, 2),
        address: db::get_json(row, 3),
        contact: db::get_json(row, 4),
        time_zone: db::get_text(row, 8),
        audit_retention_days: db::get_int(row, 9).unwrap_or(365),
        created_by: db::get_text(row, 5),
        created_at: db::get_int(row, 6).unwrap_or_default(),
        updated_at: db::get_int(row, 7).unwrap_or_default(),
        role,
    }
}

fn handle_taken() -> Problem {
    Problem::new(ErrorCode::Conflict)
        .detail("this handle is taken")
        .errors(vec![FieldError::new(
            "/handle",
            "taken",
            "another organization has this handle",
        )])
}

fn to_json<T: Serialize>(value: &Option<T>) -> Option<String> {
    value.as_ref().and_then(|v| serde_json::to_string(v).ok())
}

/// `POST /v1/orgs`: the caller becomes the new org's admin.
pub async fn create(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    caller.require_person()?;
    caller
        .create_once(req, request_id, |body: CreateOrg| {
            create_org(&caller, body, request_id)
        })
        .await
}

async fn create_org(
    caller: &Caller,
    body: CreateOrg,
    request_id: &str,
) -> Result<Response, Problem> {
    let now = unix_now();
    let org_id = db::new_id("org_");
    let time_zone = stored_time_zone(body.time_zone.as_deref().unwrap_or(DEFAULT_TIME_ZONE));
    let tenant = Tenant::joining(&caller.conn, caller.user_id(), &org_id, OrgRole::Admin);
    // The org, its first admin and the event telling of them: together or
    // not at all.
    let creating = async {
        let inserted = tenant
            .exec(
                "INSERT INTO orgs (org_id, handle, name, address, contact, created_by, created_at, updated_at, time_zone)
                 VALUES (?1, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (handle) DO NOTHING",
                vec![
                    db::text(&body.handle),
                    db::text(body.name.trim()),
                    db::opt_text(to_json(&body.address)),
                    db::opt_text(to_json(&body.contact)),
                    db::text(caller.user_id()),
                    db::int(now),
                    db::int(now),
                    db::text(&time_zone),
                ],
            )
            .await?;
        if inserted == 0 {
            return Err(handle_taken());
        }
        tenant
            .exec(
                "INSERT INTO memberships (org_id, user_id, role, created_at, updated_at) VALUES (?1, ?, 'admin', ?, ?)",
                vec![db::text(caller.user_id()), db::int(now), db::int(now)],
            )
            .await?;
        let founder = Member {
            user_id: caller.user_id(),
            email: &caller.auth.user.email,
            role: OrgRole::Admin,
        };
        member_events::added(&tenant, &caller.conn, &founder, Via::OrgCreated, now).await
    };
    db::transaction(&caller.conn, creating).await?;
    memberships_changed([caller.user_id()]).await?;
    let org = read(&tenant).await?;
    Ok(response::json(201, &org, request_id))
}

async fn read(tenant: &Tenant<'_>) -> Result<Org, Problem> {
    let rows = tenant
        .query(
            &format!("SELECT {ORG_COLUMNS} FROM orgs WHERE org_id = ?1"),
            vec![],
        )
        .await?;
    rows.first()
        .map(|row| org_from(row, tenant.actor().role))
        .ok_or_else(gatehouse_auth::membership::unknown_org)
}

#[derive(Serialize, Deserialize)]
struct Position {
    created_at: i64,
    id: String,
}

/// `GET /v1/orgs`: the caller's orgs, oldest membership first.
pub async fn list(req: Request, request_id: &str) -> Result<Response, Problem> {
    let page = PageRequest::from_query(req.uri().query())?;
    let after: Option<Position> = page.json_cursor()?;
    let caller = Caller::of(&req).await?;
    if caller.auth.session_id.is_empty() {
        // An API key or a token names exactly one org.
        let org_id = caller
            .auth
            .memberships
            .first()
            .map(|m| m.org_id.clone())
            .unwrap_or_default();
        let org = read(&caller.tenant(&org_id)?).await?;
        let body = serde_json::json!({ "items": [org], "next_cursor": null });
        return Ok(response::json(200, &body, request_id));
    }
    let (after_created, after_id) =
        after.map_or((i64::MIN, String::new()), |p| (p.created_at, p.id));
    // The caller's own memberships across orgs: a user-scoped read.
    let rows = db::query(
        &caller.conn,
        &format!(
            "SELECT {}, m.role, m.created_at FROM memberships m JOIN orgs o ON o.org_id = m.org_id
             WHERE m.user_id = ? AND (m.created_at > ? OR (m.created_at = ? AND m.org_id > ?))
             ORDER BY m.created_at, m.org_id LIMIT ?",
            ORG_COLUMNS
                .split(", ")
                .map(|c| format!("o.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        vec![
            db::text(caller.user_id()),
            db::int(after_created),
            db::int(after_created),
            db::text(&after_id),
            db::int(i64::from(page.fetch_count())),
        ],
    )
    .await?;
    let items: Vec<(Org, i64)> = rows
        .iter()
        .map(|row| {
            let role = crate::members::role_from(&db::get_text(row, 10));
            (
                org_from(row, role),
                db::get_int(row, 11).unwrap_or_default(),
            )
        })
        .collect();
    let page = page.page(items, |(org, joined)| {
        json_position(&Position {
            created_at: *joined,
            id: org.id.clone(),
        })
    });
    let body = serde_json::json!({
        "items": page.items.iter().map(|(org, _)| org).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    });
    Ok(response::json(200, &body, request_id))
}

/// `GET /v1/orgs/{org}`.
pub async fn get(req: Request, org: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant(org)?;
    Ok(response::json(200, &read(&tenant).await?, request_id))
}

/// `PATCH /v1/orgs/{org}`: admins only; `null` clears address or contact.
pub async fn update(req: Request, org: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant(org)?;
    tenant.actor().require_admin()?;
    let body: UpdateOrg = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let now = unix_now();
    let current = read(&tenant).await?;
    let address = match body.address {
        Some(change) => to_json(&change),
        None => current.address.map(|v| v.to_string()),
    };
    let contact = match body.contact {
        Some(change) => to_json(&change),
        None => current.contact.map(|v| v.to_string()),
    };
    let handle_changes = body.handle.as_ref().is_some_and(|h| *h != current.handle);
    if handle_changes {
        let taken = db::query(
            &caller.conn,
            // Handles are global: whether one is free is not tenant data.
            "SELECT 1 FROM orgs WHERE handle = ?",
            vec![db::text(body.handle.clone().unwrap_or_default())],
        )
        .await?;
        if !taken.is_empty() {
            return Err(handle_taken());
        }
    }
    let changed = tenant
        .exec(
            "UPDATE orgs SET name = ?2, handle = ?3, address = ?4, contact = ?5, updated_at = ?6, time_zone = ?7,
                 audit_retention_days = COALESCE(?8, audit_retention_days) WHERE org_id = ?1",
            vec![
                db::text(body.name.as_deref().map_or(current.name.clone(), |n| n.trim().to_string())),
                db::text(body.handle.unwrap_or(current.handle)),
                db::opt_text(address),
                db::opt_text(contact),
                db::int(now),
                db::text(body.time_zone.as_deref().map_or(current.time_zone, stored_time_zone)),
                body.audit_retention_days.map_or(spin_sdk::sqlite::Value::Null, db::int),
            ],
        )
        .await;
    // Two renames racing for one handle: the unique index decides.
    if changed.is_err() && handle_changes {
        return Err(handle_taken());
    }
    changed?;
    if handle_changes {
        // Cached memberships carry the handle that X-Org may use.
        memberships_changed(crate::members::user_ids(&tenant).await?).await?;
    }
    Ok(response::json(200, &read(&tenant).await?, request_id))
}

/// Every org-owned row, children before their parents, the org last. A
/// delivery job left for a message deleted here ends without a request.
const ORG_ROWS: [&str; 53] = [
    "DELETE FROM service_key_challenges WHERE org_id = ?1",
    "DELETE FROM service_keys WHERE org_id = ?1",
    "DELETE FROM services WHERE org_id = ?1",
    "DELETE FROM api_key_windows WHERE key_id IN (SELECT key_id FROM api_keys WHERE org_id = ?1)",
    "DELETE FROM api_key_secrets WHERE org_id = ?1",
    "DELETE FROM api_keys WHERE org_id = ?1",
    "DELETE FROM role_grants WHERE org_id = ?1",
    "DELETE FROM resource_grants WHERE org_id = ?1",
    "DELETE FROM resource_owners WHERE org_id = ?1",
    "DELETE FROM policies WHERE org_id = ?1",
    "DELETE FROM roles WHERE org_id = ?1",
    "DELETE FROM team_members WHERE org_id = ?1",
    "DELETE FROM preferences WHERE org_id = ?1",
    "DELETE FROM invitations WHERE org_id = ?1",
    "DELETE FROM teams WHERE org_id = ?1",
    // Tool runs (0035): their steps, the completions they made, the
    // runs, and where they are sent.
    "DELETE FROM tool_run_steps WHERE org_id = ?1",
    "DELETE FROM completions WHERE org_id = ?1",
    "DELETE FROM tool_runs WHERE org_id = ?1",
    "DELETE FROM tool_settings WHERE org_id = ?1",
    // MCP servers (0037): they name tools.
    "DELETE FROM mcp_servers WHERE org_id = ?1",
    // Tools (0034): they name secrets, never hold them.
    "DELETE FROM tools WHERE org_id = ?1",
    // Secrets (0030): the values, then the data keys that open them (a
    // backup holding the values can no longer open them).
    "DELETE FROM secrets WHERE org_id = ?1",
    "DELETE FROM org_data_keys WHERE org_id = ?1",
    // Notifications about the org (0033), with their deliveries.
    "DELETE FROM notification_deliveries WHERE notification_id IN (SELECT notification_id FROM notifications WHERE org_id = ?1)",
    "DELETE FROM notifications WHERE org_id = ?1",
    // Billing (0025): the Stripe customer and subscription it mirrors,
    // and the usage reported to it (0027).
    "DELETE FROM billing_usage_reports WHERE org_id = ?1",
    "DELETE FROM billing_usage_cursors WHERE org_id = ?1",
    "DELETE FROM org_billing WHERE org_id = ?1",
    // Outgoing webhooks (0023) and the events they carry (0020).
    "DELETE FROM webhook_attempts WHERE org_id = ?1",
    "DELETE FROM webhook_messages WHERE org_id = ?1",
    "DELETE FROM webhook_endpoints WHERE org_id = ?1",
    "DELETE FROM org_events WHERE org_id = ?1",
    // Incoming webhooks (0022).
    "DELETE FROM webhook_events WHERE org_id = ?1",
    "DELETE FROM webhook_rejections WHERE org_id = ?1",
    "DELETE FROM webhook_sources WHERE org_id = ?1",
    // Metering (0016 to 0020): holds and counters before their quotas,
    // quotas and month totals before their meters.
    "DELETE FROM quota_alerts WHERE org_id = ?1",
    "DELETE FROM quota_holds WHERE org_id = ?1",
    "DELETE FROM quota_reservations WHERE org_id = ?1",
    "DELETE FROM quota_counters WHERE org_id = ?1",
    "DELETE FROM quota_overrides WHERE org_id = ?1",
    "DELETE FROM quotas WHERE org_id = ?1",
    "DELETE FROM spend_flags WHERE org_id = ?1",
    "DELETE FROM expenditure_rollup WHERE org_id = ?1",
    "DELETE FROM expenditure_records WHERE org_id = ?1",
    "DELETE FROM meter_month_units WHERE org_id = ?1",
    "DELETE FROM usage_events WHERE org_id = ?1",
    "DELETE FROM meters WHERE org_id = ?1",
    "DELETE FROM oidc_logins WHERE org_id = ?1",
    "DELETE FROM oidc_identities WHERE org_id = ?1",
    "DELETE FROM oidc_providers WHERE org_id = ?1",
    "DELETE FROM audit_events WHERE org_id = ?1",
    "DELETE FROM memberships WHERE org_id = ?1",
    "DELETE FROM orgs WHERE org_id = ?1",
];

/// `DELETE /v1/orgs/{org}`: admins only; removes the org and everything in
/// it, and signs every member's cached sessions out of it.
pub async fn delete(req: Request, org: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant(org)?;
    tenant.actor().require_admin()?;
    let members = crate::members::user_ids(&tenant).await?;
    let keys: Vec<String> = tenant
        .query("SELECT key_id FROM api_keys WHERE org_id = ?1", vec![])
        .await?
        .iter()
        .map(|r| db::get_text(r, 0))
        .collect();
    // Children first: deployments may run SQLite without foreign keys.
    // One transaction: an org is gone with everything in it, or not at all.
    let deleting = async {
        // Deleting the org would leave Stripe able to charge for it with
        // nobody to see or stop it here: checked in the transaction, so a
        // subscription taken meanwhile is seen.
        let subscribed = gatehouse_billing::load(&tenant)
            .await?
            .and_then(|state| state.status)
            .is_some_and(|status| gatehouse_billing::standing::open(&status));
        if subscribed {
            return Err(Problem::new(ErrorCode::Conflict).detail(
                "the organization has a subscription that can still charge: cancel it in the billing portal first",
            ));
        }
        for sql in ORG_ROWS {
            tenant.exec(sql, vec![]).await?;
        }
        Ok(())
    };
    db::transaction(&caller.conn, deleting).await?;
    memberships_changed(members).await?;
    for key in keys {
        gatehouse_auth::apikey::invalidate(&key).await?;
    }
    no_content(request_id)
}
