//! Wiring: from a config to a running pipeline of source, router, lanes and sink.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::admin::{Admin, Host};
use crate::config::Config;
use crate::lanes::{LaneSet, LaneSettings, Progress, Vitals};
use crate::metrics::Metrics;
use crate::monitor::{Monitor, Watched};
use crate::parking::Desk;
use crate::plugins::{KeepsFailing, Plugins, ProjectionPlugin, Slot, UpcasterChain, UpcasterPlugin};
use crate::router::{Router, Until};
use crate::sink::lease::Lease;
use crate::sink::Sink;
use crate::source::{self, Interest, Source, Wants};
use crate::swap::{Swapper, Watcher};

/// What a run did.
#[derive(Debug)]
pub struct RunReport {
    pub handled: u64,
    pub parked: u64,
    pub skipped: u64,
    pub elapsed: Duration,
    pub read_through: u64,
    /// Projections quarantined in this run, with the reason.
    pub quarantined: Vec<(String, String)>,
}

/// Loads the plugins the config names, refusing the whole set if one is bad.
pub fn load_plugins(config: &Config) -> Result<Plugins> {
    let plugins = Plugins::load_dir(&config.plugins, &config.cache)?;
    for name in config.projections.keys() {
        if !plugins.projections.iter().any(|p| p.name() == name) {
            bail!("config has settings for projection `{name}`, but no plugin in {} has that name", config.plugins.display());
        }
    }
    Ok(plugins)
}

/// What some projections want from the source, for a source that filters on
/// its server.
pub fn interest<'a>(projections: impl IntoIterator<Item = &'a ProjectionPlugin>) -> Interest {
    Interest {
        projections: projections
            .into_iter()
            .map(|p| Wants { event_types: p.manifest.event_types.clone(), stream_prefixes: p.manifest.stream_prefixes.clone() })
            .collect(),
    }
}

/// Runs every projection until caught up (or, with `until = Stopped`, until
/// `stop`), with the admin endpoint and the plugin watcher the config asks for.
/// Each projection reads the source on its own: its persistent-subscription
/// group if it has one, else its own catch-up reading.
pub fn run(config: &Config, until: Until, stop: &AtomicBool, progress: Arc<Progress>) -> Result<RunReport> {
    let plugins = load_plugins(config)?;
    if plugins.projections.is_empty() {
        bail!("no projection plugins in {}: nothing to run", config.plugins.display());
    }
    let sink: Arc<dyn Sink> = Arc::from(crate::sink::open(&config.sink, &config.neo4j)?);
    let open = |projection: &ProjectionPlugin| -> Result<Box<dyn Source>> {
        let interest = interest([projection]);
        match config.group(projection.name()) {
            Some(group) => source::open_group(&config.source, group, &interest),
            None => source::open(&config.source, &interest),
        }
    };
    let pipeline = Pipeline::start(config, &plugins, sink, progress)?;
    let _admin = match config.admin.as_str() {
        "" => None,
        addr => match Admin::start(addr, pipeline.host(), &config.admin_token_file) {
            Ok(admin) => Some(admin),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "running without the admin endpoint: `projector plugins reload` cannot reach this host");
                None
            }
        },
    };
    let _watcher = config.watch.then(|| Watcher::start(config.plugins.clone(), pipeline.swapper())).transpose()?;
    pipeline.run(&open, until, stop)
}

/// Opens one projection's own reading of the source.
pub type Opener<'a> = dyn Fn(&ProjectionPlugin) -> Result<Box<dyn Source + 'a>> + Sync + 'a;

/// Runs the given plugins from the sources `open` gives into `sink`.
pub fn run_with(
    config: &Config,
    plugins: &Plugins,
    open: &Opener,
    sink: Arc<dyn Sink>,
    until: Until,
    stop: &AtomicBool,
    progress: Arc<Progress>,
) -> Result<RunReport> {
    Pipeline::start(config, plugins, sink, progress)?.run(open, until, stop)
}

/// Every projection loaded into its slot, ready to run: builds can be
/// swapped from the moment it exists.
pub struct Pipeline {
    projections: Vec<Projection>,
    sink: Arc<dyn Sink>,
    swapper: Arc<Swapper>,
    monitor: Arc<Monitor>,
    /// Parked events the admin endpoint asks the routers to resolve.
    desk: Arc<Desk>,
    /// Every upcaster, for a replay.
    upcasters: Vec<Arc<UpcasterPlugin>>,
    progress: Arc<Progress>,
    started: Instant,
    /// The length of the leases taken on read models, and whether to wait for one held.
    lease: Duration,
    wait_for_lease: bool,
}

/// One projection before it runs.
struct Projection {
    plugin: Arc<ProjectionPlugin>,
    slot: Arc<Slot>,
    settings: LaneSettings,
    upcasters: UpcasterChain,
}

impl Pipeline {
    /// Loads every projection into its slot.
    pub fn start(config: &Config, plugins: &Plugins, sink: Arc<dyn Sink>, progress: Arc<Progress>) -> Result<Self> {
        let started = Instant::now();
        // Conflicting upcasters are refused here, before any event is read.
        crate::plugins::claims(&plugins.upcasters)?;
        let metrics = Arc::new(Metrics::new());
        let mut projections = Vec::new();
        for plugin in &plugins.projections {
            let mut settings = config.lane_settings(plugin.name());
            settings.vitals = Arc::new(Vitals::new(metrics.meter(plugin.name())));
            let slot = Arc::new(Slot::new(plugin.clone(), settings.workers.clamp(1, settings.lanes.max(1)), settings.call_deadline));
            let needed: Vec<_> = plugins.upcasters.iter().filter(|u| plugin.needs(&u.manifest)).cloned().collect();
            let limit = KeepsFailing { after: settings.quarantine_after, after_failing: settings.quarantine_after_failing };
            let upcasters = UpcasterChain::new(&needed, &plugins.upcasters, settings.call_deadline, limit)?;
            projections.push(Projection { plugin: plugin.clone(), slot, settings, upcasters });
        }
        // Leases are taken in this order: two hosts with the same projections
        // never each hold one and wait for the other's.
        projections.sort_by(|a, b| a.plugin.name().cmp(b.plugin.name()));
        let slots = projections.iter().map(|p| p.slot.clone()).collect();
        let swapper = Arc::new(Swapper::new(&config.plugins, &config.cache, slots, sink.clone()));
        let watched = projections
            .iter()
            .map(|p| Watched { slot: p.slot.clone(), vitals: p.settings.vitals.clone(), in_order: config.group(p.plugin.name()).is_none() })
            .collect();
        let ready_max_lag = (config.ready_max_lag_ms > 0).then(|| Duration::from_millis(config.ready_max_lag_ms));
        let monitor = Monitor::start(metrics, watched, sink.clone(), Some(config.source.clone()), ready_max_lag);
        let (lease, wait_for_lease) = (Duration::from_millis(config.lease_ms), config.wait_for_lease);
        let desk = Desk::new(projections.iter().map(|p| p.plugin.name()));
        let upcasters = plugins.upcasters.clone();
        Ok(Self { projections, sink, swapper, monitor, desk, upcasters, progress, started, lease, wait_for_lease })
    }

    /// What swaps builds in this pipeline's lanes.
    pub fn swapper(&self) -> Arc<Swapper> {
        self.swapper.clone()
    }

    /// What watches this pipeline: status, metrics, health.
    pub fn monitor(&self) -> Arc<Monitor> {
        self.monitor.clone()
    }

    /// What the admin endpoint reaches this pipeline through.
    pub fn host(&self) -> Host {
        Host { swapper: self.swapper.clone(), monitor: self.monitor.clone(), desk: self.desk.clone(), sink: self.sink.clone() }
    }

    /// Runs every projection on a router thread of its own, each reading the
    /// source `open` gives it. When one router fails, the others are stopped.
    pub fn run(self, open: &Opener, until: Until, stop: &AtomicBool) -> Result<RunReport> {
        let mut sources = Vec::new();
        let mut routers = Vec::new();
        for Projection { plugin, slot, mut settings, upcasters } in self.projections {
            let source = open(&plugin)?;
            // A source that must be told what became of each event (a persistent subscription).
            settings.settle = source.settler();
            // One writer per read model; a group's members share it by the server's assignment.
            if settings.settle.is_none() {
                settings.vitals.standby(true);
                let taken = Lease::take(self.sink.clone(), plugin.name(), self.lease, self.wait_for_lease, stop);
                settings.vitals.standby(false);
                match taken? {
                    Some(lease) => settings.lease = Some(lease),
                    // Stopped while waiting for it: this projection does not start.
                    None => {
                        self.desk.close(plugin.name());
                        continue;
                    }
                }
            }
            let lanes = LaneSet::start(slot.clone(), self.sink.clone(), &settings, self.progress.clone())?;
            tracing::info!(projection = plugin.name(), version = %plugin.manifest.version, lanes = settings.lanes, workers = settings.workers, from = lanes.resumed_from, "projection started");
            let desk = Some((self.desk.clone(), self.upcasters.clone()));
            routers.push(Router { plugin, slot, lanes, upcasters, desk });
            sources.push(source);
        }
        let routed: Vec<Result<u64>> = std::thread::scope(|scope| {
            let mut threads = Vec::new();
            for (router, source) in routers.iter_mut().zip(sources.iter_mut()) {
                let name = format!("{}-router", router.name());
                let thread = std::thread::Builder::new().name(name).spawn_scoped(scope, move || {
                    let routed = router.run(source.as_mut(), until, stop);
                    if routed.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    routed
                });
                threads.push(thread);
            }
            threads
                .into_iter()
                .map(|t| t.map_err(anyhow::Error::from)?.join().map_err(|_| anyhow::anyhow!("a router thread panicked")).and_then(|r| r))
                .collect()
        });
        let mut quarantined = Vec::new();
        let mut finished = Ok(());
        for router in routers {
            let name = router.name().to_owned();
            match router.lanes.finish(stop) {
                Ok(checkpoint) => tracing::info!(projection = %name, checkpoint, "projection stopped"),
                Err(e) => finished = finished.and(Err(e)),
            }
            // After the lanes finish: the events still queued when the router
            // stopped may be the ones that quarantine the projection.
            if let Some(reason) = router.slot.quarantined() {
                quarantined.push((name, reason));
            }
        }
        // A group's source outlives its lanes, so that their last verdicts reach the server.
        drop(sources);
        finished?;
        let mut read_through = 0;
        for r in routed {
            read_through = read_through.max(r?);
        }
        let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        Ok(RunReport {
            handled: count(&self.progress.handled),
            parked: count(&self.progress.parked),
            skipped: count(&self.progress.skipped),
            elapsed: self.started.elapsed(),
            read_through,
            quarantined,
        })
    }
}
