//! Wiring: from a config to a running pipeline of source, router, lanes and sink.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::config::Config;
use crate::lanes::{LaneSet, Progress};
use crate::plugins::{Plugins, Slot, UpcasterChain};
use crate::router::{Route, Router, Until};
use crate::sink::Sink;
use crate::source::{self, Interest, Source, Wants};
use crate::swap::{Admin, Swapper, Watcher};

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

/// What the plugins want from the source, for a source that filters on its server.
pub fn interest(plugins: &Plugins) -> Interest {
    Interest {
        projections: plugins
            .projections
            .iter()
            .map(|p| Wants { event_types: p.manifest.event_types.clone(), stream_prefixes: p.manifest.stream_prefixes.clone() })
            .collect(),
        upcast_types: plugins.upcasters.iter().flat_map(|u| u.manifest.upgrades.iter().map(|s| s.event_type.clone())).collect(),
    }
}

/// Runs every projection until caught up (or, with `until = Stopped`, until
/// `stop`), with the admin endpoint and the plugin watcher the config asks for.
pub fn run(config: &Config, until: Until, stop: &AtomicBool, progress: Arc<Progress>) -> Result<RunReport> {
    let plugins = load_plugins(config)?;
    if plugins.projections.is_empty() {
        bail!("no projection plugins in {}: nothing to run", config.plugins.display());
    }
    let mut source = source::open(&config.source, &interest(&plugins))?;
    let sink: Arc<dyn Sink> = Arc::from(crate::sink::open(&config.sink, &config.neo4j)?);
    let pipeline = Pipeline::start(config, &plugins, sink, progress)?;
    let _admin = match config.admin.as_str() {
        "" => None,
        addr => match Admin::start(addr, pipeline.swapper()) {
            Ok(admin) => Some(admin),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "running without the admin endpoint: `projector plugins reload` cannot reach this host");
                None
            }
        },
    };
    let _watcher = config.watch.then(|| Watcher::start(config.plugins.clone(), pipeline.swapper())).transpose()?;
    pipeline.run(source.as_mut(), until, stop)
}

/// Runs the given plugins from `source` into `sink`.
pub fn run_with(
    config: &Config,
    plugins: &Plugins,
    source: &mut dyn Source,
    sink: Arc<dyn Sink>,
    until: Until,
    stop: &AtomicBool,
    progress: Arc<Progress>,
) -> Result<RunReport> {
    Pipeline::start(config, plugins, sink, progress)?.run(source, until, stop)
}

/// Lanes started for every projection, waiting for the router to feed them.
pub struct Pipeline {
    router: Router,
    swapper: Arc<Swapper>,
    progress: Arc<Progress>,
    started: Instant,
}

impl Pipeline {
    pub fn start(config: &Config, plugins: &Plugins, sink: Arc<dyn Sink>, progress: Arc<Progress>) -> Result<Self> {
        let started = Instant::now();
        let mut routes = Vec::new();
        let mut slots = Vec::new();
        for plugin in &plugins.projections {
            let settings = config.lane_settings(plugin.name());
            let slot = Arc::new(Slot::new(plugin.clone(), settings.lanes.max(1), settings.call_deadline));
            let lanes = LaneSet::start(slot.clone(), sink.clone(), &settings, progress.clone())?;
            tracing::info!(projection = plugin.name(), version = %plugin.manifest.version, lanes = settings.lanes, from = lanes.resumed_from, "projection started");
            routes.push(Route { plugin: plugin.clone(), slot: slot.clone(), lanes });
            slots.push(slot);
        }
        let router = Router { routes, upcasters: UpcasterChain::new(&plugins.upcasters)? };
        let swapper = Arc::new(Swapper::new(&config.plugins, &config.cache, slots, sink));
        Ok(Self { router, swapper, progress, started })
    }

    /// What swaps builds in this pipeline's lanes.
    pub fn swapper(&self) -> Arc<Swapper> {
        self.swapper.clone()
    }

    pub fn run(mut self, source: &mut dyn Source, until: Until, stop: &AtomicBool) -> Result<RunReport> {
        let routed = self.router.run(source, until, stop);
        let mut quarantined = Vec::new();
        for route in self.router.routes {
            let name = route.plugin.name().to_owned();
            if let Some(reason) = route.slot.quarantined() {
                quarantined.push((name.clone(), reason));
            }
            let checkpoint = route.lanes.finish()?;
            tracing::info!(projection = %name, checkpoint, "projection stopped");
        }
        let read_through = routed?;
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
