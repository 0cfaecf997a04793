//! An event to append, as `import` reads it from JSON lines and `append` builds it.

use serde::Deserialize;

/// One event to append. In JSON lines: `{"stream": "...", "type": "...",
/// "schema_version": 1, "data": {...}, "metadata": {...}, "id": "<uuid>"}`;
/// `schema_version` defaults to 1, `metadata` to `{}`, `id` to a new UUID.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    #[serde(default)]
    pub id: Option<uuid::Uuid>,
    pub stream: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default = "one")]
    pub schema_version: u32,
    pub data: serde_json::Value,
    #[serde(default = "empty_object")]
    pub metadata: serde_json::Value,
}

impl NewEvent {
    /// Refuses what no event store should take.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.stream.is_empty() || self.event_type.is_empty() {
            anyhow::bail!("an event needs a non-empty `stream` and `type`");
        }
        if !self.metadata.is_object() {
            anyhow::bail!("`metadata` must be a JSON object");
        }
        Ok(())
    }
}

fn one() -> u32 {
    1
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

/// What a writer expects of a stream before it appends (optimistic concurrency).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedRevision {
    /// Append whatever the stream holds.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must be at this revision.
    Exact(u64),
}

impl std::str::FromStr for ExpectedRevision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "any" => Ok(Self::Any),
            "no-stream" => Ok(Self::NoStream),
            n => n.parse().map(Self::Exact).map_err(|_| format!("`{s}` is not `any`, `no-stream` or a revision number")),
        }
    }
}
