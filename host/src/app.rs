//! Wiring: from a config to a running pipeline of source, router, lanes and sink.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::config::Config;
use crate::lanes::{LaneSet, Progress};
use crate::plugins::{Plugins, ProjectionPlugin, Slot, UpcasterChain, UpcasterPlugin};
use crate::router::{Route, Router, Until};
use crate::sink::Sink;
use crate::source::settle::Settler;
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

/// What some projections want from the source, for a source that filters on
/// its server. Upcasters count for every feed: they run in every router.
pub fn interest<'a>(projections: impl IntoIterator<Item = &'a Arc<ProjectionPlugin>>, plugins: &Plugins) -> Interest {
    Interest {
        projections: projections
            .into_iter()
            .map(|p| Wants { event_types: p.manifest.event_types.clone(), stream_prefixes: p.manifest.stream_prefixes.clone() })
            .collect(),
        upcast_types: plugins.upcasters.iter().flat_map(|u| u.manifest.upgrades.iter().map(|s| s.event_type.clone())).collect(),
    }
}

/// Runs every projection until caught up (or, with `until = Stopped`, until
/// `stop`), with the admin endpoint and the plugin watcher the config asks for.
/// Projections with a `group` read their own persistent subscription; the
/// rest share one reading of the source.
pub fn run(config: &Config, until: Until, stop: &AtomicBool, progress: Arc<Progress>) -> Result<RunReport> {
    let plugins = load_plugins(config)?;
    if plugins.projections.is_empty() {
        bail!("no projection plugins in {}: nothing to run", config.plugins.display());
    }
    let (grouped, shared): (Vec<_>, Vec<_>) = plugins.projections.iter().partition(|p| config.group(p.name()).is_some());
    let mut source = match shared.is_empty() {
        true => None,
        false => Some(source::open(&config.source, &interest(shared, &plugins))?),
    };
    let mut groups = HashMap::new();
    for plugin in grouped {
        let group = config.group(plugin.name()).expect("partitioned on it");
        groups.insert(plugin.name().to_owned(), source::open_group(&config.source, group, &interest([plugin], &plugins))?);
    }
    let sink: Arc<dyn Sink> = Arc::from(crate::sink::open(&config.sink, &config.neo4j)?);
    let settlers = groups.iter().filter_map(|(name, s)| Some((name.clone(), s.settler()?))).collect();
    let pipeline = Pipeline::start_with_groups(config, &plugins, sink, progress, &settlers)?;
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
    pipeline.run_with_groups(source.as_mut().map(|s| s.as_mut() as &mut dyn Source), groups, until, stop)
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
    // A source that settles (tests, tools) settles for every projection it feeds.
    let settlers = match source.settler() {
        Some(settler) => plugins.projections.iter().map(|p| (p.name().to_owned(), settler.clone())).collect(),
        None => HashMap::new(),
    };
    Pipeline::start_with_groups(config, plugins, sink, progress, &settlers)?.run(source, until, stop)
}

/// Lanes started for every projection, waiting for the routers to feed them.
pub struct Pipeline {
    routes: Vec<Route>,
    upcasters: Vec<Arc<UpcasterPlugin>>,
    swapper: Arc<Swapper>,
    progress: Arc<Progress>,
    started: Instant,
}

impl Pipeline {
    pub fn start(config: &Config, plugins: &Plugins, sink: Arc<dyn Sink>, progress: Arc<Progress>) -> Result<Self> {
        Self::start_with_groups(config, plugins, sink, progress, &HashMap::new())
    }

    /// Starts lanes for every projection; those in `groups` settle each event
    /// with the settler given.
    pub fn start_with_groups(
        config: &Config,
        plugins: &Plugins,
        sink: Arc<dyn Sink>,
        progress: Arc<Progress>,
        groups: &HashMap<String, Settler>,
    ) -> Result<Self> {
        let started = Instant::now();
        let mut routes = Vec::new();
        let mut slots = Vec::new();
        for plugin in &plugins.projections {
            let mut settings = config.lane_settings(plugin.name());
            settings.settle = groups.get(plugin.name()).cloned();
            let slot = Arc::new(Slot::new(plugin.clone(), settings.lanes.max(1), settings.call_deadline));
            let lanes = LaneSet::start(slot.clone(), sink.clone(), &settings, progress.clone())?;
            tracing::info!(projection = plugin.name(), version = %plugin.manifest.version, lanes = settings.lanes, from = lanes.resumed_from, "projection started");
            routes.push(Route { plugin: plugin.clone(), slot: slot.clone(), lanes });
            slots.push(slot);
        }
        // Refuse conflicting upcasters now, before any event is read.
        UpcasterChain::new(&plugins.upcasters)?;
        let swapper = Arc::new(Swapper::new(&config.plugins, &config.cache, slots, sink));
        Ok(Self { routes, upcasters: plugins.upcasters.clone(), swapper, progress, started })
    }

    /// What swaps builds in this pipeline's lanes.
    pub fn swapper(&self) -> Arc<Swapper> {
        self.swapper.clone()
    }

    /// Runs the projections that share `source`.
    pub fn run(self, source: &mut dyn Source, until: Until, stop: &AtomicBool) -> Result<RunReport> {
        self.run_with_groups(Some(source), HashMap::new(), until, stop)
    }

    /// Runs the projections: each one with a source in `groups` on a router
    /// thread of its own, the rest on one router here, reading `source`. When
    /// one router fails, the others are stopped.
    pub fn run_with_groups(
        self,
        source: Option<&mut dyn Source>,
        mut groups: HashMap<String, Box<dyn Source>>,
        until: Until,
        stop: &AtomicBool,
    ) -> Result<RunReport> {
        let (mut grouped, mut shared) = (Vec::new(), Vec::new());
        for route in self.routes {
            match groups.remove(route.plugin.name()) {
                Some(source) => grouped.push((Router { routes: vec![route], upcasters: UpcasterChain::new(&self.upcasters)? }, source)),
                None => shared.push(route),
            }
        }
        let mut shared = Router { routes: shared, upcasters: UpcasterChain::new(&self.upcasters)? };
        let routed = std::thread::scope(|scope| {
            let mut threads = Vec::new();
            for (router, source) in &mut grouped {
                let name = format!("{}-router", router.routes[0].plugin.name());
                let thread = std::thread::Builder::new().name(name).spawn_scoped(scope, move || {
                    let routed = router.run(source.as_mut(), until, stop);
                    if routed.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    routed
                })?;
                threads.push(thread);
            }
            let read = match source {
                Some(source) if !shared.routes.is_empty() => shared.run(source, until, stop),
                _ => Ok(0),
            };
            if read.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            let mut others = Ok(0);
            for thread in threads {
                others = others.and(thread.join().map_err(|_| anyhow::anyhow!("a router thread panicked"))?);
            }
            read.and_then(|read| others.map(|_| read))
        });
        let mut quarantined = Vec::new();
        // A group's source outlives its lanes, so that their last verdicts reach the server.
        let (mut routes, mut closing) = (shared.routes, Vec::new());
        for (router, source) in grouped {
            routes.extend(router.routes);
            closing.push(source);
        }
        for route in routes {
            let name = route.plugin.name().to_owned();
            let checkpoint = route.lanes.finish()?;
            // After the lanes finish: the events still queued when the router
            // stopped may be the ones that quarantine the projection.
            if let Some(reason) = route.slot.quarantined() {
                quarantined.push((name.clone(), reason));
            }
            tracing::info!(projection = %name, checkpoint, "projection stopped");
        }
        drop(closing);
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
