//! A projection's slot: the build its lanes run now, and the one before it.
//! A swap puts a new build in the slot; each lane picks it up at its next batch
//! boundary, so every batch (and every event) is handled by exactly one build.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::{ProjectionInstance, ProjectionPlugin};

pub struct Slot {
    name: String,
    /// (current, previous)
    builds: Mutex<(Arc<ProjectionPlugin>, Option<Arc<ProjectionPlugin>>)>,
    /// The digest of the build last rolled back from: a reload does not take it up again.
    declined: Mutex<Option<Vec<u8>>>,
    /// Bumped by every swap; a lane compares it with the one it runs.
    generation: AtomicU64,
    /// How long lanes paused to take up a new build, for `just bench`.
    stalls: Mutex<Vec<Duration>>,
    /// Events the plugin failed in a row, over all lanes, and since when.
    failures_in_a_row: AtomicU32,
    failing_since: Mutex<Option<Instant>>,
    /// Why the projection is quarantined, once it is.
    quarantine: Mutex<Option<String>>,
    /// Whether it is, read per batch and per event without a lock.
    paused: AtomicBool,
    /// Set when a new build is swapped into a quarantined slot: the router
    /// restarts the projection's lanes from its held checkpoint.
    resume: AtomicBool,
    /// Whether the quarantine is its upcasters' doing.
    by_upcasters: AtomicBool,
    /// How many workers run the build, and their call deadline: a swap makes
    /// that many instances of the new build before it bumps the generation.
    workers: usize,
    deadline: Duration,
    /// Instances of the current build made by the swap, for lanes to take up
    /// without instantiating on their own thread: (generation, instances).
    ready: Mutex<(u64, Vec<ProjectionInstance>)>,
}

impl Slot {
    pub fn new(plugin: Arc<ProjectionPlugin>, workers: usize, deadline: Duration) -> Self {
        Self {
            name: plugin.name().to_owned(),
            builds: Mutex::new((plugin, None)),
            declined: Mutex::new(None),
            generation: AtomicU64::new(0),
            stalls: Mutex::new(Vec::new()),
            failures_in_a_row: AtomicU32::new(0),
            failing_since: Mutex::new(None),
            quarantine: Mutex::new(None),
            paused: AtomicBool::new(false),
            resume: AtomicBool::new(false),
            by_upcasters: AtomicBool::new(false),
            workers,
            deadline,
            ready: Mutex::new((0, Vec::new())),
        }
    }

    /// An instance of the build of `generation` made ready by the swap, if one is left.
    pub fn take_ready(&self, generation: u64) -> Option<ProjectionInstance> {
        let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        if ready.0 == generation {
            ready.1.pop()
        } else {
            None
        }
    }

    /// Makes one instance per worker of `build`, off the workers' threads.
    fn instances(&self, build: &ProjectionPlugin) -> Result<Vec<ProjectionInstance>> {
        (0..self.workers).map(|_| build.instantiate(self.deadline)).collect()
    }

    fn bump(&self, ready: Vec<ProjectionInstance>) {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        *self.ready.lock().unwrap_or_else(|p| p.into_inner()) = (generation, ready);
        if self.is_quarantined() {
            self.resume.store(true, Ordering::Release);
        }
    }

    /// Whether a new build came for the quarantined projection.
    pub fn resume_pending(&self) -> bool {
        self.resume.load(Ordering::Acquire)
    }

    /// Lifts the quarantine after a new build came; the caller restarts the
    /// projection's lanes. Returns whether there was one to lift.
    pub fn take_resume(&self) -> bool {
        if !self.resume.swap(false, Ordering::AcqRel) {
            return false;
        }
        *self.quarantine.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.paused.store(false, Ordering::Release);
        self.by_upcasters.store(false, Ordering::Release);
        self.failures_in_a_row.store(0, Ordering::Relaxed);
        *self.failing_since.lock().unwrap_or_else(|p| p.into_inner()) = None;
        true
    }

    /// Counts one event the plugin handled: `failure` is why it failed, if it
    /// did. The `limit`-th failure in a row quarantines the projection; returns
    /// the reason when this call did (0: never).
    pub fn count(&self, failure: Option<&str>, limit: u32) -> Option<String> {
        let Some(failure) = failure else {
            self.failures_in_a_row.store(0, Ordering::Relaxed);
            return None;
        };
        let in_a_row = self.failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
        if limit == 0 || in_a_row < limit {
            return None;
        }
        self.quarantine(format!("failed {in_a_row} events in a row; the last: {failure}"))
    }

    /// Notes how one call into the plugin ended: `failure` is why it failed
    /// (a trap, or every event of it failing). A failure after `failing_for`
    /// of nothing but failed calls quarantines the projection, however few
    /// events that was (a plugin whose calls run to their deadline fails
    /// slowly); returns the reason when this call did (zero: never).
    pub fn call_ended(&self, failure: Option<&str>, failing_for: Duration) -> Option<String> {
        let mut since = self.failing_since.lock().unwrap_or_else(|p| p.into_inner());
        let Some(failure) = failure else {
            *since = None;
            return None;
        };
        let failing = since.get_or_insert_with(Instant::now).elapsed();
        drop(since);
        if failing_for.is_zero() || failing < failing_for {
            return None;
        }
        self.quarantine(format!("failed every call for {:.1} s; the last: {failure}", failing.as_secs_f64()))
    }

    /// Quarantines the projection because its build failed (`why`), unless it is already.
    fn quarantine(&self, why: String) -> Option<String> {
        let version = self.current().0.manifest.version.clone();
        self.pause(format!("version {version} {why}"))
    }

    /// Quarantines the projection because its upcasters keep failing (`why`,
    /// with the last failure), unless it is already; returns the reason when
    /// this call did. A new build of the projection resumes it, and so does
    /// a changed upcaster chain ([`Slot::resume_for_upcasters`]).
    pub fn quarantine_upcasting(&self, why: String) -> Option<String> {
        let paused = self.pause(why);
        if paused.is_some() {
            self.by_upcasters.store(true, Ordering::Release);
        }
        paused
    }

    /// A new upcaster chain came: a projection its upcasters quarantined
    /// resumes from its checkpoint (one its handler quarantined waits for a
    /// new build). Returns whether it will.
    pub fn resume_for_upcasters(&self) -> bool {
        let by_upcasters = self.is_quarantined() && self.by_upcasters.load(Ordering::Acquire);
        if by_upcasters {
            self.resume.store(true, Ordering::Release);
        }
        by_upcasters
    }

    fn pause(&self, reason: String) -> Option<String> {
        let mut quarantine = self.quarantine.lock().unwrap_or_else(|p| p.into_inner());
        if quarantine.is_some() {
            return None;
        }
        *quarantine = Some(reason.clone());
        self.paused.store(true, Ordering::Release);
        Some(reason)
    }

    /// Whether the projection is quarantined: the cheap question lanes and the router ask.
    pub fn is_quarantined(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Why the projection is quarantined, if it is.
    pub fn quarantined(&self) -> Option<String> {
        self.quarantine.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn builds(&self) -> std::sync::MutexGuard<'_, (Arc<ProjectionPlugin>, Option<Arc<ProjectionPlugin>>)> {
        self.builds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The build to run, with its generation.
    pub fn current(&self) -> (Arc<ProjectionPlugin>, u64) {
        let builds = self.builds();
        (builds.0.clone(), self.generation.load(Ordering::Acquire))
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn previous(&self) -> Option<Arc<ProjectionPlugin>> {
        self.builds().1.clone()
    }

    /// Puts `new` in the slot if it can replace the current build without a rebuild.
    pub fn swap(&self, new: Arc<ProjectionPlugin>) -> Result<()> {
        compatible(&self.current().0, &new)?;
        let ready = self.instances(&new)?;
        let mut builds = self.builds();
        compatible(&builds.0, &new)?;
        let old = std::mem::replace(&mut builds.0, new);
        builds.1 = Some(old);
        *self.declined.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.bump(ready);
        Ok(())
    }

    /// Returns to the build before the last swap.
    pub fn rollback(&self) -> Result<Arc<ProjectionPlugin>> {
        let Some(previous) = self.previous() else {
            bail!("projection {} has no previous build to roll back to", self.name);
        };
        let ready = self.instances(&previous)?;
        let mut builds = self.builds();
        if !builds.1.as_ref().is_some_and(|p| Arc::ptr_eq(p, &previous)) {
            bail!("projection {} was swapped while rolling back; try again", self.name);
        }
        builds.1 = None;
        let current = std::mem::replace(&mut builds.0, previous.clone());
        *self.declined.lock().unwrap_or_else(|p| p.into_inner()) = Some(current.digest.clone());
        builds.1 = Some(current);
        self.bump(ready);
        Ok(previous)
    }

    /// Whether `digest` is the build last rolled back from.
    pub fn declined(&self, digest: &[u8]) -> bool {
        self.declined.lock().unwrap_or_else(|p| p.into_inner()).as_deref() == Some(digest)
    }

    pub fn record_stall(&self, stall: Duration) {
        self.stalls.lock().unwrap_or_else(|p| p.into_inner()).push(stall);
    }

    /// Every lane's pause to take up a new build, since the start.
    pub fn stalls(&self) -> Vec<Duration> {
        self.stalls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Whether `new` may take over from `old` while events flow: the same
/// projection, the same read-model version (else its read model needs a
/// rebuild), and the same subscription and partition key (which the router
/// and the lanes were set up with).
pub fn compatible(old: &ProjectionPlugin, new: &ProjectionPlugin) -> Result<()> {
    let (o, n) = (&old.manifest, &new.manifest);
    if o.name != n.name {
        bail!("{} is projection `{}`, not `{}`", new.file.display(), n.name, o.name);
    }
    if o.read_model_version != n.read_model_version {
        bail!(
            "projection {}: version {} declares read-model version {}, but the running version {} built read-model version {}; \
             the read model needs a rebuild (project into an empty sink), so the running version stays",
            n.name,
            n.version,
            n.read_model_version,
            o.version,
            o.read_model_version
        );
    }
    if o.event_types != n.event_types || o.stream_prefixes != n.stream_prefixes || o.partition_key != n.partition_key {
        bail!(
            "projection {}: version {} changes its subscription or partition key; that takes a restart, so the running version {} stays",
            n.name,
            n.version,
            o.version
        );
    }
    for (label, key) in &new.scope.labels {
        if let Some(old_key) = old.scope.labels.get(label).filter(|k| *k != key) {
            bail!("projection {}: version {} keys label `{label}` by `{key}` instead of `{old_key}`; that needs a rebuild", n.name, n.version);
        }
    }
    Ok(())
}
