//! Reading an event's data and envelope.

use serde::de::DeserializeOwned;

use crate::{Event, HandlerError};

impl Event {
    /// The data, deserialised into `T`. A mismatch (not JSON, a missing or
    /// mistyped field) is a permanent error that names the field.
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, HandlerError> {
        serde_json::from_str(&self.data).map_err(|e| self.bad("data", e))
    }

    /// The metadata (the envelope), deserialised into `T`.
    pub fn metadata<T: DeserializeOwned>(&self) -> Result<T, HandlerError> {
        serde_json::from_str(&self.metadata).map_err(|e| self.bad("metadata", e))
    }

    /// One field of the data, found by JSON pointer (`/title`, `/classification/purpose`).
    /// A missing field reads as `null`, so an `Option` is `None` for it.
    pub fn field<T: DeserializeOwned>(&self, pointer: &str) -> Result<T, HandlerError> {
        let doc: serde_json::Value = self.data()?;
        self.at("data", &doc, pointer)
    }

    /// One field of the metadata (the envelope), found by JSON pointer (`/actor/user_id`).
    pub fn metadata_field<T: DeserializeOwned>(&self, pointer: &str) -> Result<T, HandlerError> {
        let doc: serde_json::Value = self.metadata()?;
        self.at("metadata", &doc, pointer)
    }

    fn at<T: DeserializeOwned>(&self, part: &str, doc: &serde_json::Value, pointer: &str) -> Result<T, HandlerError> {
        let found = doc.pointer(pointer).cloned().unwrap_or(serde_json::Value::Null);
        serde_json::from_value(found).map_err(|e| self.bad(part, format!("field `{pointer}`: {e}")))
    }

    /// The acting user or system from the envelope (`actor.user_id`), if any.
    pub fn actor(&self) -> Option<String> {
        let meta: serde_json::Value = serde_json::from_str(&self.metadata).ok()?;
        let actor = meta.get("actor")?;
        actor.get("user_id").or(Some(actor)).and_then(|v| v.as_str()).map(str::to_owned)
    }

    fn bad(&self, part: &str, error: impl std::fmt::Display) -> HandlerError {
        HandlerError::permanent(format!(
            "{} v{} has unusable {part}: {error}",
            self.event_type, self.schema_version
        ))
    }
}
