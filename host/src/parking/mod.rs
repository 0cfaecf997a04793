//! Parked events: set aside after retries run out, with the error, so that one
//! bad event never stops the rest. They can be listed, replayed or discarded.

pub mod desk;
mod replay;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

pub use desk::{Desk, Job};
pub use replay::{replay, Handling, ReplayReport, Which};

use crate::Event;

/// What else is set aside when an event is parked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParkMode {
    /// The event and every later event with the same partition key, so that no
    /// later event is applied on top of a missing one (the default).
    #[default]
    KeyTail,
    /// The event alone; later events of its key go on.
    Event,
}

/// An event to park, with why.
#[derive(Debug, Clone)]
pub struct Parked {
    pub key: String,
    pub event: Event,
    /// Its index among the events an upcaster made of the one at its position.
    pub part: u32,
    pub error: String,
    pub attempts: u32,
    pub plugin_version: String,
    /// Set when the event is parked only because an earlier event of its key is.
    pub behind: Option<u64>,
}

/// A parked event as stored and listed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ParkedRecord {
    pub id: i64,
    pub projection: String,
    pub key: String,
    pub position: u64,
    /// Its index among the events an upcaster made of the one at `position`.
    pub part: u32,
    pub stream: String,
    pub revision: u64,
    pub event_type: String,
    pub error: String,
    pub attempts: u32,
    pub plugin_version: String,
    pub behind: Option<u64>,
    pub parked_at: String,
    /// `parked`, `replayed` or `discarded`.
    pub status: String,
    /// When it was replayed or discarded, and why it was discarded.
    pub resolved_at: Option<String>,
    pub note: Option<String>,
    /// The event as it was handed to the handler.
    pub event: serde_json::Value,
}

impl ParkedRecord {
    /// Fills the fields a listing shows from the stored event: stream, revision, type.
    pub fn described(mut self) -> Self {
        self.stream = self.event["stream"].as_str().unwrap_or_default().to_owned();
        self.revision = self.event["revision"].as_u64().unwrap_or_default();
        self.event_type = self.event["type"].as_str().unwrap_or_default().to_owned();
        self
    }
}

/// The time now, for records the host keeps (never for plugins).
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// What becomes of a parked event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Handled again, successfully (or found applied already).
    Replayed,
    /// Set aside for good, on purpose.
    Discarded,
}

impl Resolution {
    pub fn status(self) -> &'static str {
        match self {
            Resolution::Replayed => "replayed",
            Resolution::Discarded => "discarded",
        }
    }
}

/// An event as the JSON object a parked record stores.
pub fn event_to_json(e: &Event) -> serde_json::Value {
    serde_json::json!({
        "id": e.id,
        "stream": e.stream,
        "type": e.event_type,
        "schema_version": e.schema_version,
        "revision": e.revision,
        "position": e.position,
        "data": e.data,
        "metadata": e.metadata,
    })
}

/// The event a parked record stores.
pub fn event_from_json(v: &serde_json::Value) -> Result<Event> {
    let text = |k: &str| v[k].as_str().map(str::to_owned).with_context(|| format!("parked event has no `{k}`"));
    let number = |k: &str| v[k].as_u64().with_context(|| format!("parked event has no `{k}`"));
    Ok(Event {
        id: text("id")?,
        stream: text("stream")?,
        event_type: text("type")?,
        schema_version: number("schema_version")? as u32,
        revision: number("revision")?,
        position: number("position")?,
        data: text("data")?,
        metadata: text("metadata")?,
    })
}
