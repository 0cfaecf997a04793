//! The EventStoreDB/KurrentDB source, through the `eventstore` client.
//!
//! A catch-up subscription to `$all` from the checkpoint, filtered on the
//! server by what the projections subscribe to, then following new events; on
//! a dropped connection it resubscribes after the last event read, with
//! backoff. Host positions are EventStoreDB positions, packed ([`position`]).
//! `import` and `append` write to the server too ([`writer`]).
//!
//! The logic lives in plain functions with unit tests ([`position`],
//! [`mapping`], [`filter`], [`writer::appends`], [`feed::backoff`], [`ahead`]); the
//! conformance suite runs against a real server when `ESDB_CONNECTION_STRING`
//! is set.

pub mod ahead;
pub mod connection;
pub mod feed;
pub mod filter;
pub mod mapping;
pub mod persistent;
pub mod position;
mod probe;
mod reader;
pub mod writer;

pub use connection::Connection;
pub use reader::EsdbSource;
