//! The read-ahead queue between a feed (which the server pushes into) and the
//! reader (which the router pulls from), bounded twice: by items, and by the
//! bytes of the events in it, so that a feed of large events holds no more
//! memory than one of small events.

use std::sync::Arc;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::feed::Item;

/// Items read ahead of the router at most.
pub const READ_AHEAD: usize = 4096;
/// Bytes of event data and metadata read ahead of the router at most. An event
/// larger than this (the server may hold one larger than the largest event
/// Projector takes) waits until the queue is empty, then goes alone.
pub const READ_AHEAD_BYTES: usize = 16 << 20;

/// Makes a queue: the feed's end and the reader's end.
pub fn queue() -> (Ahead, Behind) {
    let (to, from) = mpsc::channel(READ_AHEAD);
    let bytes = Arc::new(Semaphore::new(READ_AHEAD_BYTES));
    (Ahead { to, bytes: bytes.clone() }, Behind { from, bytes })
}

/// What an item weighs in the queue.
fn weight(item: &Item) -> u32 {
    let bytes = match item {
        Item::Event(event) => event.bytes(),
        _ => 0,
    };
    bytes.min(READ_AHEAD_BYTES) as u32
}

/// The feed's end.
pub struct Ahead {
    to: mpsc::Sender<(Item, u32)>,
    bytes: Arc<Semaphore>,
}

/// Room for one item, reserved: sending it cannot wait.
pub struct Room<'a> {
    slot: mpsc::Permit<'a, (Item, u32)>,
    bytes: OwnedSemaphorePermit,
}

impl Room<'_> {
    /// Sends the item the room was reserved for.
    pub fn send(self, item: Item) {
        let weight = self.bytes.num_permits() as u32;
        self.bytes.forget();
        self.slot.send((item, weight));
    }
}

impl Ahead {
    /// Waits for room for `item`'s weight. `None`: the reader has gone.
    /// Cancel-safe: dropped while waiting, it has taken nothing.
    pub async fn room(&self, item: &Item) -> Option<Room<'_>> {
        let bytes = self.bytes.clone().acquire_many_owned(weight(item)).await.ok()?;
        let slot = self.to.reserve().await.ok()?;
        Some(Room { slot, bytes })
    }

    /// Sends `item` once there is room. `false`: the reader has gone.
    pub async fn send(&self, item: Item) -> bool {
        match self.room(&item).await {
            Some(room) => {
                room.send(item);
                true
            }
            None => false,
        }
    }
}

/// The reader's end.
pub struct Behind {
    from: mpsc::Receiver<(Item, u32)>,
    bytes: Arc<Semaphore>,
}

impl Behind {
    fn taken(&self, (item, weight): (Item, u32)) -> Item {
        self.bytes.add_permits(weight as usize);
        item
    }

    pub fn try_recv(&mut self) -> Result<Item, mpsc::error::TryRecvError> {
        let taken = self.from.try_recv()?;
        Ok(self.taken(taken))
    }

    pub async fn recv(&mut self) -> Option<Item> {
        let taken = self.from.recv().await?;
        Some(self.taken(taken))
    }

    pub fn is_empty(&self) -> bool {
        self.from.is_empty()
    }

    /// No more items: a feed waiting for room hears that the reader has gone.
    pub fn close(&mut self) {
        self.from.close();
        self.bytes.close();
    }
}

impl Drop for Behind {
    fn drop(&mut self) {
        self.bytes.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;

    fn event(position: u64, bytes: usize) -> Item {
        Item::Event(Event {
            id: String::new(),
            stream: "s".into(),
            event_type: "T".into(),
            schema_version: 1,
            revision: position,
            position,
            data: "x".repeat(bytes),
            metadata: "{}".into(),
        })
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    /// Sends until the queue is full; returns how many went.
    fn fill(rt: &tokio::runtime::Runtime, ahead: &Ahead, bytes: usize) -> u64 {
        let mut sent = 0;
        while rt.block_on(async { tokio::time::timeout(std::time::Duration::from_millis(20), ahead.send(event(sent, bytes))).await }) == Ok(true) {
            sent += 1;
        }
        sent
    }

    #[test]
    fn large_events_are_bounded_by_bytes_and_small_ones_by_count() {
        let rt = runtime();
        let (ahead, mut behind) = queue();
        let large = READ_AHEAD_BYTES / 4 - 2;
        assert_eq!(fill(&rt, &ahead, large), 4, "four events of a quarter of the budget fill it");
        assert!(matches!(behind.try_recv(), Ok(Item::Event(e)) if e.position == 0));
        assert_eq!(fill(&rt, &ahead, large), 1, "taking one makes room for one");
        while behind.try_recv().is_ok() {}
        assert_eq!(fill(&rt, &ahead, 10), READ_AHEAD as u64, "small events are bounded by count");
    }

    #[test]
    fn an_event_larger_than_the_budget_goes_alone_and_a_closed_reader_releases_the_feed() {
        let rt = runtime();
        let (ahead, mut behind) = queue();
        assert_eq!(fill(&rt, &ahead, READ_AHEAD_BYTES * 2), 1);
        assert!(behind.try_recv().is_ok());
        assert_eq!(fill(&rt, &ahead, READ_AHEAD_BYTES * 2), 1);
        behind.close();
        assert!(!rt.block_on(ahead.send(event(9, 1))), "a feed waiting for room hears the reader has gone");
    }
}
