//! `GET`/`PUT /v1/tool-settings`: where the org's runs go. Writers of
//! tools write them; members who may run tools read them. The API key's
//! secret is named, its value never shown.

use gatehouse_auth::caller::OrgCaller;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, json, response};
use gatehouse_metering::holding;
use gatehouse_secrets::scope::Scope;
use spin_sdk::http::Request;

use crate::settings::PutSettings;
use crate::{access, policy, run_store};

/// The largest settings body.
const BODY_LIMIT: usize = 16 * 1024;

/// `GET /v1/tool-settings`: 404 until they are set.
pub async fn get(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    let p = &caller.principal;
    if !(access::may_write(p) || p.has_permission(access::RUN)) {
        return Err(Problem::new(ErrorCode::Forbidden).detail(format!(
            "reading the tool settings takes the {} or {} permission, or an admin of this organization",
            access::RUN,
            access::WRITE
        )));
    }
    let tenant = caller.tenant()?;
    let settings = run_store::settings(&tenant)
        .await?
        .ok_or_else(|| Problem::not_found().detail("the organization has no tool settings"))?;
    Ok(response::json(200, &settings, request_id))
}

/// `PUT /v1/tool-settings`: `200` with the settings as stored.
pub async fn put(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    if !access::may_write(&caller.principal) {
        return Err(Problem::new(ErrorCode::Forbidden).detail(format!(
            "changing the tool settings takes an admin of this organization or the {} permission",
            access::WRITE
        )));
    }
    let body: PutSettings = json::read_unvalidated(req, BODY_LIMIT).await?;
    let errors = body.check(&policy::llm().await);
    if !errors.is_empty() {
        return Err(Problem::new(ErrorCode::ValidationFailed)
            .detail("the tool settings have invalid fields")
            .errors(errors));
    }
    // Naming the key's secret sends its value to the URL given: only who
    // may read it names it, as for tools' headers.
    if !access::may_reference(&caller.principal, &Scope::Org) {
        return Err(Problem::new(ErrorCode::Forbidden).detail(format!(
            "naming the secret {} takes the right to read it ({})",
            body.api_key_secret,
            access::SECRETS_READ
        )));
    }
    let tenant = caller.tenant()?;
    let errors = meter_errors(&tenant, &body).await?;
    if !errors.is_empty() {
        return Err(Problem::new(ErrorCode::ValidationFailed)
            .detail("the tool settings name meters the organization does not have")
            .errors(errors));
    }
    run_store::put_settings(&tenant, &body, &caller.actor_id(), unix_now()).await?;
    let settings = run_store::settings(&tenant)
        .await?
        .ok_or_else(Problem::internal)?;
    Ok(response::json(200, &settings, request_id))
}

/// The meters the settings name, each the org's and of the aggregation
/// its use takes: tokens are summed, tool calls counted.
async fn meter_errors(tenant: &Tenant<'_>, body: &PutSettings) -> Result<Vec<FieldError>, Problem> {
    let mut errors = Vec::new();
    for (pointer, key, wanted) in [
        ("/token_meter", &body.token_meter, "sum"),
        ("/tool_meter", &body.tool_meter, "count"),
    ] {
        let Some(key) = key else { continue };
        match holding::meter_aggregation(tenant, key).await? {
            None => errors.push(FieldError::new(
                pointer,
                "unknown_meter",
                "the organization has no meter with this key",
            )),
            Some(aggregation) if aggregation != wanted => errors.push(FieldError::new(
                pointer,
                "wrong_aggregation",
                format!("this meter must aggregate by {wanted}, not {aggregation}"),
            )),
            Some(_) => {}
        }
    }
    Ok(errors)
}
