//! Projector: a projection host for event-sourced systems.
//!
//! Events flow one way: a [`source`] reads them in global order, the [`router`]
//! upcasts, filters and keys them, [`lanes`] handle each key's events in order
//! through a projection plugin (the [`runtime`] runs it sandboxed), and a
//! [`sink`] applies the mutations, the guards and the [`checkpoint`] in one
//! transaction. Failures are data ([`outcome`]): retried, or [`parking`] parked.
//!
//! The words used here (event, source, projection, upcaster, lane, mutation,
//! sink, checkpoint, guard, park, generation) are defined in README's glossary.

pub mod admin;
pub mod app;
pub mod checkpoint;
pub mod config;
pub mod json;
pub mod lanes;
pub mod metrics;
pub mod monitor;
pub mod outcome;
pub mod parking;
pub mod plugins;
pub mod private;
pub mod router;
pub mod runtime;
pub mod sample;
pub mod scaffold;
pub mod sink;
pub mod source;
pub mod store_file;
pub mod supervisor;
pub mod swap;
pub mod telemetry;

/// The contract's types are the host's vocabulary.
pub use runtime::bindings::types::{
    EdgeMerge, EdgeRef, EdgesFrom, ErrorKind, Event, HandlerError, LabelDecl, Manifest, Mutation,
    NodeMerge, NodeRef, PartitionKey, Property, PropertyRemoval, Scalar, UpcasterManifest, Upgrade,
    Value,
};
