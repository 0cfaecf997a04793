//! What the loaded plugins want from a source, so that a source able to filter
//! on its server (EventStoreDB) sends only that. A narrowing only: the router
//! still checks every event against every projection's subscription.

/// One projection's subscription, as its manifest states it. Empty lists mean "all".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wants {
    pub event_types: Vec<String>,
    pub stream_prefixes: Vec<String>,
}

/// What every loaded plugin wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interest {
    /// One entry per projection.
    pub projections: Vec<Wants>,
    /// The event types upcasters take: an upcaster may turn one into a type a
    /// projection wants, so they pass any event-type filter.
    pub upcast_types: Vec<String>,
}

impl Interest {
    /// Everything: what `import`, tools and tests read with.
    pub fn everything() -> Self {
        Self { projections: vec![Wants::default()], upcast_types: Vec::new() }
    }
}
