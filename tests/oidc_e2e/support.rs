//! What the OIDC end-to-end tests share: the app with its OIDC settings,
//! a real provider (panva's `oidc-provider`), a browser signing in, and a
//! stand-in server that answers with a fixed discovery document and
//! counts the connections made to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use gatehouse_tests::app::{MASTER_KEY, call, expect, post, python};
use gatehouse_tests::{HostConfig, TestHost, root};
use serde_json::{Value, json};

pub const API: &str = "https://api.acme.test";
pub const WEB_SECRET: &str = "web-client-secret-of-forty-characters-000";
pub const SERVICE_SECRET: &str = "service-client-secret-of-forty-characters";

/// The provider process, stopped on drop.
pub struct IdentityProvider {
    pub issuer: String,
    child: Child,
}

impl Drop for IdentityProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl IdentityProvider {
    pub fn start(port: u16, clients: &Value, accounts: &Value) -> Result<IdentityProvider> {
        let dir = root().join("tests/oidc-provider");
        if !dir.join("node_modules/oidc-provider").exists() {
            bail!("run `npm ci` in tests/oidc-provider (.ci/run does)");
        }
        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(&dir)
            .env("PORT", port.to_string())
            .env("CLIENTS", clients.to_string())
            .env("ACCOUNTS", accounts.to_string())
            .env("AUDIENCE", API)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("node is needed for the OpenID provider")?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if !line.starts_with("listening ") {
            let _ = child.kill();
            bail!("the provider did not start: {line}");
        }
        Ok(IdentityProvider {
            issuer: format!("http://127.0.0.1:{port}"),
            child,
        })
    }

    /// A client-credentials access token (a JWT for the API) of `client`.
    pub fn client_token(&self, client: &str, secret: &str) -> Result<String> {
        const SCRIPT: &str = r#"
import base64, json, sys, urllib.parse, urllib.request
d = json.load(sys.stdin)
body = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": "api:read"}).encode()
req = urllib.request.Request(d["url"], data=body)
req.add_header("Authorization", "Basic " + base64.b64encode((d["client"] + ":" + d["secret"]).encode()).decode())
print(urllib.request.urlopen(req).read().decode())
"#;
        let reply = python(
            SCRIPT,
            &json!({"url": format!("{}/token", self.issuer), "client": client, "secret": secret}),
        )?;
        Ok(reply["access_token"]
            .as_str()
            .context("access_token")?
            .to_string())
    }

    /// The token endpoint's answer (`id_token`, `access_token`) to a code
    /// flow of `client` signing in as `account`, run against the provider
    /// alone: the browser stops at `redirect_uri` and redeems the code
    /// itself, as any app holding the client could.
    pub fn code_flow_tokens(
        &self,
        client: &str,
        secret: &str,
        redirect_uri: &str,
        account: &str,
    ) -> Result<Value> {
        const SCRIPT: &str = r#"
import base64, hashlib, http.cookiejar, json, secrets, sys, urllib.error, urllib.parse, urllib.request
d = json.load(sys.stdin)
verifier = secrets.token_urlsafe(48)
challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
found = []
class Stop(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if newurl.startswith(d["redirect_uri"]):
            found.append(newurl)
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), Stop)
def go(req):
    try:
        return opener.open(req).geturl()
    except urllib.error.HTTPError as e:
        return e.geturl()
query = urllib.parse.urlencode({"response_type": "code", "client_id": d["client"], "redirect_uri": d["redirect_uri"],
    "scope": "openid email", "state": secrets.token_urlsafe(16), "nonce": secrets.token_urlsafe(16),
    "code_challenge": challenge, "code_challenge_method": "S256"})
url = go(urllib.request.Request(d["issuer"] + "/auth?" + query))
for prompt in ["login", "consent"]:
    if found or "/interaction/" not in url:
        break
    form = {"prompt": prompt}
    if prompt == "login":
        form.update({"login": d["account"], "password": "any"})
    url = go(urllib.request.Request(url, data=urllib.parse.urlencode(form).encode()))
code = urllib.parse.parse_qs(urllib.parse.urlparse(found[0]).query)["code"][0]
body = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code,
    "redirect_uri": d["redirect_uri"], "code_verifier": verifier}).encode()
req = urllib.request.Request(d["issuer"] + "/token", data=body)
req.add_header("Authorization", "Basic " + base64.b64encode((d["client"] + ":" + d["secret"]).encode()).decode())
print(urllib.request.urlopen(req).read().decode())
"#;
        python(
            SCRIPT,
            &json!({"issuer": self.issuer, "client": client, "secret": secret,
                    "redirect_uri": redirect_uri, "account": account}),
        )
    }
}

/// What the browser saw at the end of a sign-in.
pub struct Browsed {
    pub status: u16,
    pub body: Value,
    /// The callback URL the provider sent the browser to.
    pub callback: String,
}

/// A browser signing in as `account` at the provider, starting at
/// `start_url` (with a Gatehouse session when `link` is given).
pub fn browse(start_url: &str, account: &str, link: Option<&str>) -> Result<Browsed> {
    const SCRIPT: &str = r#"
import http.cookiejar, json, sys, urllib.error, urllib.parse, urllib.request
d = json.load(sys.stdin)
seen = []
class Trace(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        seen.append(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), Trace)
def go(req):
    try:
        r = opener.open(req)
        return r.status, r.geturl(), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.geturl(), e.read().decode()
start = urllib.request.Request(d["start"])
if d.get("link"):
    # Only Gatehouse's /start gets the session, not the provider.
    start.add_unredirected_header("Authorization", "Bearer " + d["link"])
status, url, body = go(start)
for prompt in ["login", "consent"]:
    if "/interaction/" not in url:
        break
    form = {"prompt": prompt}
    if prompt == "login":
        form.update({"login": d["account"], "password": "any"})
    status, url, body = go(urllib.request.Request(url, data=urllib.parse.urlencode(form).encode()))
callback = next((u for u in seen if "/callback" in u), "")
try:
    parsed = json.loads(body)
except ValueError:
    parsed = {"text": body[:500]}
print(json.dumps({"status": status, "body": parsed, "callback": callback}))
"#;
    let out = python(
        SCRIPT,
        &json!({"start": start_url, "account": account, "link": link}),
    )?;
    Ok(Browsed {
        status: out["status"].as_u64().unwrap_or_default() as u16,
        body: out["body"].clone(),
        callback: out["callback"].as_str().unwrap_or_default().to_string(),
    })
}

/// The app as the provider tests run it: providers on this machine
/// (`http://127.0.0.1:*`), which the operator allows.
pub fn start_app() -> Result<TestHost> {
    start_app_with(Some("http://127.0.0.1:*"), Some("true"))
}

/// The app with the two OIDC settings (`None`: spin.toml's default).
pub fn start_app_with(outbound: Option<&str>, allow_private: Option<&str>) -> Result<TestHost> {
    start_app_env(outbound, allow_private, &[])
}

/// [`start_app_with`] and more `SPIN_VARIABLE_*` values.
pub fn start_app_env(
    outbound: Option<&str>,
    allow_private: Option<&str>,
    more: &[(&str, &str)],
) -> Result<TestHost> {
    let mut config = HostConfig::new(root().join("spin.toml"));
    config.migrations = Some(root().join("infra/migrations"));
    config.env = vec![
        ("SPIN_VARIABLE_DEV_OUTBOX".into(), "enabled".into()),
        ("SPIN_VARIABLE_MASTER_KEY".into(), MASTER_KEY.into()),
    ];
    for (name, value) in [
        ("SPIN_VARIABLE_OIDC_OUTBOUND_HOSTS", outbound),
        ("SPIN_VARIABLE_OIDC_ALLOW_PRIVATE_ISSUERS", allow_private),
    ] {
        if let Some(value) = value {
            config.env.push((name.into(), value.into()));
        }
    }
    for (name, value) in more {
        config
            .env
            .push((format!("SPIN_VARIABLE_{name}"), (*value).into()));
    }
    TestHost::start(config)
}

pub fn whoami(host: &TestHost, token: &str, org: Option<&str>) -> Result<gatehouse_tests::Reply> {
    let headers: Vec<(&str, &str)> = org.map(|o| vec![("x-org", o)]).unwrap_or_default();
    call(host, "GET", "/v1/auth/whoami", None, Some(token), &headers)
}

pub fn new_org(host: &TestHost, admin: &str, handle: &str) -> Result<String> {
    let org = expect(
        post(
            host,
            "/v1/orgs",
            &json!({"name": handle, "handle": handle}),
            Some(admin),
        )?,
        201,
    )?;
    Ok(org["id"].as_str().context("org id")?.to_string())
}

/// `POST /v1/oidc/providers` in the caller's only org.
pub fn create_provider(
    host: &TestHost,
    admin: &str,
    body: &Value,
) -> Result<gatehouse_tests::Reply> {
    post(host, "/v1/oidc/providers", body, Some(admin))
}

/// `PATCH /v1/oidc/providers/{name}` in the caller's only org.
pub fn patch_provider(
    host: &TestHost,
    admin: &str,
    name: &str,
    body: &Value,
) -> Result<gatehouse_tests::Reply> {
    call(
        host,
        "PATCH",
        &format!("/v1/oidc/providers/{name}"),
        Some(body),
        Some(admin),
        &[],
    )
}

/// The codes of an answer's `warnings`.
pub fn warning_codes(provider: &Value) -> Vec<String> {
    provider["warnings"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|w| w["code"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts a `422` that refuses the issuer, and returns its detail.
pub fn refused_issuer(reply: gatehouse_tests::Reply) -> Result<String> {
    let problem = expect(reply, 422)?;
    let at_issuer = problem["errors"]
        .as_array()
        .context("errors")?
        .iter()
        .any(|e| e["pointer"] == "/issuer" && e["code"] == "not_allowed");
    assert!(at_issuer, "{problem}");
    Ok(problem["detail"].as_str().unwrap_or_default().to_string())
}

/// A server on loopback answering every request with the JSON document
/// `document(port)` makes, and counting the connections it is sent.
pub struct StandIn {
    /// Its port.
    pub port: u16,
    connections: Arc<AtomicUsize>,
}

impl StandIn {
    /// Starts one.
    pub fn start(document: impl Fn(u16) -> Value) -> Result<StandIn> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let body = document(port).to_string();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Ok(StandIn { port, connections })
    }

    /// How many connections it has been sent.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}
