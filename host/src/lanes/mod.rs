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
use crate::plugins::ProjectionPlugin;
use crate::sink::Sink;
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
}

/// Counts shared with whoever shows progress.
#[derive(Debug, Default)]
pub struct Progress {
    pub handled: AtomicU64,
    pub parked: AtomicU64,
}

impl Progress {
    pub fn add(&self, handled: usize, parked: usize) {
        self.handled.fetch_add(handled as u64, Ordering::Relaxed);
        self.parked.fetch_add(parked as u64, Ordering::Relaxed);
    }
}

/// The running lanes of one projection.
pub struct LaneSet {
    pub senders: Vec<SyncSender<LaneItem>>,
    /// The checkpoint the projection resumed from; earlier events are not for it.
    pub resumed_from: u64,
    pub tracker: Arc<Mutex<Tracker>>,
    threads: Vec<JoinHandle<()>>,
}

impl LaneSet {
    /// Starts `settings.lanes` lanes, each with its own plugin instance.
    pub fn start(
        plugin: Arc<ProjectionPlugin>,
        sink: Arc<dyn Sink>,
        settings: &LaneSettings,
        progress: Arc<Progress>,
    ) -> Result<Self> {
        let state = sink.prepare(plugin.name(), &plugin.scope)?;
        let tracker = Arc::new(Mutex::new(Tracker::new(state.checkpoint)));
        let mut senders = Vec::new();
        let mut threads = Vec::new();
        for index in 0..settings.lanes.max(1) {
            let (tx, rx) = sync_channel(LANE_QUEUE_CAPACITY);
            let lane = Lane::new(index, settings, plugin.clone(), sink.clone(), tracker.clone(), &state, progress.clone())?;
            let name = format!("{}-lane-{index}", plugin.name());
            threads.push(std::thread::Builder::new().name(name).spawn(move || lane.run(rx)).context("spawn a lane")?);
            senders.push(tx);
        }
        Ok(Self { senders, resumed_from: state.checkpoint, tracker, threads })
    }

    /// Where the projection resumes from.
    pub fn checkpoint(&self) -> u64 {
        self.tracker.lock().unwrap_or_else(|p| p.into_inner()).checkpoint()
    }

    /// Closes the queues and waits until every lane has committed what it holds.
    pub fn finish(self) -> Arc<Mutex<Tracker>> {
        drop(self.senders);
        for t in self.threads {
            let _ = t.join();
        }
        self.tracker
    }
}
