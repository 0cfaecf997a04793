//! Questions to a source about its log, asked by whoever watches the host
//! (status, metrics, health), never on the path events take.

use std::time::SystemTime;

use anyhow::Result;

pub trait Probe: Send {
    /// The position of the last event in the log; `None` when it is empty.
    fn head(&mut self) -> Result<Option<u64>>;

    /// When the first event at or after `position` was recorded; `None` when
    /// there is none, or the log did not keep the time.
    fn recorded_at(&mut self, position: u64) -> Result<Option<SystemTime>>;

    /// Whether positions count events, so that the lag in events is the
    /// distance from a checkpoint to the head.
    fn counts_events(&self) -> bool;
}
