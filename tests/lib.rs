//! Test harness: the workspace's paths, a local host serving a manifest on
//! an ephemeral port, a real `redis-server` on a free port, and an HTTP
//! client that never treats a status as an error.

pub mod app;
pub mod fake_http;
pub mod guarded;
pub mod openai_api;
pub mod stripe_api;
pub mod webhook_signers;

use anyhow::{Context, Result, bail};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Cargo's target directory for this build.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Where compiled components are cached across tests and runs.
pub fn cache_dir() -> PathBuf {
    target_dir().join("cwasm-cache")
}

/// A built guest component, or a clear error saying how to build it.
pub fn wasm(name: &str) -> Result<PathBuf> {
    let path = target_dir()
        .join("wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    if !path.exists() {
        bail!("{} is missing: run scripts/build first", path.display());
    }
    Ok(path)
}

/// The host binary built with the `host` profile.
pub fn host_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test-binary>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test binary location")?;
    let bin = profile_dir.join("gatehouse-host");
    if !bin.exists() {
        bail!(
            "{} is missing: run `cargo build --profile host -p gatehouse-host` (scripts/test does)",
            bin.display()
        );
    }
    Ok(bin)
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a unique directory under the system temp dir.
    pub fn new(tag: &str) -> Result<TempDir> {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("gatehouse-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // (An empty path is a directory handed on to another owner.)
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// How to start a [`TestHost`].
pub struct HostConfig {
    /// The manifest to serve.
    pub manifest: PathBuf,
    /// A runtime-config file, if any.
    pub runtime_config: Option<PathBuf>,
    /// Migrations to apply to the `default` database before serving.
    pub migrations: Option<PathBuf>,
    /// `SPIN_VARIABLE_*` values visible to the host.
    pub env: Vec<(String, String)>,
    /// The host's `--request-timeout`, if any.
    pub request_timeout: Option<Duration>,
    /// Instance reuse: [`instance_reuse_from_env`] unless a test needs
    /// one setting whatever the suite runs with.
    pub instances: gatehouse_host::instances::InstanceReuse,
    /// Run due background jobs this often (the host's `--jobs-every`).
    pub jobs_every: Option<Duration>,
    /// Give guests a wall clock the test moves (the host's
    /// `--controllable-clock`; see [`TestHost::set_clock`]).
    pub controllable_clock: bool,
}

/// The instance reuse the suite runs with: `GATEHOUSE_INSTANCE_REUSE=off`
/// gives every request a fresh instance; unset or `spin`, Spin's defaults
/// (128 requests an instance, 16 at once, 1 s idle). `scripts/test` runs
/// the end-to-end suites both ways.
pub fn instance_reuse_from_env() -> gatehouse_host::instances::InstanceReuse {
    use gatehouse_host::instances::InstanceReuse;
    match std::env::var("GATEHOUSE_INSTANCE_REUSE").as_deref() {
        Ok("off") => InstanceReuse::OFF,
        Ok("spin") | Ok("") | Err(_) => InstanceReuse::default(),
        Ok(other) => panic!("GATEHOUSE_INSTANCE_REUSE={other}: use `off` or `spin`"),
    }
}

impl HostConfig {
    /// Serves `manifest` with no runtime config, migrations or variables.
    pub fn new(manifest: impl Into<PathBuf>) -> HostConfig {
        HostConfig {
            manifest: manifest.into(),
            runtime_config: None,
            migrations: None,
            env: Vec::new(),
            request_timeout: None,
            instances: instance_reuse_from_env(),
            jobs_every: None,
            controllable_clock: false,
        }
    }
}

/// The local host serving an app in this process, on 127.0.0.1:<free port>.
pub struct TestHost {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The state directory (`.spin` equivalent).
    pub state: TempDir,
    /// The app being served (for what only the host can tell).
    pub runtime: Arc<gatehouse_host::Runtime>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestHost {
    /// Loads the app and starts serving; fails as the host would at load.
    pub fn start(config: HostConfig) -> Result<TestHost> {
        Self::start_in(config, TempDir::new("state")?)
    }

    /// Stops this host and serves `config` on the same state (its
    /// databases and files), on a new port: as an operator redeploys with
    /// changed variables. The guests' clock starts again from the real one.
    pub fn restart(mut self, config: HostConfig) -> Result<TestHost> {
        self.stop();
        let state = std::mem::replace(&mut self.state, TempDir(PathBuf::new()));
        drop(self);
        Self::start_in(config, state)
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn start_in(config: HostConfig, state: TempDir) -> Result<TestHost> {
        if let Some(dir) = &config.migrations {
            let db = state
                .path()
                .join(gatehouse_host::runtime_config::DEFAULT_DB_FILE);
            gatehouse_host::migrate::apply_file(&db, dir)?;
        }
        let opts = gatehouse_host::LoadOptions {
            manifest: config.manifest.clone(),
            runtime_config: config.runtime_config.clone(),
            state_dir: state.path().to_path_buf(),
            cache_dir: cache_dir(),
            env: Vec::new(),
            instances: config.instances,
            request_timeout: config.request_timeout,
            controllable_clock: config.controllable_clock,
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        // Links and the issuer name the address actually served, unless
        // the test sets them.
        let mut env = config.env;
        if !env
            .iter()
            .any(|(k, _)| k == "SPIN_VARIABLE_PUBLIC_BASE_URL")
        {
            env.push((
                "SPIN_VARIABLE_PUBLIC_BASE_URL".into(),
                format!("http://{addr}"),
            ));
        }
        let env = Arc::new(env);
        let runtime = rt.block_on(async {
            let env = env.clone();
            let lookup =
                move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            gatehouse_host::Runtime::load(&opts, &lookup).await
        })?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = runtime.clone();
        let thread = std::thread::spawn(move || {
            let options = gatehouse_host::ServeOptions {
                quiet: true,
                jobs_every: config.jobs_every,
            };
            let _ = rt.block_on(gatehouse_host::serve(runtime, listener, options, async {
                let _ = rx.await;
            }));
        });
        Ok(TestHost {
            base: format!("http://{addr}"),
            state,
            runtime: served,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sets the guests' wall clock to `now` (unix seconds), through the
    /// host's `PUT /.host/clock`; the host must run with
    /// [`HostConfig::controllable_clock`].
    pub fn set_clock(&self, now: i64) -> Result<()> {
        self.move_clock(serde_json::json!({ "now": now }))
    }

    /// Moves the guests' wall clock by `seconds` (back when negative).
    pub fn advance_clock(&self, seconds: i64) -> Result<()> {
        self.move_clock(serde_json::json!({ "advance_seconds": seconds }))
    }

    fn move_clock(&self, change: serde_json::Value) -> Result<()> {
        let reply = send(
            "PUT",
            &self.url("/.host/clock"),
            &[("content-type", "application/json")],
            change.to_string().as_bytes(),
        )?;
        // Without the flag the path is the app's, which may answer too.
        let moved = reply.status == 200 && reply.json().is_ok_and(|r| r["now"].is_i64());
        if !moved {
            bail!(
                "PUT /.host/clock {change}: {} {} (is HostConfig::controllable_clock set?)",
                reply.status,
                reply.text()
            );
        }
        Ok(())
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("body is not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The body as text, for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn read(res: ureq::http::Response<ureq::Body>) -> Result<Reply> {
    let status = res.status().as_u16();
    let headers = res
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let body = res.into_body().read_to_vec()?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// `GET url` with extra headers.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Result<Reply> {
    let mut req = agent().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    read(req.call()?)
}

/// `method url` with a body and extra headers.
pub fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Reply> {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(body.to_vec())?;
    read(agent().run(req)?)
}

/// A free TCP port on 127.0.0.1 for a server a test starts later (Node,
/// redis-server, the host binary), never handed out twice in this process.
/// It is drawn below the kernel's ephemeral range (32768 and up on Linux):
/// a port the kernel picks for port 0 is also the kind it gives outgoing
/// connections, so another test's client socket could take it between
/// this check and the server's own bind.
pub fn free_port() -> Result<u16> {
    use std::hash::{BuildHasher, Hasher};
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    for _ in 0..200 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        let port = 20_000 + (hasher.finish() % 12_000) as u16;
        let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
        if given.contains(&port) || TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        given.push(port);
        return Ok(port);
    }
    bail!("no free port between 20000 and 32000")
}

/// A `redis-server` on a free loopback port, stopped on drop.
pub struct RedisServer {
    /// `redis://127.0.0.1:<port>`.
    pub url: String,
    child: Child,
    _dir: TempDir,
}

impl RedisServer {
    /// Starts `redis-server` (from PATH) with persistence off and waits until it answers.
    pub fn start() -> Result<RedisServer> {
        let dir = TempDir::new("redis")?;
        let port = free_port()?;
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start redis-server (install it: apt-get install redis-server)")?;
        let url = format!("redis://127.0.0.1:{port}");
        let server = RedisServer {
            url,
            child,
            _dir: dir,
        };
        let client = redis::Client::open(server.url.as_str())?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut conn) = client.get_connection()
                && redis::cmd("PING").query::<String>(&mut conn).is_ok()
            {
                return Ok(server);
            }
            if Instant::now() > deadline {
                bail!("redis-server did not answer on {}", server.url);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A synchronous connection for assertions.
    pub fn connection(&self) -> Result<redis::Connection> {
        Ok(redis::Client::open(self.url.as_str())?.get_connection()?)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A one-route HTTP/1.1 server on loopback answering every request with
/// `body`, for outbound-request tests. Returns its address.
pub fn static_server(body: &'static str) -> Result<SocketAddr> {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Ok(addr)
}
