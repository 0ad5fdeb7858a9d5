//! The Gatehouse app through the local host, for end-to-end tests: start
//! it with migrations and the development outbox, call routes as JSON,
//! read mailed tokens, and get a signed-in user in one call.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::{HostConfig, Reply, TestHost, get, root, send};

/// The master key tests run with (base64 of 32 bytes).
pub const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The app from spin.toml, migrated, with the development outbox on.
pub fn start_app() -> Result<TestHost> {
    TestHost::start(app_config())
}

/// How [`start_app`] starts the app, for a test that changes one setting.
pub fn app_config() -> HostConfig {
    let mut config = HostConfig::new(root().join("spin.toml"));
    config.migrations = Some(root().join("infra/migrations"));
    config.env = vec![
        ("SPIN_VARIABLE_DEV_OUTBOX".into(), "enabled".into()),
        ("SPIN_VARIABLE_MASTER_KEY".into(), MASTER_KEY.into()),
    ];
    config
}

/// [`start_app`] with more `SPIN_VARIABLE_*` values.
pub fn start_app_with(env: Vec<(String, String)>) -> Result<TestHost> {
    let mut config = app_config();
    config.env.extend(env);
    TestHost::start(config)
}

/// `POST path` with a JSON body and, if given, a session token.
pub fn post(host: &TestHost, path: &str, body: &Value, token: Option<&str>) -> Result<Reply> {
    call(host, "POST", path, Some(body), token, &[])
}

/// `GET /v1/me`.
pub fn me(host: &TestHost, token: &str) -> Result<Reply> {
    get(
        &host.url("/v1/me"),
        &[("authorization", &format!("Bearer {token}"))],
    )
}

/// The newest mail of `kind` to `to`, from the development outbox.
pub fn mail(host: &TestHost, to: &str, kind: &str) -> Result<Value> {
    let outbox = get(&host.url("/v1/dev/outbox"), &[])?.json()?;
    outbox["items"]
        .as_array()
        .context("items")?
        .iter()
        .find(|m| m["to"] == to && m["kind"] == kind)
        .cloned()
        .with_context(|| format!("no {kind} mail to {to}: {outbox}"))
}

/// The token a mail of `kind` carries, by its prefix.
pub fn mailed_token(host: &TestHost, to: &str, kind: &str, prefix: &str) -> Result<String> {
    let body = mail(host, to, kind)?["body"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let start = body.find(prefix).context("token in mail")?;
    Ok(body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect())
}

/// The token of the newest verification mail to `to`.
pub fn verification_token(host: &TestHost, to: &str) -> Result<String> {
    mailed_token(host, to, "verify_email", "gvt_")
}

/// A password the policy accepts.
pub const PASSWORD: &str = "violet-tractor-umbrella";

/// `POST /v1/auth/register` for `email` with [`PASSWORD`].
pub fn register(host: &TestHost, email: &str) -> Result<Reply> {
    post(
        host,
        "/v1/auth/register",
        &json!({"email": email, "password": PASSWORD, "display_name": "Ada"}),
        None,
    )
}

/// Registers, verifies and logs in; returns the session token.
pub fn signed_in(host: &TestHost, email: &str) -> Result<String> {
    register(host, email)?;
    let token = verification_token(host, email)?;
    assert_eq!(
        post(
            host,
            "/v1/auth/verify-email",
            &json!({"token": token}),
            None
        )?
        .status,
        200
    );
    let login = post(
        host,
        "/v1/auth/login",
        &json!({"email": email, "password": PASSWORD}),
        None,
    )?;
    assert_eq!(
        login.status,
        200,
        "{}",
        String::from_utf8_lossy(&login.body)
    );
    Ok(login.json()?["token"]
        .as_str()
        .context("token")?
        .to_string())
}

/// Asserts the status (showing the body when it differs) and returns the
/// JSON body, `null` when there is none.
pub fn expect(reply: Reply, status: u16) -> Result<Value> {
    assert_eq!(reply.status, status, "{}", reply.text());
    if reply.body.is_empty() {
        return Ok(Value::Null);
    }
    reply.json()
}

/// `method path` with an optional JSON body, session token and extra headers.
pub fn call(
    host: &TestHost,
    method: &str,
    path: &str,
    body: Option<&Value>,
    token: Option<&str>,
    extra: &[(&str, &str)],
) -> Result<Reply> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> = extra.to_vec();
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    if let Some(auth) = auth.as_deref() {
        headers.push(("authorization", auth));
    }
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    send(method, &host.url(path), &headers, &bytes)
}

/// Runs a Python snippet with JSON on stdin; returns its JSON output. The
/// snippets use PyJWT and `cryptography`, which scripts/test installs into
/// a virtualenv (target/py) and names in `GATEHOUSE_PYTHON`; without that
/// variable the virtualenv is used when it exists, else `python3`.
pub fn python(script: &str, input: &Value) -> Result<Value> {
    let interpreter = std::env::var_os("GATEHOUSE_PYTHON")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let venv = crate::target_dir().join("py/bin/python");
            venv.exists().then_some(venv)
        })
        .unwrap_or_else(|| "python3".into());
    let mut child = Command::new(&interpreter)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "cannot run {}: scripts/test installs PyJWT and cryptography into target/py",
                interpreter.display()
            )
        })?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(input.to_string().as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            interpreter.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The signed-in user's id (`GET /v1/me`).
pub fn user_id(host: &TestHost, token: &str) -> Result<String> {
    let me = expect(call(host, "GET", "/v1/me", None, Some(token), &[])?, 200)?;
    Ok(me["id"].as_str().context("id")?.to_string())
}

/// Signs `email` up and into `org` with `role` (and `teams`), invited by
/// `admin`; returns the session token and the user id.
pub fn join(
    host: &TestHost,
    admin: &str,
    org: &str,
    email: &str,
    role: &str,
    teams: &[&str],
) -> Result<(String, String)> {
    let token = signed_in(host, email)?;
    expect(
        post(
            host,
            &format!("/v1/orgs/{org}/invitations"),
            &json!({"email": email, "role": role, "team_ids": teams}),
            Some(admin),
        )?,
        201,
    )?;
    let invitation = mailed_token(host, email, "invitation", "ginv_")?;
    expect(
        post(
            host,
            "/v1/invitations/accept",
            &json!({"token": invitation}),
            Some(&token),
        )?,
        200,
    )?;
    let id = user_id(host, &token)?;
    Ok((token, id))
}

/// An authenticator app: the TOTP code for `secret` (base32) at `offset`
/// steps from now.
pub fn totp_code(secret: &str, offset: i64) -> Result<String> {
    use identity_core::totp;
    let raw = totp::base32_decode(secret).context("base32 secret")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let at = now.saturating_add_signed(offset * totp::STEP_SECONDS as i64);
    Ok(totp::code_at(&raw, at))
}

/// The app's `default` database file, opened beside the running host (to
/// read what was stored, or to move recorded times back as if they had
/// passed).
pub fn database(host: &TestHost) -> Result<rusqlite::Connection> {
    let path = host
        .state
        .path()
        .join(gatehouse_host::runtime_config::DEFAULT_DB_FILE);
    let conn = rusqlite::Connection::open(path)?;
    // The app writes at the same time; wait for it rather than fail.
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// The first column of every row `sql` answers with `params`, read from
/// the app's `default` database (see [`database`]).
pub fn column<T: rusqlite::types::FromSql>(
    host: &TestHost,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<T>> {
    let conn = database(host)?;
    let mut statement = conn.prepare(sql)?;
    let rows = statement.query_map(params, |row| row.get::<_, T>(0))?;
    Ok(rows.collect::<Result<Vec<T>, _>>()?)
}

/// Runs `call` on `n` threads at once: every answer, in the threads'
/// order, or the first error once all have ended (a thread that panicked
/// is one).
pub fn concurrently<T: Send>(n: usize, call: impl Fn() -> Result<T> + Sync) -> Result<Vec<T>> {
    let ended: Vec<Result<T>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n).map(|_| scope.spawn(&call)).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a concurrent call panicked"))
                    .and_then(|answer| answer)
            })
            .collect()
    });
    ended.into_iter().collect()
}

/// An org and its admin's session.
pub struct Org {
    /// The org's id.
    pub id: String,
    /// The admin's session token.
    pub admin: String,
    /// The admin's user id.
    pub admin_id: String,
}

/// An org whose admin signs in as `email`.
pub fn org(host: &TestHost, email: &str, handle: &str) -> Result<Org> {
    let admin = signed_in(host, email)?;
    let created = expect(
        post(
            host,
            "/v1/orgs",
            &json!({"name": handle, "handle": handle}),
            Some(&admin),
        )?,
        201,
    )?;
    Ok(Org {
        id: created["id"].as_str().context("id")?.to_string(),
        admin_id: user_id(host, &admin)?,
        admin,
    })
}

/// Forgot → mailed link → reset: sets `email`'s password to `password`.
pub fn reset_password(host: &TestHost, email: &str, password: &str) -> Result<()> {
    expect(
        post(
            host,
            "/v1/auth/password/forgot",
            &json!({"email": email}),
            None,
        )?,
        202,
    )?;
    let reset = mailed_token(host, email, "reset_password", "grt_")?;
    expect(
        post(
            host,
            "/v1/auth/password/reset",
            &json!({"token": reset, "password": password}),
            None,
        )?,
        200,
    )?;
    Ok(())
}

/// The seconds a `429`'s `Retry-After` asks for.
pub fn retry_after(reply: &Reply) -> Result<i64> {
    Ok(reply
        .header("retry-after")
        .context("retry-after")?
        .parse()?)
}

/// A problem document's code, and its first field error's pointer and
/// code, after checking its status and media type.
pub fn problem(reply: Reply, status: u16) -> Result<(String, String, String)> {
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "{}",
        reply.text()
    );
    let body = expect(reply, status)?;
    let field = &body["errors"][0];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    Ok((
        text(&body["code"]),
        text(&field["pointer"]),
        text(&field["code"]),
    ))
}

/// A team of `org` named `name` (below `parent`, if given), made by its
/// admin; its id.
pub fn team(host: &TestHost, org: &Org, name: &str, parent: Option<&str>) -> Result<String> {
    let team = expect(
        post(
            host,
            &format!("/v1/orgs/{}/teams", org.id),
            &json!({"name": name, "parent_team_id": parent}),
            Some(&org.admin),
        )?,
        201,
    )?;
    Ok(team["id"].as_str().context("team id")?.to_string())
}

/// A role named `role` of `org` holding `permissions`, made by its admin.
pub fn role(host: &TestHost, org: &Org, role: &str, permissions: &[&str]) -> Result<()> {
    expect(
        post(
            host,
            "/v1/roles",
            &json!({"name": role, "permissions": permissions}),
            Some(&org.admin),
        )?,
        201,
    )?;
    Ok(())
}

/// An API key of `org` holding a new role `role` with `permissions`.
pub fn role_key(host: &TestHost, org: &Org, name: &str, permissions: &[&str]) -> Result<String> {
    role(host, org, name, permissions)?;
    let made = expect(
        post(
            host,
            "/v1/keys",
            &json!({"name": format!("{name}-agent"), "roles": [name]}),
            Some(&org.admin),
        )?,
        201,
    )?;
    Ok(made["key"].as_str().context("key")?.to_string())
}

/// The app with its LLM providers and HTTP tools allowed on loopback, as
/// a deployment that runs them beside Gatehouse would set it.
pub fn start_app_with_local_tools() -> Result<TestHost> {
    let var = |name: &str, value: &str| (format!("SPIN_VARIABLE_{name}"), value.to_string());
    start_app_with(vec![
        var("LLM_OUTBOUND_HOSTS", "http://127.0.0.1:*"),
        var("LLM_ALLOW_PRIVATE_HOSTS", "true"),
        var("TOOL_OUTBOUND_HOSTS", "http://127.0.0.1:*"),
        var("TOOL_ALLOW_PRIVATE_HOSTS", "true"),
    ])
}

/// A role named `role` holding `permissions`, granted to `user`.
pub fn grant(
    host: &TestHost,
    org: &Org,
    user: &str,
    role_name: &str,
    permissions: &[&str],
) -> Result<()> {
    role(host, org, role_name, permissions)?;
    let role = role_name;
    let granted = call(
        host,
        "PUT",
        &format!("/v1/roles/{role}/members/{user}"),
        None,
        Some(&org.admin),
        &[],
    )?;
    assert!(
        matches!(granted.status, 200 | 201 | 204),
        "{}",
        granted.text()
    );
    Ok(())
}
