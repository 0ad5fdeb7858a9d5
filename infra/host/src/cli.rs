//! The command line. `gatehouse-host` without a subcommand, or with `up`,
//! serves the app and takes `spin up`'s flags, so a command that works
//! against Spin works here too; `migrate` and `bench` are the host's own.

use clap::{Args, Parser, Subcommand};
use gatehouse_host::instances::{
    InstanceReuse, Spread, parse_count_spread, parse_duration, parse_duration_spread,
};
use gatehouse_host::{ConnectionLimits, LoadOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Runs a Spin app's components from spin.toml on wasmtime.
#[derive(Debug, Parser)]
#[command(
    name = "gatehouse-host",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub up: UpArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the app (the default; flags follow `spin up`).
    Up(UpArgs),
    /// Apply the SQL migrations to a database and exit.
    Migrate(MigrateArgs),
    /// Measure the host's own per-request cost in-process, without sockets.
    Bench(BenchArgs),
}

/// What every subcommand needs to load the app.
#[derive(Debug, Args)]
pub struct AppArgs {
    /// The application manifest.
    #[arg(
        short = 'f',
        long = "from",
        alias = "manifest",
        value_name = "FILE",
        default_value = "spin.toml"
    )]
    pub manifest: PathBuf,
    /// Spin runtime-config file choosing the store backends.
    #[arg(long, value_name = "FILE")]
    pub runtime_config_file: Option<PathBuf>,
    /// Directory of the default stores (Spin's `.spin`).
    #[arg(long, value_name = "DIR", default_value = ".spin")]
    pub state_dir: PathBuf,
    /// Where compiled components are cached [default: STATE_DIR/cache].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// SQL migrations applied at start, or `none` [default:
    /// infra/migrations beside the manifest, when it exists].
    #[arg(long, value_name = "DIR")]
    pub migrations: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub app: AppArgs,
    /// Address to listen on.
    #[arg(long, value_name = "ADDRESS", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// An environment variable for every component (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Do not log a line per request.
    #[arg(long)]
    pub quiet: bool,
    /// Run the app's due background jobs this often, e.g. 5s (calls
    /// POST /v1/admin/jobs/$run with the operator_token variable).
    #[arg(long, value_name = "DURATION", value_parser = parse_jobs_every, overrides_with = "jobs_every")]
    pub jobs_every: Option<Duration>,
    /// Tests only: guests read a wall clock that `PUT /.host/clock` sets
    /// or advances (anyone who can reach the host can move it).
    #[arg(long)]
    pub controllable_clock: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub instances: InstanceArgs,
}

/// Limits on clients: timeouts are seconds, fractions allowed.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Seconds a client has to send a request's headers [default: 10].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub header_read_timeout: Option<Duration>,
    /// Seconds an open connection may sit without a request [default: 30].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub idle_timeout: Option<Duration>,
    /// Seconds a client has to send a request's body [default: 30].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub body_timeout: Option<Duration>,
    /// Connections open at once; more wait in the listen backlog [default: 1024].
    #[arg(long, value_name = "N", value_parser = parse_max_connections, allow_negative_numbers = true)]
    pub max_connections: Option<usize>,
}

/// Instance reuse and the request deadline, as in Spin's HTTP trigger.
#[derive(Debug, Args)]
pub struct InstanceArgs {
    /// Requests one instance serves in all: N or a range a..b drawn per instance.
    #[arg(long, value_name = "N|A..B", value_parser = parse_count_spread, allow_negative_numbers = true, default_value = "128")]
    pub max_instance_reuse_count: Spread<usize>,
    /// Requests one instance serves at once: N or a range a..b drawn per instance.
    #[arg(long, value_name = "N|A..B", value_parser = parse_count_spread, allow_negative_numbers = true, default_value = "16")]
    pub max_instance_concurrent_reuse_count: Spread<usize>,
    /// How long an idle instance is kept, e.g. 1s or 500ms..2s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_spread, default_value = "1s")]
    pub idle_instance_timeout: Spread<Duration>,
    /// Stop a request's guest once it has run this long, e.g. 5s or 500ms.
    #[arg(long, value_name = "DURATION", value_parser = parse_request_timeout, allow_negative_numbers = true)]
    pub request_timeout: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub app: AppArgs,
    /// The runtime config's SQLite database label.
    #[arg(long, value_name = "LABEL", default_value = "default")]
    pub database: String,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub app: AppArgs,
    /// Path requested, or `instantiate:<component>` to time instantiation alone.
    #[arg(long, default_value = "/v1/health/live")]
    pub path: String,
    /// Requests in all.
    #[arg(long, default_value_t = 20_000)]
    pub requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
}

impl AppArgs {
    pub fn load_options(
        &self,
        env: Vec<(String, String)>,
        instances: InstanceReuse,
    ) -> LoadOptions {
        LoadOptions {
            manifest: self.manifest.clone(),
            runtime_config: self.runtime_config_file.clone(),
            state_dir: self.state_dir.clone(),
            cache_dir: self
                .cache_dir
                .clone()
                .unwrap_or_else(|| self.state_dir.join("cache")),
            env,
            instances,
            request_timeout: None,
            controllable_clock: false,
        }
    }

    /// The migrations directory: `--migrations`, else `infra/migrations`
    /// beside the manifest when it exists; `none` disables migrations.
    pub fn migrations_dir(&self) -> Option<PathBuf> {
        match self.migrations.as_deref() {
            Some("none") => None,
            Some(dir) => Some(PathBuf::from(dir)),
            None => {
                let dir = self
                    .manifest
                    .parent()
                    .unwrap_or(Path::new("."))
                    .join("infra/migrations");
                dir.is_dir().then_some(dir)
            }
        }
    }
}

impl UpArgs {
    pub fn load_options(&self) -> LoadOptions {
        let i = &self.instances;
        let reuse = InstanceReuse {
            max_reuse: i.max_instance_reuse_count,
            max_concurrent: i.max_instance_concurrent_reuse_count,
            idle_timeout: i.idle_instance_timeout,
        };
        LoadOptions {
            request_timeout: i.request_timeout,
            controllable_clock: self.controllable_clock,
            ..self.app.load_options(self.env.clone(), reuse)
        }
    }

    /// Each flag overrides one default (see [`ConnectionLimits`] for why
    /// each default is what it is).
    pub fn connection_limits(&self) -> ConnectionLimits {
        let d = ConnectionLimits::default();
        let l = &self.limits;
        ConnectionLimits {
            header_read: l.header_read_timeout.unwrap_or(d.header_read),
            idle: l.idle_timeout.unwrap_or(d.idle),
            body: l.body_timeout.unwrap_or(d.body),
            max_connections: l.max_connections.unwrap_or(d.max_connections),
        }
    }
}

/// Timeouts between 1 ms and a day: zero would refuse every client, and an
/// unbounded one would bring back the clients the limits exist to drop.
fn parse_seconds(value: &str) -> Result<Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|s| (0.001..=86_400.0).contains(s))
        .map(Duration::from_secs_f64)
        .ok_or_else(|| "must be a number of seconds from 0.001 to 86400".to_string())
}

fn parse_max_connections(value: &str) -> Result<usize, String> {
    value
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0 && *n <= tokio::sync::Semaphore::MAX_PERMITS)
        .ok_or_else(|| "must be a positive whole number".to_string())
}

/// A zero deadline would stop every request before it starts.
fn parse_jobs_every(value: &str) -> Result<Duration, String> {
    parse_duration(value).and_then(|d| {
        if d >= Duration::from_millis(100) {
            Ok(d)
        } else {
            Err("must be at least 100ms".into())
        }
    })
}

fn parse_request_timeout(value: &str) -> Result<Duration, String> {
    parse_duration(value).and_then(|d| {
        if d.is_zero() {
            Err("must be longer than zero".to_string())
        } else {
            Ok(d)
        }
    })
}

fn parse_env(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err("must be KEY=VALUE".to_string()),
    }
}
