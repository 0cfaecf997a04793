//! What the benchmarks share.

/// The host's event as the guest SDK's, for calling a plugin crate natively.
pub fn to_sdk(e: &projector::Event) -> projector_sdk::Event {
    projector_sdk::Event {
        id: e.id.clone(),
        stream: e.stream.clone(),
        event_type: e.event_type.clone(),
        schema_version: e.schema_version,
        revision: e.revision,
        position: e.position,
        data: e.data.clone(),
        metadata: e.metadata.clone(),
    }
}
