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
//! A reload also starts the projections of components new to the directory
//! and stops those whose component is gone ([`crate::supervisor`]); while a
//! component in the directory fails to load, none is stopped, since it may
//! be the new build of one.
//!
//! Reloads come from the admin endpoint (`projector plugins reload`; who may
//! use it: [`crate::admin::access`]) or from the watcher, which polls the
//! plugins directory.

mod watch;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use serde::Serialize;

pub use watch::{Watcher, WATCH_INTERVAL};

use crate::plugins::{check_sharing, claims, needed_by, KeepsFailing, Plugins, ProjectionPlugin, Slot, UpcasterChain, UpcasterPlugin, UpcasterSet};
use crate::runtime::limits::DEFAULT_CALL_DEADLINE;
use crate::sink::Sink;
use crate::supervisor::{Change, Roster, CHANGE_WAIT};

/// What a reload did, projection by projection.
#[derive(Debug, Default, Serialize)]
pub struct ReloadReport {
    /// `name: old -> new`
    pub swapped: Vec<String>,
    /// Projections new to the directory, started beside the others.
    pub started: Vec<String>,
    /// Projections whose component is gone, stopped with their read models kept.
    pub stopped: Vec<String>,
    /// Projections whose upcaster chain changed, taken up at their next read.
    pub upcasters: Vec<String>,
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
    roster: Arc<Roster>,
    upcasters: Arc<UpcasterSet>,
    sink: Arc<dyn Sink>,
    /// Where projections to start or stop are asked for.
    supervisor: Mutex<Sender<Change>>,
    /// One reload at a time.
    busy: Mutex<()>,
}

impl Swapper {
    pub fn new(dir: &Path, cache: &Path, roster: Arc<Roster>, upcasters: Arc<UpcasterSet>, sink: Arc<dyn Sink>, supervisor: Sender<Change>) -> Self {
        Self { dir: dir.to_owned(), cache: cache.to_owned(), roster, upcasters, sink, supervisor: Mutex::new(supervisor), busy: Mutex::new(()) }
    }

    fn slot(&self, name: &str) -> Result<Arc<Slot>> {
        match self.roster.find(name) {
            Some(member) => Ok(member.slot),
            None => bail!("no running projection is named `{name}` (running: {})", self.roster.names().join(", ")),
        }
    }

    /// Whether `new` writes no label another running projection owns (and
    /// keeps sharing what they share).
    fn shares_fairly(&self, new: &ProjectionPlugin) -> Result<()> {
        let others: Vec<_> = self.roster.members().iter().filter(|m| m.name() != new.name()).map(|m| m.slot.current().0).collect();
        check_sharing(others.iter().map(|p| &p.manifest).chain([&new.manifest])).map_err(anyhow::Error::msg)
    }

    /// Asks the supervisor for a change and waits for its answer.
    fn ask(&self, change: impl FnOnce(Sender<Result<String, String>>) -> Change) -> Result<String, String> {
        let (answer, answered) = channel();
        let sent = self.supervisor.lock().unwrap_or_else(|p| p.into_inner()).send(change(answer));
        if sent.is_err() {
            return Err("the host is not running its projections (it is stopping, or has not started them)".into());
        }
        answered.recv_timeout(CHANGE_WAIT).unwrap_or_else(|_| Err(format!("no answer from the host within {CHANGE_WAIT:?}; see its log")))
    }

    /// Loads the plugins directory again and swaps in every changed build of a
    /// running projection (only `only`'s, if given).
    pub fn reload(&self, only: Option<&str>) -> Result<ReloadReport> {
        let _one_at_a_time = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        let files = crate::plugins::component_files(&self.dir)?;
        let mut report = ReloadReport::default();
        let mut found = false;
        // Every component's projections first, and whether one failed to load.
        let (mut loaded, mut upcasters) = (Vec::new(), Vec::new());
        let mut unreadable = false;
        for file in files {
            match Plugins::load_files(std::slice::from_ref(&file), &self.cache) {
                Ok(plugins) => {
                    loaded.extend(plugins.projections.into_iter().map(|p| (file.clone(), p)));
                    upcasters.extend(plugins.upcasters);
                }
                Err(e) => {
                    unreadable = true;
                    report.refused.push(format!("{}: {e:#}", file.display()));
                }
            }
        }
        // The upcasters first: a projection started or swapped in below reads with the set in effect.
        match (only, unreadable) {
            (None, false) => self.change_upcasters(upcasters, &mut report),
            (Some(_), _) => self.keep_upcasters(&upcasters, "a reload of one projection leaves them as they are: reload the whole directory", &mut report),
            (None, true) => self.keep_upcasters(&upcasters, "a component failed to load, and may be one of them", &mut report),
        }
        // Those gone stop before any starts: a build renamed is a projection
        // stopped and another started, and the new one may write its labels.
        let present: Vec<&str> = loaded.iter().map(|(_, p)| p.name()).collect();
        let gone: Vec<String> = self.roster.names().into_iter().filter(|n| !present.contains(&n.as_str()) && only.is_none_or(|o| o == n)).collect();
        for name in gone {
            found = true;
            if unreadable {
                report.refused.push(format!("{name}: not stopped, though no component in {} is it: a component there failed to load, and may be its build", self.dir.display()));
                continue;
            }
            match self.ask(|answer| Change::Remove(name.clone(), answer)) {
                Ok(said) => report.stopped.push(said),
                Err(why) => report.refused.push(why),
            }
        }
        for (file, new) in loaded {
            let name = new.name().to_owned();
            if only.is_some_and(|o| o != name) {
                continue;
            }
            found = true;
            let Ok(slot) = self.slot(&name) else {
                self.start(new, &file, &mut report);
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
        if let (Some(name), false) = (only, found) {
            report.refused.push(format!(
                "{name}: no component in {} is this projection, and no running projection is named `{name}` (running: {})",
                self.dir.display(),
                self.roster.names().join(", ")
            ));
        }
        Ok(report)
    }

    /// Says that the upcasters in the directory differ from those in effect, and why they stay.
    fn keep_upcasters(&self, found: &[Arc<UpcasterPlugin>], why: &str, report: &mut ReloadReport) {
        if digests(&self.upcasters.current().1) != digests(found) {
            report.unchanged.push(format!("upcasters: the directory's differ from those in effect, which stay: {why}"));
        }
    }

    /// Puts a changed set of upcasters in effect, once every running
    /// projection's chain can be made of it; otherwise the set in effect stays.
    fn change_upcasters(&self, new: Vec<Arc<UpcasterPlugin>>, report: &mut ReloadReport) {
        let (_, old) = self.upcasters.current();
        if digests(&old) == digests(&new) {
            return;
        }
        let members = self.roster.members();
        let checked = claims(&new).map(drop).and_then(|()| {
            members.iter().try_for_each(|m| {
                let plugin = m.slot.current().0;
                UpcasterChain::new(&needed_by(&plugin, &new), &new, DEFAULT_CALL_DEADLINE, KeepsFailing::NEVER)
                    .map(drop)
                    .with_context(|| format!("projection {}'s chain", plugin.name()))
            })
        });
        if let Err(e) = checked {
            tracing::warn!(error = %format!("{e:#}"), "the upcasters in the plugins directory were refused; the ones in effect stay");
            report.refused.push(format!("upcasters: {e:#}; the ones in effect stay"));
            return;
        }
        let names = |set: &[Arc<UpcasterPlugin>]| {
            let names: Vec<String> = set.iter().map(|u| format!("{} {}", u.manifest.name, u.manifest.version)).collect();
            if names.is_empty() { "none".to_owned() } else { names.join(", ") }
        };
        for m in &members {
            let plugin = m.slot.current().0;
            let (before, after) = (needed_by(&plugin, &old), needed_by(&plugin, &new));
            if digests(&before) != digests(&after) {
                report.upcasters.push(format!(
                    "{}: {} -> {}, from its next read; the events before were upcast by the former chain (rebuild the read model if the change alters what it sees)",
                    plugin.name(),
                    names(&before),
                    names(&after)
                ));
            }
        }
        tracing::info!(from = %names(&old), to = %names(&new), "the upcasters changed; each projection takes up its new chain before its next read");
        self.upcasters.replace(new);
    }

    /// Starts the projection of a component new to the directory.
    fn start(&self, new: Arc<ProjectionPlugin>, file: &Path, report: &mut ReloadReport) {
        let name = new.name().to_owned();
        match self.shares_fairly(&new).map_err(|e| format!("{name}: {e:#}")).and_then(|()| self.ask(|answer| Change::Add(new, answer))) {
            Ok(said) => {
                tracing::info!(projection = %name, file = %file.display(), "started a projection new to the plugins directory");
                report.started.push(said);
            }
            Err(why) => {
                tracing::warn!(projection = %name, file = %file.display(), error = %why, "a projection new to the plugins directory was not started");
                report.refused.push(why);
            }
        }
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
        self.roster.members().iter().flat_map(|m| m.slot.stalls()).collect()
    }

    pub fn status(&self) -> Vec<SlotStatus> {
        self.roster
            .members()
            .iter()
            .map(|member| {
                let slot = &member.slot;
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

/// What tells two sets of upcasters apart: their components' digests, in order.
fn digests(set: &[Arc<UpcasterPlugin>]) -> Vec<Vec<u8>> {
    set.iter().map(|u| u.digest.clone()).collect()
}
