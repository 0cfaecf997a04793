//! Writing to EventStoreDB, for `import` and `append`: events go in appends of
//! one stream each, in their order, small enough for the server's default
//! largest append.

use std::ops::Range;

use anyhow::{anyhow, Context, Result};
use eventstore::{AppendToStreamOptions, BatchAppendOptions, EventData};

use super::{position, Connection};
use crate::source::import::{ImportSession, Imported};
use crate::source::{ExpectedRevision, NewEvent, Writer};

/// Events per append at most.
pub const MAX_APPEND_EVENTS: usize = 500;
/// Bytes of data and metadata per append at most: half the server's default
/// largest append (1 MiB), leaving room for each record's own fields.
pub const MAX_APPEND_BYTES: usize = 512 * 1024;

/// The appends `events` are written in: runs of one stream, cut at the limits.
pub fn appends(events: &[NewEvent], size: impl Fn(&NewEvent) -> usize) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    let mut bytes = 0;
    for (i, event) in events.iter().enumerate() {
        let n = size(event);
        match runs.last_mut() {
            Some(run)
                if events[run.start].stream == event.stream && run.len() < MAX_APPEND_EVENTS && bytes + n <= MAX_APPEND_BYTES =>
            {
                run.end = i + 1;
                bytes += n;
            }
            _ => {
                runs.push(i..i + 1);
                bytes = n;
            }
        }
    }
    runs
}

/// The envelope as written: the event's metadata, with its schema version.
fn envelope(event: &NewEvent) -> serde_json::Value {
    let mut metadata = event.metadata.clone();
    if let Some(object) = metadata.as_object_mut() {
        if !super::mapping::SCHEMA_VERSION_KEYS.iter().any(|k| object.contains_key(*k)) {
            object.insert("schema_version".into(), event.schema_version.into());
        }
    }
    metadata
}

fn to_event_data(event: &NewEvent) -> Result<EventData> {
    let data = EventData::json(&event.event_type, &event.data)?
        .id(event.id.unwrap_or_else(uuid::Uuid::new_v4))
        .metadata_as_json(&envelope(event))?;
    Ok(data)
}

fn expected_revision(expected: ExpectedRevision) -> eventstore::ExpectedRevision {
    match expected {
        ExpectedRevision::Any => eventstore::ExpectedRevision::Any,
        ExpectedRevision::NoStream => eventstore::ExpectedRevision::NoStream,
        ExpectedRevision::Exact(r) => eventstore::ExpectedRevision::Exact(r),
    }
}

fn size(event: &NewEvent) -> usize {
    event.data.to_string().len() + event.metadata.to_string().len()
}

impl Writer for Connection {
    /// Appends in order; each append is atomic, the whole batch is not (as
    /// EventStoreDB appends to one stream at a time). `expected` applies to
    /// the first append.
    ///
    /// The appends go on one batch-append stream where the server has it
    /// (21.10 and later): each `Append` call is a request of its own, whose
    /// messages the client sends in several small writes that wait on the
    /// server's delayed acknowledgement (about 40 ms each on Linux), which
    /// made an import of interleaved streams write some 25 appends a second.
    fn write(&mut self, events: &[NewEvent], expected: ExpectedRevision) -> Result<Option<u64>> {
        let appender = match self.runtime().block_on(self.client.batch_append(&BatchAppendOptions::default())) {
            Ok(appender) => Some(appender),
            Err(eventstore::Error::UnsupportedFeature) => None,
            Err(e) => return Err(anyhow!("cannot open an append stream on {}: {e}", self.server)),
        };
        let mut last = None;
        for (n, run) in appends(events, size).into_iter().enumerate() {
            let batch = &events[run.clone()];
            for (i, event) in batch.iter().enumerate() {
                event.check().with_context(|| format!("event {} of the batch", run.start + i + 1))?;
            }
            let data = batch.iter().map(to_event_data).collect::<Result<Vec<_>>>()?;
            let expected = if n == 0 { expected } else { ExpectedRevision::Any };
            let options = AppendToStreamOptions::default().expected_revision(expected_revision(expected));
            let stream = batch[0].stream.as_str();
            let count = data.len();
            let written = match &appender {
                Some(appender) => self.runtime().block_on(appender.append_to_stream(stream, expected_revision(expected), data)).map(|w| w.current_position()),
                None => self.runtime().block_on(self.client.append_to_stream(stream, &options, data)).map(|w| Some(w.position)),
            };
            let written = written.map_err(|e| anyhow!("cannot append {count} events to stream {stream} on {}: {e}", self.server))?;
            let at = match written {
                Some(p) => written_at(p).map_err(|why| anyhow!("stream {stream}: {why}"))?,
                None => None,
            };
            last = at.or(last);
        }
        Ok(last)
    }

    fn begin_import(&mut self) -> Result<Box<dyn ImportSession + '_>> {
        Ok(Box::new(EsdbImport { connection: self }))
    }
}

/// The host position of an append the server reports at `p`; `None` when it
/// reports none (the start of the log, which no append can be at): older
/// servers answer so to an idempotent re-append of events they hold already.
pub fn written_at(p: eventstore::Position) -> Result<Option<u64>, String> {
    if p.commit == 0 && p.prepare == 0 {
        return Ok(None);
    }
    position::to_host(p).map(Some)
}

/// An import into EventStoreDB: appended as it goes (the server appends one
/// stream at a time, so a failed import leaves what it appended); importing the
/// file again is harmless, since the server recognises events by their ids.
struct EsdbImport<'a> {
    connection: &'a mut Connection,
}

impl ImportSession for EsdbImport<'_> {
    fn add(&mut self, events: &[NewEvent]) -> Result<Imported> {
        self.connection.write(events, ExpectedRevision::Any)?;
        // The server does not say which it held already.
        Ok(Imported { appended: events.len() as u64, present: 0 })
    }

    fn commit(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_append_the_server_reports_at_the_start_of_the_log_has_no_position() {
        use eventstore::Position;
        assert_eq!(written_at(Position { commit: 0, prepare: 0 }), Ok(None), "not position 1048576");
        let real = Position { commit: 4096, prepare: 4096 };
        assert_eq!(written_at(real), Ok(Some(position::to_host(real).unwrap())));
    }

    fn event(stream: &str, metadata: serde_json::Value) -> NewEvent {
        NewEvent { id: None, stream: stream.into(), event_type: "T".into(), schema_version: 2, data: serde_json::json!({}), metadata }
    }

    #[test]
    fn appends_are_runs_of_one_stream_cut_at_the_limits() {
        let streams = ["a", "a", "b", "a", "a", "a"];
        let events: Vec<NewEvent> = streams.iter().map(|s| event(s, serde_json::json!({}))).collect();
        assert_eq!(appends(&events, |_| 10), [0..2, 2..3, 3..6]);
        assert_eq!(appends(&events, |_| MAX_APPEND_BYTES / 2), [0..2, 2..3, 3..5, 5..6]);
        let many: Vec<NewEvent> = (0..MAX_APPEND_EVENTS + 1).map(|_| event("a", serde_json::json!({}))).collect();
        assert_eq!(appends(&many, |_| 1), [0..MAX_APPEND_EVENTS, MAX_APPEND_EVENTS..MAX_APPEND_EVENTS + 1]);
        assert_eq!(appends(&events[..1], |_| MAX_APPEND_BYTES * 3), [0..1], "a big event goes alone");
    }

    #[test]
    fn the_envelope_carries_the_schema_version_unless_it_states_one() {
        assert_eq!(envelope(&event("a", serde_json::json!({"actor": "ana"}))), serde_json::json!({"actor": "ana", "schema_version": 2}));
        let stated = serde_json::json!({"eventVersion": "v3"});
        assert_eq!(envelope(&event("a", stated.clone())), stated);
        let written = envelope(&event("a", serde_json::json!({})));
        assert_eq!(super::super::mapping::schema_version(&written.to_string()), 2, "what is written is read back");
    }
}
