//! The questions a watcher asks of an EventStoreDB/KurrentDB log: where it
//! ends, and when the first record not yet done was written.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Result};
use eventstore::{Position, ReadAllOptions, ReadEvent, StreamPosition};

use super::connection::{Connection, CONNECT_TIMEOUT};
use super::position::{is_self_committed, to_esdb, to_host};
use crate::source::Probe;

impl Probe for Connection {
    fn head(&mut self) -> Result<Option<u64>> {
        self.last_position()?.map(|p| to_host(p).map_err(anyhow::Error::msg)).transpose()
    }

    /// `position` is a checkpoint: one past a record's host position (that
    /// record is done: the answer is the record after it) or a record's own.
    fn recorded_at(&mut self, position: u64) -> Result<Option<SystemTime>> {
        let (from, done): (StreamPosition<Position>, Option<Position>) = match position {
            0 => (StreamPosition::Start, None),
            p if is_self_committed(p - 1) => (StreamPosition::Position(to_esdb(p - 1)), Some(to_esdb(p - 1))),
            p => (StreamPosition::Position(to_esdb(p)), None),
        };
        let options = ReadAllOptions::default().position(from).forwards().max_count(2);
        let read = async {
            let mut read = self.client.read_all(&options).await?;
            while let Some(item) = read.next_read_event().await? {
                if let ReadEvent::Event(e) = item {
                    let record = e.get_original_event();
                    if Some(record.position) != done {
                        return Ok(Some(record.created.timestamp_millis()));
                    }
                }
            }
            Ok::<_, eventstore::Error>(None)
        };
        let ms = self
            .runtime()
            .block_on(async { tokio::time::timeout(CONNECT_TIMEOUT, read).await })
            .map_err(|_| anyhow!("{} gave no answer within {CONNECT_TIMEOUT:?}", self.server))??;
        Ok(ms.map(|ms| UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)))
    }

    /// Positions in `$all` are where records lie in the server's files.
    fn counts_events(&self) -> bool {
        false
    }
}
