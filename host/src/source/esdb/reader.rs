//! The EventStoreDB source: the router's pull reads served from a feed that
//! the server pushes into.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::ahead::{self, Behind};
use super::connection::Connection;
use super::feed::{self, Item};
use super::filter::ServerFilter;
use super::mapping::Skip;
use crate::source::{Interest, Source};
use crate::Event;

/// How long a read waits for the first event while catching up; once caught
/// up a read takes what has arrived and the router polls again.
pub const CATCH_UP_WAIT: Duration = Duration::from_millis(200);

pub struct EsdbSource {
    connection: Connection,
    filter: ServerFilter,
    feed: Option<Feed>,
    skipped: BTreeMap<Skip, u64>,
}

/// A running subscription and where the reader stands in it.
struct Feed {
    /// The position the next read asks for, when it reads on from the last.
    next: u64,
    items: Behind,
    task: tokio::task::JoinHandle<()>,
    caught_up: bool,
}

impl EsdbSource {
    /// Connects to the server `url` names, to read what `interest` wants.
    pub fn open(url: &str, interest: &Interest) -> Result<Self> {
        let connection = Connection::open(url)?;
        let filter = ServerFilter::for_interest(interest);
        tracing::info!(server = %connection.server, filter = %filter, "reading from EventStoreDB");
        Ok(Self { connection, filter, feed: None, skipped: BTreeMap::new() })
    }

    /// (Re)subscribes so that the next events are those at `from` and after.
    /// The feed reaches the server itself, waiting through an outage.
    fn subscribe(&mut self, from: u64) -> Result<()> {
        if let Some(old) = self.feed.take() {
            old.task.abort();
        }
        let (to, items) = ahead::queue();
        tracing::debug!(server = %self.connection.server, from, "subscribing to $all");
        let task = self.connection.runtime().spawn(feed::run(
            self.connection.client.clone(),
            self.connection.settings.clone(),
            self.filter.clone(),
            from,
            to,
            self.connection.server.clone(),
        ));
        self.feed = Some(Feed { next: from, items, task, caught_up: false });
        Ok(())
    }

    fn count_skip(&mut self, skip: Skip) {
        let n = self.skipped.entry(skip).or_default();
        *n += 1;
        if *n == 1 {
            tracing::warn!(server = %self.connection.server, reason = skip.reason(), "skipping events projections cannot read; they are counted, and listed at debug level");
        }
    }
}

impl Source for EsdbSource {
    fn read(&mut self, from: u64, max: usize) -> Result<Vec<Event>> {
        self.connection.check_running()?;
        if self.feed.as_ref().is_none_or(|f| f.next != from) {
            self.subscribe(from)?;
        }
        let mut events = Vec::new();
        let mut skips = Vec::new();
        let feed = self.feed.as_mut().expect("subscribed above");
        let deadline = Instant::now() + if feed.caught_up { Duration::ZERO } else { CATCH_UP_WAIT };
        while events.len() < max {
            let Some(item) = feed::next_item(&self.connection, &mut feed.items, events.len(), deadline)? else { break };
            match item {
                Item::Event(event) if event.position >= from => {
                    feed.next = event.position + 1;
                    events.push(event);
                }
                Item::Event(_) => {}
                Item::Skipped(skip) => skips.push(skip),
                Item::CaughtUp if !feed.caught_up => {
                    feed.caught_up = true;
                    tracing::info!(server = %self.connection.server, position = feed.next, "caught up with EventStoreDB; following new events");
                }
                Item::CaughtUp => {}
                Item::Fatal(why) => bail!("source {}: {why}", self.connection.server),
            }
        }
        for skip in skips {
            self.count_skip(skip);
        }
        Ok(events)
    }

    fn caught_up(&self) -> bool {
        self.feed.as_ref().is_some_and(|f| f.caught_up && f.items.is_empty())
    }
}

impl Drop for EsdbSource {
    fn drop(&mut self) {
        if let Some(feed) = self.feed.take() {
            feed.task.abort();
        }
        if !self.skipped.is_empty() {
            let counts: Vec<String> = self.skipped.iter().map(|(skip, n)| format!("{n} ({})", skip.reason())).collect();
            tracing::info!(server = %self.connection.server, skipped = %counts.join(", "), "events skipped by the EventStoreDB source");
        }
    }
}
