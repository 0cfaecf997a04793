//! The supervisor: runs each projection as a unit (a [`runner`]) and starts
//! and stops them while the host runs. A projection whose component is
//! dropped into the plugins directory starts from its checkpoint (from the
//! start of the log when it has none) beside the others; one whose component
//! is taken away stops, keeping its read model, checkpoint and parked events.
//! The swapper asks for these [`Change`]s; the [`Roster`] tells the rest of
//! the host which projections run now.

pub mod roster;
pub mod runner;
mod supervise;

use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

pub use roster::{Member, Roster};
pub use supervise::{supervise, Opener};

use crate::config::Config;
use crate::lanes::Progress;
use crate::metrics::Metrics;
use crate::parking::Desk;
use crate::plugins::{ProjectionPlugin, UpcasterSet};
use crate::sink::Sink;

/// How long a change waits for the supervisor to answer: it takes the
/// projection's lease and opens its source, or stops its lanes.
pub const CHANGE_WAIT: Duration = Duration::from_secs(60);

/// How often the supervisor looks at its runners and at the host's stop.
pub const TICK: Duration = Duration::from_millis(50);

/// What a host's runners share.
pub struct Context {
    pub config: Config,
    pub sink: Arc<dyn Sink>,
    pub metrics: Arc<Metrics>,
    pub roster: Arc<Roster>,
    /// Parked events the admin endpoint asks the routers to resolve.
    pub desk: Arc<Desk>,
    /// The upcasters in effect: a projection's chain takes those it needs.
    pub upcasters: Arc<UpcasterSet>,
    pub progress: Arc<Progress>,
    /// The length of the leases taken on read models, and whether to wait for one held.
    pub lease: Duration,
    pub wait_for_lease: bool,
}

/// A change to the projections a running host runs, with where to answer
/// (what was done, or why not).
pub enum Change {
    /// Start a projection that does not run yet.
    Add(Arc<ProjectionPlugin>, Sender<Result<String, String>>),
    /// Stop a running projection, keeping its read model.
    Remove(String, Sender<Result<String, String>>),
}
