//! What a projection's lanes show whoever watches them (the monitor: status,
//! metrics, health): its instruments, and, read on demand from the running
//! lanes, its checkpoint and queues. One per projection, it outlives a
//! restart of its lanes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::board::Board;
use crate::checkpoint::Tracker;
use crate::metrics::Meter;

#[derive(Default)]
pub struct Vitals {
    pub meter: Meter,
    live: Mutex<Option<Live>>,
    /// Caught up since its lanes (last) started, as the monitor saw it.
    caught_up: AtomicBool,
    /// The router's last read found nothing more.
    idle: AtomicBool,
    /// Waiting for the lease on its read model, which another host holds.
    standby: AtomicBool,
    /// The router has stopped.
    stopped: AtomicBool,
    /// Why the sink is unavailable, while the last try found it so; the flag
    /// is only changed under the lock, and lets a commit skip the lock.
    sink_down: AtomicBool,
    sink_error: Mutex<Option<String>>,
}

/// The running lanes' state.
struct Live {
    tracker: Arc<Mutex<Tracker>>,
    board: Arc<Board>,
}

/// A projection's lanes, read at one moment.
#[derive(Debug, Clone, Default)]
pub struct LanesView {
    /// Every position below it is done.
    pub checkpoint: u64,
    /// Events queued on each lane.
    pub queued: Vec<usize>,
    /// Keys waiting for another try.
    pub retrying_keys: usize,
    /// Events handed to the lanes and not yet done.
    pub in_flight: usize,
}

impl Vitals {
    pub fn new(meter: Meter) -> Self {
        Self { meter, ..Self::default() }
    }

    /// Its lanes (re)started: it catches up from their checkpoint.
    pub(super) fn attach(&self, tracker: Arc<Mutex<Tracker>>, board: Arc<Board>) {
        *self.live.lock().unwrap_or_else(|p| p.into_inner()) = Some(Live { tracker, board });
        self.caught_up.store(false, Ordering::Relaxed);
        self.idle.store(false, Ordering::Relaxed);
    }

    /// The router found nothing more to read for now (`true`), or read events (`false`).
    pub fn idle(&self, idle: bool) {
        self.idle.store(idle, Ordering::Relaxed);
    }

    pub fn is_idle(&self) -> bool {
        self.idle.load(Ordering::Relaxed)
    }

    /// The monitor found it caught up (done with everything the source holds).
    pub fn note_caught_up(&self) {
        self.caught_up.store(true, Ordering::Relaxed);
    }

    pub fn has_caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Relaxed)
    }

    /// It waits for (`true`), or got (`false`), its read model's lease.
    pub fn standby(&self, waiting: bool) {
        self.standby.store(waiting, Ordering::Relaxed);
    }

    pub fn is_standby(&self) -> bool {
        self.standby.load(Ordering::Relaxed)
    }

    /// The router stopped: the projection takes no more events in this run.
    pub fn stopped(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    pub fn has_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// A commit found the sink unavailable.
    pub fn sink_unavailable(&self, error: &anyhow::Error) {
        let mut held = self.sink_error.lock().unwrap_or_else(|p| p.into_inner());
        *held = Some(format!("{error:#}"));
        self.sink_down.store(true, Ordering::Relaxed);
    }

    /// The sink answered.
    pub fn sink_answered(&self) {
        if self.sink_down.load(Ordering::Relaxed) {
            let mut held = self.sink_error.lock().unwrap_or_else(|p| p.into_inner());
            *held = None;
            self.sink_down.store(false, Ordering::Relaxed);
        }
    }

    /// Why the sink is unavailable, if the last try found it so.
    pub fn sink_error(&self) -> Option<String> {
        self.sink_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The lanes now; `None` before they start.
    pub fn lanes(&self) -> Option<LanesView> {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let live = live.as_ref()?;
        let tracker = live.tracker.lock().unwrap_or_else(|p| p.into_inner());
        let (checkpoint, in_flight) = (tracker.checkpoint(), tracker.in_flight());
        drop(tracker);
        let (queued, retrying_keys) = live.board.view();
        Some(LanesView { checkpoint, queued, retrying_keys, in_flight })
    }
}

impl std::fmt::Debug for Vitals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vitals").field("projection", &self.meter.projection).finish_non_exhaustive()
    }
}
