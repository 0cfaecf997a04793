//! Lanes: each projection's events are split by partition key into N ordered
//! workers. Events with equal keys always reach the same lane, in order; lanes
//! run in parallel on their own threads, so Wasm work never blocks I/O.

mod batch;
mod lane;
mod partitioner;
mod retry;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};

pub use lane::{Lane, SINK_BACKOFF_CAP};
pub use partitioner::{lane_of, partition_key};
pub use retry::RetryPolicy;

use crate::checkpoint::Tracker;
use crate::parking::ParkMode;
use crate::plugins::Slot;
use crate::sink::{Commit, Sink, SinkError};
use crate::source::settle::Settler;
use crate::Event;

/// How many events may wait in one lane's queue; the router blocks when it is
/// full, which bounds memory under any backlog.
pub const LANE_QUEUE_CAPACITY: usize = 1024;

/// One event on its way to a lane.
#[derive(Debug)]
pub struct LaneItem {
    pub event: Event,
    /// The partition key; `None` when it could not be read from the event.
    pub key: Option<String>,
    /// Set when the event failed before reaching the lane (upcast, key).
    pub failure: Option<String>,
}

/// How a projection's lanes work.
#[derive(Debug, Clone)]
pub struct LaneSettings {
    pub lanes: usize,
    pub batch_size: usize,
    pub batch_wait: Duration,
    pub retry: RetryPolicy,
    pub park_mode: ParkMode,
    pub call_deadline: Duration,
    /// Failures in a row that quarantine the projection (0: never).
    pub quarantine_after: u32,
    /// Set when the source must be told what became of each event (a
    /// persistent subscription): each lane settles its items after its commit.
    pub settle: Option<Settler>,
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
    pub senders: Vec<SyncSender<LaneItem>>,
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

impl LaneSet {
    /// Starts `settings.lanes` lanes, each with its own instance of the slot's build.
    pub fn start(
        slot: Arc<Slot>,
        sink: Arc<dyn Sink>,
        settings: &LaneSettings,
        progress: Arc<Progress>,
    ) -> Result<Self> {
        let (plugin, _) = slot.current();
        let state = sink.prepare(plugin.name(), &plugin.scope)?;
        let tracker = Arc::new(Mutex::new(Tracker::new(state.checkpoint)));
        let mut senders = Vec::new();
        let mut threads = Vec::new();
        for index in 0..settings.lanes.max(1) {
            let (tx, rx) = sync_channel(LANE_QUEUE_CAPACITY);
            let lane = Lane::new(index, settings, slot.clone(), sink.clone(), tracker.clone(), &state, progress.clone())?;
            let name = format!("{}-lane-{index}", plugin.name());
            threads.push(std::thread::Builder::new().name(name).spawn(move || lane.run(rx)).context("spawn a lane")?);
            senders.push(tx);
        }
        Ok(Self {
            senders,
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

    /// Stops the lanes and starts them again from the stored checkpoint, as a
    /// restart of the host would: how a quarantined projection resumes once a
    /// new build is swapped in. The caller routes events again from `resumed_from`.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.slot.take_resume();
        *self = LaneSet::start(self.slot.clone(), self.sink.clone(), &self.settings, self.progress.clone())?;
        Ok(())
    }

    /// Where the projection resumes from.
    pub fn checkpoint(&self) -> u64 {
        self.tracker.lock().unwrap_or_else(|p| p.into_inner()).checkpoint()
    }

    /// Saves the checkpoint if it moved since the last save. Lanes save it with
    /// every batch; this covers what no lane saw (events the projection does
    /// not subscribe to) while the router is idle. An unavailable sink is
    /// waited out only when `wait` is set; otherwise the next flush tries again.
    pub fn flush(&self, wait: bool) -> anyhow::Result<u64> {
        let checkpoint = self.checkpoint();
        if checkpoint <= self.flushed.load(Ordering::Relaxed) {
            return Ok(checkpoint);
        }
        let commit = Commit { projection: &self.projection, applied: Vec::new(), parked: Vec::new(), checkpoint };
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.sink.commit(&commit) {
                Ok(()) => break,
                Err(SinkError::Unavailable(e)) if wait => {
                    tracing::warn!(projection = %self.projection, error = %format!("{e:#}"), "sink unavailable while saving the checkpoint; retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(SINK_BACKOFF_CAP);
                }
                Err(SinkError::Unavailable(_)) => return Ok(self.flushed.load(Ordering::Relaxed)),
                Err(e) => anyhow::bail!("cannot save the checkpoint of {}: {e}", self.projection),
            }
        }
        self.flushed.store(checkpoint, Ordering::Relaxed);
        Ok(checkpoint)
    }

    /// Closes the queues, waits until every lane has committed what it holds,
    /// and saves the final checkpoint.
    pub fn finish(mut self) -> anyhow::Result<u64> {
        self.stop()
    }

    fn stop(&mut self) -> anyhow::Result<u64> {
        self.senders.clear();
        for t in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
        self.flush(true)
    }
}
