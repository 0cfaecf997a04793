//! Lanes: each projection's events are split by partition key into N ordered
//! lanes; events with equal keys always reach the same lane, in order. Lanes
//! order, workers compute: a projection's few workers (as many as the machine
//! has cores, by default) run its many lanes, lane `i` always by worker
//! `i % workers` with that worker's plugin instance, taking batches of their
//! events off a shared [`board`]. A key whose event failed for now waits beside
//! its lane for the next try while the lane's other keys flow, and the
//! checkpoint stays before it.

mod board;
mod partitioner;
mod retry;
mod vitals;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

pub use board::IDLE_WAIT;
pub use partitioner::{lane_of, partition_key};
pub use retry::{RetryPolicy, DEADLINE_TRIES};
pub use vitals::{LanesView, Vitals};
pub use worker::{GUARD_CACHE_LIMIT, SINK_BACKOFF_CAP};

use crate::checkpoint::Tracker;
use crate::parking::ParkMode;
use crate::plugins::Slot;
use crate::sink::lease::Lease;
use crate::sink::{Commit, Sink, SinkError};
use crate::source::settle::{Settled, Settlement, Settler};
use crate::Event;
use board::Board;
use worker::Worker;

/// How many events one projection holds at most: queued on its lanes, in its
/// workers' batches, or waiting beside a key for a retry. Its router waits
/// while it is full, which bounds memory under any backlog; a projection that
/// falls behind holds up no other, each reads the source on its own.
pub const PROJECTION_BUFFER: usize = 16_384;
/// The same bound in bytes of events (data and metadata): a projection holds
/// this much at most, or one event however large, so large events cannot
/// fill memory by count.
pub const PROJECTION_BUFFER_BYTES: usize = 64 << 20;
/// The bytes of events one batch takes at most (at least one event).
pub const BATCH_BYTES: usize = 16 << 20;

/// How often a projection that is finishing looks whether the host is told to stop.
const STOP_POLL: Duration = Duration::from_millis(20);

/// One event on its way to a lane.
#[derive(Debug)]
pub struct LaneItem {
    pub event: Event,
    /// The partition key; `None` when it could not be read from the event.
    pub key: Option<String>,
    /// Set when the event failed before reaching the lane (upcast, key).
    pub failure: Option<String>,
    /// Its index among the events an upcaster made of the one at its
    /// position (0 when it made one): with the position, what guards it.
    pub part: u32,
}

impl LaneItem {
    /// What orders it, guards it and parks it: its partition key, or its
    /// stream when the key could not be read.
    pub fn key_or_stream(&self) -> &str {
        self.key.as_deref().unwrap_or(&self.event.stream)
    }

    /// What it weighs against the byte bounds: its event's data and metadata.
    pub fn bytes(&self) -> usize {
        self.event.bytes()
    }
}

/// How a projection's lanes work.
#[derive(Debug, Clone)]
pub struct LaneSettings {
    pub lanes: usize,
    /// Threads that run the lanes (each with its own plugin instance).
    pub workers: usize,
    pub batch_size: usize,
    pub batch_wait: Duration,
    pub retry: RetryPolicy,
    pub park_mode: ParkMode,
    pub call_deadline: Duration,
    /// Failures in a row that quarantine the projection (0: never).
    pub quarantine_after: u32,
    /// Time spent failing events in a row that quarantines the projection (zero: never).
    pub quarantine_after_failing: Duration,
    /// Set when the source must be told what became of each event (a
    /// persistent subscription): each lane settles its items after its commit.
    pub settle: Option<Settler>,
    /// The lease this host holds on the projection's read model, which every
    /// commit carries; `None` for a projection read through a group.
    pub lease: Option<Arc<Lease>>,
    /// What the lanes show whoever watches them; kept across restarts.
    pub vitals: Arc<Vitals>,
}

/// Counts shared with whoever shows progress.
#[derive(Debug, Default)]
pub struct Progress {
    /// Events a lane finished with, whatever the outcome.
    pub handled: AtomicU64,
    pub parked: AtomicU64,
    /// Re-deliveries that a guard showed were applied before.
    pub skipped: AtomicU64,
}

impl Progress {
    pub fn add(&self, handled: usize, parked: usize, skipped: usize) {
        self.handled.fetch_add(handled as u64, Ordering::Relaxed);
        self.parked.fetch_add(parked as u64, Ordering::Relaxed);
        self.skipped.fetch_add(skipped as u64, Ordering::Relaxed);
    }
}

/// The running lanes of one projection.
pub struct LaneSet {
    board: Arc<Board>,
    /// The checkpoint the projection resumed from.
    pub resumed_from: u64,
    /// The first position not yet given to these lanes; earlier events are not for them.
    pub next: u64,
    pub tracker: Arc<Mutex<Tracker>>,
    projection: String,
    sink: Arc<dyn Sink>,
    /// The checkpoint last saved by `flush`.
    flushed: AtomicU64,
    threads: Vec<JoinHandle<()>>,
    /// What `restart` starts the lanes again with.
    slot: Arc<Slot>,
    settings: LaneSettings,
    progress: Arc<Progress>,
}

/// Abandons the board when a worker panics, so that the others do not wait
/// for the lanes it held; `finish` reports the panic.
struct AbandonOnPanic(Arc<Board>);

impl Drop for AbandonOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.abandon();
        }
    }
}

impl LaneSet {
    /// Starts `settings.lanes` lanes run by `settings.workers` workers, each
    /// with its own instance of the slot's build.
    pub fn start(slot: Arc<Slot>, sink: Arc<dyn Sink>, settings: &LaneSettings, progress: Arc<Progress>) -> Result<Self> {
        let (plugin, _) = slot.current();
        let state = sink.prepare(plugin.name(), &plugin.scope)?;
        let tracker = Arc::new(Mutex::new(Tracker::new(state.checkpoint)));
        let lanes = settings.lanes.max(1);
        let board = Arc::new(Board::new(lanes, (PROJECTION_BUFFER, PROJECTION_BUFFER_BYTES), (settings.batch_size, BATCH_BYTES), settings.batch_wait));
        board.block(state.blocked_keys.iter().map(|(key, position)| (lane_of(key, lanes), key.clone(), *position)));
        settings.vitals.attach(tracker.clone(), board.clone());
        let mut threads = Vec::new();
        for index in 0..settings.workers.clamp(1, lanes) {
            let worker = Worker::new(index, settings, slot.clone(), sink.clone(), tracker.clone(), &state, progress.clone(), board.clone())?;
            let guard = AbandonOnPanic(board.clone());
            let name = format!("{}-worker-{index}", plugin.name());
            let thread = std::thread::Builder::new().name(name).spawn(move || {
                let _guard = guard;
                worker.run();
            });
            threads.push(thread.context("spawn a worker")?);
        }
        Ok(Self {
            board,
            resumed_from: state.checkpoint,
            next: state.checkpoint,
            tracker,
            projection: plugin.name().to_owned(),
            sink,
            flushed: AtomicU64::new(state.checkpoint),
            threads,
            slot,
            settings: settings.clone(),
            progress,
        })
    }

    /// Hands events to their lanes, waiting while the projection holds as
    /// many as it may. Returns `false` when it stopped before queuing them
    /// all (`stop` was set, or the workers stopped): the caller stops too,
    /// and what was not queued is read again at the next start.
    pub fn put(&self, items: Vec<LaneItem>, stop: &AtomicBool) -> bool {
        let lanes = self.board.lanes();
        let mut tracker = self.tracker.lock().unwrap_or_else(|p| p.into_inner());
        for item in &items {
            tracker.dispatched(item.event.position);
        }
        drop(tracker);
        let count = items.len();
        let placed: Vec<(usize, LaneItem)> = items.into_iter().map(|item| (lane_of(item.key_or_stream(), lanes), item)).collect();
        self.board.put(placed, stop) == count
    }

    /// What the lanes show whoever watches them.
    pub fn vitals(&self) -> &Arc<Vitals> {
        &self.settings.vitals
    }

    /// Why the projection lost its read model's lease, if it did: it must stop.
    pub fn lease_lost(&self) -> Option<String> {
        self.settings.lease.as_ref().and_then(|l| l.lost())
    }

    /// Whether the events of `key` are parked behind an earlier one of it, at
    /// once and without a handler call (in key-tail parking).
    pub fn is_blocked(&self, key: &str) -> bool {
        self.settings.park_mode == ParkMode::KeyTail && self.board.is_blocked(key)
    }

    /// Stops the workers after their batches: what they did not commit is
    /// delivered again at the next start.
    pub fn abandon(&self) {
        self.board.abandon();
    }

    /// Stops the lanes and starts them again from the stored checkpoint, as a
    /// restart of the host would: how a quarantined projection resumes once a
    /// new build is swapped in. The caller routes events again from `resumed_from`.
    pub fn restart(&mut self, stop: &AtomicBool) -> Result<()> {
        let slot = self.slot.clone();
        self.restart_around(stop, || {
            slot.take_resume();
        })
    }

    /// Stops the lanes after their batches (what they did not commit is
    /// routed again from the checkpoint, and the guards skip what was
    /// applied), saves the checkpoint, does `between`, and starts them again
    /// from the stored checkpoint, with the blocked keys the sink holds then.
    /// A sink that cannot be asked is tried again (with backoff) until the
    /// host stops. The caller routes events again from `resumed_from`.
    pub fn restart_around(&mut self, stop: &AtomicBool, between: impl FnOnce()) -> Result<()> {
        self.board.abandon();
        self.stop(&AtomicBool::new(true))?;
        between();
        let mut wait = Duration::from_millis(50);
        loop {
            match LaneSet::start(self.slot.clone(), self.sink.clone(), &self.settings, self.progress.clone()) {
                Ok(lanes) => {
                    *self = lanes;
                    return Ok(());
                }
                Err(e) if !stop.load(Ordering::Relaxed) => {
                    tracing::warn!(projection = %self.projection, error = %format!("{e:#}"), retry_in = ?wait, "the lanes cannot start again yet; retrying");
                    let until = Instant::now() + wait;
                    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(STOP_POLL);
                    }
                    wait = (wait * 2).min(SINK_BACKOFF_CAP);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The sink the lanes commit to.
    pub fn sink(&self) -> &Arc<dyn Sink> {
        &self.sink
    }

    /// How the lanes work.
    pub fn settings(&self) -> &LaneSettings {
        &self.settings
    }

    /// Where the projection resumes from.
    pub fn checkpoint(&self) -> u64 {
        self.tracker.lock().unwrap_or_else(|p| p.into_inner()).checkpoint()
    }

    /// Saves the checkpoint if it moved since the last save. Workers save it
    /// with every batch; this covers what none saw (events the projection does
    /// not subscribe to) while the router is idle. An unavailable sink is
    /// waited out only when `wait` is given, until that stop flag is set or the
    /// lanes are abandoned; otherwise the next flush tries again.
    pub fn flush(&self, wait: Option<&AtomicBool>) -> anyhow::Result<u64> {
        let waiting = || wait.is_some_and(|stop| !stop.load(Ordering::Relaxed)) && !self.board.is_abandoned();
        let checkpoint = self.checkpoint();
        if checkpoint <= self.flushed.load(Ordering::Relaxed) {
            return Ok(checkpoint);
        }
        let lease = self.settings.lease.as_deref().map(Lease::token);
        let commit = Commit { projection: &self.projection, applied: Vec::new(), parked: Vec::new(), checkpoint, lease };
        let mut backoff = Duration::from_millis(50);
        loop {
            let committed = self.sink.commit(&commit);
            match &committed {
                Err(SinkError::Unavailable(e)) => self.settings.vitals.sink_unavailable(e),
                _ => self.settings.vitals.sink_answered(),
            }
            match committed {
                Ok(()) => break,
                Err(SinkError::Unavailable(e)) if waiting() => {
                    tracing::warn!(projection = %self.projection, error = %format!("{e:#}"), "sink unavailable while saving the checkpoint; retrying");
                    let until = Instant::now() + backoff;
                    while Instant::now() < until && waiting() {
                        std::thread::sleep(IDLE_WAIT.min(until.saturating_duration_since(Instant::now())));
                    }
                    backoff = (backoff * 2).min(SINK_BACKOFF_CAP);
                }
                Err(SinkError::Unavailable(e)) => {
                    if wait.is_some() {
                        tracing::warn!(projection = %self.projection, error = %format!("{e:#}"), "stopping while the sink is unavailable: the checkpoint is not saved; the next start delivers again what came after the last one saved, and the guards skip what was applied");
                    }
                    return Ok(self.flushed.load(Ordering::Relaxed));
                }
                Err(SinkError::Fenced(holder)) => {
                    let why = format!("{holder} holds the lease now; saving the checkpoint was refused");
                    self.settings.lease.as_ref().inspect(|l| l.lose(why.clone()));
                    self.board.abandon();
                    anyhow::bail!("projection {} stopped: {why}", self.projection)
                }
                Err(e) => anyhow::bail!("cannot save the checkpoint of {}: {e}", self.projection),
            }
        }
        self.flushed.store(checkpoint, Ordering::Relaxed);
        Ok(checkpoint)
    }

    /// Closes the lanes, waits until the workers have committed what they
    /// hold, retries included, and saves the final checkpoint. Once `stop` is
    /// set the workers stop after their current batches instead: what they
    /// did not commit is delivered again at the next start.
    pub fn finish(mut self, stop: &AtomicBool) -> anyhow::Result<u64> {
        self.stop(stop)
    }

    fn stop(&mut self, stop: &AtomicBool) -> anyhow::Result<u64> {
        self.board.close();
        while self.threads.iter().any(|t| !t.is_finished()) {
            if stop.load(Ordering::Relaxed) {
                self.board.abandon();
            }
            std::thread::sleep(STOP_POLL);
        }
        if stop.load(Ordering::Relaxed) {
            self.board.abandon();
        }
        // What a settling source delivered and nobody will handle now: let it go,
        // so that its next delivery is taken (after a restart of the lanes too).
        if let Some(settle) = &self.settings.settle {
            for position in self.board.clear() {
                let _ = settle.send(Settled { position, settlement: Settlement::NotTaken });
            }
        }
        let mut panics = Vec::new();
        for (index, thread) in std::mem::take(&mut self.threads).into_iter().enumerate() {
            if let Err(panic) = thread.join() {
                let what = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
                panics.push(format!("worker {index}: {}", what.unwrap_or_else(|| "a panic".into())));
            }
        }
        let left = self.board.held();
        if left > 0 {
            tracing::warn!(projection = %self.projection, events = left, "stopped with events not committed (queued, or waiting for a retry); they are delivered again at the next start");
        }
        if let Some(why) = self.lease_lost() {
            anyhow::bail!("projection {} stopped without writing more: {why}", self.projection);
        }
        let checkpoint = self.flush(Some(stop))?;
        if !panics.is_empty() {
            anyhow::bail!(
                "projection {}: {} panicked (a bug in the host: please report it); the checkpoint stays at {checkpoint}, so nothing is lost: the next start delivers the rest again",
                self.projection,
                panics.join("; ")
            );
        }
        Ok(checkpoint)
    }
}
