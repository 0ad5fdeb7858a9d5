//! The app at run time: compiled components, their grants, and the
//! dispatch of each request to an instance of the component its route
//! names (see [`crate::worker`] for how long instances live).

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use wasmtime::component::{Component as Compiled, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi_http::handler::{
    ExpirationError, InstantiationError, ProxyHandler, TrapOrPanicError,
};
use wasmtime_wasi_http::p3::bindings::ServicePre;

use crate::clock::ClockOffset;
use crate::instances::InstanceReuse;
use crate::kv::{KvBackend, PoolCache};
use crate::manifest::App;
use crate::outbound::HostPattern;
use crate::problem;
use crate::routes::{Route, RouteMatch, best_match};
use crate::runtime_config::RuntimeConfig;
use crate::spin_apis::{self, Grants};
use crate::sqlite_pool::Pool;
use crate::variables::Variables;
pub use crate::worker::InstanceStats;
use crate::worker::{CHAINED_CLIENT, Component, EPOCH_TICK, InstanceState, is_deadline, spin_view};

/// How to load an app.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Path of `spin.toml`.
    pub manifest: PathBuf,
    /// Spin runtime-config file choosing store backends.
    pub runtime_config: Option<PathBuf>,
    /// Directory of the default stores (Spin's `.spin`).
    pub state_dir: PathBuf,
    /// Where compiled components are cached.
    pub cache_dir: PathBuf,
    /// Environment variables of every component (Spin's `--env`).
    pub env: Vec<(String, String)>,
    /// How many requests an instance serves, at once and in all, and how
    /// long it may sit idle.
    pub instances: InstanceReuse,
    /// How long a guest may run for one request before it is stopped.
    pub request_timeout: Option<Duration>,
    /// Give guests a wall clock that `/.host/clock` moves (tests only;
    /// see [`crate::clock`]).
    pub controllable_clock: bool,
}

/// The body of every response the host sends: streamed from the guest as
/// it writes it, with the guest's own framing.
pub type Body = wasmtime_wasi_http::WasiBody;

/// How many `*.spin.internal` calls may be in flight at once, app-wide: a
/// component that calls itself in a loop runs into it instead of taking
/// every instance slot.
const MAX_INTERNAL_IN_FLIGHT: usize = 64;

/// A loaded, ready-to-serve app.
pub struct Runtime {
    components: HashMap<String, Loaded>,
    routes: Vec<(Route, String)>,
    databases: Arc<HashMap<String, Arc<Pool>>>,
    variables: HashMap<String, String>,
    request_timeout: Option<Duration>,
    internal_in_flight: AtomicUsize,
    clock: Option<ClockOffset>,
}

/// A component's dispatchers: one per core. An instance runs on one
/// thread at a time, so the requests that share one share a core; with a
/// dispatcher per core, a busy component has instances on every core
/// (each still serving up to the reuse limits, as under Spin).
struct Loaded {
    handlers: Vec<ProxyHandler<Component>>,
    next: AtomicUsize,
    public_route: Option<Route>,
}

impl Loaded {
    /// The dispatcher for the next request, in turn.
    fn handler(&self) -> &ProxyHandler<Component> {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        &self.handlers[turn % self.handlers.len()]
    }
}

/// A response from a guest (or the host), with what the log line needs.
pub struct Handled {
    /// The response to send.
    pub response: http::Response<Body>,
    /// The route that matched, if any.
    pub route: Option<String>,
    /// The component that handled it, if any.
    pub component: Option<String>,
}

/// The engine every component runs on: component-model async (WASI P3) and
/// a pooling allocator sized for a development or CI machine.
pub fn engine() -> Result<Engine> {
    engine_with(false)
}

/// The engine, with epoch interruption when `deadlines` is set: a guest
/// spinning in a loop never yields to the host, so only a check compiled
/// into its code can stop it.
pub fn engine_with(deadlines: bool) -> Result<Engine> {
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        .total_component_instances(256)
        .total_core_instances(1024)
        .total_memories(256)
        .total_tables(1024)
        .total_stacks(256)
        .max_memory_size(512 << 20)
        // Reset small, hot memories with memset instead of madvise: returning
        // pages to the kernel costs a TLB shootdown on every core per request.
        .linear_memory_keep_resident(4 << 20)
        .table_keep_resident(1 << 20)
        .async_stack_keep_resident(256 << 10)
        .decommit_batch_size(64)
        .pagemap_scan(wasmtime::Enabled::Auto);
    let mut config = Config::new();
    config
        .wasm_component_model_async(true)
        .epoch_interruption(deadlines)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    // `GATEHOUSE_PERFMAP=1` names the guests' compiled functions for
    // `perf` (a /tmp/perf-<pid>.map file); for profiling, never needed to run.
    if std::env::var_os("GATEHOUSE_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    Ok(Engine::new(&config)?)
}

/// A component compiled and linked, before the runtime exists.
struct Prepared {
    id: String,
    pre: ServicePre<InstanceState>,
    grants: Arc<Grants>,
    allowed_hosts: Arc<Vec<HostPattern>>,
    public_route: Option<Route>,
}

impl Runtime {
    /// Loads the manifest, checks every grant, resolves variables, compiles
    /// (or loads cached) components and pre-instantiates them. Any problem
    /// is an error naming the item at fault.
    pub async fn load(
        opts: &LoadOptions,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Arc<Runtime>> {
        let app = App::load(&opts.manifest)?;
        let config = RuntimeConfig::load(opts.runtime_config.as_deref(), &opts.state_dir)?;
        let variables = Variables::resolve(&app, env)?;
        check_labels(&app, &config)?;

        let mut pools = PoolCache::default();
        let mut kv_stores = HashMap::new();
        for label in app.key_value_labels() {
            if !kv_stores.contains_key(label) {
                let backend = KvBackend::open(label, &config.key_value[label], &mut pools).await?;
                kv_stores.insert(label.to_string(), backend);
            }
        }
        let mut databases = HashMap::new();
        for (label, path) in &config.sqlite {
            databases.insert(label.clone(), pools.get(path)?);
        }
        let kv_stores = Arc::new(kv_stores);
        let databases = Arc::new(databases);

        let engine = engine_with(opts.request_timeout.is_some())?;
        if opts.request_timeout.is_some() {
            start_epoch_ticker(&engine);
        }
        let mut linker: Linker<InstanceState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi::p3::add_to_linker(&mut linker)?;
        wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
        spin_apis::add_to_linker(&mut linker, spin_view)?;

        let mut prepared = Vec::new();
        // Only what a trigger names is a handler: a component serving only
        // as middleware or a dependency runs inside another's composition.
        let handlers = app
            .components
            .iter()
            .filter(|(id, _)| app.triggers.iter().any(|t| t.component == **id));
        for (id, decl) in handlers {
            let allowed_hosts = decl
                .allowed_outbound_hosts
                .iter()
                .map(|entry| entry.resolve(&variables))
                .collect::<Result<Vec<_>>>()
                .with_context(|| format!("component `{id}`"))?;
            let wasm = crate::compose::component_bytes(&app, id)?;
            let component = compile_cached(&engine, id, &decl.source, &wasm, &opts.cache_dir)?;
            let pre = linker
                .instantiate_pre(&component)
                .map_err(|e| anyhow::anyhow!("component `{id}` cannot be linked: {e}"))?;
            let pre = ServicePre::new(pre).map_err(|e| {
                anyhow::anyhow!("component `{id}` does not export wasi:http/handler@0.3.0: {e}")
            })?;
            let grants = Grants {
                kv_stores: kv_stores.clone(),
                databases: databases.clone(),
                kv_granted: decl.key_value_stores.clone(),
                db_granted: decl.sqlite_databases.clone(),
                variables: variables.for_component(&decl.variables),
            };
            let public_route = app
                .triggers
                .iter()
                .find(|t| t.component == *id)
                .and_then(|t| t.route.clone());
            prepared.push(Prepared {
                id: id.clone(),
                pre,
                grants: Arc::new(grants),
                allowed_hosts: Arc::new(allowed_hosts),
                public_route,
            });
        }
        let routes = app
            .triggers
            .iter()
            .filter_map(|t| t.route.clone().map(|r| (r, t.component.clone())))
            .collect();
        let env = Arc::new(opts.env.clone());
        let app_variables = variables.app_values();
        let dispatchers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let clock = opts.controllable_clock.then(ClockOffset::default);
        Ok(Arc::new_cyclic(|runtime: &Weak<Runtime>| {
            let components = prepared
                .into_iter()
                .map(|p| {
                    let component = Component {
                        id: p.id.clone(),
                        pre: p.pre,
                        grants: p.grants,
                        allowed_hosts: p.allowed_hosts,
                        env: env.clone(),
                        reuse: opts.instances,
                        request_timeout: opts.request_timeout,
                        runtime: runtime.clone(),
                        stats: Arc::default(),
                        clock: clock.clone(),
                    };
                    let loaded = Loaded {
                        handlers: (0..dispatchers)
                            .map(|_| ProxyHandler::new(component.clone()))
                            .collect(),
                        next: AtomicUsize::new(0),
                        public_route: p.public_route,
                    };
                    (p.id, loaded)
                })
                .collect();
            Runtime {
                components,
                routes,
                databases,
                variables: app_variables,
                request_timeout: opts.request_timeout,
                internal_in_flight: AtomicUsize::new(0),
                clock,
            }
        }))
    }

    /// The pool of a database label (used by migrations).
    pub fn database(&self, label: &str) -> Option<Arc<Pool>> {
        self.databases.get(label).cloned()
    }

    /// How many instances of component `id` were made, and the most
    /// requests one of them served at once.
    pub fn instance_stats(&self, id: &str) -> Option<InstanceStats> {
        self.components
            .get(id)
            .map(|loaded| loaded.handlers[0].state().stats.read())
    }

    /// The clock guests read, when `--controllable-clock` made it movable.
    pub fn clock(&self) -> Option<&ClockOffset> {
        self.clock.as_ref()
    }

    /// The value of an application variable, as components would read it.
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.variables.get(name).map(String::as_str)
    }

    /// Handles one request from the network.
    pub async fn handle<B>(
        self: &Arc<Self>,
        req: http::Request<B>,
        client: SocketAddr,
        origin: &str,
    ) -> Handled
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let path = req.uri().path().to_string();
        let Some((matched, id)) =
            best_match(self.routes.iter().map(|(r, id)| (r, id.clone())), &path)
        else {
            return Handled {
                response: problem::not_found(),
                route: None,
                component: None,
            };
        };
        let route = Some(matched.raw.clone());
        let response = self.execute(&id, req, Some(matched), client, origin).await;
        Handled {
            response,
            route,
            component: Some(id),
        }
    }

    /// Runs `req` through an instance of component `id` (a reused one when
    /// one has room); a trap or guest error becomes a 500 problem document
    /// and is logged, a request past the timeout a 503.
    pub fn execute<B>(
        self: &Arc<Self>,
        id: &str,
        mut req: http::Request<B>,
        matched: Option<RouteMatch>,
        client: SocketAddr,
        origin: &str,
    ) -> impl Future<Output = http::Response<Body>> + Send + 'static + use<B>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let runtime = self.clone();
        let id = id.to_string();
        let prepared = self.components.get(&id).map(|loaded| {
            let matched = matched
                .unwrap_or_else(|| internal_match(loaded.public_route.as_ref(), req.uri().path()));
            set_spin_headers(&mut req, &matched, client, origin);
            (
                loaded.handler().clone(),
                req.map(|body| body.map_err(Into::into).boxed_unsync()),
            )
        });
        async move {
            let Some((handler, req)) = prepared else {
                return problem::not_found();
            };
            let started = Instant::now();
            match handler.handle((), req).await {
                Ok(response) => response,
                Err(e) => runtime.failure(&id, &e, started.elapsed()),
            }
        }
    }

    /// The answer for a request whose guest gave none.
    fn failure(&self, id: &str, e: &wasmtime::Error, took: Duration) -> http::Response<Body> {
        let timed_out = e.downcast_ref::<ExpirationError>().is_some()
            || is_deadline(e)
            || (e.downcast_ref::<TrapOrPanicError>().is_some()
                && self.request_timeout.is_some_and(|limit| took >= limit));
        if timed_out {
            eprintln!("component `{id}`: a request ran past the request timeout");
            return problem::deadline_passed();
        }
        if let Some(failed) = e.downcast_ref::<InstantiationError<()>>() {
            eprintln!(
                "component `{id}` could not be instantiated: {}",
                failed.error
            );
        } else if e.downcast_ref::<TrapOrPanicError>().is_none() {
            // A trap is logged once, with its cause, as its instance ends.
            let cause = e
                .chain()
                .last()
                .map(ToString::to_string)
                .unwrap_or_default();
            eprintln!("component `{id}` failed: {e}: {cause}");
        }
        problem::internal()
    }

    /// A `*.spin.internal` call from a component: dispatched in-process to
    /// `target`, as Spin does, from the chained-request address.
    pub(crate) fn call_internal(
        self: &Arc<Self>,
        target: &str,
        req: http::Request<Body>,
    ) -> Option<impl Future<Output = http::Response<Body>> + Send + 'static + use<>> {
        let taken = self.internal_in_flight.fetch_add(1, Ordering::AcqRel);
        if taken >= MAX_INTERNAL_IN_FLIGHT {
            self.internal_in_flight.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let origin = format!(
            "{}://{}",
            req.uri().scheme_str().unwrap_or("http"),
            req.uri().authority().map(|a| a.as_str()).unwrap_or(target)
        );
        let call = self.execute(target, req, None, CHAINED_CLIENT, &origin);
        let runtime = self.clone();
        Some(async move {
            let response = call.await;
            runtime.internal_in_flight.fetch_sub(1, Ordering::AcqRel);
            response
        })
    }

    /// Creates a store and an instance of `id` without calling it: the
    /// fixed part of every request's cost, measured by `bench`.
    pub async fn instantiate_only(self: &Arc<Self>, id: &str) -> Result<()> {
        let loaded = self.components.get(id).context("no such component")?;
        let component = loaded.handlers[0].state();
        let mut store = component.new_store();
        let _service = component.pre.instantiate_async(&mut store).await?;
        Ok(())
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] for as long as the
/// engine lives; the thread ends with the last runtime using it.
fn start_epoch_ticker(engine: &Engine) {
    let engine = engine.weak();
    std::thread::spawn(move || {
        while let Some(engine) = engine.upgrade() {
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(EPOCH_TICK);
        }
    });
}

/// What Spin sets for a request that reached a component without a public
/// route match (a `*.spin.internal` call): the whole path is path info.
fn internal_match(route: Option<&Route>, path: &str) -> RouteMatch {
    route
        .and_then(|r| r.matches(path))
        .unwrap_or_else(|| RouteMatch {
            raw: "/...".to_string(),
            base: "/".to_string(),
            path_info: path.to_string(),
            params: Vec::new(),
        })
}

fn set_spin_headers<B>(
    req: &mut http::Request<B>,
    m: &RouteMatch,
    client: SocketAddr,
    origin: &str,
) {
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let full_url = format!("{origin}{path_and_query}");
    let headers = req.headers_mut();
    // `spin-*` headers are the host's word about the request; a client's
    // own would let it spoof its address or route parameters.
    let spoofed: Vec<http::HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("spin-"))
        .cloned()
        .collect();
    for name in spoofed {
        headers.remove(name);
    }
    let mut put = |name: &str, value: &str| {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::try_from(name),
            http::HeaderValue::try_from(value),
        ) {
            headers.insert(n, v);
        }
    };
    put("spin-full-url", &full_url);
    put("spin-path-info", &m.path_info);
    put("spin-matched-route", &m.raw);
    put("spin-raw-component-route", &m.raw);
    put("spin-component-route", &m.base);
    put("spin-base-path", "/");
    put("spin-client-addr", &client.to_string());
    for (name, value) in &m.params {
        put(&format!("spin-path-match-{name}"), value);
    }
}

fn check_labels(app: &App, config: &RuntimeConfig) -> Result<()> {
    for (id, c) in &app.components {
        for label in &c.key_value_stores {
            if !config.key_value.contains_key(label) {
                bail!(
                    "component `{id}` uses key-value store `{label}`, which is not defined (add [key_value_store.{label}] to the runtime config)"
                );
            }
        }
        for label in &c.sqlite_databases {
            if !config.sqlite.contains_key(label) {
                bail!(
                    "component `{id}` uses SQLite database `{label}`, which is not defined (add [sqlite_database.{label}] to the runtime config)"
                );
            }
        }
    }
    Ok(())
}

/// Loads a component's compiled form from the cache, compiling it on a miss.
/// The key covers the wasm bytes (after composition, so a changed
/// middleware or dependency is a new key) and the engine's settings, so a
/// rebuilt component or a changed engine never reuses stale code.
fn compile_cached(
    engine: &Engine,
    id: &str,
    source: &Path,
    wasm: &[u8],
    cache_dir: &Path,
) -> Result<Compiled> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let engine_key = hasher.finish();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(wasm));
    let cached = cache_dir.join(format!("{id}-{}-{engine_key:016x}.cwasm", &digest[..32]));
    if cached.exists() {
        // SAFETY: the file was written by `precompile_component` of an
        // engine with the same compatibility hash, under our cache key.
        if let Ok(component) = unsafe { Compiled::deserialize_file(engine, &cached) } {
            return Ok(component);
        }
    }
    let compiled = engine.precompile_component(wasm).map_err(|e| {
        anyhow::anyhow!(
            "component `{id}`: {} is not a valid component: {e}",
            source.display()
        )
    })?;
    if std::fs::create_dir_all(cache_dir).is_ok() {
        let tmp = cache_dir.join(format!(".{id}-{}.tmp", std::process::id()));
        if std::fs::write(&tmp, &compiled).is_ok() {
            let _ = std::fs::rename(&tmp, &cached);
        }
    }
    // SAFETY: `compiled` was just produced by this engine.
    Ok(unsafe { Compiled::deserialize(engine, &compiled) }?)
}
