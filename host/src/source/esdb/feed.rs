//! The feed: one catch-up subscription to `$all`, run on the source's own
//! runtime, handing mapped events to the reader through a queue bounded in
//! items and bytes ([`super::ahead`], the backpressure that keeps memory
//! bounded while catching up). When the
//! subscription drops, the feed resubscribes after the last event it handed
//! on, waiting longer after each failure, and never gives up: an outage of the
//! event store delays projections, it does not fail them.

use std::time::Duration;

use eventstore::{Client, Position, StreamPosition, SubscribeToAllOptions, SubscriptionEvent};

use super::ahead::{Ahead, Behind};
use super::filter::ServerFilter;
use super::mapping::{self, Mapped, Skip};
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

/// The next item for a read that has `got` events so far: one already
/// waiting, or, while it has none, one that comes before `deadline`. `None`:
/// the read is done. An error: the feed has ended.
pub fn next_item(runtime: &tokio::runtime::Runtime, items: &mut Behind, got: usize, deadline: std::time::Instant) -> Result<Option<Item>, ()> {
    use tokio::sync::mpsc::error::TryRecvError;
    match items.try_recv() {
        Ok(item) => Ok(Some(item)),
        Err(TryRecvError::Disconnected) => Err(()),
        Err(TryRecvError::Empty) if got > 0 || std::time::Instant::now() >= deadline => Ok(None),
        Err(TryRecvError::Empty) => match runtime.block_on(tokio::time::timeout_at(deadline.into(), items.recv())) {
            Ok(Some(item)) => Ok(Some(item)),
            Ok(None) => Err(()),
            Err(_) => Ok(None),
        },
    }
}

/// The wait before resubscription number `failures` (1 for the first).
pub fn backoff(failures: u32) -> Duration {
    let factor = 1u32.checked_shl(failures.saturating_sub(1)).unwrap_or(u32::MAX);
    RESUBSCRIBE_BASE.saturating_mul(factor).min(RESUBSCRIBE_CAP)
}

/// Runs the subscription from `start` until the reader hangs up. `head` is the
/// last position in `$all` when the reader subscribed: reaching it counts as
/// caught up, for servers (before 23.10) that do not say so themselves.
pub async fn run(
    client: Client,
    filter: ServerFilter,
    mut start: StreamPosition<Position>,
    head: Option<Position>,
    to: Ahead,
    server: String,
) {
    let mut failures = 0;
    let reached = |p: Position| head.is_none_or(|h| (p.commit, p.prepare) >= (h.commit, h.prepare));
    if head.is_none() && !to.send(Item::CaughtUp).await {
        return;
    }
    loop {
        let options = SubscribeToAllOptions::default().position(start).filter(filter.build());
        let mut subscription = client.subscribe_to_all(&options).await;
        loop {
            let mut at_head = false;
            let item = match subscription.next_subscription_event().await {
                Ok(SubscriptionEvent::EventAppeared(resolved)) => {
                    let record = resolved.get_original_event();
                    failures = 0;
                    start = StreamPosition::Position(record.position);
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
                Ok(SubscriptionEvent::CaughtUp) => Item::CaughtUp,
                Ok(SubscriptionEvent::Checkpoint(p)) if reached(p) => Item::CaughtUp,
                Ok(_) => continue,
                Err(error) => {
                    failures += 1;
                    let wait = backoff(failures);
                    tracing::warn!(%server, error = %error, retry_in = ?wait, "EventStoreDB subscription dropped; resubscribing after the last event read");
                    tokio::time::sleep(wait).await;
                    break;
                }
            };
            let fatal = matches!(item, Item::Fatal(_));
            if !to.send(item).await || fatal || (at_head && !to.send(Item::CaughtUp).await) {
                return;
            }
        }
    }
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
}
