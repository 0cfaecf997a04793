//! One worker: takes a batch from the board (the events of the lanes it checks
//! out), asks the handler, parks what cannot pass, sets aside what may pass
//! later beside its key, and commits the batch's mutations, guards, parked
//! events and checkpoint in one transaction. A key that waits for a retry
//! never holds up another key: the worker moves on at once.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::board::{Batch, Board, Entry, Keys, Waiting};
use super::retry::DEADLINE_TRIES;
use super::{LaneSettings, Progress};
use crate::checkpoint::Tracker;
use crate::metrics::{Meter, Seconds};
use crate::outcome::Outcome;
use crate::parking::{ParkMode, Parked};
use crate::plugins::{ProjectionInstance, ProjectionPlugin, Slot};
use crate::sink::{Applied, Commit, Identity, ProjectionState, Sink, SinkError};
use crate::source::settle::{Settled, Settlement};
use crate::Event;

/// The longest wait between tries of a sink that is unavailable.
pub const SINK_BACKOFF_CAP: Duration = Duration::from_secs(5);

/// Keys whose guard a lane keeps in memory at most; past it the cache starts over.
pub const GUARD_CACHE_LIMIT: usize = 65_536;

pub struct Worker {
    index: usize,
    /// How many workers the projection has; this one runs lanes `index, index + workers, ...`.
    workers: usize,
    settings: LaneSettings,
    slot: Arc<Slot>,
    /// The build this worker runs, its generation in the slot, and its instance.
    plugin: Arc<ProjectionPlugin>,
    generation: u64,
    instance: ProjectionInstance,
    sink: Arc<dyn Sink>,
    tracker: Arc<Mutex<Tracker>>,
    progress: Arc<Progress>,
    board: Arc<Board>,
    /// Events at or below this position may have been applied before a restart.
    high_water: u64,
    /// The projection's instruments, and this worker's busy time among them.
    meter: Meter,
    busy: Seconds,
}

/// What the worker decided for one event.
struct Decision {
    /// `Retry`: the event waits beside its key for another try.
    outcome: Outcome,
    /// Handler calls it has had, all batches counted.
    attempts: u32,
    behind: Option<u64>,
    /// For the event that failed for now: when its key is tried again.
    due: Option<Instant>,
}

impl Decision {
    fn of(outcome: Outcome) -> Self {
        Self { outcome, attempts: 0, behind: None, due: None }
    }

    fn waits(&self) -> bool {
        matches!(self.outcome, Outcome::Retry(_))
    }
}

/// What is known of an event before any handler call.
enum Early {
    /// Applied before (a re-delivery).
    Skip,
    /// An earlier event of its key is parked.
    Blocked,
    /// It failed before the lane (upcast, partition key).
    Failed(String),
}

/// One handler answer, whether the call ran past its deadline, and whether
/// the handler was called at all (not once its projection was quarantined).
struct Tried {
    outcome: Outcome,
    timed_out: bool,
    called: bool,
}

/// How a commit ended.
enum Committed {
    Yes,
    Rejected(SinkError),
    /// The sink was unavailable and the host is stopping: nothing was written.
    Abandoned,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: usize,
        settings: &LaneSettings,
        slot: Arc<Slot>,
        sink: Arc<dyn Sink>,
        tracker: Arc<Mutex<Tracker>>,
        state: &ProjectionState,
        progress: Arc<Progress>,
        board: Arc<Board>,
    ) -> Result<Self> {
        let (plugin, generation) = slot.current();
        let instance = plugin.instantiate(settings.call_deadline)?;
        let meter = settings.vitals.meter.clone();
        Ok(Self {
            busy: meter.worker_busy(index),
            meter,
            index,
            workers: settings.workers.clamp(1, settings.lanes.max(1)),
            settings: settings.clone(),
            slot,
            plugin,
            generation,
            instance,
            sink,
            tracker,
            progress,
            board,
            // Under a persistent subscription another host may have applied
            // events of a key since this one started: always ask the guards.
            high_water: if settings.settle.is_some() { u64::MAX } else { state.high_water },
        })
    }

    pub fn run(mut self) {
        while let Some(mut batch) = self.board.take(self.index, self.workers) {
            let (before, started, size) = (batch.bytes(), Instant::now(), batch.entries.len());
            let finished = self.process(&mut batch);
            let took = started.elapsed().as_secs_f64();
            self.busy.inc_by(took);
            self.meter.batch_seconds.observe(took);
            self.meter.batch_events.observe(size as f64);
            // What left: the events not set aside to wait again (those left in
            // `entries` on an early return are given up too).
            batch.entries.clear();
            let left = before - batch.bytes();
            self.board.hand_back(std::mem::take(&mut batch.lanes), finished, left);
        }
        tracing::debug!(projection = self.plugin.name(), worker = self.index, "worker finished");
    }

    /// Takes up the slot's build if it was swapped since this worker's last batch.
    fn take_up_swap(&mut self) {
        if self.slot.generation() == self.generation {
            return;
        }
        let started = Instant::now();
        let (plugin, generation) = self.slot.current();
        let ready = self.slot.take_ready(generation).map(Ok);
        match ready.unwrap_or_else(|| plugin.instantiate(self.settings.call_deadline)) {
            Ok(instance) => {
                tracing::info!(projection = plugin.name(), worker = self.index, from = %self.plugin.manifest.version, to = %plugin.manifest.version, "worker took up a new build");
                (self.plugin, self.instance) = (plugin, instance);
            }
            Err(e) => {
                tracing::error!(projection = plugin.name(), worker = self.index, version = %plugin.manifest.version, error = %format!("{e:#}"), "cannot instantiate the new build; this worker keeps the old one");
            }
        }
        self.generation = generation;
        self.slot.record_stall(started.elapsed());
    }

    /// Handles and commits one batch; returns how many of its events left the
    /// board (the others wait beside their keys).
    fn process(&mut self, batch: &mut Batch) -> usize {
        let mut dropped = 0;
        if self.slot.is_quarantined() {
            dropped = self.pause(batch);
            if batch.entries.is_empty() {
                return dropped;
            }
        }
        self.take_up_swap();
        let mut decisions = self.decide(batch);
        self.count_failures(&decisions);
        let positions: Vec<u64> = self.done(batch, &decisions).map(|(e, _)| e.item.event.position).collect();
        let checkpoint = self.tracker().checkpoint_with(&positions);
        let commit = self.commit_of(batch, &decisions, checkpoint);
        let committed = match self.commit_until_available(&commit) {
            Committed::Rejected(rejected) => {
                tracing::warn!(projection = self.plugin.name(), worker = self.index, error = %rejected, "sink refused a batch; applying its events one by one to find the cause");
                self.isolate(batch, &mut decisions, checkpoint)
            }
            other => other,
        };
        match committed {
            Committed::Yes => self.tracker().completed(&positions),
            Committed::Abandoned => {
                if self.settings.lease.as_ref().is_none_or(|l| l.lost().is_none()) {
                    tracing::warn!(projection = self.plugin.name(), worker = self.index, events = batch.entries.len(), "stopping while the sink is unavailable: this batch is not committed and is delivered again at the next start");
                }
                self.board.abandon();
                self.not_taken(batch.entries.iter());
                return dropped + batch.entries.len();
            }
            Committed::Rejected(e) => {
                // Neither applied nor parked: the checkpoint must never pass them.
                if let Some(first) = positions.iter().min() {
                    self.tracker().hold(*first);
                }
                tracing::error!(projection = self.plugin.name(), worker = self.index, error = %e, "sink refused to record parked events; the checkpoint is held before them, so they are delivered again at the next start");
                // Their parked records were not written: nothing is reported parked.
                self.not_taken(self.done(batch, &decisions).map(|(e, _)| e));
                let finished = positions.len();
                self.wait_again(batch, decisions);
                return dropped + finished;
            }
        }
        self.after_commit(batch, &decisions);
        let finished = positions.len();
        self.wait_again(batch, decisions);
        dropped + finished
    }

    /// The projection is paused: its events are not handled, so the
    /// checkpoint stays before them, and they are delivered again at the next
    /// start. Only the events that failed before the lane (an upcast) stay in
    /// the batch, to be parked: they need no plugin, and the quarantine may be
    /// theirs. A key with an event dropped keeps its later ones in order: they
    /// are dropped too. Returns how many were dropped.
    fn pause(&mut self, batch: &mut Batch) -> usize {
        let mut kept = Vec::new();
        let mut dropped = Vec::new();
        for entry in std::mem::take(&mut batch.entries) {
            let key = entry.key().to_owned();
            let keys = batch.keys(entry.lane);
            if entry.item.failure.is_some() && !keys.dropped.contains(&key) {
                kept.push(entry);
            } else {
                keys.dropped.insert(key);
                dropped.push(entry);
            }
        }
        if let Some(first) = dropped.iter().map(|e| e.item.event.position).min() {
            self.tracker().hold(first);
        }
        self.not_taken(dropped.iter());
        batch.entries = kept;
        dropped.len()
    }

    /// The events of a batch that are done with (not waiting), with their decisions.
    fn done<'a>(&self, batch: &'a Batch, decisions: &'a [Decision]) -> impl Iterator<Item = (&'a Entry, &'a Decision)> {
        batch.entries.iter().zip(decisions).filter(|(_, d)| !d.waits())
    }

    /// Tells a settling source that these events were not handled here.
    fn not_taken<'a>(&self, entries: impl Iterator<Item = &'a Entry>) {
        if let Some(settle) = &self.settings.settle {
            for entry in entries {
                let _ = settle.send(Settled { position: entry.item.event.position, settlement: Settlement::NotTaken });
            }
        }
    }

    /// Guards, counts and settlements of what was committed.
    fn after_commit(&mut self, batch: &mut Batch, decisions: &[Decision]) {
        let (mut handled, mut parked, mut skipped) = (0, 0, 0);
        for (i, d) in decisions.iter().enumerate() {
            if d.waits() {
                continue;
            }
            handled += 1;
            let entry = &batch.entries[i];
            let (lane, key) = (entry.lane, entry.item.key.clone());
            let id = Identity { position: entry.item.event.position, part: entry.item.part };
            match &d.outcome {
                Outcome::Park(_) => parked += 1,
                Outcome::Skip => skipped += 1,
                Outcome::Apply(_) => {
                    // A source that delivers again (a persistent subscription) asks about any position.
                    let keys = batch.keys(lane);
                    if let Some(guard) = key.and_then(|k| keys.guards.get_mut(&k)) {
                        *guard = Some(guard.map_or(id, |g| g.max(id)));
                    }
                }
                Outcome::Retry(_) => {}
            }
        }
        self.progress.add(handled, parked, skipped);
        let m = &self.meter;
        for (counter, n) in [(&m.handled, handled), (&m.parked, parked), (&m.skipped, skipped), (&m.applied, handled - parked - skipped)] {
            // Most batches park and skip nothing: no write to a line the other workers share.
            if n > 0 {
                counter.inc_by(n as u64);
            }
        }
        if let Some(settle) = &self.settings.settle {
            for (entry, d) in self.done(batch, decisions) {
                let settlement = match &d.outcome {
                    Outcome::Park(reason) => Settlement::Parked(reason.clone()),
                    _ => Settlement::Done,
                };
                // A closed settler means the source is gone; the server delivers the event again.
                let _ = settle.send(Settled { position: entry.item.event.position, settlement });
            }
        }
    }

    /// Puts the events that wait for another try back beside their keys, in
    /// order, ahead of any that joined the key while it was out.
    fn wait_again(&self, batch: &mut Batch, decisions: Vec<Decision>) {
        let mut back: Vec<(Entry, Option<Instant>)> = Vec::new();
        for (entry, d) in std::mem::take(&mut batch.entries).into_iter().zip(decisions) {
            if d.waits() {
                back.push((entry, d.due));
            }
        }
        for (entry, due) in back.into_iter().rev() {
            let key = entry.key().to_owned();
            let keys = batch.keys(entry.lane);
            let waiting = keys.waiting.entry(key).or_insert_with(|| Waiting { due: Instant::now(), entries: VecDeque::new() });
            if let Some(due) = due {
                waiting.due = due;
            }
            waiting.entries.push_front(entry);
        }
    }

    /// Tells the slot which events the plugin failed, and quarantines the
    /// projection when it keeps failing.
    fn count_failures(&self, decisions: &[Decision]) {
        for d in decisions.iter().filter(|d| d.attempts > 0 && !d.waits()) {
            let failure = match &d.outcome {
                Outcome::Park(why) => Some(why.as_str()),
                _ => None,
            };
            if let Some(reason) = self.slot.count(failure, self.settings.quarantine_after) {
                self.quarantined(&reason);
            }
        }
    }

    fn quarantined(&self, reason: &str) {
        tracing::error!(projection = self.plugin.name(), reason = %reason, "projection quarantined: paused, its checkpoint held; deploy a fixed build (a running host swaps it in and resumes from the checkpoint)");
    }

    fn tracker(&self) -> std::sync::MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tail_mode(&self) -> bool {
        self.settings.park_mode == ParkMode::KeyTail
    }

    /// What becomes of each event: parked at once (a failure before the lane,
    /// or behind a parked event of its key, without a handler call), skipped
    /// (applied before), or handed to the handler; then, by its answer and in
    /// the batch's order, applied, parked, or set aside for another try with
    /// the rest of its key.
    fn decide(&mut self, batch: &mut Batch) -> Vec<Decision> {
        let tail = self.tail_mode();
        let mut early: Vec<Option<Early>> = Vec::with_capacity(batch.entries.len());
        let mut to_handle = Vec::new();
        for i in 0..batch.entries.len() {
            let entry = &batch.entries[i];
            let (lane, partitioned) = (entry.lane, entry.item.key.is_some());
            let id = Identity { position: entry.item.event.position, part: entry.item.part };
            let key = entry.key().to_owned();
            let failure = entry.item.failure.clone();
            let keys = batch.keys(lane);
            // A re-delivery of what was applied is skipped, even behind a parked event.
            let decided = if partitioned && self.already_applied(keys, &key, id) {
                Some(Early::Skip)
            } else if tail && keys.blocked.contains_key(&key) {
                Some(Early::Blocked)
            } else {
                failure.map(Early::Failed)
            };
            if decided.is_none() {
                to_handle.push(i);
            }
            early.push(decided);
        }
        let events: Vec<Event> = to_handle.iter().map(|&i| batch.entries[i].item.event.clone()).collect();
        let mut answers = to_handle.iter().copied().zip(if events.is_empty() { Vec::new() } else { self.handle(&events) });
        let mut next_answer = answers.next();
        let mut waiting_now: HashSet<String> = HashSet::new();
        let mut decisions = Vec::with_capacity(batch.entries.len());
        for (i, early) in early.into_iter().enumerate() {
            let answer = match &next_answer {
                Some((at, _)) if *at == i => next_answer.take().map(|(_, a)| a),
                _ => None,
            };
            if answer.is_some() {
                next_answer = answers.next();
            }
            let entry = &mut batch.entries[i];
            let (key, lane, position, partitioned) = (entry.key().to_owned(), entry.lane, entry.item.event.position, entry.item.key.is_some());
            if waiting_now.contains(&key) {
                // An earlier event of its key failed for now: this one waits behind it.
                decisions.push(Decision::of(Outcome::Retry(String::new())));
                continue;
            }
            if answer.as_ref().is_some_and(|a| !a.called) {
                // Not handed to the handler: no try is spent; it waits, and is dropped with the quarantine.
                decisions.push(Decision { outcome: Outcome::Retry(String::new()), attempts: entry.tries, behind: None, due: Some(Instant::now()) });
                waiting_now.insert(key);
                continue;
            }
            if answer.is_some() {
                entry.tries += 1;
            }
            let tries = entry.tries;
            if matches!(early, Some(Early::Skip)) {
                decisions.push(Decision::of(Outcome::Skip));
                continue;
            }
            if let Some(first) = batch.keys(lane).blocked.get(&key).copied().filter(|_| tail) {
                decisions.push(behind(first));
                continue;
            }
            let outcome = match (early, answer) {
                (Some(Early::Failed(failure)), _) => Outcome::Park(failure),
                (Some(Early::Skip | Early::Blocked), _) => unreachable!("decided above"),
                (None, Some(answer)) => match answer.outcome {
                    Outcome::Retry(reason) => {
                        let allowed = if answer.timed_out { self.settings.retry.attempts.min(DEADLINE_TRIES) } else { self.settings.retry.attempts };
                        if tries < allowed {
                            self.meter.retried.inc();
                            let wait = self.settings.retry.delay(tries + 1);
                            tracing::info!(projection = self.plugin.name(), key = %key, position, attempt = tries, retry_in = ?wait, reason = %reason, "event failed for now; its key waits for the next try while the others flow");
                            waiting_now.insert(key);
                            decisions.push(Decision { outcome: Outcome::Retry(reason), attempts: tries, behind: None, due: Some(Instant::now() + wait) });
                            continue;
                        }
                        tracing::warn!(projection = self.plugin.name(), key = %key, position, attempts = tries, reason = %reason, "retries exhausted; parking");
                        Outcome::Park(format!("{reason} (after {tries} attempts)"))
                    }
                    outcome => outcome,
                },
                (None, None) => unreachable!("every event without an early outcome was handed to the handler"),
            };
            if matches!(outcome, Outcome::Park(_)) && partitioned {
                self.block(batch.keys(lane), &key, position);
            }
            decisions.push(Decision { outcome, attempts: tries, behind: None, due: None });
        }
        decisions
    }

    /// In key-tail mode, the later events of a key with a parked event are parked behind it.
    fn block(&self, keys: &mut Keys, key: &str, position: u64) {
        if self.tail_mode() {
            keys.blocked.entry(key.to_owned()).or_insert(position);
            self.board.note_blocked(key);
        }
    }

    /// One handler call for the batch; after a trap, one call per event, so
    /// that only the event that traps fails. Once the projection is
    /// quarantined (a slow failure may do it mid-batch), the rest of the batch
    /// is not called: it waits, and is dropped with the checkpoint held.
    fn handle(&mut self, events: &[Event]) -> Vec<Tried> {
        let started = Instant::now();
        let answered = self.instance.handle(events);
        self.meter.call_seconds.observe(started.elapsed().as_secs_f64());
        let tried: Vec<Tried> = match answered {
            Ok(results) => results
                .into_iter()
                .map(|r| Tried { outcome: Outcome::from_handler(r, &self.plugin.scope), timed_out: false, called: true })
                .collect(),
            Err(_) if events.len() > 1 => {
                let mut tried = Vec::with_capacity(events.len());
                for event in events {
                    if self.slot.is_quarantined() {
                        tried.push(Tried { outcome: Outcome::Retry("not called: the projection is quarantined".into()), timed_out: false, called: false });
                    } else {
                        tried.extend(self.handle(std::slice::from_ref(event)));
                    }
                }
                return tried;
            }
            Err(trap) => vec![Tried { timed_out: trap.is_deadline(), outcome: Outcome::Retry(format!("trap: {trap}")), called: true }],
        };
        // The call failed when no event of it passed.
        let failure = tried.iter().try_fold(None, |_, t| match &t.outcome {
            Outcome::Retry(why) | Outcome::Park(why) => Some(Some(why.as_str())),
            _ => None,
        });
        if let Some(reason) = self.slot.call_ended(failure.flatten(), self.settings.quarantine_after_failing) {
            self.quarantined(&reason);
        }
        tried
    }

    fn already_applied(&self, keys: &mut Keys, key: &str, id: Identity) -> bool {
        if id.position > self.high_water {
            return false;
        }
        if keys.guards.len() > GUARD_CACHE_LIMIT {
            // The sink holds every guard; the cache is only a shortcut.
            keys.guards.clear();
        }
        if !keys.guards.contains_key(key) {
            let guard = self.until_available(|sink| sink.guard(&self.plugin.manifest.name, key)).ok().flatten();
            keys.guards.insert(key.to_owned(), guard);
        }
        keys.guards[key].is_some_and(|applied| id <= applied)
    }

    fn commit_of<'a>(&'a self, batch: &'a Batch, decisions: &'a [Decision], checkpoint: u64) -> Commit<'a> {
        let mut commit = Commit { projection: self.plugin.name(), applied: Vec::new(), parked: Vec::new(), checkpoint, lease: self.lease_token() };
        for (entry, d) in self.done(batch, decisions) {
            let item = &entry.item;
            match &d.outcome {
                Outcome::Apply(mutations) => {
                    commit.applied.push(Applied { key: item.key_or_stream(), position: item.event.position, part: item.part, mutations })
                }
                Outcome::Park(error) => commit.parked.push(self.parked(entry, d, error)),
                Outcome::Skip | Outcome::Retry(_) => {}
            }
        }
        commit
    }

    fn parked(&self, entry: &Entry, d: &Decision, error: &str) -> Parked {
        let e = &entry.item.event;
        let error = format!(
            "projection {} could not handle {} at stream {} revision {} (position {}): {error}",
            self.plugin.name(),
            e.event_type,
            e.stream,
            e.revision,
            e.position
        );
        Parked {
            key: entry.key().to_owned(),
            event: e.clone(),
            part: entry.item.part,
            error,
            attempts: d.attempts,
            plugin_version: self.plugin.manifest.version.clone(),
            behind: d.behind,
        }
    }

    /// Commits; an unavailable sink is waited out (until the host stops), a
    /// rejection is returned. A commit fenced off (another host holds the
    /// read model's lease now) stops the projection: nothing more is written.
    fn commit_until_available(&self, commit: &Commit) -> Committed {
        let timed = |sink: &dyn Sink| {
            let started = Instant::now();
            let committed = sink.commit(commit);
            self.meter.commit_seconds.observe(started.elapsed().as_secs_f64());
            committed
        };
        match self.until_available(|sink| match timed(sink) {
            Err(SinkError::Rejected(e)) => Ok(Err(SinkError::Rejected(e))),
            other => other.map(Ok),
        }) {
            Ok(Ok(())) => Committed::Yes,
            Ok(Err(rejected)) => Committed::Rejected(rejected),
            Err(SinkError::Fenced(holder)) => {
                if let Some(lease) = &self.settings.lease {
                    lease.lose(format!("{holder} holds the lease now; a commit of this host was refused"));
                }
                self.board.abandon();
                Committed::Abandoned
            }
            Err(_) => Committed::Abandoned,
        }
    }

    /// The token the projection's commits are fenced by, if it holds a lease.
    fn lease_token(&self) -> Option<&str> {
        self.settings.lease.as_deref().map(|l| l.token())
    }

    /// Runs `op` until the sink is available, backing off and saying so; gives
    /// up (with the last `Unavailable`) only when the host is stopping.
    fn until_available<R>(&self, op: impl Fn(&dyn Sink) -> Result<R, SinkError>) -> Result<R, SinkError> {
        let mut wait = Duration::from_millis(50);
        loop {
            match op(self.sink.as_ref()) {
                Err(SinkError::Unavailable(e)) if !self.board.is_abandoned() => {
                    self.settings.vitals.sink_unavailable(&e);
                    tracing::warn!(projection = self.plugin.name(), worker = self.index, error = %format!("{e:#}"), retry_in = ?wait, "sink unavailable; nothing is parked or lost, retrying");
                    let (waited, until) = (Instant::now(), Instant::now() + wait);
                    while Instant::now() < until && !self.board.is_abandoned() {
                        std::thread::sleep(STOP_CHECK.min(until.saturating_duration_since(Instant::now())));
                    }
                    self.meter.outage.inc_by(waited.elapsed().as_secs_f64());
                    wait = (wait * 2).min(SINK_BACKOFF_CAP);
                }
                other => {
                    if !matches!(other, Err(SinkError::Unavailable(_))) {
                        self.settings.vitals.sink_answered();
                    }
                    return other;
                }
            }
        }
    }

    /// The sink refused the batch: apply its events one at a time, park the
    /// ones it refuses (and their key tails), then commit the parked events
    /// and the checkpoint.
    fn isolate(&mut self, batch: &mut Batch, decisions: &mut [Decision], checkpoint: u64) -> Committed {
        for i in 0..batch.entries.len() {
            let (lane, key, position) = (batch.entries[i].lane, batch.entries[i].key().to_owned(), batch.entries[i].item.event.position);
            let Outcome::Apply(mutations) = &decisions[i].outcome else { continue };
            if let Some(first) = batch.keys(lane).blocked.get(&key).copied().filter(|_| self.tail_mode()) {
                decisions[i] = behind(first);
                continue;
            }
            let applied = Applied { key: batch.entries[i].item.key_or_stream(), position, part: batch.entries[i].item.part, mutations };
            let one = Commit { projection: self.plugin.name(), applied: vec![applied], parked: Vec::new(), checkpoint: 0, lease: self.lease_token() };
            match self.commit_until_available(&one) {
                Committed::Yes => {}
                Committed::Rejected(e) => {
                    decisions[i].outcome = Outcome::Park(e.to_string());
                    decisions[i].attempts = decisions[i].attempts.max(1);
                    if batch.entries[i].item.key.is_some() {
                        self.block(batch.keys(lane), &key, position);
                    }
                }
                Committed::Abandoned => return Committed::Abandoned,
            }
        }
        let mut rest = self.commit_of(batch, decisions, checkpoint);
        rest.applied.clear();
        self.commit_until_available(&rest)
    }
}

/// How often a wait for the sink looks whether the host is stopping.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// The decision for an event parked behind an earlier parked event of its key.
fn behind(first: u64) -> Decision {
    Decision {
        outcome: Outcome::Park(format!("parked behind the event at position {first} with the same key")),
        attempts: 0,
        behind: Some(first),
        due: None,
    }
}
