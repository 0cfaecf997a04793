//! The board: a projection's lanes, each a queue of events plus what the lane
//! knows about its keys, shared by the projection's workers. Each lane is run
//! by one worker (lane `i` by worker `i % workers`), which checks its lanes out
//! to make a batch of their events: a key's events are handled in order, and
//! always by the same plugin instance, so a plugin that keeps something in
//! memory between events of a key sees all of them.
//!
//! A key whose event failed and waits for its next try keeps its later events
//! beside it, out of the queue: the lane's other keys flow past it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::LaneItem;
use crate::sink::Identity;

/// How long an idle worker, or a router waiting for room, sleeps before it
/// looks at the board again (it is woken earlier when something changes).
pub const IDLE_WAIT: Duration = Duration::from_millis(100);

/// One event in a worker's hands.
#[derive(Debug)]
pub struct Entry {
    pub item: LaneItem,
    pub lane: usize,
    /// How often the handler has tried it already.
    pub tries: u32,
}

impl Entry {
    pub fn key(&self) -> &str {
        self.item.key_or_stream()
    }
}

/// A key that waits for its next try, with its events in order: the one that
/// failed first, then the ones that came after it.
#[derive(Debug)]
pub struct Waiting {
    pub due: Instant,
    pub entries: VecDeque<Entry>,
}

/// What a lane knows about its keys; it travels with the lane to the worker
/// that holds it.
#[derive(Debug, Default)]
pub struct Keys {
    /// Guards read from the sink (for events that may have been applied before).
    pub guards: HashMap<String, Option<Identity>>,
    /// Keys with a parked event -> that event's position.
    pub blocked: HashMap<String, u64>,
    /// Keys waiting for a retry.
    pub waiting: HashMap<String, Waiting>,
    /// Keys with an event a paused projection did not take: their later
    /// events are not taken either, so that they keep their order.
    pub dropped: HashSet<String>,
}

#[derive(Debug, Default)]
struct Lane {
    queued: VecDeque<LaneItem>,
    busy: bool,
    keys: Keys,
    /// Its keys waiting for another try when it was last handed back (they
    /// travel with the lane to its worker, so they are counted here).
    waiting: usize,
}

impl Lane {
    /// Moves what is ready into `out`, up to `size` events and `bytes` of
    /// them (`taken` so far; at least one event): first the keys whose retry
    /// is due (their events are older than any queued), then the queue, where
    /// the events of a waiting key join it instead.
    fn fill(&mut self, index: usize, now: Instant, (size, bytes): (usize, usize), out: &mut Vec<Entry>, taken: &mut usize) {
        let room = |out: &Vec<Entry>, taken: usize| out.is_empty() || (out.len() < size && taken < bytes);
        let push = |out: &mut Vec<Entry>, taken: &mut usize, entry: Entry| {
            *taken += entry.item.bytes();
            out.push(entry);
        };
        let due: Vec<String> = self.keys.waiting.iter().filter(|(_, w)| w.due <= now).map(|(k, _)| k.clone()).collect();
        for key in due {
            let waiting = self.keys.waiting.get_mut(&key).expect("listed above");
            // The event that failed is tried alone: its key's later events are
            // handed to the handler only once it has passed.
            // The (possibly empty) entry stays while it is out, so that the
            // key's events queued meanwhile join it instead of the batch.
            if waiting.entries.front().is_some_and(|e| e.tries > 0) && room(out, *taken) {
                if let Some(entry) = waiting.entries.pop_front() {
                    push(out, taken, entry);
                }
                continue;
            }
            while room(out, *taken) {
                match waiting.entries.pop_front() {
                    Some(entry) => push(out, taken, entry),
                    None => break,
                }
            }
            if waiting.entries.is_empty() {
                self.keys.waiting.remove(&key);
            }
        }
        while room(out, *taken) {
            let Some(item) = self.queued.pop_front() else { break };
            let entry = Entry { item, lane: index, tries: 0 };
            match self.keys.waiting.get_mut(entry.key()) {
                Some(waiting) => waiting.entries.push_back(entry),
                None => push(out, taken, entry),
            }
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.keys.waiting.values().map(|w| w.due).min()
    }
}

/// Events a worker took, and the lanes it holds until it hands them back.
#[derive(Debug, Default)]
pub struct Batch {
    pub entries: Vec<Entry>,
    pub lanes: Vec<(usize, Keys)>,
}

impl Batch {
    /// The bytes of the events in the worker's hands: the batch's, and those
    /// waiting beside the keys of the lanes it holds.
    pub fn bytes(&self) -> usize {
        let waiting = self.lanes.iter().flat_map(|(_, keys)| keys.waiting.values()).flat_map(|w| &w.entries);
        self.entries.iter().chain(waiting).map(|e| e.item.bytes()).sum()
    }

    /// The keys of the lane an entry came from.
    pub fn keys(&mut self, lane: usize) -> &mut Keys {
        &mut self.lanes.iter_mut().find(|(i, _)| *i == lane).expect("a batch holds the lanes of its entries").1
    }
}

#[derive(Debug)]
struct State {
    lanes: Vec<Lane>,
    /// Events on the board: queued, waiting for a retry, or in a batch; and their bytes.
    held: usize,
    held_bytes: usize,
    queued: usize,
    /// The router finished: no more events will come.
    closed: bool,
    /// Where the next batch starts looking, so every lane gets its turn.
    cursor: usize,
}

pub struct Board {
    state: Mutex<State>,
    /// Set to stop: workers leave after their batch, and what they did not
    /// commit is delivered again at the next start.
    abandoned: AtomicBool,
    work: Condvar,
    room: Condvar,
    /// Every lane's blocked keys, for the router to ask without taking a
    /// lane from its worker: an event behind a parked one is not upcast.
    blocked: Mutex<HashSet<String>>,
    capacity: usize,
    capacity_bytes: usize,
    batch_size: usize,
    batch_bytes: usize,
    batch_wait: Duration,
}

impl Board {
    /// A board of `lanes` lanes holding at most (events, bytes) `capacity`,
    /// whose batches take at most (events, bytes) `batch` (at least one event).
    pub fn new(lanes: usize, capacity: (usize, usize), batch: (usize, usize), batch_wait: Duration) -> Self {
        let lanes = (0..lanes.max(1)).map(|_| Lane::default()).collect();
        let ((capacity, capacity_bytes), (batch_size, batch_bytes)) = (capacity, batch);
        Self {
            state: Mutex::new(State { lanes, held: 0, held_bytes: 0, queued: 0, closed: false, cursor: 0 }),
            abandoned: AtomicBool::new(false),
            work: Condvar::new(),
            room: Condvar::new(),
            blocked: Mutex::new(HashSet::new()),
            capacity: capacity.max(1),
            capacity_bytes,
            batch_size: batch_size.max(1),
            batch_bytes,
            batch_wait,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn lanes(&self) -> usize {
        self.lock().lanes.len()
    }

    /// Gives lanes their blocked keys (from the sink, at start).
    pub fn block(&self, blocked: impl IntoIterator<Item = (usize, String, u64)>) {
        let mut state = self.lock();
        for (lane, key, position) in blocked {
            self.note_blocked(&key);
            state.lanes[lane].keys.blocked.insert(key, position);
        }
    }

    /// Notes that `key` has a parked event, which its later events stay behind.
    pub fn note_blocked(&self, key: &str) {
        self.blocked.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_owned());
    }

    /// Whether `key` has a parked event.
    pub fn is_blocked(&self, key: &str) -> bool {
        self.blocked.lock().unwrap_or_else(|p| p.into_inner()).contains(key)
    }

    /// Queues events on their lanes, waiting for room while the board is
    /// full. Returns how many it queued: fewer than given only when `stop`
    /// was set (or the board abandoned) while it waited.
    pub fn put(&self, items: Vec<(usize, LaneItem)>, stop: &AtomicBool) -> usize {
        let mut state = self.lock();
        let mut queued = 0;
        for (lane, item) in items {
            if self.is_abandoned() {
                return queued;
            }
            // Room by count and by bytes; an empty board takes an event however large.
            while state.held >= self.capacity || (state.held > 0 && state.held_bytes + item.bytes() > self.capacity_bytes) {
                if stop.load(Ordering::Relaxed) || self.is_abandoned() {
                    return queued;
                }
                self.work.notify_all();
                state = self.room.wait_timeout(state, IDLE_WAIT).unwrap_or_else(|p| p.into_inner()).0;
            }
            state.held_bytes += item.bytes();
            state.lanes[lane].queued.push_back(item);
            state.held += 1;
            state.queued += 1;
            queued += 1;
        }
        drop(state);
        self.work.notify_all();
        queued
    }

    /// The next batch for worker `worker` of `workers`, or `None` when there
    /// is no more work: the board is closed and empty, or abandoned.
    pub fn take(&self, worker: usize, workers: usize) -> Option<Batch> {
        let mut state = self.lock();
        let mut waited = false;
        loop {
            if self.is_abandoned() {
                return None;
            }
            // A batch that is not full waits a moment for more, as a lane's queue would.
            if !waited && !state.closed && state.queued > 0 && state.queued < self.batch_size && !self.batch_wait.is_zero() {
                waited = true;
                state = self.work.wait_timeout(state, self.batch_wait).unwrap_or_else(|p| p.into_inner()).0;
                continue;
            }
            let now = Instant::now();
            let batch = state.gather(now, (self.batch_size, self.batch_bytes), |lane| lane % workers.max(1) == worker);
            if !batch.entries.is_empty() {
                return Some(batch);
            }
            if state.closed && state.held == 0 {
                return None;
            }
            let due = state.lanes.iter().enumerate().filter(|(i, l)| !l.busy && i % workers.max(1) == worker).filter_map(|(_, l)| l.next_due()).min();
            let wait = due.map_or(IDLE_WAIT, |d| d.saturating_duration_since(now)).min(IDLE_WAIT);
            state = self.work.wait_timeout(state, wait.max(Duration::from_millis(1))).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// A worker hands its lanes back; `finished` of its events (of
    /// `finished_bytes`) left the board (committed, or dropped), the others
    /// wait beside their keys again.
    pub fn hand_back(&self, lanes: Vec<(usize, Keys)>, finished: usize, finished_bytes: usize) {
        let mut state = self.lock();
        for (index, keys) in lanes {
            let lane = &mut state.lanes[index];
            lane.waiting = keys.waiting.len();
            lane.keys = keys;
            lane.busy = false;
        }
        state.held -= finished;
        state.held_bytes -= finished_bytes;
        drop(state);
        self.work.notify_all();
        self.room.notify_all();
    }

    /// No more events will come; workers finish what is on the board.
    pub fn close(&self) {
        self.lock().closed = true;
        self.work.notify_all();
    }

    /// Workers stop after their batch; what is left is delivered again at the next start.
    pub fn abandon(&self) {
        self.abandoned.store(true, Ordering::Relaxed);
        self.work.notify_all();
        self.room.notify_all();
    }

    /// Takes every event off the board that no worker holds (queued, or waiting
    /// for a retry), for a board that is given up; returns their positions.
    pub fn clear(&self) -> Vec<u64> {
        let mut state = self.lock();
        let (mut positions, mut bytes) = (Vec::new(), 0);
        for lane in state.lanes.iter_mut().filter(|l| !l.busy) {
            lane.waiting = 0;
            let items = lane.queued.drain(..).chain(lane.keys.waiting.drain().flat_map(|(_, w)| w.entries).map(|e| e.item));
            for item in items {
                bytes += item.bytes();
                positions.push(item.event.position);
            }
        }
        state.held -= positions.len();
        state.held_bytes -= bytes;
        state.queued = state.lanes.iter().map(|l| l.queued.len()).sum();
        positions
    }

    /// Events queued on each lane, and the keys waiting for another try.
    pub fn view(&self) -> (Vec<usize>, usize) {
        let state = self.lock();
        let queued = state.lanes.iter().map(|l| l.queued.len()).collect();
        (queued, state.lanes.iter().map(|l| l.waiting).sum())
    }

    /// Events on the board: queued, waiting for a retry, or in a batch.
    pub fn held(&self) -> usize {
        self.lock().held
    }

    pub fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Relaxed)
    }
}

impl State {
    /// A batch from the lanes `mine` picks that no other batch holds.
    fn gather(&mut self, now: Instant, (size, bytes): (usize, usize), mine: impl Fn(usize) -> bool) -> Batch {
        let count = self.lanes.len();
        let mut batch = Batch::default();
        let mut taken = 0;
        for step in 0..count {
            if batch.entries.len() >= size || taken >= bytes {
                break;
            }
            let index = (self.cursor + step) % count;
            let lane = &mut self.lanes[index];
            if lane.busy || !mine(index) {
                continue;
            }
            let (before, queued) = (batch.entries.len(), lane.queued.len());
            lane.fill(index, now, (size, bytes), &mut batch.entries, &mut taken);
            self.queued -= queued - lane.queued.len();
            if batch.entries.len() > before {
                lane.busy = true;
                batch.lanes.push((index, std::mem::take(&mut lane.keys)));
            }
        }
        self.cursor = (self.cursor + 1) % count;
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;

    fn item(key: &str, position: u64) -> LaneItem {
        let event = Event {
            id: String::new(),
            stream: key.into(),
            event_type: "T".into(),
            schema_version: 1,
            revision: 0,
            position,
            data: "{}".into(),
            metadata: "{}".into(),
        };
        LaneItem { event, key: Some(key.into()), failure: None, part: 0 }
    }

    fn positions(batch: &Batch) -> Vec<u64> {
        batch.entries.iter().map(|e| e.item.event.position).collect()
    }

    #[test]
    fn a_worker_takes_its_own_lanes_each_in_order() {
        let board = Board::new(3, (100, usize::MAX), (10, usize::MAX), Duration::ZERO);
        let go = AtomicBool::new(false);
        board.put(vec![(0, item("a", 1)), (1, item("b", 2)), (0, item("a", 3)), (2, item("c", 4))], &go);
        let first = board.take(0, 2).unwrap();
        assert_eq!(positions(&first), [1, 3, 4], "worker 0 of 2 runs lanes 0 and 2");
        assert_eq!(positions(&board.take(1, 2).unwrap()), [2], "worker 1 runs lane 1");
        board.put(vec![(0, item("a", 5)), (2, item("c", 6))], &go);
        board.hand_back(first.lanes, 3, 0);
        assert_eq!(positions(&board.take(0, 2).unwrap()), [6, 5], "the next batch starts at the next lane");
    }

    #[test]
    fn a_waiting_key_keeps_its_later_events_and_the_other_keys_pass() {
        let board = Board::new(1, (100, usize::MAX), (10, usize::MAX), Duration::ZERO);
        let go = AtomicBool::new(false);
        board.put(vec![(0, item("bad", 1)), (0, item("ok", 2))], &go);
        let mut batch = board.take(0, 1).unwrap();
        let mut failed = batch.entries.remove(0);
        failed.tries = 1;
        let due = Instant::now() + Duration::from_millis(50);
        batch.keys(0).waiting.insert("bad".into(), Waiting { due, entries: VecDeque::from([failed]) });
        board.hand_back(batch.lanes, 1, 0);
        board.put(vec![(0, item("bad", 3)), (0, item("ok", 4))], &go);
        let batch = board.take(0, 1).unwrap();
        assert_eq!(positions(&batch), [4], "the waiting key's event stays beside it");
        board.hand_back(batch.lanes, 1, 0);
        board.close();
        let batch = board.take(0, 1).unwrap();
        assert!(Instant::now() >= due, "taken when due");
        assert_eq!(positions(&batch), [1], "the failed event is tried alone");
        board.hand_back(batch.lanes, 1, 0);
        assert_eq!(positions(&board.take(0, 1).unwrap()), [3], "its key's later events follow once it passed");
    }

    #[test]
    fn an_event_queued_while_its_key_waits_stays_out_of_the_retry_batch() {
        let board = Board::new(1, (100, usize::MAX), (10, usize::MAX), Duration::ZERO);
        let go = AtomicBool::new(false);
        board.put(vec![(0, item("bad", 1))], &go);
        let mut batch = board.take(0, 1).unwrap();
        let mut failed = batch.entries.remove(0);
        failed.tries = 1;
        batch.keys(0).waiting.insert("bad".into(), Waiting { due: Instant::now(), entries: VecDeque::from([failed]) });
        board.hand_back(batch.lanes, 0, 0);
        board.put(vec![(0, item("bad", 2))], &go);
        let retry = board.take(0, 1).unwrap();
        assert_eq!(positions(&retry), [1], "the retry is tried alone");
        board.hand_back(retry.lanes, 1, 0);
        assert_eq!(positions(&board.take(0, 1).unwrap()), [2], "the key's next event follows once it passed");
        let cleared = Board::new(1, (100, usize::MAX), (10, usize::MAX), Duration::ZERO);
        cleared.put(vec![(0, item("a", 7)), (0, item("b", 8))], &go);
        assert_eq!(cleared.clear(), [7, 8]);
        assert_eq!(cleared.held(), 0);
    }

    #[test]
    fn a_full_board_makes_the_router_wait_until_stopped() {
        let board = Board::new(1, (2, usize::MAX), (10, usize::MAX), Duration::ZERO);
        let stop = AtomicBool::new(true);
        assert_eq!(board.put(vec![(0, item("a", 1)), (0, item("a", 2)), (0, item("a", 3))], &stop), 2);
        assert_eq!(board.held(), 2);
    }
}
