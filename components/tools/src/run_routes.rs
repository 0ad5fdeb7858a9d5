//! `POST /v1/tool-runs`, `GET /v1/tool-runs`, `GET /v1/tool-runs/{id}`
//! and `GET /v1/completions/{id}`.
//!
//! A run is checked whole before anything is sent (the body, the tools it
//! offers, its static calls, the org's settings and the API key's secret);
//! once sent, it is recorded, so how it ended is `201` with the run:
//! `completed`, `stopped` (a limit) or `failed` (the provider's error, its
//! `stop_reason` saying which: `quota_exceeded` names the quota in
//! `quota_refusal`). A member sees their own runs and their
//! completions; an admin sees all of the org's.

use gatehouse_auth::caller::OrgCaller;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::idempotency::sqlite::create_once_up_to;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::pagination::PageRequest;
use gatehouse_http::principal::Principal;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, response};
use serde_json::Value;
use spin_sdk::http::Request;

use crate::model::{Kind, Tool, valid_name};
use crate::run_model::{CreateRun, Stage, TOOLS_MAX};
use crate::runs::{self, Plan};
use crate::settings::Settings;
use crate::spend::{self, Meter, Meters};
use crate::url::{PROVIDERS, refused};
use crate::{access, policy, run_store, schema, store};

/// The largest run body.
const BODY_LIMIT: usize = 1024 * 1024;

fn invalid(errors: Vec<FieldError>) -> Problem {
    Problem::new(ErrorCode::ValidationFailed)
        .detail("the run has invalid fields")
        .errors(errors)
}

fn not_set(what: String) -> Problem {
    Problem::new(ErrorCode::Conflict).detail(what)
}

/// A run or completion the caller may not see is one that is not there.
fn not_found(what: &str) -> Problem {
    Problem::not_found().detail(format!("no such {what}"))
}

/// Whether `caller` (as `actor`) sees what `owner` ran.
fn sees(caller: &Principal, actor: &str, owner: &str) -> bool {
    caller.is_org_admin() || actor == owner
}

/// The tool `name` if the caller may run it now.
async fn runnable(
    tenant: &Tenant<'_>,
    caller: &Principal,
    name: &str,
) -> Result<Option<Tool>, Problem> {
    if !valid_name(name) {
        return Ok(None);
    }
    Ok(store::find(tenant, name)
        .await?
        .filter(|t| t.enabled && access::may_run(caller, t.permission.as_deref())))
}

/// The tools a run offers: those named, each one the caller may run, or
/// (none named) every tool the caller may run, by name.
async fn offered(
    tenant: &Tenant<'_>,
    caller: &Principal,
    named: Option<&[String]>,
) -> Result<Vec<Tool>, Problem> {
    let Some(named) = named else {
        let count = u32::try_from(TOOLS_MAX).unwrap_or(u32::MAX);
        let all = store::page(tenant, "", count, false, &caller.permissions).await?;
        return Ok(all
            .into_iter()
            .filter(|t| t.enabled && access::may_run(caller, t.permission.as_deref()))
            .collect());
    };
    let mut tools = Vec::with_capacity(named.len());
    let mut errors = Vec::new();
    for (i, name) in named.iter().enumerate() {
        match runnable(tenant, caller, name).await? {
            Some(tool) => tools.push(tool),
            None => errors.push(FieldError::new(
                format!("/tools/{i}"),
                "unknown_tool",
                "no enabled tool of this name that the caller may run",
            )),
        }
    }
    if errors.is_empty() {
        Ok(tools)
    } else {
        Err(invalid(errors))
    }
}

/// The static calls, each of a static tool the caller may run, with
/// arguments its schema takes.
async fn static_calls(
    tenant: &Tenant<'_>,
    caller: &Principal,
    body: &CreateRun,
) -> Result<Vec<(Tool, Value)>, Problem> {
    let mut calls = Vec::with_capacity(body.static_calls.len());
    let mut errors = Vec::new();
    for (i, call) in body.static_calls.iter().enumerate() {
        let tool = runnable(tenant, caller, &call.tool)
            .await?
            .filter(|t| t.kind == Kind::Static);
        let Some(tool) = tool else {
            errors.push(FieldError::new(
                format!("/static_calls/{i}/tool"),
                "unknown_tool",
                "no enabled static tool of this name that the caller may run",
            ));
            continue;
        };
        if let Err(wrong) = schema::check_arguments(&tool.input_schema, &call.arguments) {
            errors.extend(wrong.into_iter().map(|e| {
                FieldError::new(format!("/static_calls/{i}{}", e.pointer), e.code, e.message)
            }));
            continue;
        }
        calls.push((tool, call.arguments.clone()));
    }
    if errors.is_empty() {
        Ok(calls)
    } else {
        Err(invalid(errors))
    }
}

/// The API key, read from the secret the settings name.
async fn api_key(tenant: &Tenant<'_>, settings: &Settings) -> Result<String, Problem> {
    let reference = &settings.api_key_secret;
    let bytes = gatehouse_secrets::read_reference(tenant, reference, unix_now())
        .await?
        .ok_or_else(|| {
            not_set(format!(
                "the secret {reference} holding the API key is not set"
            ))
        })?;
    String::from_utf8(bytes)
        .ok()
        .filter(|k| !k.is_empty() && http::HeaderValue::from_str(&format!("Bearer {k}")).is_ok())
        .ok_or_else(|| not_set(format!("the secret {reference} holds no usable API key")))
}

/// `POST /v1/tool-runs`: `201` with the run. With an `Idempotency-Key`, a
/// retry answers what the first request answered and runs nothing again.
pub async fn create(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    if !caller.principal.has_permission(access::RUN) {
        return Err(Problem::new(ErrorCode::Forbidden).detail(format!(
            "running tools takes the {} permission",
            access::RUN
        )));
    }
    let scope = caller.idempotency_scope();
    let caller = &caller;
    create_once_up_to(
        &caller.conn,
        &scope,
        req,
        request_id,
        BODY_LIMIT,
        |body: CreateRun| async move {
            let run = start(caller, body).await?;
            Ok(no_store(response::json(201, &run, request_id)))
        },
    )
    .await
}

/// Checks `body` against the org's settings and tools, then runs it.
async fn start(caller: &OrgCaller, body: CreateRun) -> Result<crate::run_model::Run, Problem> {
    let tenant = caller.tenant()?;
    let settings = run_store::settings(&tenant).await?.ok_or_else(|| {
        not_set("the organization has no tool settings (PUT /v1/tool-settings)".into())
    })?;
    let errors = body.check(settings.max_steps);
    if !errors.is_empty() {
        return Err(invalid(errors));
    }
    let p = &caller.principal;
    let subject = spend::subject_of(p);
    let meters = Meters::of(Some(&settings));
    spend::refuse_unmetered(&meters, subject.as_deref())?;
    let offered = match body.stage {
        Stage::Raw => Vec::new(),
        Stage::Call | Stage::Static => offered(&tenant, p, body.tools.as_deref()).await?,
    };
    let static_calls = static_calls(&tenant, p, &body).await?;
    // Allowed when the settings were written; again now, as the operator
    // may have narrowed the deployment's rule since.
    if let Err(refusal) = policy::llm().await.check(&settings.base_url) {
        return Err(not_set(format!(
            "the tool settings' base_url is no longer allowed: {}",
            refused(&refusal, PROVIDERS)
        )));
    }
    let key = api_key(&tenant, &settings).await?;
    let plan = Plan {
        stage: body.stage,
        max_steps: body.max_steps.unwrap_or(settings.max_steps),
        messages: body.messages,
        offered,
        static_calls,
    };
    let actor = caller.actor_id();
    let meter = Meter {
        tenant: &tenant,
        conn: &caller.conn,
        meters,
        subject,
        actor: &actor,
    };
    runs::run(&meter, &settings, &key, &actor, plan).await
}

/// Runs hold people's conversations: not for shared caches.
fn no_store(mut res: Response) -> Response {
    res.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    res
}

/// `GET /v1/tool-runs`: newest first, without messages and steps.
pub async fn list(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    let page = PageRequest::from_query(req.uri().query())?;
    if page
        .cursor
        .as_deref()
        .is_some_and(|c| !c.starts_with("run_"))
    {
        return Err(Problem::new(ErrorCode::InvalidQuery)
            .detail("cursor is not valid")
            .errors(vec![FieldError::new(
                "/cursor",
                "invalid",
                "cursor is not valid",
            )]));
    }
    let tenant = caller.tenant()?;
    let actor = caller.actor_id();
    let user = (!caller.principal.is_org_admin()).then_some(actor.as_str());
    let runs =
        run_store::page_runs(&tenant, page.cursor.as_deref(), page.fetch_count(), user).await?;
    let page = page.page(runs, |r| r.id.clone());
    Ok(no_store(response::json(200, &page, request_id)))
}

/// `GET /v1/tool-runs/{id}`: with its messages and steps.
pub async fn get(req: Request, id: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    let tenant = caller.tenant()?;
    let run = run_store::find_run(&tenant, id)
        .await?
        .filter(|r| sees(&caller.principal, &caller.actor_id(), &r.user_id))
        .ok_or_else(|| not_found("run"))?;
    Ok(no_store(response::json(200, &run, request_id)))
}

/// `GET /v1/completions/{id}`: what was sent and answered.
pub async fn completion(req: Request, id: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    let tenant = caller.tenant()?;
    let (completion, _) = run_store::find_completion(&tenant, id)
        .await?
        .filter(|(_, owner)| sees(&caller.principal, &caller.actor_id(), owner))
        .ok_or_else(|| not_found("completion"))?;
    Ok(no_store(response::json(200, &completion, request_id)))
}
