//! Persistent-subscription mode, for scale-out: a projection consumes its own
//! group of a persistent subscription to `$all` instead of the shared catch-up
//! subscription. The server spreads the group's events over every host that
//! runs the projection (consumer strategy Pinned: the events of one stream go
//! to one host) and keeps the group's checkpoint; a host confirms an event once
//! its lanes have committed it, and parks it on the server (nack, park) when
//! the host parked it, so that the server's parked-message replay brings it back.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use eventstore::{
    NakAction, PersistentSubscription, PersistentSubscriptionEvent, PersistentSubscriptionSettings,
    PersistentSubscriptionToAllOptions, Position, ReadStreamOptions, RecordedEvent, ReplayParkedMessagesOptions,
    StreamPosition, SubscribeToPersistentSubscriptionOptions, SystemConsumerStrategy,
};
use futures::FutureExt;
use tokio::sync::mpsc;

use super::ahead::{self, Ahead, Behind};
use super::connection::Connection;
use super::feed::{self, Item};
use super::filter::ServerFilter;
use super::mapping::{self, Mapped};
use super::position;
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
        let task = connection.runtime().spawn(consume(
            connection.client.clone(),
            connection.settings.clone(),
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
    let client = &connection.client;
    let created = connection.runtime().block_on(client.create_persistent_subscription_to_all(group, &options));
    match created {
        Ok(()) => {
            tracing::info!(server = %connection.server, group, "created the persistent subscription group (Pinned)");
            let record = eventstore::StreamMetadata::builder().insert_custom_property(FILTER_PROPERTY, filter.to_string()).build();
            let recorded = connection.runtime().block_on(client.set_stream_metadata(record_stream(group), &Default::default(), &record));
            if let Err(e) = recorded {
                tracing::warn!(server = %connection.server, group, error = %e, "cannot record the group's filter; a later change of the projection's subscriptions will not be noticed");
            }
            Ok(())
        }
        Err(eventstore::Error::ResourceAlreadyExists) => {
            let info = connection.runtime().block_on(client.get_persistent_subscription_info_to_all(group, &Default::default()));
            let info = info.map_err(|e| anyhow!("cannot read the settings of the persistent subscription group `{group}` on {}: {e}", connection.server))?;
            let strategy = info.settings.map(|s| s.consumer_strategy_name.to_string());
            let recorded = match connection.runtime().block_on(client.get_stream_metadata(record_stream(group), &Default::default())) {
                Ok(eventstore::StreamMetadataResult::Success(m)) => {
                    m.metadata().custom_properties.get(FILTER_PROPERTY).and_then(|v| v.as_str()).map(str::to_owned)
                }
                _ => None,
            };
            match check_group(group, strategy.as_deref(), recorded.as_deref(), &filter.to_string()) {
                Ok(None) => Ok(()),
                Ok(Some(warning)) => {
                    tracing::warn!(server = %connection.server, group, "{warning}");
                    Ok(())
                }
                Err(refusal) => bail!("persistent subscription on {}: {refusal}", connection.server),
            }
        }
        Err(e) => Err(anyhow!("cannot create the persistent subscription group `{group}` on {}: {e}", connection.server)),
    }
}

/// The custom property of the record stream's metadata that holds the filter
/// a group was created with (the server keeps a group's filter, and does not tell it).
pub const FILTER_PROPERTY: &str = "projector_filter";

/// The stream whose metadata records how Projector created `group`.
pub fn record_stream(group: &str) -> String {
    format!("projector-group-{group}")
}

/// Whether an existing group serves the projection: its consumer strategy must
/// be Pinned (the events of one stream to one host, in order), and it must have
/// been created with the filter the projection needs (the server cannot change a
/// group's filter, so events a new subscription adds would never come).
/// `Ok(Some(..))`: a warning, where the filter it was created with is not known.
pub fn check_group(group: &str, strategy: Option<&str>, recorded: Option<&str>, wanted: &str) -> Result<Option<String>, String> {
    let delete = "delete the group (the server's UI, or `DeletePersistentSubscriptionToAll`) and start the host again: it creates the group anew from the start of $all, and the guards skip what the read model holds";
    if let Some(strategy) = strategy.filter(|s| *s != "Pinned") {
        return Err(format!(
            "group `{group}` exists with consumer strategy {strategy}; Projector needs Pinned, so that the events of one stream go to one host in order: update the group to Pinned, or {delete}"
        ));
    }
    match recorded {
        Some(recorded) if recorded == wanted => Ok(None),
        Some(recorded) => Err(format!(
            "group `{group}` was created with the filter \"{recorded}\", and the projection now needs \"{wanted}\"; a group keeps the filter it was created with, so the events it leaves out would never come: {delete}"
        )),
        None => Ok(Some(format!(
            "group `{group}` was not created by Projector (or its record, stream metadata of `{}`, is gone): if its filter lets less through than \"{wanted}\", the events it leaves out never come",
            record_stream(group)
        ))),
    }
}

/// Asks the server to deliver the group's parked events again.
pub fn replay_parked(url: &str, group: &str) -> Result<()> {
    let connection = Connection::open(url)?;
    connection
        .runtime()
        .block_on(connection.client.replay_parked_messages_to_all(group, &ReplayParkedMessagesOptions::default()))
        .map_err(|e| anyhow!("cannot replay the parked events of group `{group}` on {}: {e}", connection.server))
}

/// Consumes the group until the source closes: events to the reader,
/// verdicts to the server; after a dropped connection it joins again, with
/// backoff (the server delivers again what had no verdict); a client whose
/// connection has closed for good is made anew, as the catch-up feed does.
async fn consume(
    mut client: eventstore::Client,
    settings: eventstore::ClientSettings,
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
            Ok(mut subscription) => match serve(&client, &mut subscription, &mut ledger, &to, &mut settlements, &mut failures).await {
                Ok(()) => return,
                Err(e) => e,
            },
            Err(e) => e,
        };
        if !feed::recover(&error, &mut client, &settings, &to).await {
            return;
        }
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
    client: &eventstore::Client,
    subscription: &mut PersistentSubscription,
    ledger: &mut Ledger<uuid::Uuid>,
    to: &Ahead,
    settlements: &mut mpsc::UnboundedReceiver<Settled>,
    failures: &mut u32,
) -> eventstore::Result<()> {
    loop {
        let next = tokio::select! {
            settled = settlements.recv() => Next::Settled(settled),
            delivered = next_delivery(subscription) => Next::Delivered(delivered),
        };
        match next {
            Next::Settled(None) => return Ok(()),
            Next::Settled(Some(settled)) => {
                if let Some(answer) = ledger.settle(settled).and_then(answer) {
                    tell(subscription, answer).await?;
                }
            }
            Next::Delivered(delivered) => {
                let PersistentSubscriptionEvent::EventAppeared { event: resolved, .. } = delivered? else { continue };
                *failures = 0;
                let Some(delivery) = mapping::delivery(&resolved) else {
                    let link = resolved.get_original_event();
                    tracing::warn!(link = %link.stream_id, revision = link.revision, "a replayed parked event no longer exists; acknowledged");
                    tell(subscription, Answer::Ack(link.id)).await?;
                    continue;
                };
                let Some(at) = (match delivery.position {
                    Some(at) => Some(at),
                    None => own_position(client, delivery.record).await?,
                }) else {
                    let (record, reason) = (delivery.record, "the server sent no position for this replayed parked event, and reading its stream gave none".to_owned());
                    tracing::error!(stream = %record.stream_id, revision = record.revision, "{reason}; parked on the server again");
                    tell(subscription, Answer::Nack(delivery.id, NakAction::Park, reason)).await?;
                    continue;
                };
                let placed;
                let record = if at == delivery.record.position {
                    delivery.record
                } else {
                    placed = placed_at(delivery.record, at);
                    &placed
                };
                let item = match mapping::map(record) {
                    Ok(Mapped::Event(e)) if ledger.offer(e.position, delivery.id) => Item::Event(e),
                    Ok(Mapped::Event(_)) => continue,
                    Ok(Mapped::Skipped(skip)) => {
                        tell(subscription, Answer::Ack(delivery.id)).await?;
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

/// The record, at its own position.
fn placed_at(r: &RecordedEvent, position: Position) -> RecordedEvent {
    RecordedEvent {
        stream_id: r.stream_id.clone(),
        id: r.id,
        revision: r.revision,
        event_type: r.event_type.clone(),
        data: r.data.clone(),
        metadata: r.metadata.clone(),
        custom_metadata: r.custom_metadata.clone(),
        is_json: r.is_json,
        position,
        created: r.created,
    }
}

/// An event's own position in `$all`, read from its stream (where a replayed
/// parked event came without it); `None` where the server gives none there
/// either, or holds the event no more. A failed read is an error: the host
/// joins the group again and the server delivers the event again.
async fn own_position(client: &eventstore::Client, record: &RecordedEvent) -> eventstore::Result<Option<Position>> {
    let options = ReadStreamOptions::default().position(StreamPosition::Position(record.revision)).max_count(1);
    let found = async {
        let mut read = client.read_stream(record.stream_id.as_str(), &options).await?;
        read.next().await
    };
    match found.await {
        Ok(Some(found)) if found.get_original_event().id == record.id => Ok(Some(found.get_original_event().position).filter(|p| position::is_known(*p))),
        Ok(_) | Err(eventstore::Error::ResourceNotFound | eventstore::Error::ResourceDeleted) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The subscription's next message. The client panics where the server
/// ends the stream cleanly; that is a dropped connection too.
async fn next_delivery(subscription: &mut PersistentSubscription) -> eventstore::Result<PersistentSubscriptionEvent> {
    match std::panic::AssertUnwindSafe(subscription.next_subscription_event()).catch_unwind().await {
        Ok(next) => next,
        Err(_) => Err(eventstore::Error::IllegalStateError("the server ended the persistent subscription's stream".into())),
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
            let next = feed::next_item(&self.connection, &mut self.items, events.len(), deadline);
            let Some(item) = next.with_context(|| format!("the persistent subscription `{}`", self.group))? else {
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
        // Waited for on the host's side (see `feed::next_item`): a held runtime
        // must not hold the host's exit.
        let until = Instant::now() + CLOSE_WAIT;
        while !self.task.is_finished() && Instant::now() < until {
            std::thread::sleep(feed::WAIT_SLICE);
        }
        if !self.task.is_finished() {
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
    fn an_existing_group_with_another_filter_or_strategy_is_refused() {
        let wanted = "event types starting with InterviewCreated, SentenceCreated";
        assert_eq!(check_group("g", Some("Pinned"), Some(wanted), wanted), Ok(None));
        let narrower = check_group("g", Some("Pinned"), Some("event types starting with InterviewCreated"), wanted).unwrap_err();
        assert!(narrower.contains("created with the filter \"event types starting with InterviewCreated\"") && narrower.contains("delete the group"), "{narrower}");
        let round = check_group("g", Some("RoundRobin"), Some(wanted), wanted).unwrap_err();
        assert!(round.contains("consumer strategy RoundRobin; Projector needs Pinned"), "{round}");
        let unknown = check_group("g", Some("Pinned"), None, wanted).unwrap().unwrap();
        assert!(unknown.contains("projector-group-g"), "{unknown}");
    }

    #[test]
    fn a_committed_event_is_acknowledged_and_a_parked_one_parked_on_the_server() {
        let id = uuid::Uuid::from_u128(1);
        assert_eq!(answer(Verdict::Confirm(id)), Some(Answer::Ack(id)));
        assert_eq!(answer(Verdict::Park(id, "no title".into())), Some(Answer::Nack(id, NakAction::Park, "no title".into())));
        assert_eq!(answer(Verdict::Forget(id)), None, "an event not taken is delivered again after the timeout");
    }
}
