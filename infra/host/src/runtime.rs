//! The app at run time: compiled components, their grants, and the handling
//! of one request by a fresh instance.

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p3::bindings::ServicePre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::instances::InstanceReuse;
use crate::kv::{KvBackend, PoolCache};
use crate::manifest::App;
use crate::outbound::HostPattern;
use crate::routes::{Route, RouteMatch, best_match};
use crate::runtime_config::RuntimeConfig;
use crate::spin_apis::{self, Grants, SpinView};
use crate::sqlite_pool::Pool;
use crate::variables::Variables;
use crate::{hooks::OutboundHooks, problem};

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
    /// How many requests an instance serves, at once and in all. Carried
    /// for Spin's flags; not applied yet: each request gets a fresh instance.
    pub instances: InstanceReuse,
    /// How long a guest may run for one request before it is stopped.
    pub request_timeout: Option<Duration>,
}

/// A loaded, ready-to-serve app.
pub struct Runtime {
    components: HashMap<String, Loaded>,
    routes: Vec<(Route, String)>,
    databases: Arc<HashMap<String, Arc<Pool>>>,
    env: Vec<(String, String)>,
    request_timeout: Option<Duration>,
}

struct Loaded {
    pre: ServicePre<RequestState>,
    grants: Arc<Grants>,
    allowed_hosts: Arc<Vec<HostPattern>>,
    public_route: Option<Route>,
}

/// A response collected from a guest, with what the log line needs.
pub struct Handled {
    /// The response to send.
    pub response: http::Response<Full<Bytes>>,
    /// The route that matched, if any.
    pub route: Option<String>,
    /// The component that handled it, if any.
    pub component: Option<String>,
}

/// Per-request store data.
pub struct RequestState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundHooks,
    grants: Arc<Grants>,
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

fn spin_view(state: &mut RequestState) -> SpinView<'_> {
    SpinView {
        grants: &state.grants,
        table: &mut state.table,
    }
}

/// How often the epoch advances when a request deadline is set: the
/// granularity of `--request-timeout`.
const EPOCH_TICK: Duration = Duration::from_millis(10);

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
    Ok(Engine::new(&config)?)
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
        let mut linker: Linker<RequestState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi::p3::add_to_linker(&mut linker)?;
        wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
        spin_apis::add_to_linker(&mut linker, spin_view)?;

        let mut components = HashMap::new();
        for (id, decl) in &app.components {
            let allowed_hosts = decl
                .allowed_outbound_hosts
                .iter()
                .map(|entry| entry.resolve(&variables))
                .collect::<Result<Vec<_>>>()
                .with_context(|| format!("component `{id}`"))?;
            let component = compile_cached(&engine, id, &decl.source, &opts.cache_dir)?;
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
            components.insert(
                id.clone(),
                Loaded {
                    pre,
                    grants: Arc::new(grants),
                    allowed_hosts: Arc::new(allowed_hosts),
                    public_route,
                },
            );
        }
        let routes = app
            .triggers
            .iter()
            .filter_map(|t| t.route.clone().map(|r| (r, t.component.clone())))
            .collect();
        Ok(Arc::new(Runtime {
            components,
            routes,
            databases,
            env: opts.env.clone(),
            request_timeout: opts.request_timeout,
        }))
    }

    /// The pool of a database label (used by migrations).
    pub fn database(&self, label: &str) -> Option<Arc<Pool>> {
        self.databases.get(label).cloned()
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
        let response = self
            .clone()
            .execute(
                id.clone(),
                req,
                Some(matched),
                client,
                origin.to_string(),
                0,
            )
            .await;
        Handled {
            response,
            route,
            component: Some(id),
        }
    }

    /// Runs `req` through a fresh instance of component `id`; a trap or
    /// guest error becomes a 500 problem document and is logged.
    pub fn execute<B>(
        self: Arc<Self>,
        id: String,
        mut req: http::Request<B>,
        matched: Option<RouteMatch>,
        client: SocketAddr,
        origin: String,
        depth: u8,
    ) -> Pin<Box<dyn Future<Output = http::Response<Full<Bytes>>> + Send>>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        Box::pin(async move {
            let Some(loaded) = self.components.get(&id) else {
                return problem::not_found();
            };
            let matched = matched
                .unwrap_or_else(|| internal_match(loaded.public_route.as_ref(), req.uri().path()));
            set_spin_headers(&mut req, &matched, client, &origin);
            let run = self.run_guest(&id, loaded, req, client, origin, depth);
            // The epoch deadline stops a guest that computes; this one stops
            // a guest that waits (on a store, an outbound call, a timer).
            let result = match self.request_timeout {
                Some(limit) => tokio::time::timeout(limit, run)
                    .await
                    .unwrap_or_else(|_| Err(wasmtime::Trap::Interrupt.into())),
                None => run.await,
            };
            match result {
                Ok(response) => response,
                Err(e) if is_deadline(&e) => {
                    eprintln!("component `{id}` stopped: it ran past the request timeout");
                    problem::deadline_passed()
                }
                Err(e) => {
                    let cause = e
                        .chain()
                        .last()
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    eprintln!("component `{id}` failed: {e}: {cause}");
                    problem::internal()
                }
            }
        })
    }

    /// A fresh store for one request to component `id`.
    fn new_store(
        self: &Arc<Self>,
        id: &str,
        loaded: &Loaded,
        client: SocketAddr,
        origin: String,
        depth: u8,
    ) -> Store<RequestState> {
        let state = RequestState {
            table: ResourceTable::new(),
            wasi: WasiCtx::builder()
                .inherit_stdout()
                .inherit_stderr()
                .envs(&self.env)
                .build(),
            http: WasiHttpCtx::new(),
            hooks: OutboundHooks {
                runtime: self.clone(),
                component: id.to_string(),
                allowed: loaded.allowed_hosts.clone(),
                client,
                origin,
                depth,
            },
            grants: loaded.grants.clone(),
        };
        let mut store = Store::new(loaded.pre.engine(), state);
        if let Some(limit) = self.request_timeout {
            // One tick more than the limit: the current tick is partly gone.
            let ticks = limit.as_nanos().div_ceil(EPOCH_TICK.as_nanos()) as u64 + 1;
            store.set_epoch_deadline(ticks);
            store.epoch_deadline_trap();
        }
        store
    }

    /// Creates a store and an instance of `id` without calling it: the
    /// fixed part of every request's cost, measured by `bench`.
    pub async fn instantiate_only(self: &Arc<Self>, id: &str) -> Result<()> {
        let loaded = self.components.get(id).context("no such component")?;
        let client = SocketAddr::from(([127, 0, 0, 1], 9));
        let mut store = self.new_store(id, loaded, client, String::new(), 0);
        let _service = loaded.pre.instantiate_async(&mut store).await?;
        Ok(())
    }

    async fn run_guest<B>(
        self: &Arc<Self>,
        id: &str,
        loaded: &Loaded,
        req: http::Request<B>,
        client: SocketAddr,
        origin: String,
        depth: u8,
    ) -> Result<http::Response<Full<Bytes>>>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let mut store = self.new_store(id, loaded, client, origin, depth);
        let service = loaded.pre.instantiate_async(&mut store).await?;
        let (req, io) =
            wasmtime_wasi_http::p3::Request::from_http(&mut store.data_mut().hooks, req);
        store
            .run_concurrent(async |store| {
                let (res, ()) = tokio::try_join!(
                    async {
                        let res = match service.handle(store, req).await? {
                            Ok(res) => res,
                            Err(code) => bail!("guest returned error code {code:?}"),
                        };
                        let res = store.with(|store| res.into_http(store, async { Ok(()) }))?;
                        let (parts, body) = res.into_parts();
                        let body = body
                            .collect()
                            .await
                            .context("reading the guest's response body")?;
                        Ok(http::Response::from_parts(
                            parts,
                            Full::new(body.to_bytes()),
                        ))
                    },
                    async { io.await.context("consuming the request body") }
                )?;
                Ok(res)
            })
            .await?
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

/// Whether `e` is a guest stopped at its deadline.
fn is_deadline(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|c| c.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt))
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
/// The key covers the wasm bytes and the engine's settings, so a rebuilt
/// component or a changed engine never reuses stale code.
fn compile_cached(engine: &Engine, id: &str, source: &Path, cache_dir: &Path) -> Result<Component> {
    let wasm = std::fs::read(source).map_err(|e| {
        anyhow::anyhow!(
            "component `{id}`: cannot read source {} ({e}); build it first (scripts/build)",
            source.display()
        )
    })?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let engine_key = hasher.finish();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&wasm));
    let cached = cache_dir.join(format!("{id}-{}-{engine_key:016x}.cwasm", &digest[..32]));
    if cached.exists() {
        // SAFETY: the file was written by `precompile_component` of an
        // engine with the same compatibility hash, under our cache key.
        if let Ok(component) = unsafe { Component::deserialize_file(engine, &cached) } {
            return Ok(component);
        }
    }
    let compiled = engine.precompile_component(&wasm).map_err(|e| {
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
    Ok(unsafe { Component::deserialize(engine, &compiled) }?)
}
