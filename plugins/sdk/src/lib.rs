//! The Rust kit for writing Projector plugins.
//!
//! A projection is a type that implements [`Projection`] and is exported with
//! [`projection!`]; an upcaster implements [`Upcaster`] and is exported with
//! [`upcaster!`]. The types are the WIT contract's own (`wit/types.wit`), so what
//! a test builds natively is exactly what crosses the boundary in Wasm.
//!
//! ```ignore
//! use projector_sdk::*;
//!
//! struct Hello;
//!
//! impl Projection for Hello {
//!     fn manifest() -> Manifest {
//!         Manifest::new("hello", "0.1.0").events(["InterviewCreated"]).label("Interview", "id")
//!     }
//!     fn handle(event: &Event) -> Outcome {
//!         let title: String = event.field("/title")?;
//!         Ok(vec![merge_node("Interview", &event.stream).set("title", title).into()])
//!     }
//! }
//!
//! projection!(Hello);
//! ```

mod bindings;
mod event;
mod macros;
mod manifest;
mod mutation;
pub mod log;
pub mod testing;
mod value;

pub use bindings::types::{
    EdgeMerge, EdgeRef, EdgesFrom, ErrorKind, Event, HandlerError, LabelDecl, Manifest, Mutation,
    NodeMerge, NodeRef, PartitionKey, Property, PropertyRemoval, Scalar, UpcasterManifest,
    Upgrade, Value,
};
pub use mutation::{
    delete_edge, delete_edges, delete_node, merge_edge, merge_node, node, remove_properties,
};

#[doc(hidden)]
pub use bindings::{projection as __projection, upcaster as __upcaster};

/// What handling one event gives: the mutations it causes, or why it failed.
pub type Outcome = Result<Vec<Mutation>, HandlerError>;

/// A projection: a pure function from events to read-model mutations.
pub trait Projection {
    /// What the projection reads and writes.
    fn manifest() -> Manifest;

    /// The mutations one event causes. Read nothing but the event: no clock,
    /// no randomness, no I/O, so that a rebuild gives the same read model.
    fn handle(event: &Event) -> Outcome;

    /// Handles a batch; the default handles each event in turn.
    fn handle_batch(events: &[Event]) -> Vec<Outcome> {
        events.iter().map(Self::handle).collect()
    }
}

/// An upcaster: rewrites an old event schema into the next version.
pub trait Upcaster {
    /// Which (event type, schema version) steps it performs.
    fn manifest() -> UpcasterManifest;

    /// Rewrites one event into events of the next schema version.
    fn upcast(event: Event) -> Result<Vec<Event>, String>;
}

impl HandlerError {
    /// A failure that will not go away: the host parks the event at once.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Permanent, message: message.into() }
    }

    /// A failure that may go away: the host retries with backoff, then parks.
    pub fn transient(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Transient, message: message.into() }
    }
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}
