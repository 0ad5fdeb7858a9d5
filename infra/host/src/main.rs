//! `gatehouse-host`: serve a Spin app, apply its migrations, or measure the
//! host's own per-request overhead.
//!
//! `gatehouse-host --help` lists the subcommands and flags (see `cli.rs`).

mod cli;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Parser;
use cli::{AppArgs, BenchArgs, Cli, Command, MigrateArgs, UpArgs};
use gatehouse_host::instances::InstanceReuse;
use gatehouse_host::{
    LoadOptions, Runtime, ServeOptions, migrate, runtime_config::RuntimeConfig, serve_with_limits,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

// Every request allocates and frees a store, an instance's tables and many
// small host objects; mimalloc's thread-local free lists beat glibc's here.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout and succeed; a usage error
            // names the argument at fault and exits 1 like any other error.
            let _ = e.print();
            std::process::exit(if e.use_stderr() { 1 } else { 0 });
        }
    };
    let result = Ok(cli).and_then(|args: Cli| {
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

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        None => up(&cli.up).await,
        Some(Command::Up(args)) => up(&args).await,
        Some(Command::Migrate(args)) => migrate_cmd(&args),
        Some(Command::Bench(args)) => bench(&args).await,
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn apply_migrations(args: &AppArgs, label: &str, opts: &LoadOptions) -> Result<()> {
    let Some(dir) = args.migrations_dir() else {
        return Ok(());
    };
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

fn migrate_cmd(args: &MigrateArgs) -> Result<()> {
    let opts = args.app.load_options(Vec::new(), InstanceReuse::default());
    if args.app.migrations_dir().is_none() {
        bail!("no migrations directory (pass --migrations DIR)");
    }
    apply_migrations(&args.app, &args.database, &opts)
}

async fn up(args: &UpArgs) -> Result<()> {
    let opts = args.load_options();
    let limits = args.connection_limits();
    let listen = args.listen;
    apply_migrations(&args.app, "default", &opts)?;
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
        quiet: args.quiet,
        jobs_every: args.jobs_every,
    };
    serve_with_limits(runtime, listener, options, limits, shutdown_signal()).await?;
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
async fn bench(args: &BenchArgs) -> Result<()> {
    // Reuse off: the figure is the cost of a request on a fresh instance.
    let opts = args.app.load_options(Vec::new(), InstanceReuse::OFF);
    apply_migrations(&args.app, "default", &opts)?;
    let runtime = Runtime::load(&opts, &env).await?;
    let path = args.path.clone();
    let requests = args.requests;
    let concurrency = args.concurrency.max(1);
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
    let status = handled.response.status();
    // The whole answer, as a client would read it.
    let _ = http_body_util::BodyExt::collect(handled.response.into_body()).await;
    if !status.is_success() {
        bail!("{path} answered {status}");
    }
    Ok(())
}
