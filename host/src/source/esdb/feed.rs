//! The feed: one catch-up subscription to `$all`, run on the source's own
//! runtime, handing mapped events to the reader through a queue bounded in
//! items and bytes ([`super::ahead`], the backpressure that keeps memory
//! bounded while catching up). When the
//! subscription drops, the feed resubscribes after the last event it handed
//! on, waiting longer after each failure, and never gives up: an outage of the
//! event store delays projections, it does not fail them.

use std::time::Duration;

use eventstore::{Client, ClientSettings, Position, ReadAllOptions, ReadEvent, StreamPosition, SubscribeToAllOptions, SubscriptionEvent};

use super::ahead::{Ahead, Behind};
use super::connection::{last_position, Connection};
use super::filter::ServerFilter;
use super::mapping::{self, Mapped, Skip};
use super::position::Start;
use crate::Event;

/// The wait before the first resubscription; it doubles after each failure.
pub const RESUBSCRIBE_BASE: Duration = Duration::from_millis(250);
/// The longest wait between resubscriptions.
pub const RESUBSCRIBE_CAP: Duration = Duration::from_secs(10);

/// What the feed hands the reader.
#[derive(Debug)]
pub enum Item {
    Event(Event),
    Skipped(Skip),
    /// The subscription has read everything the server had when it started.
    CaughtUp,
    /// An event the host cannot take (its position cannot be numbered).
    Fatal(String),
}

/// How long a waiting read sleeps between two looks at the queue.
pub const WAIT_SLICE: Duration = Duration::from_millis(2);

/// The next item for a read that has `got` events so far: one already
/// waiting, or, while it has none, one that comes before `deadline`. `None`:
/// the read is done. An error: the feed has ended, or the client's runtime
/// has stopped ([`Connection::check_running`]).
///
/// The read waits on the host's side, in short sleeps, and not on the
/// client's runtime: a thread that blocks on a runtime does not drive its
/// timers, so a runtime whose one thread is held would hold the read too.
pub fn next_item(connection: &Connection, items: &mut Behind, got: usize, deadline: std::time::Instant) -> anyhow::Result<Option<Item>> {
    use tokio::sync::mpsc::error::TryRecvError;
    loop {
        match items.try_recv() {
            Ok(item) => return Ok(Some(item)),
            Err(TryRecvError::Disconnected) => anyhow::bail!("the subscription to {} ended", connection.server),
            Err(TryRecvError::Empty) if got > 0 || std::time::Instant::now() >= deadline => return Ok(None),
            Err(TryRecvError::Empty) => {
                connection.check_running()?;
                std::thread::sleep(WAIT_SLICE.min(deadline.saturating_duration_since(std::time::Instant::now())));
            }
        }
    }
}

/// The wait before resubscription number `failures` (1 for the first).
pub fn backoff(failures: u32) -> Duration {
    let factor = 1u32.checked_shl(failures.saturating_sub(1)).unwrap_or(u32::MAX);
    RESUBSCRIBE_BASE.saturating_mul(factor).min(RESUBSCRIBE_CAP)
}

/// How long a subscription may send nothing before the feed looks whether
/// anything it wants is left to read (servers before 23.10 do not say when a
/// subscription has caught up).
pub const QUIET: Duration = Duration::from_millis(250);
/// The most records such a look reads back from the end of `$all`.
pub const PROBE_LIMIT: usize = 4096;

/// Runs the subscription from `start` until the reader hangs up.
///
/// Caught up is what the server says (23.10 and later), or reaching the last
/// record `$all` held when the feed began (an event or a checkpoint at or past
/// it), or, once the subscription has been quiet for [`QUIET`], finding no
/// record the filter takes between the end of `$all` and what the subscription
/// has passed ([`nothing_left`]): older servers send no word at the end of a
/// catch-up, and the last record is often a system one the filter leaves out.
///
/// An outage is waited out; what waiting cannot change (access denied, a
/// checkpoint past the end of `$all`) stops the source with the reason, and a
/// client whose connection has closed for good is made anew from `settings`.
pub async fn run(mut client: Client, settings: ClientSettings, filter: ServerFilter, from: u64, to: Ahead, server: String) {
    let start = super::position::start_for(from);
    let mut failures = 0;
    // Where the subscription stands: a real record's position, or the start.
    let mut at: Option<StreamPosition<Position>> = None;
    let mut head: Option<Option<Position>> = None;
    let mut caught_up = false;
    loop {
        if failures > 0 {
            tokio::time::sleep(backoff(failures)).await;
        }
        let prepared = async {
            if at.is_none() {
                at = Some(resolve(&client, start).await?);
            }
            if head.is_none() && !caught_up {
                head = Some(last_position(&client).await?);
            }
            Ok::<_, eventstore::Error>(())
        };
        if let Err(error) = prepared.await {
            if !recover(&error, &mut client, &settings, &to).await {
                return;
            }
            failures += 1;
            tracing::warn!(%server, error = %error, retry_in = ?backoff(failures), "cannot reach EventStoreDB to subscribe; trying again");
            continue;
        }
        let head = head.flatten();
        if let Some(beyond) = beyond_the_end(from, head) {
            let _ = to.send(Item::Fatal(beyond)).await;
            return;
        }
        let reached = |p: Position| head.is_none_or(|h| !after(h, p));
        if !caught_up && head.is_none() {
            caught_up = true;
            if !to.send(Item::CaughtUp).await {
                return;
            }
        }
        let options = SubscribeToAllOptions::default().position(at.expect("resolved above")).filter(filter.build());
        let (mut delivered, pump) = pump(client.subscribe_to_all(&options).await);
        // Aborted with the feed, too: an idle subscription would outlive it.
        let pump = AbortOnDrop(pump);
        // The last position the subscription passed (an event's or a checkpoint's).
        let mut passed = match at {
            Some(StreamPosition::Position(p)) => Some(p),
            _ => None,
        };
        let dropped = loop {
            let next = tokio::select! {
                next = delivered.recv() => next,
                () = tokio::time::sleep(QUIET), if !caught_up => {
                    match nothing_left(&client, &filter, passed).await {
                        Ok(true) => Some(Ok(SubscriptionEvent::CaughtUp)),
                        Ok(false) => continue,
                        Err(error) => break error,
                    }
                }
            };
            let mut at_head = false;
            let item = match next {
                None => break eventstore::Error::IllegalStateError("the subscription ended".into()),
                Some(Ok(SubscriptionEvent::EventAppeared(resolved))) => {
                    let record = resolved.get_original_event();
                    failures = 0;
                    at = Some(StreamPosition::Position(record.position));
                    passed = Some(record.position);
                    at_head = reached(record.position);
                    match mapping::map(record) {
                        Ok(Mapped::Event(event)) => Item::Event(event),
                        Ok(Mapped::Skipped(skip)) => {
                            tracing::debug!(stream = %record.stream_id, revision = record.revision, event_type = %record.event_type, reason = skip.reason(), "event skipped");
                            Item::Skipped(skip)
                        }
                        Err(why) => Item::Fatal(why),
                    }
                }
                Some(Ok(SubscriptionEvent::CaughtUp)) => Item::CaughtUp,
                Some(Ok(SubscriptionEvent::Checkpoint(p))) => {
                    passed = Some(p);
                    if !reached(p) {
                        continue;
                    }
                    Item::CaughtUp
                }
                Some(Ok(_)) => continue,
                Some(Err(error)) => break error,
            };
            caught_up |= matches!(item, Item::CaughtUp) || at_head;
            let fatal = matches!(item, Item::Fatal(_));
            if !to.send(item).await || fatal || (at_head && !to.send(Item::CaughtUp).await) {
                return;
            }
        };
        drop(pump);
        if !recover(&dropped, &mut client, &settings, &to).await {
            return;
        }
        failures += 1;
        tracing::warn!(%server, error = %dropped, retry_in = ?backoff(failures), "EventStoreDB subscription dropped; resubscribing after the last event read");
    }
}

/// A task that ends when its handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Moves the subscription's messages to a channel of one, so that the feed
/// can wait for them and for time at once without dropping a half-read
/// message (the client's read is not cancel-safe). The client does not
/// report a clean end of the server's stream: it reads the ended stream again
/// and again without yielding, which stops every task of the source's
/// runtime; the reader's watchdog ([`super::reader`]) says so and stops the source.
fn pump(mut subscription: eventstore::Subscription) -> (tokio::sync::mpsc::Receiver<eventstore::Result<SubscriptionEvent>>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let task = tokio::spawn(async move {
        loop {
            let next = subscription.next_subscription_event().await;
            let failed = next.is_err();
            if tx.send(next).await.is_err() || failed {
                return;
            }
        }
    });
    (rx, task)
}

/// What becomes of the feed after `error`: `false` when it must stop (the
/// reader has been told why, or has gone); a client whose connection has
/// closed for good is made anew.
pub async fn recover(error: &eventstore::Error, client: &mut Client, settings: &ClientSettings, to: &Ahead) -> bool {
    match error {
        eventstore::Error::AccessDenied => {
            let why = "EventStoreDB denies access to $all: give the connection string a user who may read it (e.g. esdb://USER:PASSWORD@HOST:2113)";
            let _ = to.send(Item::Fatal(why.into())).await;
            false
        }
        eventstore::Error::ConnectionClosed => match Client::with_runtime_handle(tokio::runtime::Handle::current(), settings.clone()) {
            Ok(fresh) => {
                *client = fresh;
                true
            }
            Err(e) => {
                let _ = to.send(Item::Fatal(format!("cannot make a new client: {e}"))).await;
                false
            }
        },
        _ => true,
    }
}

/// Why a subscription from checkpoint `from` cannot be right, where `$all`
/// ends at `head`: a checkpoint past its end means the store is not the one
/// the read model was built from (replaced, or restored from an older backup).
pub fn beyond_the_end(from: u64, head: Option<Position>) -> Option<String> {
    let end = match head {
        Some(h) => super::position::to_host(h).ok()? + 1,
        None => 0,
    };
    (from > end).then(|| {
        format!(
            "the checkpoint {from} lies beyond the end of $all ({end}): this store is not the one the read model was built from (replaced, or restored from an older backup); point the host at that store, or rebuild the read model from this one into an empty sink"
        )
    })
}

/// The position a subscription from `start` is given: a real record's, so
/// that servers of every version start right after it.
async fn resolve(client: &Client, start: Start) -> eventstore::Result<StreamPosition<Position>> {
    Ok(match start {
        Start::Beginning => StreamPosition::Start,
        Start::After(p) => {
            // The record there may be gone (scavenged, truncated): then a server
            // up to 23.10 would skip the next one instead. Start after the
            // record before the first one left.
            let options = ReadAllOptions::default().position(StreamPosition::Position(p)).max_count(1);
            let mut read = client.read_all(&options).await?;
            match read.next_read_event().await? {
                Some(ReadEvent::Event(first)) if first.get_original_event().position != p => {
                    record_before(client, first.get_original_event().position).await?
                }
                _ => StreamPosition::Position(p),
            }
        }
        Start::AfterTheRecordBefore(p) => record_before(client, p).await?,
    })
}

/// The record before `p` in `$all`, or the start of the log.
async fn record_before(client: &Client, p: Position) -> eventstore::Result<StreamPosition<Position>> {
    let options = ReadAllOptions::default().position(StreamPosition::Position(p)).backwards().max_count(1);
    let mut read = client.read_all(&options).await?;
    Ok(match read.next_read_event().await? {
        Some(ReadEvent::Event(before)) => StreamPosition::Position(before.get_original_event().position),
        _ => StreamPosition::Start,
    })
}

/// Whether no record the filter takes lies after `passed` (the end of `$all`
/// read backwards, at most [`PROBE_LIMIT`] records). Not where more records
/// than that lie after it: the server is still reading them, and its
/// checkpoints (every 32 records considered) move `passed` on until the rest
/// is within reach.
async fn nothing_left(client: &Client, filter: &ServerFilter, passed: Option<Position>) -> eventstore::Result<bool> {
    let options = ReadAllOptions::default().position(StreamPosition::End).backwards().max_count(PROBE_LIMIT);
    let mut read = client.read_all(&options).await?;
    let mut tail = Vec::new();
    let mut whole = false;
    while let Some(item) = read.next_read_event().await? {
        let ReadEvent::Event(e) = item else { continue };
        let r = e.get_original_event();
        tail.push(Record { position: r.position, stream: r.stream_id.clone(), event_type: r.event_type.clone() });
        if filter.takes(&r.stream_id, &r.event_type) || passed.is_some_and(|p| !after(r.position, p)) {
            whole = true;
            break;
        }
    }
    // Read to the start of the log, or to `passed`, or up to a record the filter takes.
    whole |= tail.len() < PROBE_LIMIT;
    Ok(whole && nothing_taken_after(filter, passed, &tail))
}

/// A record of `$all`, as far as the feed looks at it.
#[derive(Debug, Clone)]
pub struct Record {
    pub position: Position,
    pub stream: String,
    pub event_type: String,
}

fn after(p: Position, q: Position) -> bool {
    (p.commit, p.prepare) > (q.commit, q.prepare)
}

/// Whether the records of the tail of `$all` (newest first) that lie after
/// `passed` hold none that `filter` takes.
pub fn nothing_taken_after(filter: &ServerFilter, passed: Option<Position>, tail: &[Record]) -> bool {
    tail.iter()
        .take_while(|r| passed.is_none_or(|p| after(r.position, p)))
        .all(|r| !filter.takes(&r.stream, &r.event_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resubscriptions_wait_longer_each_time_up_to_the_cap() {
        let waits: Vec<u128> = (1..=8).map(|n| backoff(n).as_millis()).collect();
        assert_eq!(waits, [250, 500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
        assert_eq!(backoff(u32::MAX), RESUBSCRIBE_CAP);
    }

    #[test]
    fn a_checkpoint_past_the_end_of_all_is_refused_and_one_at_its_end_is_not() {
        let head = Position { commit: 9_400, prepare: 9_400 };
        let end = super::super::position::to_host(head).unwrap() + 1;
        assert_eq!(beyond_the_end(end, Some(head)), None, "one past the last record: nothing new yet");
        assert_eq!(beyond_the_end(0, None), None);
        let past = beyond_the_end(end + 1, Some(head)).unwrap();
        assert!(past.contains("beyond the end of $all") && past.contains("restored from an older backup"), "{past}");
        assert!(beyond_the_end(5, None).is_some(), "a checkpoint in an empty store");
    }

    fn record(at: u64, stream: &str, event_type: &str) -> Record {
        Record { position: Position { commit: at, prepare: at }, stream: stream.into(), event_type: event_type.into() }
    }

    #[test]
    fn a_tail_of_records_the_filter_leaves_out_is_nothing_left_to_read() {
        // The end of `$all` on a 22.x server, newest first: statistics and
        // settings written after the last interview event the feed passed.
        let filter = ServerFilter::EventTypes(vec!["Interview".into(), "Sentence".into()]);
        let tail = [
            record(9_400, "$stats-127.0.0.1:2113", "$statsCollected"),
            record(9_100, "$settings", "$settings"),
            record(8_800, "Interview-7", "InterviewCreated"),
            record(8_500, "Sentence-1", "SentenceCreated"),
        ];
        let passed = |at: u64| Some(Position { commit: at, prepare: at });
        assert!(nothing_taken_after(&filter, passed(8_800), &tail), "only system records after the last event passed");
        assert!(!nothing_taken_after(&filter, passed(8_500), &tail), "InterviewCreated at 8800 is still to come");
        assert!(!nothing_taken_after(&filter, None, &tail), "from the start, everything is still to come");
        assert!(nothing_taken_after(&filter, None, &tail[..2]), "a fresh store holds only the server's own records");
        // A checkpoint passed the last event: nothing after it either.
        assert!(nothing_taken_after(&filter, passed(9_100), &tail));
        let streams = ServerFilter::StreamPrefixes(vec!["Sentence-".into()]);
        assert!(nothing_taken_after(&streams, passed(8_500), &tail), "Interview-7 is not this filter's");
    }
}
