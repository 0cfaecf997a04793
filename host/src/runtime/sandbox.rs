//! One plugin instance in its own store, with a deadline on every call and a
//! memory cap. A call that traps (a panic, a deadline, memory, the stack) comes
//! back as a [`Trap`] value, and the instance is thrown away and made anew:
//! a trapped instance is never called again.

use std::time::Duration;

use anyhow::Result;
use wasmtime::component::{HasSelf, Instance, InstancePre, Linker};
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder};

use super::bindings::{handler, log, upcasting};
use super::engine::engine;
use super::limits::{deadline_ticks, MAX_MEMORY_BYTES, MAX_TABLE_ELEMENTS};

/// Wasm frames kept in a trap's description.
const MAX_TRAP_FRAMES: usize = 3;

/// What a store holds for its plugin.
pub struct PluginState {
    plugin: String,
    limits: StoreLimits,
}

impl log::Host for PluginState {
    fn write(&mut self, level: log::Level, message: String) {
        let plugin = self.plugin.as_str();
        match level {
            log::Level::Debug => tracing::debug!(plugin, "{message}"),
            log::Level::Info => tracing::info!(plugin, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, "{message}"),
            log::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

/// The imports every plugin may use: `log`, and nothing else.
pub fn linker() -> Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine());
    log::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |state| state)?;
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
        match f(guest, &mut self.store) {
            Ok(r) => Ok(r),
            Err(error) => {
                let trap = Trap(describe(&error, self.deadline));
                tracing::warn!(plugin = %self.plugin, reason = %trap, "plugin trapped; replacing its instance");
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
    let mut store = Store::new(engine(), PluginState { plugin: plugin.to_owned(), limits });
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
        Some(wasmtime::Trap::Interrupt) => format!("deadline exceeded: the call ran longer than {deadline:?}"),
        Some(wasmtime::Trap::StackOverflow) => "stack overflow: the plugin recursed too deeply".into(),
        Some(wasmtime::Trap::UnreachableCodeReached) => {
            format!("the plugin aborted (a panic or an unreachable instruction){at}")
        }
        Some(other) => format!("{other}{at}"),
        None => format!("{}{at}", error.root_cause()),
    }
}
