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
    /// One entry per projection. A projection's upcasters take only types it
    /// subscribes to (an upcaster that renames a type needs the old name in
    /// the subscription too), so upcasting adds nothing here.
    pub projections: Vec<Wants>,
}

impl Interest {
    /// Everything: what `import`, tools and tests read with.
    pub fn everything() -> Self {
        Self { projections: vec![Wants::default()] }
    }
}
