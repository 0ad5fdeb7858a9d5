//! The host as `scripts/up` runs it: a child process on the test's state
//! directory, which a client thread can SIGKILL the moment it reads an
//! answer.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use gatehouse_tests::app::MASTER_KEY;
use gatehouse_tests::{cache_dir, free_port, host_binary, root};
use serde_json::json;
use webhooks_core::SigningSecret;

/// `gatehouse-host up` on a state directory, killed on drop.
pub struct Host {
    child: Arc<Mutex<Child>>,
    base: String,
}

/// What sends the SIGKILL, shared with the client threads.
#[derive(Clone)]
pub struct Killer(Arc<Mutex<Child>>);

impl Killer {
    /// SIGKILL: no shutdown, no flush, no answer sent after it.
    pub fn kill(&self) -> Result<()> {
        let mut child = self.0.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        child.kill()?;
        Ok(())
    }
}

impl Host {
    /// Starts the host on a free port and waits until it answers.
    pub fn start(state: &Path) -> Result<Host> {
        let port = free_port()?;
        let base = format!("http://127.0.0.1:{port}");
        // A handler that is never called: the host runs no jobs unless
        // told to, so each dispatch job stays queued, to be counted; and
        // each new event takes the path it takes in production (the event
        // and its job in one transaction).
        let handlers = json!([
            {"provider": "stripe", "sources": ["*"], "types": ["*"], "url": "http://127.0.0.1:9/handler"},
            {"provider": "github", "sources": ["*"], "types": ["*"], "url": "http://127.0.0.1:9/handler"},
        ]);
        let handler_secret = SigningSecret::from_random(&[61u8; 32])?.to_whsec();
        let child = Command::new(host_binary()?)
            .args(["up", "--quiet", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--from")
            .arg(root().join("spin.toml"))
            .arg("--state-dir")
            .arg(state)
            .arg("--cache-dir")
            .arg(cache_dir())
            .env("SPIN_VARIABLE_MASTER_KEY", MASTER_KEY)
            .env("SPIN_VARIABLE_DEV_OUTBOX", "enabled")
            .env("SPIN_VARIABLE_PUBLIC_BASE_URL", &base)
            .env("SPIN_VARIABLE_WEBHOOK_HANDLERS", handlers.to_string())
            .env("SPIN_VARIABLE_WEBHOOK_HANDLER_HOSTS", "http://127.0.0.1:*")
            .env("SPIN_VARIABLE_WEBHOOK_HANDLER_SECRET", handler_secret)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let host = Host {
            child: Arc::new(Mutex::new(child)),
            base,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(reply) = gatehouse_tests::get(&host.url("/v1/health/live"), &[])
                && reply.status == 200
            {
                return Ok(host);
            }
            if let Some(status) = host.lock()?.try_wait()? {
                bail!("the host exited before it served: {status}");
            }
            ensure!(Instant::now() < deadline, "the host did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn killer(&self) -> Killer {
        Killer(self.child.clone())
    }

    /// Whether the process has ended.
    pub fn exited(&self) -> Result<bool> {
        Ok(self.lock()?.try_wait()?.is_some())
    }

    /// Kills it (if nothing did) and reaps it.
    pub fn stop(&self) -> Result<()> {
        let mut child = self.lock()?;
        let _ = child.kill();
        child.wait()?;
        Ok(())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Child>> {
        self.child
            .lock()
            .map_err(|_| anyhow::anyhow!("a thread panicked holding the host"))
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
