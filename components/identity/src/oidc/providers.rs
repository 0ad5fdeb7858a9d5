//! `/v1/oidc/providers`: an org's providers, read by its members and
//! changed by its admins. A provider is saved only with an issuer the
//! deployment may call (see `gatehouse_auth::oidc::policy`): anything else
//! is a `422` naming the setting that refuses it, not a `503` on every
//! sign-in later. What does not stop a save is told in `warnings`.

use gatehouse_auth::caller::OrgCaller;
use gatehouse_auth::oidc::{self, OutboundPolicy};
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::json;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, idempotency::unix_now, response};
use serde::Serialize;
use spin_sdk::http::Request;
use std::collections::BTreeMap;

use super::fields::Fields;
use super::warnings::{self, Warning};
use super::{Stored, client_secret_of, json_text, load, redirect_uri};
use crate::db;

/// A provider as the API shows it.
#[derive(Serialize)]
struct View {
    id: String,
    name: String,
    issuer: String,
    client_id: String,
    has_client_secret: bool,
    scopes: String,
    audiences: Vec<String>,
    allowed_azp: Vec<String>,
    tenant_id: Option<String>,
    role_claim: String,
    role_map: BTreeMap<String, String>,
    require_at_jwt_typ: bool,
    /// Register this at the provider as the app's redirect URI.
    redirect_uri: String,
    /// Where a browser starts signing in.
    login_url: String,
    created_at: i64,
    updated_at: i64,
    /// What is wrong with it that did not stop it from being saved.
    warnings: Vec<Warning>,
}

async fn view(stored: Stored, warnings: Vec<Warning>) -> View {
    let base = crate::config::public_base_url().await;
    let p = stored.provider;
    View {
        redirect_uri: redirect_uri(&base, &p.provider_id),
        login_url: format!("{base}/v1/oidc/{}/start", p.provider_id),
        id: p.provider_id,
        name: p.name,
        issuer: p.issuer,
        client_id: p.client_id,
        has_client_secret: stored.client_secret.is_some(),
        scopes: stored.scopes,
        audiences: p.audiences,
        allowed_azp: p.allowed_azp,
        tenant_id: p.tenant_id,
        role_claim: p.role_claim,
        role_map: p.role_map,
        require_at_jwt_typ: p.require_at_jwt_typ,
        created_at: stored.created_at,
        updated_at: stored.updated_at,
        warnings,
    }
}

/// Refuses an issuer the deployment does not call, naming why (the
/// outbound rule, or the kind of host) in the problem and at `/issuer`.
fn admit(issuer: &str, policy: &OutboundPolicy) -> Result<(), Problem> {
    policy.check(issuer).map_err(|why| {
        let message = format!("this deployment does not call the issuer: {why}");
        Problem::new(ErrorCode::ValidationFailed)
            .detail(message.clone())
            .errors(vec![FieldError::new("/issuer", "not_allowed", message)])
    })
}

/// A saved provider with what its save found wrong.
async fn saved(tenant: &Tenant<'_>, name: &str, policy: &OutboundPolicy) -> Result<View, Problem> {
    let stored = load(tenant, name).await?;
    let warnings = warnings::on_save(&stored.provider, policy).await;
    Ok(view(stored, warnings).await)
}

/// `POST /v1/oidc/providers`.
pub async fn create(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    caller.require_admin("identity providers")?;
    let tenant = caller.tenant()?;
    let body: Fields = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let mut missing = Vec::new();
    for (field, present) in [
        ("/name", body.name.is_some()),
        ("/issuer", body.issuer.is_some()),
        ("/client_id", body.client_id.is_some()),
    ] {
        if !present {
            missing.push(FieldError::new(field, "required", "this field is required"));
        }
    }
    if !missing.is_empty() {
        return Err(crate::problems::invalid_fields(missing));
    }
    let policy = oidc::policy().await;
    let issuer = body.issuer.unwrap_or_default();
    admit(&issuer, &policy)?;
    let provider_id = db::new_id("idp_");
    let now = unix_now();
    let secret = match body.client_secret.as_deref().filter(|s| !s.is_empty()) {
        Some(secret) => {
            let binding = client_secret_of(tenant.org_id(), &provider_id);
            Some(
                gatehouse_secrets::sealing::seal(&caller.conn, &binding, secret.as_bytes(), now)
                    .await?,
            )
        }
        None => None,
    };
    let name = body.name.unwrap_or_default();
    let inserted = tenant
        .exec(
            "INSERT INTO oidc_providers (org_id, provider_id, name, issuer, client_id, client_secret, scopes, audiences, allowed_azp, tenant_id, role_claim, role_map, require_at_jwt_typ, created_at, updated_at)
             VALUES (?1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            vec![
                db::text(&provider_id),
                db::text(&name),
                db::text(issuer),
                db::text(body.client_id.unwrap_or_default()),
                db::opt_text(secret),
                db::text(body.scopes.unwrap_or_else(|| "openid email profile".into())),
                db::text(json_text(&body.audiences.unwrap_or_default())?),
                db::text(json_text(&body.allowed_azp.unwrap_or_default())?),
                db::opt_text(body.tenant_id.flatten()),
                db::text(body.role_claim.unwrap_or_else(|| "roles".into())),
                db::text(json_text(&body.role_map.unwrap_or_default())?),
                db::int(i64::from(body.require_at_jwt_typ.unwrap_or(false))),
                db::int(now),
                db::int(now),
            ],
        )
        .await?;
    if inserted == 0 {
        return Err(
            Problem::new(ErrorCode::Conflict).detail("an identity provider with this name exists")
        );
    }
    let answer = saved(&tenant, &name, &policy).await?;
    Ok(response::json(201, &answer, request_id))
}

/// `GET /v1/oidc/providers`.
pub async fn list(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    let tenant = caller.tenant()?;
    let rows = tenant
        .query(
            &format!(
                "SELECT {} FROM oidc_providers WHERE org_id = ?1 ORDER BY name",
                super::columns()
            ),
            vec![],
        )
        .await?;
    let policy = oidc::policy().await;
    let mut items = Vec::new();
    for row in &rows {
        let stored = super::stored_from(row);
        let warnings = warnings::of_configuration(&stored.provider, &policy);
        items.push(view(stored, warnings).await);
    }
    Ok(response::json(
        200,
        &serde_json::json!({ "items": items }),
        request_id,
    ))
}

/// `GET /v1/oidc/providers/{name}`.
pub async fn get(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    let tenant = caller.tenant()?;
    let stored = load(&tenant, name).await?;
    let warnings = warnings::of_configuration(&stored.provider, &oidc::policy().await);
    Ok(response::json(
        200,
        &view(stored, warnings).await,
        request_id,
    ))
}

/// `PATCH /v1/oidc/providers/{name}`. The issuer is checked whether or
/// not the patch changes it: a provider is saved only as one the
/// deployment can call.
pub async fn update(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    caller.require_admin("identity providers")?;
    let tenant = caller.tenant()?;
    let current = load(&tenant, name).await?;
    let body: Fields = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let p = current.provider;
    let issuer = body.issuer.unwrap_or_else(|| p.issuer.clone());
    let policy = oidc::policy().await;
    admit(&issuer, &policy)?;
    let changes_identity =
        issuer != p.issuer || body.client_id.as_ref().is_some_and(|c| *c != p.client_id);
    let p_id = p.provider_id.clone();
    let secret = match body.client_secret.as_deref() {
        None => current.client_secret,
        Some("") => None,
        Some(secret) => {
            let binding = client_secret_of(tenant.org_id(), &p.provider_id);
            let sealed = gatehouse_secrets::sealing::seal(
                &caller.conn,
                &binding,
                secret.as_bytes(),
                unix_now(),
            );
            Some(sealed.await?)
        }
    };
    let new_name = body.name.unwrap_or(p.name);
    let require_at_jwt_typ = body.require_at_jwt_typ.unwrap_or(p.require_at_jwt_typ);
    let changed = tenant
        .exec(
            "UPDATE oidc_providers SET name = ?2, issuer = ?3, client_id = ?4, client_secret = ?5, scopes = ?6, audiences = ?7, allowed_azp = ?8, tenant_id = ?9, role_claim = ?10, role_map = ?11, require_at_jwt_typ = ?12, updated_at = ?13
             WHERE org_id = ?1 AND provider_id = ?14 AND NOT EXISTS (SELECT 1 FROM oidc_providers o WHERE o.org_id = ?1 AND o.name = ?2 AND o.provider_id <> ?14)",
            vec![
                db::text(&new_name),
                db::text(issuer),
                db::text(body.client_id.unwrap_or(p.client_id)),
                db::opt_text(secret),
                db::text(body.scopes.unwrap_or(current.scopes)),
                db::text(json_text(&body.audiences.unwrap_or(p.audiences))?),
                db::text(json_text(&body.allowed_azp.unwrap_or(p.allowed_azp))?),
                db::opt_text(body.tenant_id.unwrap_or(p.tenant_id)),
                db::text(body.role_claim.unwrap_or(p.role_claim)),
                db::text(json_text(&body.role_map.unwrap_or(p.role_map))?),
                db::int(i64::from(require_at_jwt_typ)),
                db::int(unix_now()),
                db::text(&p.provider_id),
            ],
        )
        .await?;
    if changed == 0 {
        return Err(
            Problem::new(ErrorCode::Conflict).detail("an identity provider with this name exists")
        );
    }
    // Pointed at another issuer or client, the provider's subjects are
    // someone else's: the links made so far go.
    if changes_identity {
        tenant
            .exec(
                "DELETE FROM oidc_identities WHERE org_id = ?1 AND provider_id = ?",
                vec![db::text(&p_id)],
            )
            .await?;
    }
    let answer = saved(&tenant, &new_name, &policy).await?;
    Ok(response::json(200, &answer, request_id))
}

/// `DELETE /v1/oidc/providers/{name}`: its links and sign-ins in flight
/// go with it; its bearer tokens stop at once. Roles it granted stay.
pub async fn delete(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    caller.require_admin("identity providers")?;
    let tenant = caller.tenant()?;
    let stored = load(&tenant, name).await?;
    for sql in [
        "DELETE FROM oidc_logins WHERE org_id = ?1 AND provider_id = ?",
        "DELETE FROM oidc_identities WHERE org_id = ?1 AND provider_id = ?",
        "DELETE FROM oidc_providers WHERE org_id = ?1 AND provider_id = ?",
    ] {
        tenant
            .exec(sql, vec![db::text(&stored.provider.provider_id)])
            .await?;
    }
    Ok(response::no_content(request_id))
}
