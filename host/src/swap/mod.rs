//! Hot swap: new builds of running projections, taken up without a restart
//! and without losing or repeating an event.
//!
//! A reload compiles and checks every component in the plugins directory off
//! the hot path (it loads, it is a projection, `describe()` answers, its
//! manifest is compatible with the running build), then puts each changed
//! build in its projection's [`Slot`]; every lane takes it up at its next
//! batch boundary. A build that fails any check is refused with the reason,
//! and the running build stays. `rollback` returns to the build before, and
//! later reloads pass over the build rolled back from until another is deployed.
//!
//! Reloads come from the admin endpoint (`projector plugins reload`; who may
//! use it: [`crate::admin::access`]) or from the watcher, which polls the
//! plugins directory.

mod watch;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Result};
use serde::Serialize;

pub use watch::{Watcher, WATCH_INTERVAL};

use crate::plugins::{check_sharing, Plugins, ProjectionPlugin, Slot};
use crate::sink::Sink;

/// What a reload did, projection by projection.
#[derive(Debug, Default, Serialize)]
pub struct ReloadReport {
    /// `name: old -> new`
    pub swapped: Vec<String>,
    /// Builds (or files) that were refused, with why; their projections keep running the old build.
    pub refused: Vec<String>,
    pub unchanged: Vec<String>,
}

/// A running projection's builds, for `status`.
#[derive(Debug, Serialize)]
pub struct SlotStatus {
    pub name: String,
    pub version: String,
    pub file: String,
    pub previous: Option<String>,
    /// How many swaps (and rollbacks) it has had.
    pub swaps: u64,
    /// Why the projection is paused, if it is quarantined.
    pub quarantined: Option<String>,
}

pub struct Swapper {
    dir: PathBuf,
    cache: PathBuf,
    slots: Vec<Arc<Slot>>,
    sink: Arc<dyn Sink>,
    /// One reload at a time.
    busy: Mutex<()>,
}

impl Swapper {
    pub fn new(dir: &Path, cache: &Path, slots: Vec<Arc<Slot>>, sink: Arc<dyn Sink>) -> Self {
        Self { dir: dir.to_owned(), cache: cache.to_owned(), slots, sink, busy: Mutex::new(()) }
    }

    fn slot(&self, name: &str) -> Result<&Arc<Slot>> {
        match self.slots.iter().find(|s| s.name() == name) {
            Some(slot) => Ok(slot),
            None => bail!("no running projection is named `{name}` (running: {})", self.names().join(", ")),
        }
    }

    /// Whether `new` writes no label another running projection owns (and
    /// keeps sharing what they share).
    fn shares_fairly(&self, new: &ProjectionPlugin) -> Result<()> {
        let others: Vec<_> = self.slots.iter().filter(|s| s.name() != new.name()).map(|s| s.current().0).collect();
        check_sharing(others.iter().map(|p| &p.manifest).chain([&new.manifest])).map_err(anyhow::Error::msg)
    }

    fn names(&self) -> Vec<&str> {
        self.slots.iter().map(|s| s.name()).collect()
    }

    /// Loads the plugins directory again and swaps in every changed build of a
    /// running projection (only `only`'s, if given).
    pub fn reload(&self, only: Option<&str>) -> Result<ReloadReport> {
        let _one_at_a_time = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(name) = only {
            self.slot(name)?;
        }
        let files = crate::plugins::component_files(&self.dir)?;
        let mut report = ReloadReport::default();
        let mut found = false;
        for file in files {
            let plugins = match Plugins::load_files(std::slice::from_ref(&file), &self.cache) {
                Ok(plugins) => plugins,
                Err(e) => {
                    report.refused.push(format!("{}: {e:#}", file.display()));
                    continue;
                }
            };
            for new in plugins.projections {
                let name = new.name().to_owned();
                if only.is_some_and(|o| o != name) {
                    continue;
                }
                found = true;
                let Ok(slot) = self.slot(&name) else {
                    report.refused.push(format!("{name}: not running; a new projection starts with the next start of the host"));
                    continue;
                };
                if slot.current().0.digest == new.digest {
                    report.unchanged.push(format!("{name} {}", new.manifest.version));
                    continue;
                }
                if slot.declined(&new.digest) {
                    report.unchanged.push(format!("{name} {}: rolled back from; deploy another build to swap again", new.manifest.version));
                    continue;
                }
                let old = slot.current().0.manifest.version.clone();
                let swapped = self.shares_fairly(&new).and_then(|()| self.sink.prepare(&name, &new.scope)).and_then(|_| slot.swap(new.clone()));
                match swapped {
                    Ok(()) => {
                        tracing::info!(projection = %name, from = %old, to = %new.manifest.version, file = %file.display(), "swapped in a new build");
                        report.swapped.push(format!("{name}: {old} -> {}", new.manifest.version));
                    }
                    Err(e) => {
                        tracing::warn!(projection = %name, file = %file.display(), error = %format!("{e:#}"), "new build refused; the running build stays");
                        report.refused.push(format!("{name}: {e:#}"));
                    }
                }
            }
        }
        if let (Some(name), false) = (only, found) {
            report.refused.push(format!("{name}: no component in {} is this projection", self.dir.display()));
        }
        Ok(report)
    }

    /// Returns a projection to the build it ran before its last swap.
    pub fn rollback(&self, name: &str) -> Result<String> {
        let _one_at_a_time = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        let slot = self.slot(name)?;
        let current = slot.current().0.manifest.version.clone();
        let previous = slot.rollback()?;
        tracing::info!(projection = name, from = %current, to = %previous.manifest.version, "rolled back");
        Ok(format!("{name}: {current} -> {} (rolled back)", previous.manifest.version))
    }

    /// How long each lane paused to take up a new build, over every swap so far.
    pub fn stalls(&self) -> Vec<std::time::Duration> {
        self.slots.iter().flat_map(|s| s.stalls()).collect()
    }

    pub fn status(&self) -> Vec<SlotStatus> {
        self.slots
            .iter()
            .map(|slot| {
                let (plugin, swaps) = slot.current();
                SlotStatus {
                    name: slot.name().to_owned(),
                    version: plugin.manifest.version.clone(),
                    file: plugin.file.display().to_string(),
                    previous: slot.previous().map(|p| p.manifest.version.clone()),
                    swaps,
                    quarantined: slot.quarantined(),
                }
            })
            .collect()
    }
}
