//! One component's instances and how long each lives, on wasmtime's
//! `ProxyHandler`: an instance serves up to `max_reuse` requests, up to
//! `max_concurrent` at once, and is dropped after `idle_timeout` with
//! nothing to do, as `spin up` does. A request past `--request-timeout`
//! is answered without its guest, and a guest computing past it is stopped
//! by the epoch deadline, which ends its instance.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::component::{GuestTaskId, ResourceTable};
use wasmtime::{Store, StoreContextMut};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, Proxy, ShouldAccept, WorkerExpiration, WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::p3::bindings::ServicePre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::clock::ClockOffset;
use crate::hooks::OutboundHooks;
use crate::instances::InstanceReuse;
use crate::outbound::HostPattern;
use crate::runtime::Runtime;
use crate::spin_apis::{Grants, SpinView};

/// How often the epoch advances when a request deadline is set: the
/// granularity of `--request-timeout`.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How long past its request timeout an instance may still be busy before
/// it is dropped from outside its event loop (see [`Expiry`]).
const EXPIRY_GRACE: Duration = Duration::from_millis(200);

/// The address Spin gives a request that came from another component
/// (`*.spin.internal`) rather than from the network.
pub const CHAINED_CLIENT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// Store data of one instance: shared by every request the instance
/// serves, so it holds nothing about any one request.
pub struct InstanceState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundHooks,
    grants: Arc<Grants>,
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// The Spin host APIs' view of an instance's store.
pub fn spin_view(state: &mut InstanceState) -> SpinView<'_> {
    SpinView {
        grants: &state.grants,
        table: &mut state.table,
    }
}

/// Everything needed to make instances of one component.
#[derive(Clone)]
pub struct Component {
    /// The component's id in the manifest.
    pub id: String,
    /// Linked and ready to instantiate.
    pub pre: ServicePre<InstanceState>,
    /// Its stores, databases and variables.
    pub grants: Arc<Grants>,
    /// Its `allowed_outbound_hosts`.
    pub allowed_hosts: Arc<Vec<HostPattern>>,
    /// Environment variables of every instance.
    pub env: Arc<Vec<(String, String)>>,
    /// Instance lifetimes.
    pub reuse: InstanceReuse,
    /// `--request-timeout`.
    pub request_timeout: Option<Duration>,
    /// The app, for `*.spin.internal` calls.
    pub runtime: Weak<Runtime>,
    /// What its instances have done so far.
    pub stats: Arc<Counters>,
    /// The movable wall clock its instances read, if the host has one.
    pub clock: Option<ClockOffset>,
}

/// Counts kept per component, for the log and for tests that must know
/// whether instances were in fact shared.
#[derive(Debug, Default)]
pub struct Counters {
    instances: AtomicUsize,
    most_at_once: AtomicUsize,
}

/// A component's instances so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceStats {
    /// Instances created.
    pub instances: usize,
    /// The most requests one instance has been serving at the same time.
    pub most_at_once: usize,
}

impl Counters {
    /// The counts now.
    pub fn read(&self) -> InstanceStats {
        InstanceStats {
            instances: self.instances.load(Ordering::Relaxed),
            most_at_once: self.most_at_once.load(Ordering::Relaxed),
        }
    }
}

/// One request in flight on an instance, counted until dropped.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn start(count: &Arc<AtomicUsize>, stats: &Counters) -> InFlight {
        let now = count.fetch_add(1, Ordering::AcqRel) + 1;
        stats.most_at_once.fetch_max(now, Ordering::Relaxed);
        InFlight(count.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Component {
    /// A fresh store for one instance.
    pub fn new_store(&self) -> Store<InstanceState> {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stdout().inherit_stderr().envs(&self.env);
        if let Some(clock) = &self.clock {
            wasi.wall_clock(clock.wall_clock());
        }
        let state = InstanceState {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: OutboundHooks {
                runtime: self.runtime.clone(),
                component: self.id.clone(),
                allowed: self.allowed_hosts.clone(),
            },
            grants: self.grants.clone(),
        };
        let mut store = Store::new(self.pre.engine(), state);
        if let Some(limit) = self.request_timeout {
            // Instantiation runs guest code too (start functions).
            store.set_epoch_deadline(deadline_ticks(limit));
            store.epoch_deadline_trap();
        }
        store
    }
}

/// Epoch ticks that cover `limit`: one more than its length, as the
/// current tick is partly gone.
fn deadline_ticks(limit: Duration) -> u64 {
    limit.as_nanos().div_ceil(EPOCH_TICK.as_nanos()) as u64 + 1
}

impl HandlerState for Component {
    type StoreData = InstanceState;
    type WorkerExpiration = Expiry;
    type WorkerState = Lifetime;

    async fn instantiate(&self) -> wasmtime::Result<Instance<InstanceState, Expiry, Lifetime>> {
        let mut store = self.new_store();
        let service = self.pre.instantiate_async(&mut store).await?;
        self.stats.instances.fetch_add(1, Ordering::Relaxed);
        let idle = self.reuse.idle_timeout.draw();
        Ok(Instance {
            store,
            proxy: Proxy::P3(service),
            view: <InstanceState as WasiHttpView>::http,
            expiration: Expiry {
                idle,
                busy: self.request_timeout.map(|t| t + EXPIRY_GRACE),
                seen: None,
                timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            },
            state: Lifetime {
                component: self.id.clone(),
                max_reuse: self.reuse.max_reuse.draw(),
                max_concurrent: self.reuse.max_concurrent.draw(),
                request_timeout: self.request_timeout,
                in_flight: Arc::new(AtomicUsize::new(0)),
                stats: self.stats.clone(),
            },
        })
    }
}

/// How many requests one instance takes, and what each may cost.
pub struct Lifetime {
    component: String,
    max_reuse: usize,
    max_concurrent: usize,
    request_timeout: Option<Duration>,
    in_flight: Arc<AtomicUsize>,
    stats: Arc<Counters>,
}

impl WorkerState for Lifetime {
    type StoreData = InstanceState;
    type RequestData = ();

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.max_reuse {
            ShouldAccept::Never
        } else if concurrent >= self.max_concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        mut store: StoreContextMut<'_, InstanceState>,
        (): (),
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        // The returned future lives exactly as long as the request is
        // outstanding: it is dropped once the guest has answered.
        let in_flight = InFlight::start(&self.in_flight, &self.stats);
        match self.request_timeout {
            Some(limit) => {
                // The epoch deadline is the store's, not the request's: each
                // request moves it to its own end, so a guest computing in a
                // loop is stopped at most one timeout after the newest
                // request began (and while it computes, no request starts).
                store.set_epoch_deadline(deadline_ticks(limit));
                Box::pin(async move {
                    tokio::time::sleep(limit).await;
                    drop(in_flight);
                })
            }
            None => Box::pin(async move {
                std::future::pending::<()>().await;
                drop(in_flight);
            }),
        }
    }

    fn drop(&self, store: Store<InstanceState>, result: wasmtime::Result<()>) {
        drop(store);
        if let Err(e) = result {
            // The worker's task was dropped (the host is stopping); a real
            // panic has already been reported by the panic hook.
            if e.to_string() == "worker panicked" {
                return;
            }
            if is_deadline(&e) {
                eprintln!(
                    "component `{}` stopped: it ran past the request timeout",
                    self.component
                );
            } else {
                let cause = e
                    .chain()
                    .last()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                eprintln!("component `{}` failed: {e}: {cause}", self.component);
            }
        }
    }
}

/// Whether `e` is a guest stopped at its deadline.
pub fn is_deadline(e: &wasmtime::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt)
            || c.to_string() == "guest timed out"
    })
}

/// When an instance is dropped: after its idle timeout with nothing to do,
/// and, with a request timeout, once busy well past it (the check made
/// from outside the instance's event loop, which a computing guest holds).
pub struct Expiry {
    idle: Duration,
    busy: Option<Duration>,
    seen: Option<(WorkerStatus, Instant)>,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl WorkerExpiration for Expiry {
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let this = self.get_mut();
        let limit = match status {
            WorkerStatus::Idle => Some(this.idle),
            WorkerStatus::Requests | WorkerStatus::PostReturn => this.busy,
        };
        let Some(limit) = limit else {
            return Poll::Pending;
        };
        if this.seen != Some((status, start)) {
            this.seen = Some((status, start));
            this.timer.as_mut().reset((start + limit).into());
        }
        this.timer.as_mut().poll(cx)
    }
}
