//! Wiring: from a config to a running pipeline of source, router, lanes and sink.

use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::admin::{Admin, Host};
use crate::config::Config;
use crate::lanes::Progress;
use crate::metrics::Metrics;
use crate::monitor::Monitor;
use crate::parking::Desk;
use crate::plugins::{Plugins, ProjectionPlugin, UpcasterSet};
use crate::router::Until;
use crate::sink::Sink;
use crate::supervisor::runner::Loaded;
use crate::supervisor::{supervise, Change, Context, Roster};
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
            // Its component may have been taken away on purpose, and come back.
            tracing::warn!(projection = %name, plugins = %config.plugins.display(), "the config has settings for this projection, but no plugin in the plugins directory has that name");
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

pub use crate::supervisor::Opener;

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
    cx: Context,
    projections: Vec<Loaded>,
    swapper: Arc<Swapper>,
    monitor: Arc<Monitor>,
    /// What the swapper asks the supervisor to start or stop.
    changes: Receiver<Change>,
    started: Instant,
}

impl Pipeline {
    /// Loads every projection into its slot.
    pub fn start(config: &Config, plugins: &Plugins, sink: Arc<dyn Sink>, progress: Arc<Progress>) -> Result<Self> {
        let started = Instant::now();
        // Conflicting upcasters are refused here, before any event is read.
        crate::plugins::claims(&plugins.upcasters)?;
        let cx = Context {
            config: config.clone(),
            sink: sink.clone(),
            metrics: Arc::new(Metrics::new()),
            roster: Arc::new(Roster::default()),
            desk: Desk::new(plugins.projections.iter().map(|p| p.name())),
            upcasters: UpcasterSet::new(plugins.upcasters.clone()),
            progress,
            lease: Duration::from_millis(config.lease_ms),
            wait_for_lease: config.wait_for_lease,
        };
        let mut projections = plugins.projections.iter().map(|p| Loaded::new(&cx, p)).collect::<Result<Vec<_>>>()?;
        // Leases are taken in this order: two hosts with the same projections
        // never each hold one and wait for the other's.
        projections.sort_by(|a, b| a.name().cmp(b.name()));
        projections.iter().for_each(|p| cx.roster.join(p.member(&cx)));
        let (ask, changes) = channel();
        let swapper = Arc::new(Swapper::new(&config.plugins, &config.cache, cx.roster.clone(), cx.upcasters.clone(), sink.clone(), ask));
        let ready_max_lag = (config.ready_max_lag_ms > 0).then(|| Duration::from_millis(config.ready_max_lag_ms));
        let monitor = Monitor::start(cx.metrics.clone(), cx.roster.clone(), sink, Some(config.source.clone()), ready_max_lag);
        Ok(Self { cx, projections, swapper, monitor, changes, started })
    }

    /// What swaps builds in this pipeline's lanes, and adds and removes projections.
    pub fn swapper(&self) -> Arc<Swapper> {
        self.swapper.clone()
    }

    /// What watches this pipeline: status, metrics, health.
    pub fn monitor(&self) -> Arc<Monitor> {
        self.monitor.clone()
    }

    /// What the admin endpoint reaches this pipeline through.
    pub fn host(&self) -> Host {
        Host { swapper: self.swapper.clone(), monitor: self.monitor.clone(), desk: self.cx.desk.clone(), sink: self.cx.sink.clone() }
    }

    /// Runs every projection on a router thread of its own, each reading the
    /// source `open` gives it, and those added while it runs. When one
    /// router fails, the others are stopped.
    pub fn run(self, open: &Opener, until: Until, stop: &AtomicBool) -> Result<RunReport> {
        let ended = supervise(&self.cx, self.projections, open, until, stop, &self.changes)?;
        let mut quarantined = Vec::new();
        let mut failed = Ok(());
        let mut read_through = 0;
        for end in ended {
            if let Some(reason) = end.quarantined {
                quarantined.push((end.name, reason));
            }
            failed = failed.and(end.finished.map(drop));
            match end.routed {
                Ok(through) => read_through = read_through.max(through),
                Err(e) => failed = failed.and(Err(e)),
            }
        }
        failed?;
        let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        let progress = &self.cx.progress;
        Ok(RunReport {
            handled: count(&progress.handled),
            parked: count(&progress.parked),
            skipped: count(&progress.skipped),
            elapsed: self.started.elapsed(),
            read_through,
            quarantined,
        })
    }
}
