//! One plugin instance in its own store, with a deadline on every call and a
//! memory cap. A call that traps (a panic, a deadline, memory, the stack) comes
//! back as a [`Trap`] value, and the instance is thrown away and made anew:
//! a trapped instance is never called again.
//!
//! What a plugin can reach: its input, the `log` import, and for guests built
//! against WASI (Python and JavaScript toolchains import it) an empty WASI
//! context: no files (no preopened directories), no network, no environment
//! variables, no arguments, empty stdin, discarded stdout and stderr, both
//! clocks stopped at zero and a random stream from a fixed seed. So a handler
//! is deterministic whatever language it is written in.

use std::time::Duration;

use anyhow::Result;
use wasmtime::component::{HasSelf, Instance, InstancePre, Linker};
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::{handler, log, upcasting};
use super::engine::engine;
use super::limits::{deadline_ticks, MAX_LOG_LINES_PER_CALL, MAX_LOG_LINE_BYTES, MAX_MEMORY_BYTES, MAX_TABLE_ELEMENTS};

/// Wasm frames kept in a trap's description.
const MAX_TRAP_FRAMES: usize = 3;

/// The seed of every WASI guest's random stream: handlers must not depend on
/// randomness, and a fixed stream keeps the ones that touch it deterministic.
pub const WASI_RANDOM_SEED: u64 = 0;

/// What a store holds for its plugin.
pub struct PluginState {
    plugin: String,
    limits: StoreLimits,
    wasi: WasiCtx,
    table: ResourceTable,
    log: LogBudget,
}

/// What the current call has written to the log, and what it was refused.
#[derive(Debug, Default)]
struct LogBudget {
    lines: u32,
    dropped_lines: u64,
    dropped_bytes: u64,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// A clock that never moves: plugins get no time.
struct Stopped;

impl HostWallClock for Stopped {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for Stopped {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// The empty WASI context: nothing to reach, no time, no entropy.
fn empty_wasi() -> WasiCtx {
    use wasi_rand::SeedableRng;
    WasiCtxBuilder::new()
        .wall_clock(Stopped)
        .monotonic_clock(Stopped)
        .secure_random(wasi_rand::rngs::StdRng::seed_from_u64(WASI_RANDOM_SEED))
        .insecure_random(wasi_rand::rngs::StdRng::seed_from_u64(WASI_RANDOM_SEED))
        .insecure_random_seed(u128::from(WASI_RANDOM_SEED))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build()
}

impl log::Host for PluginState {
    fn write(&mut self, level: log::Level, message: String) {
        if self.log.lines >= MAX_LOG_LINES_PER_CALL {
            self.log.dropped_lines += 1;
            self.log.dropped_bytes += message.len() as u64;
            return;
        }
        self.log.lines += 1;
        let message = cut(message);
        let message = crate::telemetry::printable(&message);
        let plugin = self.plugin.as_str();
        match level {
            log::Level::Debug => tracing::debug!(plugin, "{message}"),
            log::Level::Info => tracing::info!(plugin, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, "{message}"),
            log::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

/// A log line cut to `MAX_LOG_LINE_BYTES`, at a character boundary.
fn cut(mut message: String) -> String {
    if message.len() <= MAX_LOG_LINE_BYTES {
        return message;
    }
    let mut end = MAX_LOG_LINE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let cut = message.len() - end;
    message.truncate(end);
    message.push_str(&format!(" ... ({cut} more bytes cut: a log line holds at most {MAX_LOG_LINE_BYTES})"));
    message
}

/// The imports a plugin may use: `log`, and WASI backed by the empty context.
pub fn linker() -> Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine());
    log::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |state| state)?;
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    Ok(linker)
}

/// An exported interface that a sandbox can load from a fresh instance.
pub trait Export: Sized {
    fn load(pre: &InstancePre<PluginState>, store: &mut Store<PluginState>, instance: &Instance) -> Result<Self>;
}

impl Export for handler::Guest {
    fn load(pre: &InstancePre<PluginState>, store: &mut Store<PluginState>, instance: &Instance) -> Result<Self> {
        Ok(handler::GuestIndices::new(pre)?.load(store, instance)?)
    }
}

impl Export for upcasting::Guest {
    fn load(pre: &InstancePre<PluginState>, store: &mut Store<PluginState>, instance: &Instance) -> Result<Self> {
        Ok(upcasting::GuestIndices::new(pre)?.load(store, instance)?)
    }
}

/// A failed call: the instance trapped and has been replaced.
#[derive(Debug, Clone, PartialEq)]
pub struct Trap(pub String);

impl Trap {
    /// Whether the call was interrupted at its deadline.
    pub fn is_deadline(&self) -> bool {
        self.0.starts_with(DEADLINE_EXCEEDED)
    }
}

/// How a trap at the deadline is described.
const DEADLINE_EXCEEDED: &str = "deadline exceeded";

impl std::fmt::Display for Trap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A live instance of one plugin.
pub struct Sandbox<G> {
    plugin: String,
    pre: InstancePre<PluginState>,
    deadline: Duration,
    store: Store<PluginState>,
    guest: Option<G>,
}

impl<G: Export> Sandbox<G> {
    pub fn new(plugin: &str, pre: InstancePre<PluginState>, deadline: Duration) -> Result<Self> {
        let (store, guest) = instantiate(plugin, &pre)?;
        Ok(Self { plugin: plugin.to_owned(), pre, deadline, store, guest: Some(guest) })
    }

    /// Calls into the plugin under its deadline. On a trap the instance is replaced.
    pub fn call<R>(
        &mut self,
        f: impl FnOnce(&G, &mut Store<PluginState>) -> wasmtime::Result<R>,
    ) -> Result<R, Trap> {
        if self.guest.is_none() {
            self.renew()?;
        }
        let guest = self.guest.as_ref().expect("renewed above");
        self.store.set_epoch_deadline(deadline_ticks(self.deadline));
        self.store.data_mut().log = LogBudget::default();
        let result = f(guest, &mut self.store);
        let budget = &self.store.data().log;
        if budget.dropped_lines > 0 {
            tracing::warn!(plugin = %self.plugin, dropped_lines = budget.dropped_lines, dropped_bytes = budget.dropped_bytes, "plugin logged more than {MAX_LOG_LINES_PER_CALL} lines in one call; the rest were dropped");
        }
        match result {
            Ok(r) => Ok(r),
            Err(error) => {
                let trap = Trap(describe(&error, self.deadline));
                tracing::warn!(plugin = %self.plugin, reason = %crate::telemetry::printable(&trap.to_string()), "plugin trapped; replacing its instance");
                self.guest = None;
                let _ = self.renew();
                Err(trap)
            }
        }
    }

    fn renew(&mut self) -> Result<(), Trap> {
        let (store, guest) = instantiate(&self.plugin, &self.pre)
            .map_err(|e| Trap(format!("cannot instantiate plugin {}: {e:#}", self.plugin)))?;
        self.store = store;
        self.guest = Some(guest);
        Ok(())
    }
}

fn instantiate<G: Export>(plugin: &str, pre: &InstancePre<PluginState>) -> Result<(Store<PluginState>, G)> {
    let limits = StoreLimitsBuilder::new()
        .memory_size(MAX_MEMORY_BYTES)
        .table_elements(MAX_TABLE_ELEMENTS)
        .trap_on_grow_failure(true)
        .build();
    let state = PluginState { plugin: plugin.to_owned(), limits, wasi: empty_wasi(), table: ResourceTable::new(), log: LogBudget::default() };
    let mut store = Store::new(engine(), state);
    store.limiter(|state| &mut state.limits);
    store.set_epoch_deadline(deadline_ticks(super::limits::DEFAULT_CALL_DEADLINE));
    store.epoch_deadline_trap();
    let instance = pre.instantiate(&mut store)?;
    let guest = G::load(pre, &mut store, &instance)?;
    Ok((store, guest))
}

/// A trap in words a plugin author can act on, short enough to store with a
/// parked event (a stack overflow's backtrace has thousands of frames).
fn describe(error: &wasmtime::Error, deadline: Duration) -> String {
    let trap = error.chain().find_map(|e| e.downcast_ref::<wasmtime::Trap>());
    let frames: Vec<String> = format!("{error:#}").lines().skip(1).take(MAX_TRAP_FRAMES).map(|l| l.trim().to_owned()).collect();
    let at = if frames.is_empty() { String::new() } else { format!(" (at {})", frames.join(" <- ")) };
    match trap {
        Some(wasmtime::Trap::Interrupt) => format!("{DEADLINE_EXCEEDED}: the call ran longer than {deadline:?}"),
        Some(wasmtime::Trap::StackOverflow) => "stack overflow: the plugin recursed too deeply".into(),
        Some(wasmtime::Trap::UnreachableCodeReached) => {
            format!("the plugin aborted (a panic or an unreachable instruction){at}")
        }
        Some(other) => format!("{other}{at}"),
        None => format!("{}{at}", error.root_cause()),
    }
}
