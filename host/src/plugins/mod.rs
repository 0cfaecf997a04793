//! Plugins: loading components, telling projections from upcasters, checking
//! what they declare, and holding them ready to instantiate.

pub mod bounds;
pub mod manifest;
mod projection;
mod registry;
mod scope;
mod slot;
mod trial;
mod upcaster;

pub use projection::{ProjectionInstance, ProjectionPlugin};
pub use registry::{component_files, Plugins, PluginSummary};
pub use scope::{check_sharing, is_identifier, WriteScope};
pub use slot::{compatible, Slot};
pub use trial::{mutation_json, trial};
pub use upcaster::{claims, needed_by, KeepsFailing, UpcasterChain, UpcasterPlugin, UpcasterSet};

use std::path::Path;

use anyhow::{Context, Result};
use wasmtime::component::InstancePre;
use wasmtime::Store;

use crate::runtime::limits::DEFAULT_CALL_DEADLINE;
use crate::runtime::sandbox::{Export, PluginState, Sandbox};

/// Instantiates a plugin once and asks it to describe itself.
fn describe<G: Export, M>(
    file: &Path,
    pre: &InstancePre<PluginState>,
    world: &str,
    call: impl FnOnce(&G, &mut Store<PluginState>) -> wasmtime::Result<M>,
) -> Result<M> {
    let label = file.display().to_string();
    let mut probe: Sandbox<G> = Sandbox::new(&label, pre.clone(), DEFAULT_CALL_DEADLINE)
        .with_context(|| format!("cannot instantiate {world} plugin {label}"))?;
    probe.call(call).map_err(|trap| anyhow::anyhow!("{world} plugin {label}: describe() failed: {trap}"))
}
