//! Sources: where events come from, in global order.

pub mod embedded;
mod new_event;

use anyhow::{bail, Result};

pub use new_event::{ExpectedRevision, NewEvent};

use crate::Event;

/// A source of events in global order. Positions increase strictly; gaps are allowed.
pub trait Source: Send {
    /// Up to `max` events at positions `>= from`, in order.
    fn read(&mut self, from: u64, max: usize) -> Result<Vec<Event>>;

    /// The position after the last event (what a reader that is caught up has reached).
    fn head(&mut self) -> Result<u64>;
}

/// Opens the source a URL names: `embedded:PATH` now.
pub fn open(url: &str) -> Result<embedded::EmbeddedLog> {
    match url.split_once(':') {
        Some(("embedded", path)) => embedded::EmbeddedLog::open(path.as_ref()),
        Some(("esdb" | "esdb+discover" | "kurrentdb" | "kurrentdb+discover", _)) => bail!(
            "source {url}: the EventStoreDB/KurrentDB source is not built yet; use `embedded:PATH` (e.g. `embedded:.projector/events.db`)"
        ),
        _ => bail!("source `{url}` is not a source URL: use `embedded:PATH` (e.g. `embedded:.projector/events.db`)"),
    }
}
