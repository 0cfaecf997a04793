//! Upcaster plugins and the chain that runs them: an event is raised one schema
//! version at a time until no upcaster claims its (type, version).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// The upcasters in effect, each instantiated once; owned by a projection's router.
pub struct UpcasterChain {
    steps: HashMap<(String, u32), usize>,
    instances: Vec<(String, Sandbox<upcasting::Guest>)>,
}

impl UpcasterChain {
    /// The chain of `plugins`, each call under `deadline` (the projection's `call_deadline_ms`).
    pub fn new(plugins: &[Arc<UpcasterPlugin>], deadline: std::time::Duration) -> Result<Self> {
        let mut steps = HashMap::new();
        let mut instances = Vec::new();
        for plugin in plugins {
            let name = plugin.manifest.name.clone();
            for step in &plugin.manifest.upgrades {
                let claim = (step.event_type.clone(), step.from_version);
                if let Some(other) = steps.insert(claim, instances.len()) {
                    let (other, _) = &instances[other];
                    bail!("upcasters `{other}` and `{name}` both upgrade {} v{}", step.event_type, step.from_version);
                }
            }
            instances.push((name.clone(), Sandbox::new(&name, plugin.pre.clone(), deadline)?));
        }
        Ok(Self { steps, instances })
    }

    /// Raises an event to the latest version any upcaster knows. Usually one
    /// event comes out; an upcaster may split one into several, or drop it.
    pub fn upcast(&mut self, event: Event) -> Result<Vec<Event>, String> {
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
