//! The checkpoint committer's arithmetic: which prefix of global positions is
//! done. Lanes finish batches out of order; the checkpoint only ever covers the
//! contiguous completed prefix, so a restart can skip nothing (never N+1 before N).

use std::collections::{BTreeMap, HashMap};

/// Positions handed to lanes and not yet committed, per projection.
#[derive(Debug, Default)]
pub struct Tracker {
    /// Position -> how many of its events are in flight (an upcaster may split one).
    in_flight: BTreeMap<u64, u32>,
    /// Every position below this has been dispatched to a lane or skipped.
    read_through: u64,
    /// The first position a quarantined projection did not handle: the
    /// checkpoint never passes it in this run.
    held: Option<u64>,
}

impl Tracker {
    /// A tracker that resumes from a stored checkpoint.
    pub fn new(checkpoint: u64) -> Self {
        Self { in_flight: BTreeMap::new(), read_through: checkpoint, held: None }
    }

    /// Keeps the checkpoint at or below `position`, an event that was not handled.
    pub fn hold(&mut self, position: u64) {
        self.held = Some(self.held.map_or(position, |h| h.min(position)));
    }

    /// The first position held back (a quarantined projection takes nothing from there), if any.
    pub fn held(&self) -> Option<u64> {
        self.held
    }

    /// An event at `position` was handed to a lane.
    pub fn dispatched(&mut self, position: u64) {
        *self.in_flight.entry(position).or_default() += 1;
    }

    /// Every position below `next` has been dispatched or skipped.
    pub fn read_through(&mut self, next: u64) {
        self.read_through = self.read_through.max(next);
    }

    /// The checkpoint now: every position below it is committed.
    pub fn checkpoint(&self) -> u64 {
        self.checkpoint_with(&[])
    }

    /// The checkpoint as it will be once `batch` is committed too; a lane
    /// writes it in the same transaction as the batch.
    pub fn checkpoint_with(&self, batch: &[u64]) -> u64 {
        let mut mine: HashMap<u64, u32> = HashMap::new();
        for p in batch {
            *mine.entry(*p).or_default() += 1;
        }
        self.in_flight
            .iter()
            .find(|(p, n)| mine.get(p).copied().unwrap_or(0) < **n)
            .map_or(self.read_through, |(p, _)| *p)
            .min(self.held.unwrap_or(u64::MAX))
    }

    /// `batch` is committed.
    pub fn completed(&mut self, batch: &[u64]) {
        for p in batch {
            if let Some(n) = self.in_flight.get_mut(p) {
                *n -= 1;
                if *n == 0 {
                    self.in_flight.remove(p);
                }
            }
        }
    }

    /// How many events are in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.values().map(|n| *n as usize).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::Tracker;

    #[test]
    fn a_later_batch_done_first_does_not_move_the_checkpoint_past_an_earlier_one() {
        let mut t = Tracker::new(1);
        for p in [1, 2, 3, 4] {
            t.dispatched(p);
        }
        t.read_through(6); // position 5 was not for this projection
        assert_eq!(t.checkpoint_with(&[3, 4]), 1);
        t.completed(&[3, 4]);
        assert_eq!(t.checkpoint(), 1);
        assert_eq!(t.checkpoint_with(&[1]), 2);
        t.completed(&[1]);
        assert_eq!(t.checkpoint_with(&[2]), 6);
        t.completed(&[2]);
        assert_eq!(t.checkpoint(), 6);
    }

    #[test]
    fn a_hold_keeps_the_checkpoint_at_the_first_event_not_handled() {
        let mut t = Tracker::new(0);
        for p in [1, 2, 3] {
            t.dispatched(p);
        }
        t.hold(3);
        t.read_through(10);
        t.completed(&[1, 2]);
        assert_eq!(t.checkpoint(), 3);
        t.hold(5);
        assert_eq!(t.checkpoint(), 3, "a later hold does not lift an earlier one");
    }

    #[test]
    fn a_split_event_counts_until_every_part_is_done() {
        let mut t = Tracker::new(0);
        t.dispatched(7);
        t.dispatched(7);
        t.read_through(8);
        assert_eq!(t.checkpoint_with(&[7]), 7);
        t.completed(&[7]);
        assert_eq!(t.checkpoint_with(&[7]), 8);
    }
}
