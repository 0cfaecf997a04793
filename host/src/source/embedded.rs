//! The embedded source: an append-only event log in one SQLite file.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use std::time::{Duration, SystemTime, UNIX_EPOCH};


use super::{ExpectedRevision, NewEvent, Probe, Source, Writer};
use crate::Event;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT    NOT NULL UNIQUE,
    stream         TEXT    NOT NULL,
    revision       INTEGER NOT NULL,
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    data           TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    -- When it was appended, in milliseconds since 1970 (NULL in logs made before it was kept).
    recorded       INTEGER,
    UNIQUE (stream, revision)
);";

/// The log. Positions start at 1; revisions start at 0 in each stream.
pub struct EmbeddedLog {
    conn: Connection,
}

impl EmbeddedLog {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = crate::store_file::open(path, crate::store_file::Kind::EventLog)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA).with_context(|| format!("{} is not a Projector event log", path.display()))?;
        crate::store_file::add_column(&conn, "events", "recorded", "ALTER TABLE events ADD COLUMN recorded INTEGER")
            .with_context(|| format!("cannot bring the event log {} up to date (it keeps each event's recorded time now)", path.display()))?;
        Ok(Self { conn })
    }

    /// Appends events atomically: all or none. `expected` applies to the first
    /// event's stream, as a command handler would use it for one aggregate.
    /// Returns the position of each appended event.
    pub fn append(&mut self, events: &[NewEvent], expected: ExpectedRevision) -> Result<Vec<u64>> {
        let tx = self.write_transaction()?;
        let (positions, _) = append_in(&tx, events, expected, false)?;
        tx.commit()?;
        Ok(positions)
    }

    /// Immediate: the write lock is taken before the revisions are read, so a
    /// second appender waits for it (up to the busy timeout) instead of
    /// failing when its read snapshot goes stale.
    fn write_transaction(&mut self) -> Result<rusqlite::Transaction<'_>> {
        Ok(self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?)
    }

    /// The number of events in the log.
    pub fn count(&self) -> Result<u64> {
        Ok(self.conn.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))? as u64)
    }

    /// Gives tests and tools direct access to the file's connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// Appends `events` inside `tx`; with `skip_present`, an event whose id the
/// log holds is passed over (and counted) instead of refused.
fn append_in(tx: &rusqlite::Transaction, events: &[NewEvent], expected: ExpectedRevision, skip_present: bool) -> Result<(Vec<u64>, u64)> {
    let mut next_revision: HashMap<&str, u64> = HashMap::new();
    let mut positions = Vec::with_capacity(events.len());
    let mut present = 0;
    let mut last = tx.prepare_cached("SELECT max(revision) FROM events WHERE stream = ?1")?;
    let mut held = tx.prepare_cached("SELECT 1 FROM events WHERE id = ?1")?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO events (id, stream, revision, event_type, schema_version, data, metadata, recorded)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    for (i, e) in events.iter().enumerate() {
        e.check().with_context(|| format!("event {} of the batch", i + 1))?;
        let id = e.id.unwrap_or_else(uuid::Uuid::new_v4).to_string();
        if skip_present && held.exists([&id])? {
            present += 1;
            continue;
        }
        let revision = match next_revision.get(e.stream.as_str()) {
            Some(r) => *r,
            None => {
                let current: Option<i64> = last.query_row([&e.stream], |r| r.get(0))?;
                if i == 0 {
                    check_expected(&e.stream, current, expected)?;
                }
                current.map_or(0, |r| r as u64 + 1)
            }
        };
        next_revision.insert(&e.stream, revision + 1);
        insert
            .execute(params![id, e.stream, revision as i64, e.event_type, e.schema_version, e.data.to_string(), e.metadata.to_string(), now])
            .with_context(|| format!("cannot append event {id} to stream {}", e.stream))?;
        positions.push(tx.last_insert_rowid() as u64);
    }
    Ok((positions, present))
}

/// An import into the embedded log: one transaction for the whole file.
struct EmbeddedImport<'a> {
    tx: rusqlite::Transaction<'a>,
}

impl super::import::ImportSession for EmbeddedImport<'_> {
    fn add(&mut self, events: &[NewEvent]) -> Result<super::import::Imported> {
        let (positions, present) = append_in(&self.tx, events, ExpectedRevision::Any, true)?;
        Ok(super::import::Imported { appended: positions.len() as u64, present })
    }

    fn commit(self: Box<Self>) -> Result<()> {
        Ok(self.tx.commit()?)
    }
}

fn check_expected(stream: &str, current: Option<i64>, expected: ExpectedRevision) -> Result<()> {
    let ok = match expected {
        ExpectedRevision::Any => true,
        ExpectedRevision::NoStream => current.is_none(),
        ExpectedRevision::Exact(r) => current == Some(r as i64),
    };
    if !ok {
        let actual = current.map_or("no stream".to_owned(), |r| format!("revision {r}"));
        bail!("wrong expected revision for stream {stream}: expected {expected:?}, the stream is at {actual}");
    }
    Ok(())
}

impl Source for EmbeddedLog {
    fn read(&mut self, from: u64, max: usize) -> Result<Vec<Event>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT position, id, stream, revision, event_type, schema_version, data, metadata
             FROM events WHERE position >= ?1 ORDER BY position LIMIT ?2",
        )?;
        let mut rows = stmt.query_map(params![from as i64, max as i64], |r| {
            Ok(Event {
                position: r.get::<_, i64>(0)? as u64,
                id: r.get(1)?,
                stream: r.get(2)?,
                revision: r.get::<_, i64>(3)? as u64,
                event_type: r.get(4)?,
                schema_version: r.get(5)?,
                data: r.get(6)?,
                metadata: r.get(7)?,
            })
        })?;
        // At most `READ_BYTES` of events at once (and at least one), whatever their size.
        let (mut events, mut bytes) = (Vec::new(), 0);
        while bytes < crate::router::READ_BYTES {
            let Some(event) = rows.next().transpose()? else { break };
            bytes += event.bytes();
            events.push(event);
        }
        Ok(events)
    }
}

impl Probe for EmbeddedLog {
    fn head(&mut self) -> Result<Option<u64>> {
        let head: Option<i64> = self.conn.query_row("SELECT max(position) FROM events", [], |r| r.get(0))?;
        Ok(head.map(|h| h as u64))
    }

    fn recorded_at(&mut self, position: u64) -> Result<Option<SystemTime>> {
        let mut stmt = self.conn.prepare_cached("SELECT recorded FROM events WHERE position >= ?1 ORDER BY position LIMIT 1")?;
        let ms: Option<Option<i64>> = stmt.query_row([position as i64], |r| r.get(0)).optional()?;
        Ok(ms.flatten().map(|ms| UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)))
    }

    fn counts_events(&self) -> bool {
        true
    }
}

impl Writer for EmbeddedLog {
    fn write(&mut self, events: &[NewEvent], expected: ExpectedRevision) -> Result<Option<u64>> {
        Ok(self.append(events, expected)?.last().copied())
    }

    fn begin_import(&mut self) -> Result<Box<dyn super::import::ImportSession + '_>> {
        Ok(Box::new(EmbeddedImport { tx: self.write_transaction()? }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(stream: &str) -> NewEvent {
        serde_json::from_value(serde_json::json!({"stream": stream, "type": "T", "data": {"n": 1}})).unwrap()
    }

    #[test]
    fn a_log_of_an_older_release_opened_by_two_at_once_keeps_its_events_and_records_times_from_now_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(&SCHEMA.replace("    recorded       INTEGER,\n", "")).unwrap();
        old.execute("INSERT INTO events (id, stream, revision, event_type, schema_version, data, metadata) VALUES ('a', 's', 0, 'T', 1, '{}', '{}')", []).unwrap();
        drop(old);
        let opened: Vec<_> = (0..4).map(|_| std::thread::spawn({ let path = path.clone(); move || EmbeddedLog::open(&path).map(drop) })).collect();
        for o in opened {
            o.join().unwrap().expect("every opener finds the log brought up to date");
        }
        let mut log = EmbeddedLog::open(&path).unwrap();
        assert_eq!(log.read(0, 10).unwrap().len(), 1, "the old event is kept");
        assert_eq!(log.recorded_at(1).unwrap(), None, "an event of the old release has no recorded time");
        let before = SystemTime::now() - Duration::from_secs(1);
        log.append(&[new("s")], ExpectedRevision::Any).unwrap();
        assert_eq!(log.head().unwrap(), Some(2));
        assert!(log.recorded_at(2).unwrap().is_some_and(|t| t >= before), "a new event has its time");
        assert_eq!(log.recorded_at(3).unwrap(), None, "nothing after the head");
    }

    #[test]
    fn appends_check_the_expected_revision_and_are_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = EmbeddedLog::open(&dir.path().join("events.db")).unwrap();
        assert_eq!(log.append(&[new("s"), new("s")], ExpectedRevision::NoStream).unwrap(), [1, 2]);
        let stale = log.append(&[new("s")], ExpectedRevision::Exact(0)).unwrap_err();
        assert!(stale.to_string().contains("wrong expected revision for stream s"), "{stale}");
        assert!(log.append(&[new("s")], ExpectedRevision::NoStream).is_err());
        assert_eq!(log.append(&[new("s")], ExpectedRevision::Exact(1)).unwrap(), [3]);
        let mut bad = new("t");
        bad.metadata = serde_json::json!([1]);
        assert!(log.append(&[new("t"), bad], ExpectedRevision::Any).is_err());
        assert_eq!(log.count().unwrap(), 3, "a failed batch appends nothing");
        let revisions: Vec<u64> = log.read(0, 10).unwrap().iter().map(|e| e.revision).collect();
        assert_eq!(revisions, [0, 1, 2]);
    }
}
