//! A projection plugin: its manifest, checked at load, and its instances.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::component::InstancePre;

use super::scope::WriteScope;
use crate::runtime::bindings::handler;
use crate::runtime::sandbox::{PluginState, Sandbox, Trap};
use crate::{Event, HandlerError, Manifest, Mutation, UpcasterManifest};

/// A loaded, validated projection, ready to instantiate once per lane.
pub struct ProjectionPlugin {
    pub file: PathBuf,
    /// SHA-256 of the component file this build was loaded from.
    pub digest: Vec<u8>,
    pub manifest: Manifest,
    pub scope: WriteScope,
    pre: InstancePre<PluginState>,
}

/// What a handler says about each event of a batch.
pub type HandlerResults = Vec<Result<Vec<Mutation>, HandlerError>>;

impl ProjectionPlugin {
    /// `digest`: the sha256 of the bytes `pre` was compiled from.
    pub fn new(file: &Path, pre: InstancePre<PluginState>, digest: Vec<u8>) -> Result<Self> {
        let manifest = super::describe(file, &pre, "projection", |g: &handler::Guest, s| g.call_describe(s))?;
        super::manifest::check_projection(&manifest)
            .with_context(|| format!("projection plugin {} has an invalid manifest", file.display()))?;
        let scope = WriteScope::of(&manifest);
        Ok(Self { file: file.to_owned(), digest, manifest, scope, pre })
    }

    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// A fresh instance whose calls each have `deadline`.
    pub fn instantiate(&self, deadline: Duration) -> Result<ProjectionInstance> {
        let sandbox = Sandbox::new(&self.manifest.name, self.pre.clone(), deadline)?;
        Ok(ProjectionInstance { sandbox })
    }

    /// Whether this projection's upcaster chain needs `upcaster`: it takes a
    /// type the projection subscribes to (an upcaster that renames a type
    /// serves the projections that name the old type too).
    pub fn needs(&self, upcaster: &UpcasterManifest) -> bool {
        let types = &self.manifest.event_types;
        types.is_empty() || upcaster.upgrades.iter().any(|step| types.contains(&step.event_type))
    }

    /// Whether this projection wants the event at all.
    pub fn subscribes(&self, event: &Event) -> bool {
        let m = &self.manifest;
        (m.event_types.is_empty() || m.event_types.contains(&event.event_type))
            && (m.stream_prefixes.is_empty() || m.stream_prefixes.iter().any(|p| event.stream.starts_with(p.as_str())))
    }
}

/// One instance of a projection, owned by one lane.
pub struct ProjectionInstance {
    sandbox: Sandbox<handler::Guest>,
}

impl ProjectionInstance {
    /// Handles a batch: one result per event, or a trap for the whole call.
    pub fn handle(&mut self, events: &[Event]) -> Result<HandlerResults, Trap> {
        let results = self.sandbox.call(|guest, store| guest.call_handle(store, events))?;
        if results.len() != events.len() {
            return Err(Trap(format!(
                "handle() returned {} results for {} events; it must return one per event",
                results.len(),
                events.len()
            )));
        }
        Ok(results)
    }
}
