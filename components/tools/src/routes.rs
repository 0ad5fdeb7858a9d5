//! The handlers: authenticate, read the request, check who may do it,
//! then the store or the call.

use gatehouse_auth::caller::OrgCaller;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::json;
use gatehouse_http::pagination::PageRequest;
use gatehouse_http::{ErrorCode, Problem, Response, response};
use serde_json::json;
use spin_sdk::http::Request;

use crate::access;
use crate::definition::{self, Definition};
use crate::model::{CallTool, CreateTool, PatchTool, Tool};
use crate::spend;
use crate::{policy, store};

/// The largest body a write or a call takes.
const BODY_LIMIT: usize = 128 * 1024;

/// A tool that does not exist, is another org's, or the caller may not
/// see: one answer, so existence never leaks.
fn not_found() -> Problem {
    Problem::not_found().detail("no such tool")
}

fn may_not_write() -> Problem {
    Problem::new(ErrorCode::Forbidden).detail(format!(
        "changing tools takes an admin of this organization or the {} permission",
        access::WRITE
    ))
}

/// The caller, who must be allowed to write tools.
async fn writer(req: &Request) -> Result<OrgCaller, Problem> {
    let caller = OrgCaller::of(req).await?;
    if access::may_write(&caller.principal) {
        Ok(caller)
    } else {
        Err(may_not_write())
    }
}

/// The tool `name`, if the caller may see it.
async fn visible(caller: &OrgCaller, name: &str) -> Result<Tool, Problem> {
    if !crate::model::valid_name(name) {
        return Err(not_found());
    }
    let tenant = caller.tenant()?;
    let tool = store::find(&tenant, name).await?.ok_or_else(not_found)?;
    if access::may_see(&caller.principal, tool.permission.as_deref()) {
        Ok(tool)
    } else {
        Err(not_found())
    }
}

/// `POST /v1/tools`: `201` with the tool.
pub async fn create(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = writer(&req).await?;
    let body: CreateTool = json::read_unvalidated(req, BODY_LIMIT).await?;
    let policy = policy::tools().await;
    let mut errors = definition::check_name(&body.name);
    let checked = Definition::check(
        body.description,
        body.input_schema,
        body.kind,
        &body.config,
        body.permission,
        &policy,
    );
    let definition = match checked {
        Ok(d) if errors.is_empty() => d,
        Ok(_) => return Err(definition::problem(errors)),
        Err(e) => {
            errors.extend(e);
            return Err(definition::problem(errors));
        }
    };
    definition.may_be_written_by(&caller.principal)?;
    let tenant = caller.tenant()?;
    let tool = store::insert(
        &tenant,
        &body.name,
        &definition,
        body.enabled,
        &caller.actor_id(),
        unix_now(),
    )
    .await?;
    Ok(response::json(201, &tool, request_id))
}

/// `GET /v1/tools`: by name, the tools the caller may see.
pub async fn list(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    let page = PageRequest::from_query(req.uri().query())?;
    let p = &caller.principal;
    let items = if access::may_write(p) || p.has_permission(access::RUN) {
        let tenant = caller.tenant()?;
        let after = page.cursor.clone().unwrap_or_default();
        store::page(
            &tenant,
            &after,
            page.fetch_count(),
            access::may_write(p),
            &p.permissions,
        )
        .await?
    } else {
        // Without tools:run a member sees no tool.
        Vec::new()
    };
    let page = page.page(items, |t| t.name.clone());
    Ok(response::json(200, &page, request_id))
}

/// `GET /v1/tools/{name}`.
pub async fn get(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    let tool = visible(&caller, name).await?;
    Ok(response::json(200, &tool, request_id))
}

/// `PATCH /v1/tools/{name}`: the given fields change; the whole
/// definition is checked again.
pub async fn update(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = writer(&req).await?;
    let tool = visible(&caller, name).await?;
    let patch: PatchTool = json::read_unvalidated(req, BODY_LIMIT).await?;
    let config_changed = patch.config.is_some();
    let policy = policy::tools().await;
    let definition = Definition::check(
        patch.description.unwrap_or(tool.description),
        patch.input_schema.unwrap_or(tool.input_schema),
        tool.kind,
        patch.config.as_ref().unwrap_or(&tool.config),
        patch.permission.unwrap_or(tool.permission),
        &policy,
    )
    .map_err(definition::problem)?;
    // A new configuration (a new URL, say) may not carry secrets the
    // writer could not name itself.
    if config_changed {
        definition.may_be_written_by(&caller.principal)?;
    }
    let tenant = caller.tenant()?;
    let enabled = patch.enabled.unwrap_or(tool.enabled);
    if !store::update(&tenant, name, &definition, enabled, unix_now()).await? {
        return Err(not_found());
    }
    let tool = store::find(&tenant, name).await?.ok_or_else(not_found)?;
    Ok(response::json(200, &tool, request_id))
}

/// `DELETE /v1/tools/{name}`.
pub async fn delete(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = writer(&req).await?;
    visible(&caller, name).await?;
    let tenant = caller.tenant()?;
    if !store::delete(&tenant, name).await? {
        return Err(not_found());
    }
    Ok(response::no_content(request_id))
}

/// `POST /v1/tools/{name}/$call`: `{"result", "is_error", "latency_ms"}`.
pub async fn call(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    if !caller.principal.has_permission(access::RUN) {
        return Err(Problem::new(ErrorCode::Forbidden).detail(format!(
            "calling tools takes the {} permission",
            access::RUN
        )));
    }
    let tool = visible(&caller, name).await?;
    // Seen through tools:write alone, a tool with its own permission
    // still takes that permission to run.
    if !access::may_run(&caller.principal, tool.permission.as_deref()) {
        return Err(Problem::new(ErrorCode::Forbidden)
            .detail("calling this tool takes the permission it names"));
    }
    let body: CallTool = json::read_unvalidated(req, BODY_LIMIT).await?;
    let tenant = caller.tenant()?;
    let actor = caller.actor_id();
    let meter = spend::meter_for(&tenant, &caller.conn, &caller.principal, &actor).await?;
    let outcome = spend::call_tool(&meter, &tool, &body.arguments)
        .await
        .map_err(|stop| stop.problem())??;
    let mut res = response::json(
        200,
        &json!({
            "result": outcome.result,
            "is_error": outcome.is_error,
            "latency_ms": outcome.latency_ms,
        }),
        request_id,
    );
    // A tool's result may be anyone's data: not for shared caches.
    res.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}
