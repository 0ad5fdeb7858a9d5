//! `POST /v1/mcp` and `POST /v1/mcp/{server}`: the Streamable HTTP
//! endpoint, stateless. Each POST is answered on its own, as JSON (never a
//! stream, never an `Mcp-Session-Id`; one sent is ignored), so any
//! instance answers any request.
//!
//! In order: the `Origin` check ([`super::origin`], 403), the caller's
//! credential (401 with the challenge naming the resource metadata), the
//! named server (404 for one the org does not have), then the JSON-RPC
//! message. Everything after the body is read is answered as JSON-RPC.

use gatehouse_auth::caller::OrgCaller;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::audit::{self, Actor, Entry, trail::Notes};
use gatehouse_http::principal::Principal;
use gatehouse_http::{ErrorCode, Problem, Response, json, response};
use serde_json::{Map, Value, json};
use spin_sdk::http::Request;

use super::era::{self, Era, Headers, SUPPORTED};
use super::mount::{self, RemoteTool};
use super::remote::{Failure, Remote};
use super::rpc::{self, INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND, Message, RpcError};
use super::servers::McpServer;
use super::{listing, metadata, origin, server_store, shape};
use crate::execute::ToolError;
use crate::spend::{self, Charge, Stop};
use crate::{access, model, schema, store};

/// The largest message taken.
const BODY_LIMIT: usize = 128 * 1024;
/// Tools in one `tools/list` page.
const PAGE: u32 = 100;

/// The deployment's public base URL, which is also its issuer.
pub(crate) async fn base() -> String {
    gatehouse_auth::jwt::issuer().await
}

/// A `401` that tells an MCP client where the resource's metadata is.
fn challenged(mut problem: Problem, base: &str, server: Option<&str>) -> Problem {
    if problem.status == 401 {
        let said = problem
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("www-authenticate"))
            .map(|(_, value)| value.clone());
        problem
            .headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case("www-authenticate"));
        problem.headers.push((
            "www-authenticate",
            metadata::challenge(base, server, said.as_deref()),
        ));
    }
    problem
}

fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap_or_default())
}

/// What one POST serves: the org's tools, or one of its named servers.
struct Scope<'a> {
    caller: &'a OrgCaller,
    tenant: Tenant<'a>,
    server: Option<McpServer>,
    base: String,
}

impl Scope<'_> {
    fn name(&self) -> Option<&str> {
        self.server.as_ref().map(|s| s.name.as_str())
    }

    fn instructions(&self) -> Option<&str> {
        self.server.as_ref().map(|s| s.description.as_str())
    }
}

/// The endpoint.
pub async fn post(
    req: Request,
    server: Option<&str>,
    request_id: &str,
) -> Result<Response, Problem> {
    let base = base().await;
    if !origin::allowed(header(req.headers(), "origin"), &base) {
        return Err(Problem::new(ErrorCode::Forbidden)
            .detail("requests from this Origin are not served (only the deployment's own)"));
    }
    let caller = OrgCaller::of(&req)
        .await
        .map_err(|p| challenged(p, &base, server.filter(|s| model::valid_name(s))))?;
    let tenant = caller.tenant()?;
    let server = match server {
        None => None,
        Some(name) => {
            let found = if model::valid_name(name) {
                server_store::find(&tenant, name, &base).await?
            } else {
                None
            };
            // A server guarded by a permission the caller may not run
            // under is not there for it: not its tools, its description
            // or its existence.
            let found =
                found.filter(|s| access::may_run(&caller.principal, s.permission.as_deref()));
            Some(found.ok_or_else(|| Problem::not_found().detail("no such MCP server"))?)
        }
    };
    let (parts, body) = req.into_parts();
    let bytes = json::read_body(&parts.headers, body, BODY_LIMIT).await?;
    let scope = Scope {
        caller: &caller,
        tenant,
        server,
        base,
    };
    let request = http::Request::from_parts(parts, ());
    let answer = match rpc::parse(&bytes) {
        Err(e) => Err(e),
        Ok(Message::Response) => return Ok(accepted(request_id)),
        Ok(Message::Notification { .. }) => match header(request.headers(), "mcp-protocol-version")
        {
            Some(v) if !SUPPORTED.contains(&v) => Err(era::unsupported(&Value::Null, v)),
            _ => return Ok(accepted(request_id)),
        },
        Ok(Message::Request(r)) => serve(&scope, &request, &r, request_id).await,
    };
    Ok(match answer {
        Ok(result) => {
            let mut res = response::json(200, &result, request_id);
            // Results are the caller's own (the tools it may run, what
            // they answered): not for shared caches.
            res.headers_mut().insert(
                http::header::CACHE_CONTROL,
                http::HeaderValue::from_static("no-store"),
            );
            res
        }
        Err(e) => response::json(e.status, &e.to_json(), request_id),
    })
}

/// `202 Accepted`, no body.
fn accepted(request_id: &str) -> Response {
    response::bytes(202, "application/json", Vec::new(), &[], request_id)
}

/// One request's answer body.
async fn serve(
    scope: &Scope<'_>,
    request: &http::Request<()>,
    r: &rpc::Request,
    request_id: &str,
) -> Result<Value, RpcError> {
    let h = request.headers();
    let headers = Headers {
        protocol_version: header(h, "mcp-protocol-version"),
        method: header(h, "mcp-method"),
        name: header(h, "mcp-name"),
    };
    let era = era::of_request(&headers, &r.id, &r.method, &r.params)?;
    let result = match (era, r.method.as_str()) {
        (Era::Legacy, "initialize") => shape::initialize(scope.name(), scope.instructions()),
        (Era::Legacy, "ping") => json!({}),
        (Era::Modern, "server/discover") => shape::discover(scope.name(), scope.instructions()),
        (_, "tools/list") => list(scope, era, r).await?,
        (_, "tools/call") => call(scope, era, request, r, request_id).await?,
        (Era::Modern, method) => {
            // The 2026-07-28 transport answers an unknown method 404.
            return Err(not_found(r, method).status(404));
        }
        (Era::Legacy, method) => return Err(not_found(r, method)),
    };
    Ok(rpc::result(&r.id, result))
}

fn not_found(r: &rpc::Request, method: &str) -> RpcError {
    RpcError::new(
        r.id.clone(),
        METHOD_NOT_FOUND,
        format!("Method not found: {method}"),
    )
}

fn internal(r: &rpc::Request) -> RpcError {
    RpcError::new(r.id.clone(), INTERNAL_ERROR, "Internal error")
}

/// `tools/list`.
async fn list(scope: &Scope<'_>, era: Era, r: &rpc::Request) -> Result<Value, RpcError> {
    let after = match r.params.get("cursor") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(c)) if model::valid_name(c) => c.clone(),
        Some(_) => {
            return Err(RpcError::new(
                r.id.clone(),
                INVALID_PARAMS,
                "Invalid cursor",
            ));
        }
    };
    let only = scope.server.as_ref().map(|s| s.tools.as_slice());
    let local = listing::page(
        &scope.tenant,
        &scope.caller.principal,
        &after,
        PAGE + 1,
        only,
    )
    .await
    .map_err(|_| internal(r))?;
    let mut tools: Vec<(String, Value)> = local
        .iter()
        .map(|t| {
            let shown = shape::tool(&t.name, &t.description, &t.input_schema);
            (t.name.clone(), shown)
        })
        .collect();
    let mounted = remote_tools(scope).await.map_err(|_| internal(r))?;
    tools.extend(
        mounted
            .into_iter()
            .filter(|(_, t)| t.name.as_str() > after.as_str())
            .map(|(_, t)| {
                let shown = shape::tool(&t.name, &t.description, &t.input_schema);
                (t.name, shown)
            }),
    );
    tools.sort_by(|a, b| a.0.cmp(&b.0));
    let more = tools.len() > PAGE as usize;
    tools.truncate(PAGE as usize);
    let next = more.then(|| tools.last().map(|t| t.0.clone())).flatten();
    let shown = tools.into_iter().map(|(_, shown)| shown).collect();
    Ok(shape::tool_list(era, scope.name(), shown, next))
}

/// The mounted tools this endpoint offers the caller, each with its
/// mount: a mount's own on its endpoint, every mount's on `/v1/mcp`, those
/// whose mount's permission the caller holds, with `tools:run`.
async fn remote_tools(scope: &Scope<'_>) -> Result<Vec<(McpServer, RemoteTool)>, Problem> {
    let principal = &scope.caller.principal;
    let mounts = match &scope.server {
        Some(server) if server.remote.is_some() => vec![server.clone()],
        Some(_) => Vec::new(),
        None => server_store::mounts(&scope.tenant, &scope.base).await?,
    };
    let mut offered = Vec::new();
    for mount in mounts {
        if !access::may_run(principal, mount.permission.as_deref()) {
            continue;
        }
        for tool in mount.remote_tools.clone().unwrap_or_default() {
            offered.push((mount.clone(), tool));
        }
    }
    Ok(offered)
}

/// The mounted tool `name` names here, with its mount, whether or not the
/// caller may run it.
async fn mounted(
    scope: &Scope<'_>,
    name: &str,
) -> Result<Option<(McpServer, RemoteTool)>, Problem> {
    let mount = match &scope.server {
        Some(server) if server.remote.is_some() => Some(server.clone()),
        Some(_) => None,
        None => match mount::split(name) {
            Some((mount, _)) if model::valid_name(mount) => {
                server_store::find(&scope.tenant, mount, &scope.base).await?
            }
            _ => None,
        },
    };
    Ok(mount.and_then(|m| {
        let tool = m
            .remote_tools
            .as_ref()?
            .iter()
            .find(|t| t.name == name)?
            .clone();
        Some((m, tool))
    }))
}

/// Why a call did not run, with the status the `$call` route answers it,
/// which its record keeps.
struct Refusal {
    status: u16,
    error: RpcError,
}

/// `tools/call`: the tool run as `$call` runs it (checked, then held on
/// the org's tool meter, run through [`crate::execute`], settled: see
/// [`spend::call_tool`]), its record
/// written as the `$call` route's is.
async fn call(
    scope: &Scope<'_>,
    era: Era,
    request: &http::Request<()>,
    r: &rpc::Request,
    request_id: &str,
) -> Result<Value, RpcError> {
    let Some(name) = r.text("name") else {
        return Err(RpcError::new(
            r.id.clone(),
            INVALID_PARAMS,
            "Invalid params: \"name\" is the tool's name",
        ));
    };
    let arguments = match r.params.get("arguments") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => {
            return Err(RpcError::new(
                r.id.clone(),
                INVALID_PARAMS,
                "Invalid params: \"arguments\" is an object",
            ));
        }
    };
    let principal = &scope.caller.principal;
    let (status, answer) = match run(scope, era, r, name, &arguments).await {
        Ok((status, result)) => (status, Ok(result)),
        Err(refusal) => (refusal.status, Err(refusal.error)),
    };
    let body = match &answer {
        Ok(result) => serde_json::to_vec(result).unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    record(request, principal, name, status, &body, request_id).await;
    answer
}

/// The tool `name` run, or why not.
async fn run(
    scope: &Scope<'_>,
    era: Era,
    r: &rpc::Request,
    name: &str,
    arguments: &Value,
) -> Result<(u16, Value), Refusal> {
    // An unknown tool and one the caller may not run (or that this server
    // does not serve) get one answer, so existence never leaks.
    let unknown = |status: u16| Refusal {
        status,
        error: RpcError::new(
            r.id.clone(),
            INVALID_PARAMS,
            format!("Unknown tool: {name}"),
        ),
    };
    let principal = &scope.caller.principal;
    if !model::valid_name(name) {
        return Err(unknown(404));
    }
    let found = mounted(scope, name).await.map_err(|_| Refusal {
        status: 500,
        error: internal(r),
    })?;
    if let Some((mount, tool)) = found {
        if !access::may_run(principal, mount.permission.as_deref()) {
            return Err(unknown(403));
        }
        return forward(scope, era, r, &mount, &tool, arguments).await;
    }
    let served = scope
        .server
        .as_ref()
        .is_none_or(|s| s.tools.iter().any(|t| t == name));
    if !served {
        return Err(unknown(404));
    }
    let tool = store::find(&scope.tenant, name)
        .await
        .map_err(|_| Refusal {
            status: 500,
            error: internal(r),
        })?
        .ok_or_else(|| unknown(404))?;
    if !access::may_run(principal, tool.permission.as_deref()) {
        let status = if access::may_see(principal, tool.permission.as_deref()) {
            403
        } else {
            404
        };
        return Err(unknown(status));
    }
    let actor = scope.caller.actor_id();
    let meter = match spend::meter_for(&scope.tenant, &scope.caller.conn, principal, &actor).await {
        Ok(meter) => meter,
        Err(problem) => return Ok(unmetered(scope, era, &problem)),
    };
    match spend::call_tool(&meter, &tool, arguments).await {
        Err(stop) => Ok(stopped(scope, era, &stop)),
        Ok(Ok(outcome)) => Ok((
            200,
            shape::call_result(era, scope.name(), &outcome.result, outcome.is_error),
        )),
        Ok(Err(ToolError::InvalidArguments(errors))) => Err(Refusal {
            status: 422,
            error: RpcError::new(
                r.id.clone(),
                INVALID_PARAMS,
                "Invalid params: the arguments do not match the tool's input schema",
            )
            .data(json!({"errors": errors})),
        }),
        Ok(Err(ToolError::Disabled)) => Err(unknown(409)),
        Ok(Err(ToolError::Internal)) => Err(Refusal {
            status: 500,
            error: internal(r),
        }),
    }
}

/// A call a quota (or metering that failed) stopped, as a result an agent
/// reads, with the status `$call` would answer.
fn stopped(scope: &Scope<'_>, era: Era, stop: &Stop) -> (u16, Value) {
    let result = shape::call_result(era, scope.name(), &stop.tool_result(), true);
    (stop.problem().status, result)
}

/// A call the org's metering refuses for this caller, likewise.
fn unmetered(scope: &Scope<'_>, era: Era, problem: &Problem) -> (u16, Value) {
    let why = problem
        .detail
        .clone()
        .unwrap_or_else(|| problem.title.clone());
    let result = shape::call_result(era, scope.name(), &json!(why), true);
    (problem.status, result)
}

/// A mounted tool's call, forwarded to its remote: the arguments checked
/// against the schema the remote gave first (a schema this validator
/// cannot read leaves them to the remote), the remote's result relayed.
/// A remote that fails or cannot be reached is a result with `isError`,
/// as an HTTP tool's endpoint is.
async fn forward(
    scope: &Scope<'_>,
    era: Era,
    r: &rpc::Request,
    mount: &McpServer,
    tool: &RemoteTool,
    arguments: &Value,
) -> Result<(u16, Value), Refusal> {
    if let Err(errors) = schema::check_arguments(&tool.input_schema, arguments)
        && !errors.iter().any(|e| e.pointer == "/input_schema")
    {
        return Err(Refusal {
            status: 422,
            error: RpcError::new(
                r.id.clone(),
                INVALID_PARAMS,
                "Invalid params: the arguments do not match the tool's input schema",
            )
            .data(json!({"errors": errors})),
        });
    }
    let Some(config) = mount.remote.as_ref().and_then(mount::config_of) else {
        eprintln!("tools: MCP server {} has an unreadable remote", mount.id);
        return Err(Refusal {
            status: 500,
            error: internal(r),
        });
    };
    let actor = scope.caller.actor_id();
    let principal = &scope.caller.principal;
    let meter = match spend::meter_for(&scope.tenant, &scope.caller.conn, principal, &actor).await {
        Ok(meter) => meter,
        Err(problem) => return Ok(unmetered(scope, era, &problem)),
    };
    let hold = match meter.hold(Charge::ToolCall { tool: &tool.name }).await {
        Ok(hold) => hold,
        Err(stop) => return Ok(stopped(scope, era, &stop)),
    };
    let answer = relay(scope, era, r, &config, tool, arguments).await;
    // The remote has run it: its answer goes out even if the count could
    // not be written (logged by the meter), as a retry would run it again.
    let _ = meter.settle(hold, 1).await;
    answer.map(|result| (200, result))
}

/// A mounted tool's call sent to its remote, the result relayed.
async fn relay(
    scope: &Scope<'_>,
    era: Era,
    r: &rpc::Request,
    config: &crate::config::HttpConfig,
    tool: &RemoteTool,
    arguments: &Value,
) -> Result<Value, Refusal> {
    let failed = |why: String| shape::call_result(era, scope.name(), &json!(why), true);
    let remote = match Remote::open(&scope.tenant, config).await {
        Ok(remote) => remote,
        Err(Failure::Unreachable(why)) | Err(Failure::Rpc { message: why, .. }) => {
            return Ok(failed(why));
        }
    };
    let mut params = Map::new();
    params.insert("name".into(), json!(tool.remote_name));
    params.insert("arguments".into(), arguments.clone());
    match remote
        .request("tools/call", params, Some(&tool.remote_name))
        .await
    {
        Ok(result)
            if result.get("resultType").and_then(Value::as_str) == Some("input_required") =>
        {
            Ok(failed(
                "the remote tool asked for more input, which Gatehouse does not relay".into(),
            ))
        }
        Ok(result) => Ok(shape::finish(
            era,
            scope.name(),
            mount::relayed_call(&result),
        )),
        Err(Failure::Unreachable(why)) => Ok(failed(why)),
        Err(Failure::Rpc { code, message }) if code == INVALID_PARAMS => Err(Refusal {
            status: 422,
            error: RpcError::new(
                r.id.clone(),
                INVALID_PARAMS,
                format!("Invalid params: {message}"),
            ),
        }),
        Err(Failure::Rpc { code, message }) => Ok(failed(format!(
            "the MCP server answered the error {code}: {message}"
        ))),
    }
}

/// The call's audit record: the one `POST /v1/tools/{name}/$call` leaves
/// (action `tool.call`, the tool as its resource, the status that route
/// would answer, the body's field names, a digest of a success's answer),
/// with this endpoint's method and path. A record that cannot be written
/// is logged whole and the answer still goes out, as for `$call`.
async fn record(
    request: &http::Request<()>,
    principal: &Principal,
    name: &str,
    status: u16,
    body: &[u8],
    request_id: &str,
) {
    let notes = Notes {
        actor: Some(Actor::Principal(principal.clone())),
        fields: vec!["arguments".into()],
    };
    let matched = model::valid_name(name)
        .then(|| audit::routes::find("POST", &format!("/v1/tools/{name}/$call")))
        .flatten();
    let entry = match matched.and_then(|m| Entry::of(&m, &notes, status, body)) {
        Some(entry) => entry,
        None => {
            let shown: String = name.chars().take(64).collect();
            Entry::by(principal, None, "tool.call", Some(shown), Some(status))
        }
    };
    if audit::record(request, &entry, Some(request_id))
        .await
        .is_err()
    {
        eprintln!(
            "tools: the record of an MCP call: {}",
            serde_json::to_string(&entry).unwrap_or_default()
        );
    }
}
