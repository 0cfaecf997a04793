//! One lane: takes batches from its queue, asks the handler, retries what may
//! pass, parks what cannot, and commits each batch's mutations, guards, parked
//! events and checkpoint in one transaction.

use std::collections::HashMap;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::{batch, LaneItem, LaneSettings, Progress};
use crate::checkpoint::Tracker;
use crate::outcome::Outcome;
use crate::parking::{ParkMode, Parked};
use crate::source::settle::{Settled, Settlement};
use crate::plugins::{ProjectionInstance, ProjectionPlugin, Slot};
use crate::sink::{Applied, Commit, ProjectionState, Sink, SinkError};
use crate::Event;

/// The longest wait between tries of a sink that is unavailable.
pub const SINK_BACKOFF_CAP: Duration = Duration::from_secs(5);

pub struct Lane {
    index: usize,
    settings: LaneSettings,
    slot: Arc<Slot>,
    /// The build this lane runs, its generation in the slot, and its instance.
    plugin: Arc<ProjectionPlugin>,
    generation: u64,
    instance: ProjectionInstance,
    sink: Arc<dyn Sink>,
    tracker: Arc<Mutex<Tracker>>,
    progress: Arc<Progress>,
    /// Events at or below this position may have been applied before a restart.
    high_water: u64,
    /// Guards read for keys met in that zone.
    guards: HashMap<String, Option<u64>>,
    /// Keys with a parked event -> that event's position.
    blocked: HashMap<String, u64>,
}

/// Keys whose guard a lane keeps in memory at most; past it the cache starts over.
pub const GUARD_CACHE_LIMIT: usize = 65_536;

/// What the lane decided for one event, and after how many tries.
struct Decision {
    outcome: Outcome,
    attempts: u32,
    behind: Option<u64>,
}

impl Lane {
    pub fn new(
        index: usize,
        settings: &LaneSettings,
        slot: Arc<Slot>,
        sink: Arc<dyn Sink>,
        tracker: Arc<Mutex<Tracker>>,
        state: &ProjectionState,
        progress: Arc<Progress>,
    ) -> Result<Self> {
        let (plugin, generation) = slot.current();
        let instance = plugin.instantiate(settings.call_deadline)?;
        let blocked = state
            .blocked_keys
            .iter()
            .filter(|(key, _)| super::lane_of(key, settings.lanes) == index)
            .map(|(k, p)| (k.clone(), *p))
            .collect();
        Ok(Self {
            index,
            settings: settings.clone(),
            slot,
            plugin,
            generation,
            instance,
            sink,
            tracker,
            progress,
            // Under a persistent subscription another host may have applied
            // events of a key since this one started: always ask the guards.
            high_water: if settings.settle.is_some() { u64::MAX } else { state.high_water },
            guards: HashMap::new(),
            blocked,
        })
    }

    pub fn run(mut self, rx: Receiver<LaneItem>) {
        while let Some(items) = batch::next(&rx, self.settings.batch_size, self.settings.batch_wait) {
            self.process(items);
        }
        tracing::debug!(projection = self.plugin.name(), lane = self.index, "lane finished");
    }

    /// Takes up the slot's build if it was swapped since this lane's last batch.
    fn take_up_swap(&mut self) {
        if self.slot.generation() == self.generation {
            return;
        }
        let started = Instant::now();
        let (plugin, generation) = self.slot.current();
        let ready = self.slot.take_ready(generation).map(Ok);
        match ready.unwrap_or_else(|| plugin.instantiate(self.settings.call_deadline)) {
            Ok(instance) => {
                tracing::info!(projection = plugin.name(), lane = self.index, from = %self.plugin.manifest.version, to = %plugin.manifest.version, "lane took up a new build");
                (self.plugin, self.instance) = (plugin, instance);
            }
            Err(e) => {
                tracing::error!(projection = plugin.name(), lane = self.index, version = %plugin.manifest.version, error = %format!("{e:#}"), "cannot instantiate the new build; this lane keeps the old one");
            }
        }
        self.generation = generation;
        self.slot.record_stall(started.elapsed());
    }

    fn process(&mut self, items: Vec<LaneItem>) {
        if self.slot.is_quarantined() {
            // Paused: these events are not handled, so the checkpoint stays before them.
            if let Some(first) = items.iter().map(|i| i.event.position).min() {
                self.tracker().hold(first);
            }
            return;
        }
        self.take_up_swap();
        let mut decisions = self.decide(&items);
        self.count_failures(&decisions);
        self.park_key_tails(&items, &mut decisions);
        let positions: Vec<u64> = items.iter().map(|i| i.event.position).collect();
        let checkpoint = self.tracker().checkpoint_with(&positions);
        let commit = self.commit_of(&items, &decisions, checkpoint);
        if let Err(rejected) = self.commit_until_available(&commit) {
            tracing::warn!(projection = self.plugin.name(), lane = self.index, error = %rejected, "sink refused a batch; applying its events one by one to find the cause");
            self.isolate(&items, &mut decisions, checkpoint);
        }
        self.tracker().completed(&positions);
        self.remember_guards(&items, &decisions);
        let parked = decisions.iter().filter(|d| matches!(d.outcome, Outcome::Park(_))).count();
        for (item, d) in items.iter().zip(&decisions) {
            if let (Outcome::Park(_), Some(key)) = (&d.outcome, &item.key) {
                if self.settings.park_mode == ParkMode::KeyTail {
                    self.blocked.entry(key.clone()).or_insert(item.event.position);
                }
            }
        }
        let skipped = decisions.iter().filter(|d| d.outcome == Outcome::Skip).count();
        self.progress.add(items.len(), parked, skipped);
        if let Some(settle) = &self.settings.settle {
            for (item, d) in items.iter().zip(&decisions) {
                let settlement = match &d.outcome {
                    Outcome::Park(reason) => Settlement::Parked(reason.clone()),
                    _ => Settlement::Done,
                };
                // A closed settler means the source is gone; the server delivers the event again.
                let _ = settle.send(Settled { position: item.event.position, settlement });
            }
        }
    }

    /// Tells the slot which events the plugin failed, and quarantines the
    /// projection when it keeps failing.
    fn count_failures(&self, decisions: &[Decision]) {
        for d in decisions.iter().filter(|d| d.attempts > 0) {
            let failure = match &d.outcome {
                Outcome::Park(why) => Some(why.as_str()),
                _ => None,
            };
            if let Some(reason) = self.slot.count(failure, self.settings.quarantine_after) {
                tracing::error!(projection = self.plugin.name(), reason = %reason, "projection quarantined: paused, its checkpoint held; deploy a fixed build (a running host swaps it in and resumes from the checkpoint)");
            }
        }
    }

    fn tracker(&self) -> std::sync::MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The outcome of each event before key tails are considered.
    fn decide(&mut self, items: &[LaneItem]) -> Vec<Decision> {
        let mut decisions: Vec<Decision> = Vec::with_capacity(items.len());
        let mut to_handle = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let outcome = match (&item.failure, &item.key) {
                (Some(failure), _) => Some(Outcome::Park(failure.clone())),
                (None, Some(key)) if self.already_applied(key, item.event.position) => Some(Outcome::Skip),
                _ => None,
            };
            if outcome.is_none() {
                to_handle.push(i);
            }
            decisions.push(Decision { outcome: outcome.unwrap_or(Outcome::Skip), attempts: 0, behind: None });
        }
        if to_handle.is_empty() {
            return decisions;
        }
        let events: Vec<Event> = to_handle.iter().map(|&i| items[i].event.clone()).collect();
        for (&i, outcome) in to_handle.iter().zip(self.handle(&events)) {
            decisions[i] = Decision { outcome, attempts: 1, behind: None };
        }
        for &i in &to_handle {
            if matches!(decisions[i].outcome, Outcome::Retry(_)) {
                decisions[i] = self.retry(&items[i].event);
            }
        }
        decisions
    }

    /// One handler call for the batch; after a trap, one call per event, so
    /// that only the event that traps fails.
    fn handle(&mut self, events: &[Event]) -> Vec<Outcome> {
        match self.instance.handle(events) {
            Ok(results) => results.into_iter().map(|r| Outcome::from_handler(r, &self.plugin.scope)).collect(),
            Err(_) if events.len() > 1 => events.iter().flat_map(|e| self.handle(std::slice::from_ref(e))).collect(),
            Err(trap) => vec![Outcome::Retry(format!("trap: {trap}"))],
        }
    }

    /// Tries a failing event again with backoff until it passes, fails for
    /// good, or runs out of attempts.
    fn retry(&mut self, event: &Event) -> Decision {
        let policy = self.settings.retry;
        let mut outcome = Outcome::Retry(String::new());
        let mut attempt = 1;
        while attempt < policy.attempts {
            attempt += 1;
            std::thread::sleep(policy.delay(attempt));
            outcome = self.handle(std::slice::from_ref(event)).remove(0);
            if !matches!(outcome, Outcome::Retry(_)) {
                return Decision { outcome, attempts: attempt, behind: None };
            }
        }
        let reason = match outcome {
            Outcome::Retry(reason) => reason,
            _ => "failed".into(),
        };
        tracing::warn!(projection = self.plugin.name(), stream = %event.stream, position = event.position, attempts = attempt, reason = %reason, "retries exhausted; parking");
        Decision { outcome: Outcome::Park(format!("{reason} (after {attempt} attempts)")), attempts: attempt, behind: None }
    }

    /// In key-tail mode, an event whose key has a parked event is parked behind it.
    fn park_key_tails(&self, items: &[LaneItem], decisions: &mut [Decision]) {
        if self.settings.park_mode != ParkMode::KeyTail {
            return;
        }
        let mut blocked_now: HashMap<&str, u64> = HashMap::new();
        for (item, d) in items.iter().zip(decisions.iter_mut()) {
            let Some(key) = item.key.as_deref() else { continue };
            let blocker = self.blocked.get(key).or(blocked_now.get(key)).copied();
            match (&d.outcome, blocker) {
                (Outcome::Skip, _) => {}
                (_, Some(first)) => {
                    d.outcome = Outcome::Park(format!("parked behind the event at position {first} with the same key"));
                    d.behind = Some(first);
                }
                (Outcome::Park(_), None) => {
                    blocked_now.insert(key, item.event.position);
                }
                _ => {}
            }
        }
    }

    /// Keeps the cached guards of committed keys current: a source that
    /// delivers again (a persistent subscription) asks about any position.
    fn remember_guards(&mut self, items: &[LaneItem], decisions: &[Decision]) {
        if self.guards.len() > GUARD_CACHE_LIMIT {
            // The sink holds every guard; the cache is only a shortcut.
            self.guards.clear();
        }
        for (item, d) in items.iter().zip(decisions) {
            if let (Outcome::Apply(_), Some(key)) = (&d.outcome, &item.key) {
                if let Some(guard) = self.guards.get_mut(key) {
                    *guard = Some(guard.map_or(item.event.position, |g| g.max(item.event.position)));
                }
            }
        }
    }

    fn already_applied(&mut self, key: &str, position: u64) -> bool {
        if position > self.high_water {
            return false;
        }
        if !self.guards.contains_key(key) {
            let guard = self.until_available(|sink| sink.guard(&self.plugin.manifest.name, key)).unwrap_or(None);
            self.guards.insert(key.to_owned(), guard);
        }
        self.guards[key].is_some_and(|applied| position <= applied)
    }

    fn commit_of<'a>(&'a self, items: &'a [LaneItem], decisions: &'a [Decision], checkpoint: u64) -> Commit<'a> {
        let mut commit = Commit { projection: self.plugin.name(), applied: Vec::new(), parked: Vec::new(), checkpoint };
        for (item, d) in items.iter().zip(decisions) {
            match &d.outcome {
                Outcome::Apply(mutations) => commit.applied.push(Applied {
                    key: item.key.as_deref().unwrap_or(&item.event.stream),
                    position: item.event.position,
                    mutations,
                }),
                Outcome::Park(error) => commit.parked.push(self.parked(item, d, error)),
                Outcome::Skip | Outcome::Retry(_) => {}
            }
        }
        commit
    }

    fn parked(&self, item: &LaneItem, d: &Decision, error: &str) -> Parked {
        let e = &item.event;
        let error = format!(
            "projection {} could not handle {} at stream {} revision {} (position {}): {error}",
            self.plugin.name(),
            e.event_type,
            e.stream,
            e.revision,
            e.position
        );
        Parked {
            key: item.key.clone().unwrap_or_else(|| e.stream.clone()),
            event: e.clone(),
            error,
            attempts: d.attempts,
            plugin_version: self.plugin.manifest.version.clone(),
            behind: d.behind,
        }
    }

    /// Commits; an unavailable sink is waited out, a rejection is returned.
    fn commit_until_available(&self, commit: &Commit) -> Result<(), SinkError> {
        self.until_available(|sink| match sink.commit(commit) {
            Err(SinkError::Rejected(e)) => Ok(Err(SinkError::Rejected(e))),
            other => other.map(Ok),
        })?
    }

    /// Runs `op` until the sink is available, backing off and saying so.
    fn until_available<R>(&self, op: impl Fn(&dyn Sink) -> Result<R, SinkError>) -> Result<R, SinkError> {
        let mut wait = Duration::from_millis(50);
        loop {
            match op(self.sink.as_ref()) {
                Err(SinkError::Unavailable(e)) => {
                    tracing::warn!(projection = self.plugin.name(), lane = self.index, error = %format!("{e:#}"), retry_in = ?wait, "sink unavailable; nothing is parked or lost, retrying");
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(SINK_BACKOFF_CAP);
                }
                other => return other,
            }
        }
    }

    /// The sink refused the batch: apply its events one at a time, park the
    /// ones it refuses (and their key tails), then commit the rest of the batch.
    fn isolate(&mut self, items: &[LaneItem], decisions: &mut [Decision], checkpoint: u64) {
        for i in 0..items.len() {
            self.park_key_tails(&items[..=i], &mut decisions[..=i]);
            let Outcome::Apply(_) = &decisions[i].outcome else { continue };
            let one = self.commit_of(&items[i..=i], &decisions[i..=i], 0);
            if let Err(e) = self.commit_until_available(&one) {
                decisions[i].outcome = Outcome::Park(e.to_string());
                decisions[i].attempts = decisions[i].attempts.max(1);
            }
        }
        let mut rest = self.commit_of(items, decisions, checkpoint);
        rest.applied.clear();
        if let Err(e) = self.commit_until_available(&rest) {
            tracing::error!(projection = self.plugin.name(), lane = self.index, error = %e, "sink refused to record parked events; they will be re-delivered after a restart");
        }
    }
}
