//! `/v1/mcp-servers`: the org's named MCP servers. Writers are who may
//! write tools ([`access::may_write`]); readers are who may see tools (a
//! writer, or a holder of `tools:run`), and a reader who is no writer
//! sees, of each server's tools, those it may see.
//!
//! Also the protected resource metadata of the MCP endpoints
//! (`/.well-known/oauth-protected-resource/v1/mcp[/{server}]`), which
//! anyone may read: a client reads it before it holds a credential. It
//! says nothing of whether a server exists.

use gatehouse_auth::caller::OrgCaller;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::pagination::PageRequest;
use gatehouse_http::{ErrorCode, Problem, Response, json, response};
use spin_sdk::http::Request;

use gatehouse_http::FieldError;
use serde_json::{Map, Value, json};

use super::endpoint::base;
use super::mount::{self, RemoteTool};
use super::remote::{Failure, Remote};
use super::server_store::Fields;
use super::servers::{self, CreateServer, McpServer, PatchServer};
use super::{metadata, server_store};
use crate::{access, config, model, policy, store};

const BODY_LIMIT: usize = 64 * 1024;

fn not_found() -> Problem {
    Problem::not_found().detail("no such MCP server")
}

/// The caller, who must be allowed to write tools.
async fn writer(req: &Request) -> Result<OrgCaller, Problem> {
    let caller = OrgCaller::of(req).await?;
    if access::may_write(&caller.principal) {
        Ok(caller)
    } else {
        Err(Problem::new(ErrorCode::Forbidden).detail(format!(
            "changing MCP servers takes an admin of this organization or the {} permission",
            access::WRITE
        )))
    }
}

fn may_read(caller: &OrgCaller) -> bool {
    let p = &caller.principal;
    access::may_write(p) || p.has_permission(access::RUN)
}

/// `server` as `caller` may read it: a reader who is no writer sees only
/// the tools it may see.
async fn shown(caller: &OrgCaller, mut server: McpServer) -> Result<McpServer, Problem> {
    if access::may_write(&caller.principal) {
        return Ok(server);
    }
    let tenant = caller.tenant()?;
    let mut visible = Vec::with_capacity(server.tools.len());
    for name in &server.tools {
        if let Some(tool) = store::find(&tenant, name).await?
            && access::may_see(&caller.principal, tool.permission.as_deref())
        {
            visible.push(name.clone());
        }
    }
    server.tools = visible;
    Ok(server)
}

/// The server `name`, if the caller may read it: a server guarded by a
/// permission the caller may not see is not found, as such a tool is not.
async fn readable(caller: &OrgCaller, name: &str) -> Result<McpServer, Problem> {
    if !model::valid_name(name) || !may_read(caller) {
        return Err(not_found());
    }
    let tenant = caller.tenant()?;
    server_store::find(&tenant, name, &base().await)
        .await?
        .filter(|s| access::may_see(&caller.principal, s.permission.as_deref()))
        .ok_or_else(not_found)
}

/// A write's fields, checked: every failing field (422), or a secret the
/// writer may not name (403). Answers the remote as it is stored.
async fn checked(
    caller: &OrgCaller,
    name: Option<&str>,
    description: &str,
    tools: &[String],
    remote: Option<&Value>,
    permission: Option<&str>,
) -> Result<Option<Value>, Problem> {
    let tenant = caller.tenant()?;
    let existing = server_store::existing_tools(&tenant, tools).await?;
    let mut errors = servers::check(name, description, tools, |t| {
        existing.iter().any(|e| e == t)
    });
    if let Some(p) = permission
        && !access_core::names::valid_permission(p)
    {
        errors.push(FieldError::new(
            "/permission",
            "invalid_permission",
            "a permission is simple names (a-z, 0-9, _, ., -) joined by :, at most 100 characters",
        ));
    }
    let Some(remote) = remote else {
        return if errors.is_empty() {
            Ok(None)
        } else {
            Err(servers::problem(errors))
        };
    };
    if !tools.is_empty() {
        errors.push(FieldError::new(
            "/tools",
            "invalid",
            "a mounted server serves its remote's tools: it names none of the organization's",
        ));
    }
    let config = match mount::check_remote(remote, &policy::tools().await) {
        Ok(config) => Some(config),
        Err(e) => {
            errors.extend(e);
            None
        }
    };
    let Some(config) = config.filter(|_| errors.is_empty()) else {
        return Err(servers::problem(errors));
    };
    for reference in config.secrets() {
        let allowed = config::reference_scope(reference)
            .is_some_and(|scope| access::may_reference(&caller.principal, &scope));
        if !allowed {
            return Err(Problem::new(ErrorCode::Forbidden).detail(format!(
                "naming the secret {reference} in an MCP server takes the right to read it ({})",
                access::SECRETS_READ
            )));
        }
    }
    Ok(Some(mount::stored(&config)))
}

/// `POST /v1/mcp-servers`: `201` with the server.
pub async fn create(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = writer(&req).await?;
    let body: CreateServer = json::read_unvalidated(req, BODY_LIMIT).await?;
    let remote = checked(
        &caller,
        Some(&body.name),
        &body.description,
        &body.tools,
        body.remote.as_ref(),
        body.permission.as_deref(),
    )
    .await?;
    let tenant = caller.tenant()?;
    let fields = Fields {
        description: &body.description,
        tools: &body.tools,
        remote: remote.as_ref(),
        permission: body.permission.as_deref(),
    };
    server_store::insert(&tenant, &body.name, &fields, &caller.actor_id(), unix_now()).await?;
    let server = server_store::find(&tenant, &body.name, &base().await)
        .await?
        .ok_or_else(Problem::internal)?;
    Ok(response::json(201, &server, request_id))
}

/// `GET /v1/mcp-servers`: by name.
pub async fn list(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    let page = PageRequest::from_query(req.uri().query())?;
    let items = if may_read(&caller) {
        let tenant = caller.tenant()?;
        let after = page.cursor.clone().unwrap_or_default();
        let found = server_store::page(&tenant, &after, page.fetch_count(), &base().await).await?;
        let mut items = Vec::with_capacity(found.len());
        for server in found {
            if access::may_see(&caller.principal, server.permission.as_deref()) {
                items.push(shown(&caller, server).await?);
            }
        }
        items
    } else {
        Vec::new()
    };
    let page = page.page(items, |s| s.name.clone());
    Ok(response::json(200, &page, request_id))
}

/// `GET /v1/mcp-servers/{name}`.
pub async fn get(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    let server = readable(&caller, name).await?;
    Ok(response::json(
        200,
        &shown(&caller, server).await?,
        request_id,
    ))
}

/// `PATCH /v1/mcp-servers/{name}`: the given fields change.
pub async fn update(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = writer(&req).await?;
    let server = readable(&caller, name).await?;
    let patch: PatchServer = json::read_unvalidated(req, BODY_LIMIT).await?;
    let description = patch.description.unwrap_or(server.description);
    let tools = patch.tools.unwrap_or(server.tools);
    let permission = patch.permission.unwrap_or(server.permission);
    // A composed server stays one, a mount stays a mount.
    let remote = match (patch.remote, server.remote) {
        (Some(_), None) => {
            return Err(servers::problem(vec![FieldError::new(
                "/remote",
                "invalid",
                "a server of the organization's tools cannot become a mount",
            )]));
        }
        (given, stored) => given.or(stored),
    };
    let remote = checked(
        &caller,
        None,
        &description,
        &tools,
        remote.as_ref(),
        permission.as_deref(),
    )
    .await?;
    let tenant = caller.tenant()?;
    let fields = Fields {
        description: &description,
        tools: &tools,
        remote: remote.as_ref(),
        permission: permission.as_deref(),
    };
    if !server_store::update(&tenant, name, &fields, unix_now()).await? {
        return Err(not_found());
    }
    let server = server_store::find(&tenant, name, &base().await)
        .await?
        .ok_or_else(not_found)?;
    Ok(response::json(200, &server, request_id))
}

/// `DELETE /v1/mcp-servers/{name}`.
pub async fn delete(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = writer(&req).await?;
    readable(&caller, name).await?;
    let tenant = caller.tenant()?;
    if !server_store::delete(&tenant, name).await? {
        return Err(not_found());
    }
    Ok(response::no_content(request_id))
}

/// The most pages of a remote's `tools/list` read.
const PAGES_MAX: usize = 10;

/// `POST /v1/mcp-servers/{name}/$refresh`: the mount's remote asked for
/// its tools (every page), which are kept and answered with the server,
/// with the names left out (`skipped`). A remote that cannot be listed is
/// 502 (`upstream_failed`), and the tools kept before stay.
pub async fn refresh(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = writer(&req).await?;
    let server = readable(&caller, name).await?;
    let (Some(stored), Some(config)) = (
        server.remote.as_ref(),
        server.remote.as_ref().and_then(mount::config_of),
    ) else {
        return Err(Problem::new(ErrorCode::Conflict)
            .detail("only a mounted MCP server (one with a remote) is refreshed"));
    };
    let tenant = caller.tenant()?;
    let remote = Remote::open(&tenant, &config).await.map_err(upstream)?;
    let mut listed: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..PAGES_MAX {
        let mut params = Map::new();
        if let Some(c) = &cursor {
            params.insert("cursor".into(), json!(c));
        }
        let page = remote
            .request("tools/list", params, None)
            .await
            .map_err(upstream)?;
        listed.extend(page["tools"].as_array().cloned().unwrap_or_default());
        cursor = page["nextCursor"].as_str().map(str::to_string);
        if cursor.is_none() || listed.len() > mount::TOOLS_MAX {
            break;
        }
    }
    let (tools, skipped): (Vec<RemoteTool>, Vec<String>) = mount::tools_of(name, &listed);
    if !server_store::set_remote_tools(&tenant, name, stored, &tools, unix_now()).await? {
        return Err(Problem::new(ErrorCode::Conflict)
            .detail("the server's remote changed while it was listed; refresh it again"));
    }
    let server = server_store::find(&tenant, name, &base().await)
        .await?
        .ok_or_else(not_found)?;
    let mut answer = serde_json::to_value(&server).map_err(|_| Problem::internal())?;
    answer["skipped"] = json!(skipped);
    Ok(response::json(200, &answer, request_id))
}

/// A remote that could not be listed, as the 502 answer.
fn upstream(failure: Failure) -> Problem {
    let why = match failure {
        Failure::Unreachable(why) => why,
        Failure::Rpc { code, message } => {
            format!("the MCP server answered the error {code}: {message}")
        }
    };
    Problem::new(ErrorCode::UpstreamFailed).detail(format!(
        "the remote MCP server's tools could not be listed: {why}"
    ))
}

/// `GET /.well-known/oauth-protected-resource/v1/mcp[/{server}]`.
pub async fn resource_metadata(
    server: Option<&str>,
    request_id: &str,
) -> Result<Response, Problem> {
    if server.is_some_and(|s| !model::valid_name(s)) {
        return Err(Problem::not_found().detail("no route matches this path"));
    }
    let doc = metadata::document(&base().await, server);
    Ok(response::json(200, &doc, request_id))
}
