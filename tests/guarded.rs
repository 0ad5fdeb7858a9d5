//! tests/guarded-app beside Gatehouse: the setup the guard and
//! gatehouse:client suites share. Gatehouse runs with an org and the app's
//! service key; the app runs on its own local host with `gatehouse_url`
//! pointing at Gatehouse.

use anyhow::{Context, Result};
use serde_json::json;
use std::sync::Mutex;

use crate::app::{Org, call, expect, org, post, role_key, start_app_with};
use crate::{HostConfig, TempDir, TestHost, get, root, target_dir};

/// The audience the guarded app accepts (its spin.toml's default).
pub const AUDIENCE: &str = "guarded-app";

/// What the app's service key holds: verifying keys for the guard and the
/// client component, authorization questions and quotas for callers.
pub const SERVICE_KEY_PERMISSIONS: &[&str] = &["keys:verify", "quotas:consume", "authz:check"];

/// Gatehouse, an org, and the app's service key, as an operator sets them
/// up for a guarded app.
pub struct Gatehouse {
    /// Gatehouse itself.
    pub host: TestHost,
    /// The org the app belongs to.
    pub org: Org,
    /// The app's API key at Gatehouse.
    pub service_key: String,
}

/// [`Gatehouse`] with `env` as more `SPIN_VARIABLE_*` values.
pub fn gatehouse_with(env: Vec<(String, String)>) -> Result<Gatehouse> {
    let host = start_app_with(env)?;
    let org = org(&host, "ada@example.com", "acme")?;
    let service_key = role_key(&host, &org, "guard", SERVICE_KEY_PERMISSIONS)?;
    Ok(Gatehouse {
        host,
        org,
        service_key,
    })
}

/// [`gatehouse_with`] with nothing more.
pub fn gatehouse() -> Result<Gatehouse> {
    gatehouse_with(Vec::new())
}

/// The app of `manifest` (under the repository root), its
/// `SPIN_VARIABLE_*` set from `vars` beside `gatehouse_url`, the issuer and
/// the service key (for the guard and for gatehouse:client); the returned
/// directory holds its spin.toml and must outlive the host.
pub fn app(
    manifest: &str,
    gh: &Gatehouse,
    vars: &[(&str, &str)],
    clock: bool,
) -> Result<(TestHost, TempDir)> {
    let text = std::fs::read_to_string(root().join(manifest))?;
    // Its sources name ../../target; the tests' target dir may be elsewhere.
    let target = target_dir().to_string_lossy().replace('\\', "/");
    let dir = TempDir::new("guarded-app")?;
    std::fs::write(
        dir.path().join("spin.toml"),
        text.replace("../../target", &target),
    )?;
    let mut config = HostConfig::new(dir.path().join("spin.toml"));
    config.controllable_clock = clock;
    let var = |name: &str, value: &str| (format!("SPIN_VARIABLE_{name}"), value.to_string());
    let issuer = issuer(&gh.host)?;
    // The first value of a name counts: the test's own come first.
    config.env = vars.iter().map(|(name, value)| var(name, value)).collect();
    config.env.extend([
        var("GATEHOUSE_URL", &gh.host.base),
        var("GUARD_ISSUER", &issuer),
        var("GUARD_SERVICE_KEY", &gh.service_key),
        var("GATEHOUSE_ISSUER", &issuer),
        var("GATEHOUSE_SERVICE_KEY", &gh.service_key),
    ]);
    // One start at a time: the first compiles the app's composition into
    // the cache the others then load, rather than every test compiling it
    // at once.
    static STARTING: Mutex<()> = Mutex::new(());
    let _one = STARTING.lock().unwrap_or_else(|e| e.into_inner());
    Ok((TestHost::start(config)?, dir))
}

/// tests/guarded-app, as [`app`] starts it.
pub fn guarded(gh: &Gatehouse, vars: &[(&str, &str)], clock: bool) -> Result<(TestHost, TempDir)> {
    app("tests/guarded-app/spin.toml", gh, vars, clock)
}

/// Gatehouse's JWT issuer, from its discovery document.
pub fn issuer(gatehouse: &TestHost) -> Result<String> {
    let discovery = expect(
        get(&gatehouse.url("/.well-known/openid-configuration"), &[])?,
        200,
    )?;
    Ok(discovery["issuer"].as_str().context("issuer")?.to_string())
}

/// A JWT for `credential` from Gatehouse's `POST /v1/tokens`.
pub fn jwt(gh: &Gatehouse, credential: &str, audience: &str) -> Result<String> {
    let issued = expect(
        post(
            &gh.host,
            "/v1/tokens",
            &json!({"audience": [audience]}),
            Some(credential),
        )?,
        200,
    )?;
    Ok(issued["access_token"]
        .as_str()
        .context("access_token")?
        .to_string())
}

/// The id of `credential`'s subject (`usr_…`, `key_…`), as Gatehouse's
/// whoami names it.
pub fn subject_id(gh: &Gatehouse, credential: &str) -> Result<String> {
    let me = expect(
        call(
            &gh.host,
            "GET",
            "/v1/auth/whoami",
            None,
            Some(credential),
            &[],
        )?,
        200,
    )?;
    Ok(me["subject"]["id"]
        .as_str()
        .context("subject id")?
        .to_string())
}
