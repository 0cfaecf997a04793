//! Sources: where events come from, in global order, and where `import` and
//! `append` write them.

pub mod embedded;
pub mod esdb;
pub mod import;
mod interest;
mod new_event;
mod probe;
pub mod settle;

use anyhow::{bail, Result};

pub use interest::{Interest, Wants};
pub use new_event::{ExpectedRevision, NewEvent};
pub use probe::Probe;

use crate::Event;

/// A source of events in global order. Positions increase strictly; gaps are allowed.
pub trait Source: Send {
    /// Up to `max` events at positions `>= from`, in order. Empty when nothing
    /// new has arrived (or, while catching up, nothing arrived for a moment).
    fn read(&mut self, from: u64, max: usize) -> Result<Vec<Event>>;

    /// Whether an empty read means the reader is at the end of what the
    /// source holds (the embedded log: always; a server: once it says so).
    fn caught_up(&self) -> bool {
        true
    }

    /// For a source that delivers each event until told what became of it (an
    /// EventStoreDB persistent subscription): where the router and the lanes
    /// settle each event. Such a source keeps no global order (it may deliver
    /// an event again), so its router does not skip events by position.
    fn settler(&self) -> Option<settle::Settler> {
        None
    }
}

/// A source lent for one run (a test's stand-in, a benchmark's log).
impl<S: Source + ?Sized> Source for &mut S {
    fn read(&mut self, from: u64, max: usize) -> Result<Vec<Event>> {
        (**self).read(from, max)
    }

    fn caught_up(&self) -> bool {
        (**self).caught_up()
    }

    fn settler(&self) -> Option<settle::Settler> {
        (**self).settler()
    }
}

/// Where `import` and `append` write.
pub trait Writer {
    /// Appends events in order; `expected` applies to the first event's
    /// stream. Returns the position of the last one written.
    fn write(&mut self, events: &[NewEvent], expected: ExpectedRevision) -> Result<Option<u64>>;

    /// Starts an import (`import::ImportFile`).
    fn begin_import(&mut self) -> Result<Box<dyn import::ImportSession + '_>>;
}

/// The source schemes, for messages.
const SCHEMES: &str = "`embedded:PATH` (e.g. `embedded:.projector/events.db`), `esdb://HOST:PORT?tls=false` (EventStoreDB/KurrentDB), or `esdb:` (the server in ESDB_CONNECTION_STRING)";

/// Opens the source a URL names, to read what `interest` wants.
pub fn open(url: &str, interest: &Interest) -> Result<Box<dyn Source>> {
    Ok(match scheme(url)? {
        Scheme::Embedded(path) => Box::new(embedded::EmbeddedLog::open(path.as_ref())?),
        Scheme::Esdb => Box::new(esdb::EsdbSource::open(url, interest)?),
    })
}

/// Opens a persistent-subscription group on the EventStoreDB server a URL
/// names, to read what `interest` wants (one projection's share of it).
pub fn open_group(url: &str, group: &str, interest: &Interest) -> Result<Box<dyn Source>> {
    match scheme(url)? {
        Scheme::Esdb => Ok(Box::new(esdb::persistent::GroupSource::open(url, group, interest)?)),
        Scheme::Embedded(_) => bail!("group `{group}` needs an EventStoreDB source (persistent subscriptions are a server's), but the source is `{url}`: remove `group` or use `esdb://...`"),
    }
}

/// Opens the event store a URL names, to write to it.
pub fn open_writer(url: &str) -> Result<Box<dyn Writer>> {
    Ok(match scheme(url)? {
        Scheme::Embedded(path) => Box::new(embedded::EmbeddedLog::open(path.as_ref())?),
        Scheme::Esdb => Box::new(esdb::Connection::open(url)?),
    })
}

/// What answers questions about the log at `url`, for whoever watches the host.
pub fn probe(url: &str) -> Result<Box<dyn Probe>> {
    Ok(match scheme(url)? {
        Scheme::Embedded(path) => Box::new(embedded::EmbeddedLog::open(path.as_ref())?),
        Scheme::Esdb => Box::new(esdb::Connection::open(url)?),
    })
}

/// How many events the source at `url` holds, when it can tell cheaply (the
/// embedded log can; a server is not asked).
pub fn count(url: &str) -> Result<Option<u64>> {
    match scheme(url)? {
        Scheme::Embedded(path) => embedded::EmbeddedLog::open(path.as_ref())?.count().map(Some),
        Scheme::Esdb => Ok(None),
    }
}

enum Scheme<'a> {
    Embedded(&'a str),
    Esdb,
}

fn scheme(url: &str) -> Result<Scheme<'_>> {
    match url.split_once(':') {
        Some(("embedded", path)) if !path.is_empty() => Ok(Scheme::Embedded(path)),
        Some(("esdb" | "esdb+discover" | "kurrentdb" | "kurrentdb+discover", _)) => Ok(Scheme::Esdb),
        _ => bail!("source `{url}` is not a source URL: use {SCHEMES}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of<T>(result: Result<T>) -> String {
        result.err().map(|e| format!("{e:#}")).expect("an error")
    }

    #[test]
    fn a_url_that_names_no_source_is_refused_with_the_schemes_that_work() {
        for url in ["postgres://x", "embedded:", "events.db"] {
            let err = error_of(open(url, &Interest::everything()));
            assert!(err.contains("is not a source URL") && err.contains("esdb://HOST:PORT?tls=false"), "{err}");
        }
    }

    #[test]
    fn a_group_needs_an_eventstoredb_source() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("embedded:{}", dir.path().join("events.db").display());
        let err = error_of(open_group(&url, "g", &Interest::everything()));
        assert!(err.contains("group `g` needs an EventStoreDB source"), "{err}");
        assert_eq!(count(&url).unwrap(), Some(0));
        assert_eq!(count("esdb://127.0.0.1:1?tls=false").unwrap(), None, "a server is not asked");
    }
}
