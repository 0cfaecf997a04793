//! Wiring: from a config to a running pipeline of source, router, lanes and sink.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::config::Config;
use crate::lanes::{LaneSet, Progress};
use crate::plugins::{Plugins, ProjectionPlugin, Slot, UpcasterChain};
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
    let settlers = match source.settler() {
        // A source that settles feeds every projection as their group.
        Some(settler) => plugins.projections.iter().map(|p| (p.name().to_owned(), settler.clone())).collect(),
        None => HashMap::new(),
    };
    let pipeline = Pipeline::start_with_groups(config, plugins, sink, progress, &settlers)?;
    if settlers.is_empty() {
        pipeline.run(source, until, stop)
    } else {
        pipeline.run_one_group(source, until, stop)
    }
}

/// Lanes started for every projection, waiting for the routers to feed them.
pub struct Pipeline {
    /// Routes the projections that share the source.
    shared: Router,
    /// One router per projection that reads its own group.
    grouped: Vec<(String, Router)>,
    swapper: Arc<Swapper>,
    progress: Arc<Progress>,
    started: Instant,
}

impl Pipeline {
    pub fn start(config: &Config, plugins: &Plugins, sink: Arc<dyn Sink>, progress: Arc<Progress>) -> Result<Self> {
        Self::start_with_groups(config, plugins, sink, progress, &HashMap::new())
    }

    /// Starts lanes for every projection; those in `groups` settle each event
    /// with the settler given and get a router of their own.
    pub fn start_with_groups(
        config: &Config,
        plugins: &Plugins,
        sink: Arc<dyn Sink>,
        progress: Arc<Progress>,
        groups: &HashMap<String, Settler>,
    ) -> Result<Self> {
        let started = Instant::now();
        let mut shared = Vec::new();
        let mut grouped = Vec::new();
        let mut slots = Vec::new();
        for plugin in &plugins.projections {
            let mut settings = config.lane_settings(plugin.name());
            settings.settle = groups.get(plugin.name()).cloned();
            let slot = Arc::new(Slot::new(plugin.clone(), settings.lanes.max(1), settings.call_deadline));
            let lanes = LaneSet::start(slot.clone(), sink.clone(), &settings, progress.clone())?;
            tracing::info!(projection = plugin.name(), version = %plugin.manifest.version, lanes = settings.lanes, from = lanes.resumed_from, "projection started");
            let route = Route { plugin: plugin.clone(), slot: slot.clone(), lanes };
            match settings.settle {
                Some(_) => grouped.push((plugin.name().to_owned(), Router { routes: vec![route], upcasters: UpcasterChain::new(&plugins.upcasters)? })),
                None => shared.push(route),
            }
            slots.push(slot);
        }
        let shared = Router { routes: shared, upcasters: UpcasterChain::new(&plugins.upcasters)? };
        let swapper = Arc::new(Swapper::new(&config.plugins, &config.cache, slots, sink));
        Ok(Self { shared, grouped, swapper, progress, started })
    }

    /// What swaps builds in this pipeline's lanes.
    pub fn swapper(&self) -> Arc<Swapper> {
        self.swapper.clone()
    }

    /// Runs the projections that share `source`.
    pub fn run(self, source: &mut dyn Source, until: Until, stop: &AtomicBool) -> Result<RunReport> {
        self.run_with_groups(Some(source), HashMap::new(), until, stop)
    }

    /// Runs one group's projections from `source` (tests and tools).
    fn run_one_group(mut self, source: &mut dyn Source, until: Until, stop: &AtomicBool) -> Result<RunReport> {
        let grouped = std::mem::take(&mut self.grouped);
        self.shared.routes.extend(grouped.into_iter().flat_map(|(_, r)| r.routes));
        self.run_with_groups(Some(source), HashMap::new(), until, stop)
    }

    /// Runs every router: the shared one here on `source`, each group's on a
    /// thread of its own on its source. When one fails, the others are stopped.
    pub fn run_with_groups(
        mut self,
        source: Option<&mut dyn Source>,
        mut groups: HashMap<String, Box<dyn Source>>,
        until: Until,
        stop: &AtomicBool,
    ) -> Result<RunReport> {
        // A group's source outlives its lanes, so that their last verdicts reach the server.
        let mut closing = Vec::new();
        let routed = std::thread::scope(|scope| {
            let mut threads = Vec::new();
            for (name, router) in &mut self.grouped {
                let source = groups.remove(name.as_str()).with_context(|| format!("no source for the group of projection {name}"))?;
                let thread = std::thread::Builder::new().name(format!("{name}-router")).spawn_scoped(scope, move || {
                    let mut source = source;
                    let routed = router.run(source.as_mut(), until, stop);
                    if routed.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    (routed, source)
                })?;
                threads.push(thread);
            }
            let shared = match source {
                Some(source) if !self.shared.routes.is_empty() => self.shared.run(source, until, stop),
                _ => Ok(0),
            };
            if shared.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            let mut grouped = Ok(0);
            for thread in threads {
                let (routed, source) = thread.join().map_err(|_| anyhow::anyhow!("a router thread panicked"))?;
                closing.push(source);
                grouped = grouped.and(routed);
            }
            shared.and_then(|read| grouped.map(|_| read))
        });
        let mut quarantined = Vec::new();
        let routes = self.shared.routes.into_iter().chain(self.grouped.into_iter().flat_map(|(_, r)| r.routes));
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
