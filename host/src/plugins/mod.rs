//! Plugins: loading components, telling projections from upcasters, checking
//! what they declare, and holding them ready to instantiate.

mod projection;
mod registry;
mod scope;
mod upcaster;

pub use projection::{ProjectionInstance, ProjectionPlugin};
pub use registry::{Plugins, PluginSummary};
pub use scope::{is_identifier, WriteScope};
pub use upcaster::{UpcasterChain, UpcasterPlugin};
