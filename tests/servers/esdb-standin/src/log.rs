//! The log: records in `$all` order, each at its own offset (commit ==
//! prepare), and the streams' revisions.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// The stream of the server's statistics records.
const STATS_STREAM: &str = "$stats-127.0.0.1:2113";

/// Bytes a record takes in the log beside its data and metadata.
const RECORD_OVERHEAD: u64 = 96;

/// One record of `$all`.
#[derive(Debug, Clone)]
pub struct Record {
    /// Its offset in the log: its commit and prepare position both.
    pub position: u64,
    pub stream: String,
    pub revision: u64,
    pub id: uuid::Uuid,
    pub event_type: String,
    pub is_json: bool,
    pub data: Vec<u8>,
    pub custom_metadata: Vec<u8>,
    /// When it was written: 100 ns ticks since 1970, as the server counts.
    pub created: u64,
}

/// An event an append proposes.
#[derive(Debug, Clone)]
pub struct Proposed {
    pub id: uuid::Uuid,
    pub event_type: String,
    pub is_json: bool,
    pub data: Vec<u8>,
    pub custom_metadata: Vec<u8>,
}

/// What an append expects of its stream.
#[derive(Debug, Clone, Copy)]
pub enum Expected {
    Any,
    NoStream,
    StreamExists,
    Revision(u64),
}

/// An append's answer.
#[derive(Debug)]
pub enum Appended {
    /// The stream's last revision, and the last record's position (`None`:
    /// the events were there already).
    Written { revision: u64, position: Option<u64> },
    /// The stream's last revision (`None`: no stream), and what was expected.
    WrongExpectedVersion { current: Option<u64>, expected: Expected },
}

pub struct Log {
    inner: Mutex<Inner>,
    /// Whether subscriptions end, cleanly, as a server may end them.
    ending: std::sync::atomic::AtomicBool,
    /// The number of records, for subscriptions waiting for new ones.
    length: watch::Sender<usize>,
}

#[derive(Default)]
struct Inner {
    records: Vec<Arc<Record>>,
    next_offset: u64,
    last_revision: HashMap<String, u64>,
    /// The ids each stream holds, for idempotent appends.
    ids: HashSet<(String, uuid::Uuid)>,
}

impl Inner {
    /// Writes one record at the end of the log: its revision and position.
    fn push(&mut self, stream: &str, e: Proposed) -> (u64, u64) {
        let revision = self.last_revision.get(stream).map_or(0, |r| r + 1);
        let (offset, e_id) = (self.next_offset, e.id);
        self.next_offset += RECORD_OVERHEAD + (e.data.len() + e.custom_metadata.len() + e.event_type.len() + stream.len()) as u64;
        self.records.push(Arc::new(Record {
            position: offset,
            stream: stream.into(),
            revision,
            id: e.id,
            event_type: e.event_type,
            is_json: e.is_json,
            data: e.data,
            custom_metadata: e.custom_metadata,
            created: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| (d.as_nanos() / 100) as u64),
        }));
        self.last_revision.insert(stream.into(), revision);
        self.ids.insert((stream.into(), e_id));
        (revision, offset)
    }
}

impl Default for Log {
    fn default() -> Self {
        Self::new()
    }
}

impl Log {
    /// A log that begins as a server's does, with records of its own.
    pub fn new() -> Self {
        let log = Self { inner: Mutex::new(Inner::default()), ending: Default::default(), length: watch::channel(0).0 };
        log.system("$settings", "$settings");
        log.system(STATS_STREAM, "$statsCollected");
        log
    }

    /// Appends a record of the server's own (a type starting with `$`).
    pub fn system(&self, stream: &str, event_type: &str) {
        let event = Proposed { id: uuid::Uuid::new_v4(), event_type: event_type.into(), is_json: true, data: b"{}".to_vec(), custom_metadata: vec![] };
        self.append(stream, Expected::Any, vec![event]);
    }

    /// Appends `events` to `stream`, atomically, if it is as `expected`. Events
    /// whose ids the stream holds already are not written again.
    pub fn append(&self, stream: &str, expected: Expected, events: Vec<Proposed>) -> Appended {
        let mut inner = self.inner.lock().unwrap();
        let current = inner.last_revision.get(stream).copied();
        let fits = match expected {
            Expected::Any => true,
            Expected::NoStream => current.is_none(),
            Expected::StreamExists => current.is_some(),
            Expected::Revision(r) => current == Some(r),
        };
        let held = !events.is_empty() && events.iter().all(|e| inner.ids.contains(&(stream.to_owned(), e.id)));
        if held {
            return Appended::Written { revision: current.unwrap_or(0), position: None };
        }
        if !fits {
            return Appended::WrongExpectedVersion { current, expected };
        }
        let mut revision = current;
        let mut position = None;
        for e in events {
            let (r, p) = inner.push(stream, e);
            revision = Some(r);
            position = Some(p);
        }
        // The server writes records of its own all the time (statistics):
        // one follows every append, so that the log's last record is one that
        // filters leave out, as it often is on a real server.
        if !stream.starts_with('$') {
            let stats = Proposed { id: uuid::Uuid::new_v4(), event_type: "$statsCollected".into(), is_json: true, data: b"{}".to_vec(), custom_metadata: vec![] };
            inner.push(STATS_STREAM, stats);
        }
        let length = inner.records.len();
        drop(inner);
        self.length.send_replace(length);
        Appended::Written { revision: revision.unwrap_or(0), position }
    }

    /// The records from index `from` on.
    pub fn from_index(&self, from: usize) -> Vec<Arc<Record>> {
        let inner = self.inner.lock().unwrap();
        inner.records.get(from..).map(<[_]>::to_vec).unwrap_or_default()
    }

    /// Every record.
    pub fn records(&self) -> Vec<Arc<Record>> {
        self.from_index(0)
    }

    /// Removes the record at `position`, as a scavenge removes records of
    /// streams truncated or past their `$maxAge` / `$maxCount`.
    pub fn scavenge(&self, position: u64) {
        self.inner.lock().unwrap().records.retain(|r| r.position != position);
    }

    /// Ends every subscription, now and from now on, with the stream's
    /// clean end (no error), as a server or a proxy in between may.
    pub fn end_subscriptions(&self) {
        self.ending.store(true, std::sync::atomic::Ordering::SeqCst);
        self.length.send_modify(|_| {});
    }

    pub fn ending(&self) -> bool {
        self.ending.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits for the log to hold more than `known` records.
    pub fn watch(&self) -> watch::Receiver<usize> {
        self.length.subscribe()
    }
}
