//! Wiring: from a config to a running pipeline of source, router, lanes and sink.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};


use anyhow::{bail, Result};

use crate::config::Config;
use crate::lanes::{LaneSet, Progress};
use crate::plugins::{Plugins, UpcasterChain};
use crate::router::{Route, Router, Until};
use crate::sink::Sink;
use crate::source::{self, Source};

/// What a run did.
#[derive(Debug)]
pub struct RunReport {
    pub handled: u64,
    pub parked: u64,
    pub skipped: u64,
    pub elapsed: Duration,
    pub read_through: u64,
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

/// Runs every projection until caught up (or, with `until = Stopped`, until `stop`).
pub fn run(config: &Config, until: Until, stop: &AtomicBool, progress: Arc<Progress>) -> Result<RunReport> {
    let plugins = load_plugins(config)?;
    if plugins.projections.is_empty() {
        bail!("no projection plugins in {}: nothing to run", config.plugins.display());
    }
    let mut source = source::open(&config.source)?;
    let sink: Arc<dyn Sink> = Arc::from(crate::sink::open(&config.sink, &config.neo4j)?);
    run_with(config, &plugins, &mut source, sink, until, stop, progress)
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
    let started = Instant::now();
    let mut routes = Vec::new();
    for plugin in &plugins.projections {
        let settings = config.lane_settings(plugin.name());
        let lanes = LaneSet::start(plugin.clone(), sink.clone(), &settings, progress.clone())?;
        tracing::info!(projection = plugin.name(), version = %plugin.manifest.version, lanes = settings.lanes, from = lanes.resumed_from, "projection started");
        routes.push(Route { plugin: plugin.clone(), lanes });
    }
    let mut router = Router { routes, upcasters: UpcasterChain::new(&plugins.upcasters)? };
    let routed = router.run(source, until, stop);
    for route in router.routes {
        let name = route.plugin.name().to_owned();
        let checkpoint = route.lanes.finish()?;
        tracing::info!(projection = %name, checkpoint, "projection stopped");
    }
    let read_through = routed?;
    Ok(RunReport {
        handled: progress.handled.load(std::sync::atomic::Ordering::Relaxed),
        parked: progress.parked.load(std::sync::atomic::Ordering::Relaxed),
        skipped: progress.skipped.load(std::sync::atomic::Ordering::Relaxed),
        elapsed: started.elapsed(),
        read_through,
    })
}

