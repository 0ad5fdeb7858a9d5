//! `gatehouse-host`: serve a Spin app, apply its migrations, or measure the
//! host's own per-request overhead.
//!
//! ```text
//! gatehouse-host up       [--manifest spin.toml] [--listen 127.0.0.1:3000] [COMMON] [--quiet]
//! gatehouse-host migrate  [--manifest spin.toml] [COMMON] [--database default]
//! gatehouse-host bench    [--manifest spin.toml] [COMMON] --path /v1/health/live [--requests N] [--concurrency C]
//! COMMON: [--runtime-config-file FILE] [--state-dir .spin] [--cache-dir DIR] [--migrations DIR|none]
//! ```

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use gatehouse_host::{
    LoadOptions, Runtime, ServeOptions, migrate, runtime_config::RuntimeConfig, serve,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

// Every request allocates and frees a store, an instance's tables and many
// small host objects; mimalloc's thread-local free lists beat glibc's here.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    command: String,
    flags: HashMap<String, String>,
    switches: Vec<String>,
}

const SWITCHES: &[&str] = &["--quiet"];

fn parse_args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let command = it.next().unwrap_or_else(|| "up".into());
    let mut flags = HashMap::new();
    let mut switches = Vec::new();
    while let Some(arg) = it.next() {
        if SWITCHES.contains(&arg.as_str()) {
            switches.push(arg);
        } else if arg.starts_with("--") {
            let value = it.next().with_context(|| format!("{arg} needs a value"))?;
            flags.insert(arg, value);
        } else {
            bail!("unexpected argument `{arg}`");
        }
    }
    Ok(Args {
        command,
        flags,
        switches,
    })
}

impl Args {
    fn get(&self, name: &str) -> Option<&str> {
        self.flags.get(name).map(String::as_str)
    }

    fn load_options(&self) -> LoadOptions {
        let manifest = PathBuf::from(self.get("--manifest").unwrap_or("spin.toml"));
        let state_dir = PathBuf::from(self.get("--state-dir").unwrap_or(".spin"));
        let cache_dir = self
            .get("--cache-dir")
            .map(PathBuf::from)
            .unwrap_or_else(|| state_dir.join("cache"));
        LoadOptions {
            manifest,
            runtime_config: self.get("--runtime-config-file").map(PathBuf::from),
            state_dir,
            cache_dir,
        }
    }

    /// The migrations directory: `--migrations`, else `infra/migrations`
    /// beside the manifest when it exists; `none` disables migrations.
    fn migrations_dir(&self, manifest: &Path) -> Option<PathBuf> {
        match self.get("--migrations") {
            Some("none") => None,
            Some(dir) => Some(PathBuf::from(dir)),
            None => {
                let dir = manifest
                    .parent()
                    .unwrap_or(Path::new("."))
                    .join("infra/migrations");
                dir.is_dir().then_some(dir)
            }
        }
    }
}

fn main() {
    let result = parse_args().and_then(|args| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        rt.block_on(run(args))
    });
    if let Err(e) = result {
        // One line, whole cause chain: what failed and why.
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<()> {
    match args.command.as_str() {
        "up" => up(&args).await,
        "migrate" => migrate_cmd(&args),
        "bench" => bench(&args).await,
        other => bail!("unknown command `{other}` (expected up, migrate or bench)"),
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn apply_migrations(args: &Args, opts: &LoadOptions) -> Result<()> {
    let Some(dir) = args.migrations_dir(&opts.manifest) else {
        return Ok(());
    };
    let label = args.get("--database").unwrap_or("default");
    let config = RuntimeConfig::load(opts.runtime_config.as_deref(), &opts.state_dir)?;
    let db = config
        .sqlite
        .get(label)
        .with_context(|| format!("SQLite database `{label}` is not defined"))?;
    let report = migrate::apply_file(db, &dir)?;
    eprintln!(
        "migrations: {} already applied, {} applied now{}",
        report.already,
        report.applied.len(),
        if report.applied.is_empty() {
            String::new()
        } else {
            format!(" ({})", report.applied.join(", "))
        }
    );
    Ok(())
}

fn migrate_cmd(args: &Args) -> Result<()> {
    let opts = args.load_options();
    if args.migrations_dir(&opts.manifest).is_none() {
        bail!("no migrations directory (pass --migrations DIR)");
    }
    apply_migrations(args, &opts)
}

async fn up(args: &Args) -> Result<()> {
    let opts = args.load_options();
    let listen: SocketAddr = args
        .get("--listen")
        .unwrap_or("127.0.0.1:3000")
        .parse()
        .context("--listen must be an address such as 127.0.0.1:3000")?;
    apply_migrations(args, &opts)?;
    let started = Instant::now();
    let runtime = Runtime::load(&opts, &env).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!(
        "serving {} on http://{} (loaded in {} ms)",
        opts.manifest.display(),
        listener.local_addr()?,
        started.elapsed().as_millis()
    );
    let options = ServeOptions {
        quiet: args.switches.iter().any(|s| s == "--quiet"),
    };
    serve(runtime, listener, options, shutdown_signal()).await?;
    eprintln!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("shutting down: finishing open requests");
}

/// Drives requests through the runtime in-process (no sockets) and reports
/// the per-request cost: instance creation, the guest's handling, and
/// collecting the response body.
async fn bench(args: &Args) -> Result<()> {
    let opts = args.load_options();
    apply_migrations(args, &opts)?;
    let runtime = Runtime::load(&opts, &env).await?;
    let path = args.get("--path").unwrap_or("/v1/health/live").to_string();
    let requests: usize = args.get("--requests").unwrap_or("20000").parse()?;
    let concurrency: usize = args.get("--concurrency").unwrap_or("1").parse()?;
    let client: SocketAddr = "127.0.0.1:9".parse()?;

    // Warm up: first instantiations touch fresh pool slots.
    for _ in 0..200 {
        one(&runtime, &path, client).await?;
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let runtime = runtime.clone();
        let path = path.clone();
        let count = requests / concurrency + usize::from(worker < requests % concurrency);
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::with_capacity(count);
            for _ in 0..count {
                let t = Instant::now();
                one(&runtime, &path, client).await?;
                samples.push(t.elapsed());
            }
            anyhow::Ok(samples)
        }));
    }
    let mut samples = Vec::with_capacity(requests);
    for task in tasks {
        samples.extend(task.await??);
    }
    let elapsed = started.elapsed();
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "in-process {path}: {} requests, concurrency {concurrency}: {:.0} req/s, p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        samples.len(),
        samples.len() as f64 / elapsed.as_secs_f64(),
        us(pct(0.50)),
        us(pct(0.99)),
        us(*samples.last().unwrap_or(&Duration::ZERO)),
    );
    Ok(())
}

async fn one(runtime: &Arc<Runtime>, path: &str, client: SocketAddr) -> Result<()> {
    if let Some(id) = path.strip_prefix("instantiate:") {
        return runtime.instantiate_only(id).await;
    }
    let req = http::Request::get(path).body(http_body_util::Empty::<Bytes>::new())?;
    let handled = runtime.handle(req, client, "http://127.0.0.1").await;
    if !handled.response.status().is_success() {
        bail!("{path} answered {}", handled.response.status());
    }
    Ok(())
}
