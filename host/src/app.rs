//! Wiring: from a config to a running pipeline of source, router, lanes and sink.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::config::Config;
use crate::lanes::{LaneSet, Progress};
use crate::plugins::{Plugins, UpcasterChain};
use crate::router::{Route, Router, Until};
use crate::sink::{Commit, Sink, SinkError};
use crate::source::{self, Source};

/// What a run did.
#[derive(Debug)]
pub struct RunReport {
    pub handled: u64,
    pub parked: u64,
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
    let sink: Arc<dyn Sink> = Arc::from(crate::sink::open(&config.sink)?);
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
        let tracker = route.lanes.finish();
        let checkpoint = tracker.lock().unwrap_or_else(|p| p.into_inner()).checkpoint();
        commit_checkpoint(sink.as_ref(), &name, checkpoint)?;
        tracing::info!(projection = %name, checkpoint, "projection stopped");
    }
    let read_through = routed?;
    Ok(RunReport {
        handled: progress.handled.load(std::sync::atomic::Ordering::Relaxed),
        parked: progress.parked.load(std::sync::atomic::Ordering::Relaxed),
        elapsed: started.elapsed(),
        read_through,
    })
}

/// Records the final checkpoint (it covers events no lane saw: those the
/// projection does not subscribe to), waiting out an unavailable sink.
fn commit_checkpoint(sink: &dyn Sink, projection: &str, checkpoint: u64) -> Result<()> {
    let commit = Commit { projection, applied: Vec::new(), parked: Vec::new(), checkpoint };
    let mut wait = Duration::from_millis(50);
    loop {
        match sink.commit(&commit) {
            Ok(()) => return Ok(()),
            Err(SinkError::Unavailable(e)) => {
                tracing::warn!(projection, error = %format!("{e:#}"), "sink unavailable while saving the checkpoint; retrying");
                std::thread::sleep(wait);
                wait = (wait * 2).min(crate::lanes::SINK_BACKOFF_CAP);
            }
            Err(e) => bail!("cannot save the checkpoint of {projection}: {e}"),
        }
    }
}
