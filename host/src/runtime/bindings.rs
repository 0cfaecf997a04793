//! The host's bindings of the WIT contract: the one `bindgen!` of the project.
//! The world `host` exports both plugin interfaces; a component implements one
//! of them, and the runtime loads that one by its indices.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "host",
    additional_derives: [PartialEq],
});

pub use self::exports::projector::plugin::{handler, upcasting};
pub use self::projector::plugin::{log, types};
