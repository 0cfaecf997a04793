//! A runner: one projection running on a thread of its own. It holds the
//! lease on the projection's read model, its lanes, and the router that
//! reads the projection's own view of the source into them; it stops when
//! the source has nothing more (`run` without `--follow`), when it is told
//! to (the host stops, or the projection's component was taken away), or
//! when its router fails. It starts on its own thread too (opening its
//! source, waiting for its lease), so that the supervisor never waits.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Result;

use super::roster::Member;
use super::{Context, Opener};
use crate::lanes::{LaneSet, LaneSettings, Vitals};
use crate::plugins::{needed_by, KeepsFailing, ProjectionPlugin, Slot, UpcasterChain};
use crate::router::{Router, Until, Upcasting};
use crate::sink::lease::Lease;
use crate::source::Source;

/// A projection loaded into its slot, ready to start.
pub struct Loaded {
    pub plugin: Arc<ProjectionPlugin>,
    pub slot: Arc<Slot>,
    pub settings: LaneSettings,
    /// Its chain, and the number of the upcaster set it was made from.
    pub upcasters: (UpcasterChain, u64),
}

impl Loaded {
    /// Loads `plugin` with its settings from the config and the upcasters it needs.
    pub fn new(cx: &Context, plugin: &Arc<ProjectionPlugin>) -> Result<Self> {
        let mut settings = cx.config.lane_settings(plugin.name());
        settings.vitals = Arc::new(Vitals::new(cx.metrics.meter(plugin.name())));
        let slot = Arc::new(Slot::new(plugin.clone(), settings.workers.clamp(1, settings.lanes.max(1)), settings.call_deadline));
        let (seen, all) = cx.upcasters.current();
        let limit = KeepsFailing { after: settings.quarantine_after, after_failing: settings.quarantine_after_failing };
        let upcasters = UpcasterChain::new(&needed_by(plugin, &all), &all, settings.call_deadline, limit)?;
        Ok(Self { plugin: plugin.clone(), slot, settings, upcasters: (upcasters, seen) })
    }

    /// The projection as the roster shows it.
    pub fn member(&self, cx: &Context) -> Member {
        Member { slot: self.slot.clone(), vitals: self.settings.vitals.clone(), in_order: cx.config.group(self.plugin.name()).is_none() }
    }

    pub fn name(&self) -> &str {
        self.plugin.name()
    }
}

/// Starts `loaded` reading `source`: takes the lease on its read model
/// (waiting for it with `wait`, until `stop`) unless the source settles
/// events with a server of its own, then starts its lanes. `None`: stopped
/// while waiting for the lease.
fn start(cx: &Context, loaded: Loaded, source: &dyn Source, wait: bool, stop: &AtomicBool) -> Result<Option<Router>> {
    let Loaded { plugin, slot, mut settings, upcasters } = loaded;
    // A source that must be told what became of each event (a persistent subscription).
    settings.settle = source.settler();
    // One writer per read model; a group's members share it by the server's assignment.
    if settings.settle.is_none() {
        settings.vitals.standby(true);
        let taken = Lease::take(cx.sink.clone(), plugin.name(), cx.lease, wait, stop);
        settings.vitals.standby(false);
        match taken? {
            Some(lease) => settings.lease = Some(lease),
            None => return Ok(None),
        }
    }
    let lanes = LaneSet::start(slot.clone(), cx.sink.clone(), &settings, cx.progress.clone())?;
    tracing::info!(projection = plugin.name(), version = %plugin.manifest.version, lanes = settings.lanes, workers = settings.workers, from = lanes.resumed_from, "projection started");
    let desk = Some((cx.desk.clone(), cx.upcasters.clone()));
    let (upcasters, seen) = upcasters;
    Ok(Some(Router { plugin, slot, lanes, upcasters, upcasting: Upcasting::new(seen), desk }))
}

/// What became of a runner.
pub struct Ended {
    pub name: String,
    /// Whether it started: opened its source, took its lease, started its lanes.
    pub started: bool,
    /// The position its router read through, or why it failed (or why it did not start).
    pub routed: Result<u64>,
    /// Its checkpoint when its lanes finished, or why they failed.
    pub finished: Result<u64>,
    /// Why it is quarantined, if it is.
    pub quarantined: Option<String>,
}

impl Ended {
    pub fn failed(&self) -> bool {
        self.routed.is_err() || self.finished.is_err()
    }
}

/// Runs a projection on the calling thread: opens its source with `open`,
/// starts it, tells `started` how that went, then routes until `until` or
/// `stop`.
pub fn run(cx: &Context, loaded: Loaded, open: &Opener, until: Until, stop: &AtomicBool, started: Option<Answer>) -> Ended {
    let name = loaded.name().to_owned();
    let version = loaded.plugin.manifest.version.clone();
    let not_started = |routed: Result<u64>| Ended { name: name.clone(), started: false, routed, finished: Ok(0), quarantined: None };
    if stop.load(std::sync::atomic::Ordering::Relaxed) {
        // Stopped before it began: no source is opened, no group joined.
        tell(started, Err(format!("{name}: the host stopped before it started")));
        cx.desk.close(&name);
        return not_started(Ok(0));
    }
    let mut source = match open(&loaded.plugin) {
        Ok(source) => source,
        Err(e) => {
            tell(started, Err(format!("{name}: {e:#}")));
            return not_started(Err(e));
        }
    };
    let mut router = match start(cx, loaded, source.as_ref(), cx.wait_for_lease, stop) {
        Ok(Some(router)) => router,
        Ok(None) => {
            tell(started, Err(format!("{name}: the host stopped before it started")));
            cx.desk.close(&name);
            return not_started(Ok(0));
        }
        Err(e) => {
            tell(started, Err(format!("{name}: {e:#}")));
            cx.desk.close(&name);
            return not_started(Err(e));
        }
    };
    tell(started, Ok(format!("{name} {version}: started from position {}", router.lanes.resumed_from)));
    let routed = router.run(source.as_mut(), until, stop);
    let Router { lanes, slot, .. } = router;
    let finished = lanes.finish(stop);
    if let Ok(checkpoint) = &finished {
        tracing::info!(projection = %name, checkpoint, "projection stopped");
    }
    // After the lanes finish: the events still queued when the router
    // stopped may be the ones that quarantine the projection.
    let quarantined = slot.quarantined();
    // A group's source outlives its lanes, so that their last verdicts reach the server.
    drop(source);
    Ended { name, started: true, routed, finished, quarantined }
}

/// Where a change is answered: what was done, or why not.
pub type Answer = std::sync::mpsc::Sender<Result<String, String>>;

fn tell(answer: Option<Answer>, said: Result<String, String>) {
    if let Some(answer) = answer {
        let _ = answer.send(said);
    }
}
