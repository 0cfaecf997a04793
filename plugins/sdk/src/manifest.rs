//! Builders for manifests.

use crate::{LabelDecl, Manifest, PartitionKey, UpcasterManifest, Upgrade};

fn strings<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Vec<String> {
    items.into_iter().map(Into::into).collect()
}

impl Manifest {
    /// A projection that reads every event and writes nothing yet.
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            read_model_version: 1,
            event_types: Vec::new(),
            stream_prefixes: Vec::new(),
            partition_key: PartitionKey::ByStream,
            labels: Vec::new(),
            relationship_types: Vec::new(),
        }
    }

    /// Subscribe to these event types only.
    pub fn events<S: Into<String>>(mut self, types: impl IntoIterator<Item = S>) -> Self {
        self.event_types = strings(types);
        self
    }

    /// Subscribe to streams with these prefixes only.
    pub fn streams<S: Into<String>>(mut self, prefixes: impl IntoIterator<Item = S>) -> Self {
        self.stream_prefixes = strings(prefixes);
        self
    }

    /// Order events by a JSON pointer into their data instead of by stream.
    pub fn key_by_data(mut self, pointer: &str) -> Self {
        self.partition_key = PartitionKey::DataPointer(pointer.to_owned());
        self
    }

    /// Declare a label this projection writes, and its key property. No other
    /// projection may write it.
    pub fn label(mut self, label: &str, key_property: &str) -> Self {
        self.labels.push(LabelDecl { label: label.to_owned(), key_property: key_property.to_owned(), shared: false });
        self
    }

    /// Declare a label this projection writes together with other projections
    /// that declare it shared too, with the same key property (an `Interview`
    /// that several read models hang their nodes on).
    pub fn shared_label(mut self, label: &str, key_property: &str) -> Self {
        self.labels.push(LabelDecl { label: label.to_owned(), key_property: key_property.to_owned(), shared: true });
        self
    }

    /// Declare the relationship types this projection writes.
    pub fn relationships<S: Into<String>>(mut self, types: impl IntoIterator<Item = S>) -> Self {
        self.relationship_types.extend(strings(types));
        self
    }

    /// Declare the read model's shape version; raise it when old data must be rebuilt.
    pub fn read_model_version(mut self, version: u32) -> Self {
        self.read_model_version = version;
        self
    }
}

impl UpcasterManifest {
    /// An upcaster that performs no steps yet.
    pub fn new(name: &str, version: &str) -> Self {
        Self { name: name.to_owned(), version: version.to_owned(), upgrades: Vec::new() }
    }

    /// Declare one step: `event_type` at `from_version` into `from_version + 1`.
    pub fn upgrades(mut self, event_type: &str, from_version: u32) -> Self {
        self.upgrades.push(Upgrade { event_type: event_type.to_owned(), from_version });
        self
    }
}
