//! What `GET /status` and `projector status` tell of each projection.

use serde::{Deserialize, Serialize};

use crate::lanes::LanesView;
use crate::supervisor::Member;

/// A running host, read at one moment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostStatus {
    pub projections: Vec<ProjectionStatus>,
    /// Why the source does not answer, if it does not.
    pub source_error: Option<String>,
    /// Why the sink does not answer, if it does not.
    pub sink_error: Option<String>,
    /// How old this reading is (the monitor reads the host once a second);
    /// none before its first reading, when the source and sink were not asked.
    pub read_seconds_ago: Option<f64>,
}

/// Where a projection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Its lanes have not started yet.
    Starting,
    /// Waiting for the lease on its read model, which another host holds (`run --wait`).
    Standby,
    /// Reading what the log held when it started.
    CatchingUp,
    /// Caught up once, following the log.
    Running,
    /// Some keys wait for another try; the others flow.
    Retrying,
    /// Paused by its failures, its checkpoint held (`quarantined` says why).
    Quarantined,
    /// It takes no more events in this run.
    Stopped,
}

impl State {
    pub fn describe(self, retrying_keys: usize) -> String {
        match self {
            State::Starting => "starting".into(),
            State::Standby => "standby".into(),
            State::CatchingUp => "catching up".into(),
            State::Running => "running".into(),
            State::Retrying => format!("retrying {retrying_keys} key{}", if retrying_keys == 1 { "" } else { "s" }),
            State::Quarantined => "quarantined".into(),
            State::Stopped => "stopped".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectionStatus {
    pub name: String,
    /// The version of the build it runs.
    pub build: String,
    pub state: State,
    pub retrying_keys: usize,
    /// Why it is quarantined.
    pub quarantined: Option<String>,
    /// Every position below it is done (before its lanes start: the stored checkpoint).
    pub checkpoint: Option<u64>,
    /// The last position in the source.
    pub head: Option<u64>,
    /// Events from the checkpoint to the head (where the source's positions count events).
    pub lag_events: Option<u64>,
    /// The age of the oldest event not yet done; 0 when caught up.
    pub lag_seconds: Option<f64>,
    /// Events handled per second over the last minute.
    pub events_per_second: f64,
    /// Events handled in this run.
    pub handled: u64,
    /// Parked events waiting for a replay or a discard.
    pub parked: Option<u64>,
    /// Builds swapped in while running.
    pub swaps: u64,
    /// Events queued on its lanes.
    pub queued: usize,
}

/// What the monitor read of one projection beside its lanes.
#[derive(Debug, Default)]
pub struct Read {
    pub checkpoint: Option<u64>,
    pub head: Option<u64>,
    pub lag_events: Option<u64>,
    pub lag_seconds: Option<f64>,
    pub events_per_second: f64,
    pub parked: Option<u64>,
}

/// The status of one projection from what the monitor read.
pub fn of(p: &Member, lanes: Option<LanesView>, read: Read) -> ProjectionStatus {
    let (plugin, swaps) = p.slot.current();
    let started = lanes.is_some();
    let lanes = lanes.unwrap_or_default();
    let quarantined = p.slot.quarantined();
    let state = if quarantined.is_some() {
        State::Quarantined
    } else if p.vitals.has_stopped() {
        State::Stopped
    } else if p.vitals.is_standby() {
        State::Standby
    } else if !started {
        State::Starting
    } else if lanes.retrying_keys > 0 {
        State::Retrying
    } else if p.vitals.has_caught_up() {
        State::Running
    } else {
        State::CatchingUp
    };
    ProjectionStatus {
        name: p.slot.name().to_owned(),
        build: plugin.manifest.version.clone(),
        state,
        retrying_keys: lanes.retrying_keys,
        quarantined,
        checkpoint: read.checkpoint,
        head: read.head,
        lag_events: read.lag_events,
        lag_seconds: read.lag_seconds,
        events_per_second: read.events_per_second,
        handled: p.vitals.meter.handled.get(),
        parked: read.parked,
        swaps,
        queued: lanes.queued.iter().sum(),
    }
}
