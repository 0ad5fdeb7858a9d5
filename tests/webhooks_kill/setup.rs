//! The org and its two sources, made through the app's routes by the
//! suite's own helpers on an in-process host, then copied (`VACUUM INTO`,
//! a consistent snapshot) into the directory the killed host runs on.

use std::path::Path;

use anyhow::{Context, Result};
use gatehouse_host::runtime_config::{DEFAULT_DB_FILE, DEFAULT_KV_FILE};
use gatehouse_tests::TestHost;
use gatehouse_tests::app::{app_config, call, expect, org};
use serde_json::{Value, json};

pub const STRIPE_SECRET: &str = "whsec_stripe_secret_of_the_kill_test";
pub const GITHUB_SECRET: &str = "github secret of the kill test";

/// What the load needs: the admin's session and the sources' ids.
pub struct Setup {
    pub session: String,
    pub stripe: String,
    pub github: String,
}

fn source(host: &TestHost, session: &str, body: Value) -> Result<String> {
    let made = expect(
        call(
            host,
            "POST",
            "/v1/webhooks/sources",
            Some(&body),
            Some(session),
            &[],
        )?,
        201,
    )?;
    Ok(made["id"].as_str().context("source id")?.to_string())
}

/// Makes the org and sources and leaves their database in `state`.
pub fn prepare(state: &Path) -> Result<Setup> {
    let host = TestHost::start(app_config())?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let stripe = source(
        &host,
        &acme.admin,
        json!({"provider": "stripe", "secrets": [STRIPE_SECRET]}),
    )?;
    let github = source(
        &host,
        &acme.admin,
        json!({"provider": "github", "secrets": [GITHUB_SECRET]}),
    )?;
    for file in [DEFAULT_DB_FILE, DEFAULT_KV_FILE] {
        let from = host.state.path().join(file);
        if from.exists() {
            let conn = rusqlite::Connection::open(&from)?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            let to = state.join(file);
            conn.execute("VACUUM INTO ?1", [to.to_string_lossy()])?;
        }
    }
    Ok(Setup {
        session: acme.admin,
        stripe,
        github,
    })
}
