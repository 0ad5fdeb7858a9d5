//! Webhook signatures made by the providers' own libraries: runs
//! tests/webhook-signers/sign.mjs (stripe, @octokit/webhooks-methods,
//! standardwebhooks) on a batch of jobs in one node process.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

use crate::root;

/// What `sign.mjs` answers for each job of `jobs` (a JSON array), in order.
pub fn run(jobs: Value) -> Result<Vec<Value>> {
    let dir = root().join("tests/webhook-signers");
    if !dir.join("node_modules/standardwebhooks").exists() {
        bail!("run `npm ci` in tests/webhook-signers (scripts/test does)");
    }
    let mut child = Command::new("node")
        .arg("sign.mjs")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("node is needed for the webhook signers")?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(jobs.to_string().as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("sign.mjs failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}
