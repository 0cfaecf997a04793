//! A projection's router: it reads the projection's own view of the source in
//! global order, runs the upcaster chain, and hands each event the projection
//! subscribes to to the lane its partition key picks. Every projection has a
//! router of its own, so one that is slow, retrying or quarantined falls
//! behind alone while the others read on; its lanes' bound is its backpressure.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::lanes::{partition_key, LaneItem, LaneSet};
use crate::parking::desk::{self, Desk};
use crate::parking::Handling;
use crate::plugins::{needed_by, KeepsFailing, Plugins, ProjectionPlugin, Slot, UpcasterChain, UpcasterSet};
use crate::runtime::limits::MAX_EVENT_BYTES;
use crate::source::settle::{Settled, Settlement, Settler};
use crate::source::Source;
use crate::Event;

/// How many events one read from the source returns at most, and how many
/// bytes of them (at least one event, however large) where the source can tell.
pub const READ_BATCH: usize = 1024;
pub const READ_BYTES: usize = 16 << 20;

/// How long a following router sleeps when the source has nothing new.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// One projection as its router drives it.
pub struct Router {
    pub plugin: Arc<ProjectionPlugin>,
    pub slot: Arc<Slot>,
    pub lanes: LaneSet,
    pub upcasters: UpcasterChain,
    /// Where the router stands with the upcaster set in effect.
    pub upcasting: Upcasting,
    /// Where the admin endpoint leaves parked events to replay or discard,
    /// with the upcasters in effect (a replay runs them; a change is taken up before a read).
    pub desk: Option<(Arc<Desk>, Arc<UpcasterSet>)>,
}

/// Where a router stands with the upcaster set: what it has taken up, and
/// what it needs to upcast every event by one chain.
#[derive(Default)]
pub struct Upcasting {
    /// The number of the set its chain was made from.
    pub seen: u64,
    /// A set whose chain could not be made here, tried again after a resume
    /// or when another set comes; and whether that quarantined the projection.
    failed: Option<u64>,
    unmade: bool,
    /// Chains in effect before a change, each with the first position it did
    /// not upcast, oldest first: an event read again from below that position
    /// (the lanes restarted from the checkpoint) is upcast by the chain it
    /// was upcast by before. Dropped once the checkpoint passes it.
    formers: Vec<(UpcasterChain, u64)>,
    /// One past the highest position routed so far, over restarts of the lanes.
    routed_through: u64,
    /// The first position a quarantine held back (not upcast), until it lifts.
    first_held: Option<u64>,
    /// Whether the source delivers in position order (not a group's).
    in_order: bool,
}

impl Upcasting {
    /// A router's start, its chain made from set number `seen`.
    pub fn new(seen: u64) -> Self {
        Self { seen, ..Self::default() }
    }
}

/// When the router stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// When the source has nothing more.
    CaughtUp,
    /// Never: wait for new events (until asked to stop).
    Stopped,
}

impl Router {
    pub fn name(&self) -> &str {
        self.plugin.name()
    }

    /// Routes events from the projection's checkpoint until `until` or
    /// `stop`; returns the position it read through. On `stop` its workers
    /// stop after their batches, whatever they wait for.
    pub fn run(&mut self, source: &mut dyn Source, until: Until, stop: &AtomicBool) -> Result<u64> {
        // Whatever ends the routing (a panic too), its desk takes no more requests.
        let _closed = self.desk.as_ref().map(|(desk, _)| desk::Closing(desk.clone(), self.plugin.name().to_owned()));
        let routed = self.route(source, until, stop);
        self.lanes.vitals().stopped();
        if stop.load(Ordering::Relaxed) || routed.is_err() {
            self.lanes.abandon();
        }
        routed
    }

    fn route(&mut self, source: &mut dyn Source, until: Until, stop: &AtomicBool) -> Result<u64> {
        let mut next = self.lanes.checkpoint();
        // A source that must be told what became of each event keeps no global
        // order: every event it delivers is routed, whatever its position.
        let settler = source.settler();
        self.upcasting.in_order = settler.is_none();
        while !stop.load(Ordering::Relaxed) {
            if let Some(why) = self.lanes.lease_lost() {
                anyhow::bail!("projection {} stopped: {why}", self.name());
            }
            if self.slot.resume_pending() {
                self.lanes.restart(stop)?;
                self.upcasters.reset();
                // What the quarantine held back is read again; a chain that could not be made is tried again.
                (self.upcasting.first_held, self.upcasting.failed) = (None, None);
                tracing::info!(projection = self.name(), from = self.lanes.resumed_from, "quarantine lifted; the projection resumes from its checkpoint");
                next = next.min(self.lanes.resumed_from);
            }
            if let Some(ticket) = self.desk.as_ref().and_then(|(desk, _)| desk.take(self.plugin.name())) {
                let done = self.resolve_parked(&ticket.job, stop);
                let failed_lanes = done.as_ref().err().map(|e| format!("{e:#}"));
                ticket.answer(done.unwrap_or_else(Err));
                if let Some(why) = failed_lanes {
                    anyhow::bail!(why);
                }
                next = next.min(self.lanes.resumed_from);
            }
            self.take_up_upcasters();
            let events = source.read(next, READ_BATCH)?;
            let Some(last) = events.last().map(|e| e.position) else {
                if !source.caught_up() {
                    // Still catching up: the source waited for events already.
                    continue;
                }
                self.lanes.vitals().idle(true);
                if until == Until::CaughtUp {
                    break;
                }
                self.lanes.flush(None)?;
                std::thread::sleep(POLL_INTERVAL);
                continue;
            };
            self.lanes.vitals().idle(false);
            let mut items = Vec::with_capacity(events.len());
            for event in events {
                if settler.is_none() && event.position < self.lanes.next {
                    continue;
                }
                let position = event.position;
                let parts = self.items(event, &mut items);
                settle(settler.as_ref(), position, parts);
            }
            if !self.lanes.put(items, stop) {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                // Not stopping: the workers stopped (the lease was lost, or one
                // panicked); finishing the lanes says why.
                anyhow::bail!("the workers of projection {} stopped", self.name());
            }
            next = last + 1;
            self.lanes.next = self.lanes.next.max(next);
            self.upcasting.routed_through = self.upcasting.routed_through.max(next);
            self.lanes.tracker.lock().unwrap_or_else(|p| p.into_inner()).read_through(next);
        }
        Ok(next)
    }

    /// Replays or discards a parked event with the lanes stopped, then starts
    /// them again from the checkpoint: a key released by the replay flows
    /// from there, in order. Only a failure to restart the lanes is the
    /// router's (the outer error); what went wrong with the job is the answer's.
    fn resolve_parked(&mut self, job: &desk::Job, stop: &AtomicBool) -> Result<Result<String>> {
        let upcasters = self.desk.as_ref().map(|(_, set)| set.current().1).unwrap_or_default();
        let plugins = Plugins { projections: vec![self.slot.current().0], upcasters };
        let settings = self.lanes.settings();
        let (sink, lease) = (self.lanes.sink().clone(), settings.lease.clone());
        let handling = Handling { deadline: settings.call_deadline, park_mode: settings.park_mode };
        // Nothing to do: the lanes are not paused for it.
        if let Err(e) = desk::check(job, self.plugin.name(), sink.as_ref(), lease.as_deref()) {
            return Ok(Err(e));
        }
        let lease = lease.expect("checked above");
        let mut done = Err(anyhow::anyhow!("not done"));
        let restarted = self.lanes.restart_around(stop, || done = desk::resolve(job, &plugins, &sink, lease, handling));
        self.upcasters.reset();
        tracing::info!(projection = self.name(), job = ?job, outcome = ?done.as_ref().map_err(|e| format!("{e:#}")), "a parked event was resolved from the admin endpoint");
        restarted.map_err(|e| anyhow::anyhow!("projection {}: the lanes did not start again after a parked event was resolved: {e:#}", self.name()))?;
        Ok(done)
    }

    /// Takes up a changed upcaster set before the next read: the events read
    /// before were upcast by the former chain, those from here on by the new
    /// one, so that every event is upcast by one chain. The swapper checked
    /// the set; a chain that cannot be made all the same quarantines the projection.
    fn take_up_upcasters(&mut self) {
        let checkpoint = self.lanes.checkpoint();
        let u = &mut self.upcasting;
        u.formers.retain(|(_, from)| *from > checkpoint);
        let Some((_, set)) = &self.desk else { return };
        let (number, all) = set.current();
        if number == u.seen || u.failed == Some(number) {
            return;
        }
        let settings = self.lanes.settings();
        let limit = KeepsFailing { after: settings.quarantine_after, after_failing: settings.quarantine_after_failing };
        let needed = needed_by(&self.plugin, &all);
        match UpcasterChain::new(&needed, &all, settings.call_deadline, limit) {
            Ok(mut chain) if chain.same_as(&self.upcasters) => {
                // Made of the same upcasters: it upcasts alike, and its failures go on counting.
                chain.carry_failures(&self.upcasters);
                self.upcasters = chain;
                u.seen = number;
                if std::mem::take(&mut u.unmade) {
                    self.slot.resume_for_upcasters();
                }
            }
            Ok(chain) => {
                // The former chain upcast what was routed, but not what a quarantine held back.
                let routed = if u.in_order { u.routed_through } else { 0 };
                let from = u.first_held.map_or(routed, |h| h.min(routed));
                let former = std::mem::replace(&mut self.upcasters, chain);
                if u.formers.last().is_none_or(|(_, last)| from > *last) {
                    u.formers.push((former, from));
                }
                (u.seen, u.unmade) = (number, false);
                let names: Vec<&str> = needed.iter().map(|n| n.manifest.name.as_str()).collect();
                tracing::info!(projection = self.plugin.name(), from, upcasters = %names.join(", "), "the upcaster chain changed; events from here on are upcast by the new one");
                if self.slot.resume_for_upcasters() {
                    tracing::info!(projection = self.plugin.name(), "its upcasters quarantined it; the new chain lifts the quarantine");
                }
            }
            Err(e) => {
                (u.failed, u.unmade) = (Some(number), true);
                // The swapper made this chain already; failing here, the projection would diverge from the set in effect.
                let why = format!("its new upcaster chain cannot be made: {e:#}");
                if let Some(reason) = self.slot.quarantine_upcasting(why) {
                    tracing::error!(projection = self.plugin.name(), reason = %reason, "projection quarantined: paused, its checkpoint held");
                }
            }
        }
    }

    /// The chain that upcasts the event at `position`: the one in effect, or
    /// the former one it was upcast by before, if it was read before a change.
    fn chain_for(&mut self, position: u64) -> &mut UpcasterChain {
        match self.upcasting.formers.iter().position(|(_, from)| position < *from) {
            Some(at) => &mut self.upcasting.formers[at].0,
            None => &mut self.upcasters,
        }
    }

    /// Adds the lane items of one event to `items`: none when the projection
    /// does not subscribe to it, one, or (after an upcaster's split) several.
    /// Returns how many, or `None` when the projection is quarantined and
    /// took nothing.
    fn items(&mut self, event: Event, items: &mut Vec<LaneItem>) -> Option<u32> {
        if self.slot.is_quarantined() {
            let held = &mut self.upcasting.first_held;
            *held = Some(held.map_or(event.position, |h| h.min(event.position)));
            // A quarantined projection gets nothing more in this run; its
            // checkpoint stays before the first event it did not get.
            self.lanes.tracker.lock().unwrap_or_else(|p| p.into_inner()).hold(event.position);
            return None;
        }
        let before = items.len();
        let size = event.bytes();
        if !self.plugin.subscribes(&event) {
            // Not the projection's: not upcast either (its upcasters take only
            // types it subscribes to).
        } else if size > MAX_EVENT_BYTES {
            let key = partition_key(&self.plugin.manifest.partition_key, &event).ok();
            let why = format!("the event is {size} bytes, more than the largest event Projector takes ({} MiB)", MAX_EVENT_BYTES >> 20);
            items.push(LaneItem { event, key, failure: Some(why), part: 0 });
        } else if !self.chain_for(event.position).claims(&event) {
            self.keyed(event, 0, items);
        } else {
            let key = partition_key(&self.plugin.manifest.partition_key, &event).ok();
            if key.as_deref().is_some_and(|k| self.lanes.is_blocked(k)) {
                // Behind a parked event of its key: parked there as it is, unread.
                items.push(LaneItem { event, key, failure: None, part: 0 });
            } else {
                match self.chain_for(event.position).upcast(event.clone()) {
                    // Each event it made is told apart by its index: a split committed in part resumes there.
                    Ok(upcast) => upcast.into_iter().zip(0..).for_each(|(e, part)| self.keyed(e, part, items)),
                    Err(why) => {
                        self.keeps_failing(&why);
                        items.push(LaneItem { event, key, failure: Some(format!("upcast failed: {why}")), part: 0 });
                    }
                }
            }
        }
        Some((items.len() - before) as u32)
    }

    /// Quarantines the projection once its upcasters keep failing: it
    /// pauses, the other projections read on.
    fn keeps_failing(&self, last: &str) {
        let Some(why) = self.upcasters.keeps_failing() else { return };
        if let Some(reason) = self.slot.quarantine_upcasting(format!("{why}; the last: {last}")) {
            tracing::error!(projection = self.name(), reason = %reason, "projection quarantined: paused, its checkpoint held; put a fixed upcaster in the plugins directory (or a new build of the projection)");
        }
    }

    /// The event's lane item, with its partition key, if the projection subscribes to it.
    fn keyed(&self, event: Event, part: u32, items: &mut Vec<LaneItem>) {
        if !self.plugin.subscribes(&event) {
            return;
        }
        items.push(match partition_key(&self.plugin.manifest.partition_key, &event) {
            Ok(key) => LaneItem { event, key: Some(key), failure: None, part },
            Err(why) => LaneItem { event, key: None, failure: Some(why), part },
        });
    }
}

/// Tells a settling source how many lane items an event became, or that a
/// quarantined projection did not take it (the server delivers it again later).
fn settle(settler: Option<&Settler>, position: u64, parts: Option<u32>) {
    if let Some(settler) = settler {
        let settlement = parts.map_or(Settlement::NotTaken, Settlement::Dispatched);
        let _ = settler.send(Settled { position, settlement });
    }
}
