//! Persistent-subscription mode, for scale-out: a projection consumes its own
//! group of a persistent subscription to `$all` instead of the shared catch-up
//! subscription. The server spreads the group's events over every host that
//! runs the projection (consumer strategy Pinned: the events of one stream go
//! to one host) and keeps the group's checkpoint; a host confirms an event once
//! its lanes have committed it, and parks it on the server (nack, park) when
//! the host parked it, so that the server's parked-message replay brings it back.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use eventstore::{
    NakAction, PersistentSubscription, PersistentSubscriptionEvent, PersistentSubscriptionSettings,
    PersistentSubscriptionToAllOptions, Position, ReplayParkedMessagesOptions, StreamPosition,
    SubscribeToPersistentSubscriptionOptions, SystemConsumerStrategy,
};
use tokio::sync::mpsc;

use super::ahead::{self, Ahead, Behind};
use super::connection::Connection;
use super::feed::{self, Item};
use super::filter::ServerFilter;
use super::mapping::{self, Mapped};
use crate::source::settle::{Ledger, Settled, Settler, Verdict};
use crate::source::{Interest, Source};
use crate::Event;

/// How long the server waits for a host's verdict on an event before it
/// delivers the event again (to this host or another).
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(60);
/// Deliveries without a verdict after which the server parks an event itself.
pub const MAX_DELIVERIES: i32 = 10;
/// Events the server sends a host ahead of its verdicts.
pub const IN_FLIGHT: usize = 1024;
/// A read that waits this long for an event and gets none counts as caught up
/// (a group has no end the server announces).
pub const QUIET: Duration = Duration::from_secs(1);

/// The settings of a group Projector creates: from the start of `$all`,
/// Pinned, and slow enough to redeliver that a busy lane is not raced.
pub fn group_settings() -> PersistentSubscriptionSettings<Position> {
    PersistentSubscriptionSettings {
        start_from: StreamPosition::Start,
        consumer_strategy_name: SystemConsumerStrategy::Pinned,
        message_timeout: MESSAGE_TIMEOUT,
        max_retry_count: MAX_DELIVERIES,
        ..PersistentSubscriptionSettings::default()
    }
}

/// What the server is told about an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Ack(uuid::Uuid),
    Nack(uuid::Uuid, NakAction, String),
}

/// The answer for a verdict: a committed event is acknowledged, a parked one
/// is parked on the server too, one not taken gets none (the server delivers it
/// again after its message timeout).
pub fn answer(verdict: Verdict<uuid::Uuid>) -> Option<Answer> {
    match verdict {
        Verdict::Confirm(id) => Some(Answer::Ack(id)),
        Verdict::Park(id, reason) => Some(Answer::Nack(id, NakAction::Park, reason)),
        Verdict::Forget(_) => None,
    }
}

/// A projection's group, read as a source.
pub struct GroupSource {
    connection: Connection,
    group: String,
    items: Behind,
    /// Taken when the source closes: the task ends once every settler is gone.
    settler: Option<Settler>,
    task: tokio::task::JoinHandle<()>,
    quiet: bool,
}

impl GroupSource {
    /// Joins `group` (creating it if missing) on the server `url` names.
    pub fn open(url: &str, group: &str, interest: &Interest) -> Result<Self> {
        let connection = Connection::open(url)?;
        let filter = ServerFilter::for_interest(interest);
        create_if_missing(&connection, group, &filter)?;
        let (to, items) = ahead::queue();
        let (settler, settlements) = mpsc::unbounded_channel();
        let task = connection.runtime.spawn(consume(
            connection.client.clone(),
            group.to_owned(),
            to,
            settlements,
            connection.server.clone(),
        ));
        tracing::info!(server = %connection.server, group, filter = %filter, "consuming a persistent subscription to $all");
        Ok(Self { connection, group: group.to_owned(), items, settler: Some(settler), task, quiet: false })
    }
}

fn create_if_missing(connection: &Connection, group: &str, filter: &ServerFilter) -> Result<()> {
    let options = PersistentSubscriptionToAllOptions::default().settings(group_settings()).filter(filter.build());
    let created = connection.runtime.block_on(connection.client.create_persistent_subscription_to_all(group, &options));
    match created {
        Ok(()) => {
            tracing::info!(server = %connection.server, group, "created the persistent subscription group (Pinned)");
            Ok(())
        }
        Err(eventstore::Error::ResourceAlreadyExists) => Ok(()),
        Err(e) => Err(anyhow!("cannot create the persistent subscription group `{group}` on {}: {e}", connection.server)),
    }
}

/// Asks the server to deliver the group's parked events again.
pub fn replay_parked(url: &str, group: &str) -> Result<()> {
    let connection = Connection::open(url)?;
    connection
        .runtime
        .block_on(connection.client.replay_parked_messages_to_all(group, &ReplayParkedMessagesOptions::default()))
        .map_err(|e| anyhow!("cannot replay the parked events of group `{group}` on {}: {e}", connection.server))
}

/// Consumes the group until the source closes: events to the reader,
/// verdicts to the server; after a dropped connection it joins again, with
/// backoff (the server delivers again what had no verdict).
async fn consume(
    client: eventstore::Client,
    group: String,
    to: Ahead,
    mut settlements: mpsc::UnboundedReceiver<Settled>,
    server: String,
) {
    let mut ledger: Ledger<uuid::Uuid> = Ledger::default();
    let mut failures = 0;
    loop {
        let options = SubscribeToPersistentSubscriptionOptions::default().buffer_size(IN_FLIGHT);
        let joined = client.subscribe_to_persistent_subscription_to_all(&group, &options).await;
        let error = match joined {
            Ok(mut subscription) => match serve(&mut subscription, &mut ledger, &to, &mut settlements, &mut failures).await {
                Ok(()) => return,
                Err(e) => e,
            },
            Err(e) => e,
        };
        failures += 1;
        let wait = feed::backoff(failures);
        tracing::warn!(%server, group = %group, error = %error, retry_in = ?wait, "persistent subscription dropped; joining the group again");
        tokio::time::sleep(wait).await;
    }
}

enum Next {
    Delivered(eventstore::Result<PersistentSubscriptionEvent>),
    Settled(Option<Settled>),
}

/// One connection's life. `Ok` when every settler is gone (the source closed).
async fn serve(
    subscription: &mut PersistentSubscription,
    ledger: &mut Ledger<uuid::Uuid>,
    to: &Ahead,
    settlements: &mut mpsc::UnboundedReceiver<Settled>,
    failures: &mut u32,
) -> eventstore::Result<()> {
    loop {
        let next = tokio::select! {
            settled = settlements.recv() => Next::Settled(settled),
            delivered = subscription.next_subscription_event() => Next::Delivered(delivered),
        };
        match next {
            Next::Settled(None) => return Ok(()),
            Next::Settled(Some(settled)) => {
                if let Some(answer) = ledger.settle(settled).and_then(answer) {
                    tell(subscription, answer).await?;
                }
            }
            Next::Delivered(delivered) => {
                let PersistentSubscriptionEvent::EventAppeared { event, .. } = delivered? else { continue };
                *failures = 0;
                let record = event.get_original_event();
                let item = match mapping::map(record) {
                    Ok(Mapped::Event(e)) if ledger.offer(e.position, record.id) => Item::Event(e),
                    Ok(Mapped::Event(_)) => continue,
                    Ok(Mapped::Skipped(skip)) => {
                        tell(subscription, Answer::Ack(record.id)).await?;
                        Item::Skipped(skip)
                    }
                    Err(why) => Item::Fatal(why),
                };
                // While the router is slow to take the event, verdicts keep
                // going out: a verdict held back past the server's message
                // timeout would have it deliver the event again.
                let mut pending = Some(item);
                while let Some(item) = pending.take() {
                    tokio::select! {
                        // A closed reader is a source closing: what it no longer takes
                        // gets no verdict (the server delivers it again), while the
                        // verdicts still queued go out until the lanes' settlers are gone.
                        room = to.room(&item) => if let Some(room) = room { room.send(item) },
                        settled = settlements.recv() => {
                            pending = Some(item);
                            let Some(settled) = settled else { return Ok(()) };
                            if let Some(answer) = ledger.settle(settled).and_then(answer) {
                                tell(subscription, answer).await?;
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn tell(subscription: &mut PersistentSubscription, answer: Answer) -> eventstore::Result<()> {
    match answer {
        Answer::Ack(id) => subscription.ack_ids([id]).await,
        Answer::Nack(id, action, reason) => subscription.nack_ids([id], action, reason).await,
    }
}

impl Source for GroupSource {
    /// The next events the server delivers; `from` does not apply (the server
    /// keeps the group's place).
    fn read(&mut self, _from: u64, max: usize) -> Result<Vec<Event>> {
        let mut events = Vec::new();
        let deadline = Instant::now() + QUIET;
        while events.len() < max {
            let next = feed::next_item(&self.connection.runtime, &mut self.items, events.len(), deadline);
            let Some(item) = next.map_err(|()| anyhow!("the persistent subscription `{}` on {} ended", self.group, self.connection.server))? else {
                break;
            };
            match item {
                Item::Event(event) => events.push(event),
                Item::Skipped(skip) => tracing::debug!(group = %self.group, reason = skip.reason(), "event skipped and acknowledged"),
                Item::CaughtUp => {}
                Item::Fatal(why) => bail!("source {} (group `{}`): {why}", self.connection.server, self.group),
            }
        }
        self.quiet = events.is_empty();
        Ok(events)
    }

    fn caught_up(&self) -> bool {
        self.quiet
    }

    fn settler(&self) -> Option<Settler> {
        self.settler.clone()
    }
}

/// How long a closing source waits for the last verdicts to reach the server.
pub const CLOSE_WAIT: Duration = Duration::from_secs(5);

impl Drop for GroupSource {
    /// Passes on the verdicts still queued (the lanes have finished, so no more
    /// come), then leaves the group; what has no verdict the server delivers again.
    fn drop(&mut self) {
        self.settler = None;
        self.items.close();
        let task = &mut self.task;
        if self.connection.runtime.block_on(async { tokio::time::timeout(CLOSE_WAIT, task).await }).is_err() {
            tracing::warn!(group = %self.group, "the last verdicts did not reach the server in time; it delivers those events again");
            self.task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_pinned_from_the_start_and_give_lanes_time_before_redelivering() {
        let s = group_settings();
        assert!(matches!(s.consumer_strategy_name, SystemConsumerStrategy::Pinned));
        assert!(matches!(s.start_from, StreamPosition::Start));
        assert_eq!((s.message_timeout, s.max_retry_count), (MESSAGE_TIMEOUT, MAX_DELIVERIES));
    }

    #[test]
    fn a_committed_event_is_acknowledged_and_a_parked_one_parked_on_the_server() {
        let id = uuid::Uuid::from_u128(1);
        assert_eq!(answer(Verdict::Confirm(id)), Some(Answer::Ack(id)));
        assert_eq!(answer(Verdict::Park(id, "no title".into())), Some(Answer::Nack(id, NakAction::Park, "no title".into())));
        assert_eq!(answer(Verdict::Forget(id)), None, "an event not taken is delivered again after the timeout");
    }
}
