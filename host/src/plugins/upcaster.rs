//! Upcaster plugins and the chain that runs them: an event is raised one schema
//! version at a time until no upcaster claims its (type, version). A chain
//! that keeps failing says so, and its projection is quarantined by the router.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use wasmtime::component::InstancePre;

use crate::runtime::bindings::upcasting;
use crate::runtime::limits::MAX_UPCAST_STEPS;
use crate::runtime::sandbox::{PluginState, Sandbox};
use crate::{Event, UpcasterManifest};

/// A loaded, validated upcaster.
pub struct UpcasterPlugin {
    pub file: PathBuf,
    pub manifest: UpcasterManifest,
    pre: InstancePre<PluginState>,
}

impl UpcasterPlugin {
    pub fn new(file: &Path, pre: InstancePre<PluginState>) -> Result<Self> {
        let manifest = super::describe(file, &pre, "upcaster", |g: &upcasting::Guest, s| g.call_describe(s))?;
        if manifest.upgrades.is_empty() {
            bail!("upcaster plugin {} declares no upgrades", file.display());
        }
        Ok(Self { file: file.to_owned(), manifest, pre })
    }
}

/// When a chain that keeps failing quarantines its projection: after this many
/// events failed in a row (0: never), or after failing for this long (zero: never).
/// The projection's own `quarantine_after` and `quarantine_after_failing_ms`.
#[derive(Debug, Clone, Copy)]
pub struct KeepsFailing {
    pub after: u32,
    pub after_failing: Duration,
}

impl KeepsFailing {
    /// For a chain run by hand (`parked replay`) or in a benchmark: nothing to quarantine.
    pub const NEVER: Self = Self { after: 0, after_failing: Duration::ZERO };
}

/// Which upcaster of `plugins` takes each (event type, version); two that
/// claim the same step are refused, whether or not one projection needs both.
pub fn claims(plugins: &[Arc<UpcasterPlugin>]) -> Result<HashMap<(String, u32), usize>> {
    let mut steps = HashMap::new();
    for (index, plugin) in plugins.iter().enumerate() {
        for step in &plugin.manifest.upgrades {
            if let Some(other) = steps.insert((step.event_type.clone(), step.from_version), index) {
                let (other, name) = (&plugins[other].manifest.name, &plugin.manifest.name);
                bail!("upcasters `{other}` and `{name}` both upgrade {} v{}", step.event_type, step.from_version);
            }
        }
    }
    Ok(steps)
}

/// The upcasters in effect, each instantiated once; owned by a projection's router.
pub struct UpcasterChain {
    steps: HashMap<(String, u32), usize>,
    instances: Vec<(String, Sandbox<upcasting::Guest>)>,
    limit: KeepsFailing,
    /// Events failed since the last one upcast, and since when.
    failed_in_a_row: u32,
    failing_since: Option<Instant>,
}

impl UpcasterChain {
    /// The chain of `plugins`, each call under `deadline` (the projection's `call_deadline_ms`).
    pub fn new(plugins: &[Arc<UpcasterPlugin>], deadline: Duration, limit: KeepsFailing) -> Result<Self> {
        let steps = claims(plugins)?;
        let mut instances = Vec::new();
        for plugin in plugins {
            let name = plugin.manifest.name.clone();
            instances.push((name.clone(), Sandbox::new(&name, plugin.pre.clone(), deadline)?));
        }
        Ok(Self { steps, instances, limit, failed_in_a_row: 0, failing_since: None })
    }

    /// Whether some upcaster of the chain takes the event as it is.
    pub fn claims(&self, event: &Event) -> bool {
        !self.steps.is_empty() && self.steps.contains_key(&(event.event_type.clone(), event.schema_version))
    }

    /// Raises an event to the latest version any upcaster knows. Usually one
    /// event comes out; an upcaster may split one into several, or drop it.
    pub fn upcast(&mut self, event: Event) -> Result<Vec<Event>, String> {
        let upcast = self.steps_of(event);
        if upcast.is_ok() {
            (self.failed_in_a_row, self.failing_since) = (0, None);
        } else {
            self.failed_in_a_row += 1;
            self.failing_since.get_or_insert_with(Instant::now);
        }
        upcast
    }

    /// Why the chain keeps failing, once it has failed `limit.after` events in
    /// a row or for `limit.after_failing`: its projection must be quarantined.
    pub fn keeps_failing(&self) -> Option<String> {
        let (in_a_row, since) = (self.failed_in_a_row, self.failing_since?);
        let failing = since.elapsed();
        if self.limit.after > 0 && in_a_row >= self.limit.after {
            Some(format!("its upcasters failed {in_a_row} events in a row"))
        } else if !self.limit.after_failing.is_zero() && failing >= self.limit.after_failing {
            Some(format!("its upcasters failed every event for {:.1} s", failing.as_secs_f64()))
        } else {
            None
        }
    }

    fn steps_of(&mut self, event: Event) -> Result<Vec<Event>, String> {
        let mut done = Vec::new();
        let mut todo = vec![event];
        let mut steps = 0;
        while let Some(event) = todo.pop() {
            let Some(&which) = self.steps.get(&(event.event_type.clone(), event.schema_version)) else {
                done.push(event);
                continue;
            };
            steps += 1;
            if steps > MAX_UPCAST_STEPS {
                return Err(format!("more than {MAX_UPCAST_STEPS} upcast steps: do two upcasters undo each other?"));
            }
            let (name, sandbox) = &mut self.instances[which];
            let from = event.schema_version;
            let out = sandbox
                .call(|guest, store| guest.call_upcast(store, &event))
                .map_err(|trap| format!("upcaster `{name}` trapped: {trap}"))?
                .map_err(|error| format!("upcaster `{name}` refused {} v{from}: {error}", event.event_type))?;
            for next in out.into_iter().rev() {
                if next.schema_version != from + 1 {
                    return Err(format!(
                        "upcaster `{name}` turned {} v{from} into v{}, not v{}",
                        event.event_type,
                        next.schema_version,
                        from + 1
                    ));
                }
                todo.push(Event { position: event.position, revision: event.revision, stream: event.stream.clone(), ..next });
            }
        }
        Ok(done)
    }

    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }
}
