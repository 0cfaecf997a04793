//! Helpers for testing a plugin's logic natively with `cargo test`, without a host.

use crate::{Event, Mutation, Outcome, Projection};

/// JSON literals for events' data and envelopes, so a plugin's tests need no
/// dependency of their own.
pub use serde_json::json;

/// An event with the given type, stream, revision and JSON data, at schema version 1
/// (change it with [`Event::at_version`]) and an empty envelope.
pub fn event(event_type: &str, stream: &str, revision: u64, data: serde_json::Value) -> Event {
    Event {
        id: format!("{stream}@{revision}"),
        stream: stream.to_owned(),
        event_type: event_type.to_owned(),
        schema_version: 1,
        revision,
        position: revision,
        data: data.to_string(),
        metadata: "{}".to_owned(),
    }
}

impl Event {
    /// The same event at another schema version.
    pub fn at_version(mut self, version: u32) -> Self {
        self.schema_version = version;
        self
    }

    /// The same event with this envelope.
    pub fn with_metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = metadata.to_string();
        self
    }
}

/// Handles each event with `P` and returns every mutation, in order; panics on a failure.
pub fn mutations<P: Projection>(events: &[Event]) -> Vec<Mutation> {
    P::handle_batch(events)
        .into_iter()
        .zip(events)
        .flat_map(|(outcome, e): (Outcome, &Event)| {
            outcome.unwrap_or_else(|err| panic!("{} at {}: {err}", e.event_type, e.id))
        })
        .collect()
}
