//! Settlement: for a source that delivers each event until it is told what
//! became of it (an EventStoreDB persistent subscription), the router says how
//! many lane items it made of an event and the lanes say, after their sink
//! commit, what became of each. The [`Ledger`] adds these up, in whatever order
//! they arrive, into one verdict per event: confirm it, or park it.

use std::collections::HashMap;

/// What became of (part of) the event at a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// The router made this many lane items of it (0: no projection wants it).
    Dispatched(u32),
    /// A lane committed one item: applied, or skipped as applied before.
    Done,
    /// A lane parked one item, for this reason (its record is committed).
    Parked(String),
    /// The projection did not take the event, or dropped a part of it (it is
    /// quarantined): the entry closes at once, and the server delivers the
    /// event again after its message timeout.
    NotTaken,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub position: u64,
    pub settlement: Settlement,
}

/// Where the router and the lanes send settlements. Unbounded: what is in it is
/// bounded by the events in flight, which the lane queues bound.
pub type Settler = tokio::sync::mpsc::UnboundedSender<Settled>;

/// The verdict on one event, for the source to pass on to its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<Id> {
    /// Every part is committed: the server may forget it.
    Confirm(Id),
    /// Some part was parked: the server sets it aside too, with the first reason.
    Park(Id, String),
    /// Not handled: the server is told nothing, so it delivers the event again
    /// after its message timeout (and parks it after its delivery limit).
    Forget(Id),
}

#[derive(Debug)]
struct Entry<Id> {
    id: Id,
    parts: Option<u32>,
    done: u32,
    parked: Option<String>,
}

/// Events delivered and not yet settled, by position.
#[derive(Debug)]
pub struct Ledger<Id> {
    pending: HashMap<u64, Entry<Id>>,
}

impl<Id: Clone> Default for Ledger<Id> {
    fn default() -> Self {
        Self { pending: HashMap::new() }
    }
}

impl<Id: Clone> Ledger<Id> {
    /// An event the server delivered. `false` when it is already in flight (the
    /// server delivered it again, after a timeout or a reconnection): the copy
    /// must not reach the lanes, the first one's settlement covers it.
    pub fn offer(&mut self, position: u64, id: Id) -> bool {
        if self.pending.contains_key(&position) {
            return false;
        }
        self.pending.insert(position, Entry { id, parts: None, done: 0, parked: None });
        true
    }

    /// Books one settlement; gives the verdict once every part is in.
    pub fn settle(&mut self, settled: Settled) -> Option<Verdict<Id>> {
        let entry = self.pending.get_mut(&settled.position)?;
        match settled.settlement {
            Settlement::NotTaken => {
                let entry = self.pending.remove(&settled.position).expect("looked up above");
                return Some(Verdict::Forget(entry.id));
            }
            Settlement::Dispatched(parts) => entry.parts = Some(parts),
            Settlement::Done => entry.done += 1,
            Settlement::Parked(reason) => {
                entry.done += 1;
                entry.parked.get_or_insert(reason);
            }
        }
        if entry.parts.is_none_or(|parts| entry.done < parts) {
            return None;
        }
        let entry = self.pending.remove(&settled.position).expect("looked up above");
        Some(match entry.parked {
            None => Verdict::Confirm(entry.id),
            Some(reason) => Verdict::Park(entry.id, reason),
        })
    }

    /// Events delivered and not yet settled.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(position: u64, settlement: Settlement) -> Settled {
        Settled { position, settlement }
    }

    #[test]
    fn an_event_is_confirmed_once_every_part_is_committed_whatever_the_order() {
        let mut ledger = Ledger::default();
        assert!(ledger.offer(7, "e7"));
        // A lane may commit before the router's count arrives.
        assert_eq!(ledger.settle(at(7, Settlement::Done)), None);
        assert_eq!(ledger.settle(at(7, Settlement::Dispatched(2))), None);
        assert_eq!(ledger.settle(at(7, Settlement::Done)), Some(Verdict::Confirm("e7")));
        assert_eq!(ledger.in_flight(), 0);
        assert_eq!(ledger.settle(at(7, Settlement::Done)), None, "settled once");
    }

    #[test]
    fn an_event_no_projection_wants_is_confirmed_at_once() {
        let mut ledger = Ledger::default();
        ledger.offer(3, 'a');
        assert_eq!(ledger.settle(at(3, Settlement::Dispatched(0))), Some(Verdict::Confirm('a')));
    }

    #[test]
    fn a_parked_part_parks_the_event_with_the_first_reason() {
        let mut ledger = Ledger::default();
        ledger.offer(5, 1);
        ledger.settle(at(5, Settlement::Dispatched(3)));
        ledger.settle(at(5, Settlement::Parked("bad field".into())));
        ledger.settle(at(5, Settlement::Done));
        assert_eq!(ledger.settle(at(5, Settlement::Parked("later".into()))), Some(Verdict::Park(1, "bad field".into())));
    }

    #[test]
    fn an_event_not_taken_closes_at_once_and_may_be_delivered_again() {
        let mut ledger = Ledger::default();
        ledger.offer(4, 'q');
        ledger.settle(at(4, Settlement::Dispatched(2)));
        ledger.settle(at(4, Settlement::Done));
        assert_eq!(ledger.settle(at(4, Settlement::NotTaken)), Some(Verdict::Forget('q')));
        assert_eq!(ledger.in_flight(), 0, "nothing is left waiting for it");
        assert!(ledger.offer(4, 'q'), "the server's next delivery is taken");
    }

    #[test]
    fn a_redelivery_of_an_event_in_flight_is_refused_and_one_after_its_verdict_is_taken() {
        let mut ledger = Ledger::default();
        assert!(ledger.offer(9, 'x'));
        assert!(!ledger.offer(9, 'x'), "still in flight");
        ledger.settle(at(9, Settlement::Dispatched(1)));
        ledger.settle(at(9, Settlement::Done));
        assert!(ledger.offer(9, 'x'), "delivered again after its verdict (the confirmation was lost): the guards skip it");
    }
}
