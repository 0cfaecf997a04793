//! A runner: one projection running on a thread of its own. It holds the
//! lease on the projection's read model, its lanes, and the router that
//! reads the projection's own view of the source into them; it stops when
//! the source has nothing more (`run` without `--follow`), when it is told
//! to (the host stops, or the projection's component was taken away), or
//! when its router fails.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;

use super::roster::Member;
use super::Context;
use crate::lanes::{LaneSet, LaneSettings, Vitals};
use crate::plugins::{KeepsFailing, ProjectionPlugin, Slot, UpcasterChain};
use crate::router::{Router, Until};
use crate::sink::lease::Lease;
use crate::source::Source;

/// A projection loaded into its slot, ready to start.
pub struct Loaded {
    pub plugin: Arc<ProjectionPlugin>,
    pub slot: Arc<Slot>,
    pub settings: LaneSettings,
    pub upcasters: UpcasterChain,
}

impl Loaded {
    /// Loads `plugin` with its settings from the config and the upcasters it needs.
    pub fn new(cx: &Context, plugin: &Arc<ProjectionPlugin>) -> Result<Self> {
        let mut settings = cx.config.lane_settings(plugin.name());
        settings.vitals = Arc::new(Vitals::new(cx.metrics.meter(plugin.name())));
        let slot = Arc::new(Slot::new(plugin.clone(), settings.workers.clamp(1, settings.lanes.max(1)), settings.call_deadline));
        let needed: Vec<_> = cx.upcasters.iter().filter(|u| plugin.needs(&u.manifest)).cloned().collect();
        let limit = KeepsFailing { after: settings.quarantine_after, after_failing: settings.quarantine_after_failing };
        let upcasters = UpcasterChain::new(&needed, &cx.upcasters, settings.call_deadline, limit)?;
        Ok(Self { plugin: plugin.clone(), slot, settings, upcasters })
    }

    /// The projection as the roster shows it.
    pub fn member(&self, cx: &Context) -> Member {
        Member { slot: self.slot.clone(), vitals: self.settings.vitals.clone(), in_order: cx.config.group(self.plugin.name()).is_none() }
    }

    pub fn name(&self) -> &str {
        self.plugin.name()
    }
}

/// A projection with its lease and lanes, its router ready to read.
pub struct Started<'a> {
    router: Router,
    source: Box<dyn Source + 'a>,
}

impl Started<'_> {
    pub fn name(&self) -> &str {
        self.router.name()
    }

    /// Where its lanes resumed.
    pub fn resumed_from(&self) -> u64 {
        self.router.lanes.resumed_from
    }
}

/// Starts `loaded` reading `source`: takes the lease on its read model
/// (waiting for it with `wait`, until `stop`) unless the source settles
/// events with a server of its own, then starts its lanes. `None`: stopped
/// while waiting for the lease.
pub fn start<'a>(cx: &Context, loaded: Loaded, source: Box<dyn Source + 'a>, wait: bool, stop: &AtomicBool) -> Result<Option<Started<'a>>> {
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
    Ok(Some(Started { router: Router { plugin, slot, lanes, upcasters, desk }, source }))
}

/// What became of a runner.
pub struct Ended {
    pub name: String,
    /// The position its router read through, or why it failed.
    pub routed: Result<u64>,
    /// Its checkpoint when its lanes finished, or why they failed.
    pub finished: Result<u64>,
    /// Why it is quarantined, if it is.
    pub quarantined: Option<String>,
}

/// Runs a started projection until `until` or `stop`; a router that fails
/// sets `host_stop`, so that the whole host stops.
pub fn run(started: Started<'_>, until: Until, stop: &AtomicBool, host_stop: &AtomicBool) -> Ended {
    let Started { mut router, mut source } = started;
    let routed = router.run(source.as_mut(), until, stop);
    if routed.is_err() {
        host_stop.store(true, Ordering::Relaxed);
    }
    let name = router.name().to_owned();
    let Router { lanes, slot, .. } = router;
    let finished = lanes.finish(stop);
    match &finished {
        Ok(checkpoint) => tracing::info!(projection = %name, checkpoint, "projection stopped"),
        Err(_) => host_stop.store(true, Ordering::Relaxed),
    }
    // After the lanes finish: the events still queued when the router
    // stopped may be the ones that quarantine the projection.
    let quarantined = slot.quarantined();
    // A group's source outlives its lanes, so that their last verdicts reach the server.
    drop(source);
    Ended { name, routed, finished, quarantined }
}
