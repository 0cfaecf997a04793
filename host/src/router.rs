//! The router reads the source in global order, runs the upcaster chain once per
//! event, and hands each event to every projection that subscribes to it, on
//! the lane its partition key picks. Blocking sends into bounded lane queues
//! are the backpressure that keeps memory bounded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::lanes::{lane_of, partition_key, LaneItem, LaneSet};
use crate::plugins::{ProjectionPlugin, Slot, UpcasterChain};
use crate::source::settle::{Settled, Settlement};
use crate::source::Source;

/// How many events one read from the source returns at most.
pub const READ_BATCH: usize = 1024;

/// How long a following router sleeps when the source has nothing new.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// One projection as the router sees it.
pub struct Route {
    pub plugin: Arc<ProjectionPlugin>,
    pub slot: Arc<Slot>,
    pub lanes: LaneSet,
}

pub struct Router {
    pub routes: Vec<Route>,
    pub upcasters: UpcasterChain,
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
    /// Routes events from the lowest checkpoint of its projections until `until`
    /// or `stop`; returns the position it read through.
    pub fn run(&mut self, source: &mut dyn Source, until: Until, stop: &AtomicBool) -> Result<u64> {
        let mut next = self.routes.iter().map(|r| r.lanes.checkpoint()).min().unwrap_or(0);
        // A source that must be told what became of each event keeps no global
        // order: every event it delivers is routed, whatever its position.
        let settler = source.settler();
        while !stop.load(Ordering::Relaxed) {
            for route in &mut self.routes {
                if route.slot.resume_pending() {
                    route.lanes.restart()?;
                    tracing::info!(projection = route.plugin.name(), from = route.lanes.resumed_from, "quarantine lifted by a new build; the projection resumes from its checkpoint");
                    next = next.min(route.lanes.resumed_from);
                }
            }
            let events = source.read(next, READ_BATCH)?;
            let Some(last) = events.last().map(|e| e.position) else {
                if !source.caught_up() {
                    // Still catching up: the source waited for events already.
                    continue;
                }
                if until == Until::CaughtUp {
                    break;
                }
                for route in &self.routes {
                    route.lanes.flush(false)?;
                }
                std::thread::sleep(POLL_INTERVAL);
                continue;
            };
            for event in events {
                let position = event.position;
                let (original, upcast) = if self.upcasters.is_empty() {
                    (None, Ok(vec![event]))
                } else {
                    let upcast = self.upcasters.upcast(event.clone());
                    (Some(event), upcast)
                };
                let mut parts = Some(0);
                for route in &self.routes {
                    if settler.is_some() || position >= route.lanes.next {
                        let taken = route.dispatch(original.as_ref(), &upcast)?;
                        parts = parts.zip(taken).map(|(a, b)| a + b);
                    }
                }
                // An event a quarantined projection did not take stays unsettled:
                // the server delivers it again later.
                if let (Some(settler), Some(parts)) = (&settler, parts) {
                    let _ = settler.send(Settled { position, settlement: Settlement::Dispatched(parts) });
                }
            }
            next = last + 1;
            for route in &mut self.routes {
                route.lanes.next = route.lanes.next.max(next);
                route.lanes.tracker.lock().unwrap_or_else(|p| p.into_inner()).read_through(next);
            }
        }
        Ok(next)
    }
}

impl Route {
    /// Hands the (upcast) event to its lanes; `original` is given when
    /// upcasters ran. Returns how many lane items it made, or `None` when the
    /// projection is quarantined and took nothing.
    fn dispatch(&self, original: Option<&crate::Event>, upcast: &Result<Vec<crate::Event>, String>) -> Result<Option<u32>> {
        if self.slot.is_quarantined() {
            // A quarantined projection gets nothing more in this run; its
            // checkpoint stays before the first event it did not get.
            if let Some(position) = original.map(|e| e.position).or_else(|| upcast.as_ref().ok().and_then(|e| e.first()).map(|e| e.position)) {
                self.lanes.tracker.lock().unwrap_or_else(|p| p.into_inner()).hold(position);
            }
            return Ok(None);
        }
        let items: Vec<LaneItem> = match upcast {
            Ok(events) => events
                .iter()
                .filter(|e| self.plugin.subscribes(e))
                .map(|e| match partition_key(&self.plugin.manifest.partition_key, e) {
                    Ok(key) => LaneItem { event: e.clone(), key: Some(key), failure: None },
                    Err(why) => LaneItem { event: e.clone(), key: None, failure: Some(why) },
                })
                .collect(),
            Err(why) => match original.filter(|e| self.plugin.subscribes(e)) {
                Some(original) => {
                    let key = partition_key(&self.plugin.manifest.partition_key, original).ok();
                    vec![LaneItem { event: original.clone(), key, failure: Some(format!("upcast failed: {why}")) }]
                }
                None => Vec::new(),
            },
        };
        let lanes = self.lanes.senders.len();
        let parts = items.len() as u32;
        for item in items {
            let lane = lane_of(item.key.as_deref().unwrap_or(&item.event.stream), lanes);
            self.lanes.tracker.lock().unwrap_or_else(|p| p.into_inner()).dispatched(item.event.position);
            if self.lanes.senders[lane].send(item).is_err() {
                anyhow::bail!("lane {lane} of projection {} stopped unexpectedly", self.plugin.name());
            }
        }
        Ok(Some(parts))
    }
}
