//! The monitor: what a running host shows the people and tools that watch
//! it. Once a second, on a thread of its own, it reads each projection's
//! [`Vitals`], slot and parked events, asks the source where its log ends and
//! when the oldest event not yet done was recorded ([`Probe`]), sets the
//! gauges of the [`crate::metrics`] and keeps that reading. Requests (`projector
//! status`, `/metrics`, `/health/ready`) are answered from the last reading,
//! so a slow source or sink never holds up the admin endpoint, and nothing of
//! this is on the path events take.

pub mod health;
mod rates;
pub mod status;
mod table;

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

pub use health::Readiness;
pub use status::{HostStatus, ProjectionStatus, State};
pub use table::render as render_table;

use crate::metrics::{projection_labels, Labels, Metrics};
use crate::sink::Sink;
use crate::supervisor::{Member, Roster};
use crate::source::Probe;
use rates::Rates;

/// How often the monitor reads the host.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// A reading older than this makes the host unready: the source or the sink
/// takes that long to answer the monitor.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

pub struct Monitor {
    metrics: Arc<Metrics>,
    roster: Arc<Roster>,
    /// The projections of the last reading's gauges, with their lane counts:
    /// those gone since lose their series.
    gauged: Mutex<Vec<(String, usize)>>,
    /// Per projection, its slot and the swaps it had counted at the last reading.
    swaps_seen: Mutex<std::collections::HashMap<String, (usize, u64)>>,
    sink: Arc<dyn Sink>,
    /// Where the source is, and the probe opened on it (again after a failure).
    source: Option<String>,
    probe: Mutex<Option<Box<dyn Probe>>>,
    rates: Mutex<Rates>,
    /// Lag past which the host is not ready (`None`: lag never makes it unready).
    ready_max_lag: Option<Duration>,
    /// The last reading, and when it was taken.
    reading: Mutex<Option<(Instant, HostStatus)>>,
}

impl Monitor {
    /// A monitor of the projections on `roster`; `source` is the source's URL, when the host
    /// reads one a probe can open. It reads the host on a thread of its own
    /// for as long as it lives.
    pub fn start(
        metrics: Arc<Metrics>,
        roster: Arc<Roster>,
        sink: Arc<dyn Sink>,
        source: Option<String>,
        ready_max_lag: Option<Duration>,
    ) -> Arc<Self> {
        let monitor = Arc::new(Self {
            metrics,
            roster,
            gauged: Mutex::new(Vec::new()),
            swaps_seen: Mutex::default(),
            sink,
            source,
            probe: Mutex::new(None),
            rates: Mutex::new(Rates::default()),
            ready_max_lag,
            reading: Mutex::new(None),
        });
        let weak = Arc::downgrade(&monitor);
        let _ = std::thread::Builder::new().name("monitor".into()).spawn(move || watch(weak));
        monitor
    }

    /// The last reading of the host; before the first, what the lanes tell
    /// without asking the source or the sink.
    pub fn status(&self) -> HostStatus {
        match &*self.reading.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((at, status)) => HostStatus { read_seconds_ago: Some(at.elapsed().as_secs_f64()), ..status.clone() },
            None => self.read(false),
        }
    }

    /// Each projection's events per second over the last minutes, as
    /// (seconds ago, rate), oldest first.
    pub fn history(&self) -> Vec<(String, Vec<(f64, f64)>)> {
        self.rates.lock().unwrap_or_else(|p| p.into_inner()).history()
    }

    /// Whether the host is ready, check by check.
    pub fn readiness(&self) -> Readiness {
        let reading = self.reading.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|(at, s)| (at.elapsed(), s.clone()));
        health::readiness(reading.as_ref().map(|(age, s)| (*age, s)), self.ready_max_lag)
    }

    /// The metrics in the OpenMetrics text format, the gauges as last read.
    pub fn metrics_text(&self) -> String {
        self.metrics.render()
    }

    /// Reads the host now and keeps the reading.
    pub fn refresh(&self) {
        let members = self.roster.members();
        let counts = members.iter().map(|p| (p.name().to_owned(), p.vitals.meter.handled.get()));
        self.rates.lock().unwrap_or_else(|p| p.into_inner()).add(counts);
        let status = self.read(true);
        self.set_gauges(&members, &status);
        *self.reading.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), status));
    }

    /// Every projection now; with `ask`, the source and the sink are asked too.
    fn read(&self, ask: bool) -> HostStatus {
        let (head, source_error, counts_events) = if ask { self.head() } else { (None, None, false) };
        let mut sink_error = None;
        let mut projections = Vec::new();
        for p in self.roster.members() {
            let name = p.slot.name();
            let rate = self.rates.lock().unwrap_or_else(|p| p.into_inner()).per_second(name);
            let lanes = p.vitals.lanes();
            let parked = if ask { self.sink.parked_count(name).map_err(|e| sink_error = Some(format!("{e:#}"))).ok() } else { None };
            if let Some(e) = p.vitals.sink_error() {
                sink_error = Some(e);
            }
            // Before its lanes start, it stands where its read model was left.
            let checkpoint = match &lanes {
                Some(l) => Some(l.checkpoint),
                None if ask => self.sink.checkpoint(name).ok(),
                None => None,
            };
            // Nothing left: the router found nothing more for it (a filtered
            // tail too) and it holds nothing, or every event up to the head is done.
            let idle = lanes.as_ref().is_some_and(|l| l.in_flight == 0) && p.vitals.is_idle() && p.slot.quarantined().is_none();
            let answered = ask && source_error.is_none();
            let past_head = answered && checkpoint.is_some_and(|c| head.is_none_or(|h| c > h));
            if lanes.is_some() && (idle || past_head) {
                p.vitals.note_caught_up();
            }
            let (lag_events, lag_seconds) = match checkpoint {
                _ if !answered || !p.in_order => (None, None),
                _ if idle || past_head => (Some(0), Some(0.0)),
                Some(checkpoint) => self.lag(checkpoint, head, counts_events),
                None => (None, None),
            };
            let read = status::Read { checkpoint, head, lag_events, lag_seconds, events_per_second: rate, parked };
            projections.push(status::of(&p, lanes, read));
        }
        HostStatus { projections, source_error, sink_error, read_seconds_ago: None }
    }

    /// The lag in events (where positions count them) and seconds of a
    /// projection with events left after `checkpoint`.
    fn lag(&self, checkpoint: u64, head: Option<u64>, counts_events: bool) -> (Option<u64>, Option<f64>) {
        let lag_events = head.filter(|_| counts_events).map(|h| (h + 1).saturating_sub(checkpoint));
        let recorded = self.probe.lock().unwrap_or_else(|p| p.into_inner()).as_mut().and_then(|probe| probe.recorded_at(checkpoint).ok().flatten());
        // A clock behind the one that recorded the event counts no lag, not a negative one.
        let lag_seconds = recorded.map(|t| SystemTime::now().duration_since(t).unwrap_or_default().as_secs_f64());
        (lag_events, lag_seconds)
    }

    /// The head of the source, or why it cannot be told, and whether its positions count events.
    fn head(&self) -> (Option<u64>, Option<String>, bool) {
        let Some(url) = &self.source else { return (None, Some("the host reads no source the monitor can ask".into()), false) };
        let mut probe = self.probe.lock().unwrap_or_else(|p| p.into_inner());
        if probe.is_none() {
            match crate::source::probe(url) {
                Ok(p) => *probe = Some(p),
                Err(e) => return (None, Some(format!("{e:#}")), false),
            }
        }
        let p = probe.as_mut().expect("opened above");
        let counts = p.counts_events();
        match p.head() {
            Ok(head) => (head, None, counts),
            Err(e) => {
                *probe = None;
                (None, Some(format!("{e:#}")), counts)
            }
        }
    }

    /// The gauges from a reading; a value the reading lacks has no series.
    fn set_gauges(&self, members: &[Member], status: &HostStatus) {
        let g = self.metrics.gauges();
        // The builds running now, not the ones swapped out.
        g.build.clear();
        let mut gauged = self.gauged.lock().unwrap_or_else(|p| p.into_inner());
        for (gone, lanes) in gauged.iter().filter(|(n, _)| !status.projections.iter().any(|s| &s.name == n)) {
            g.forget(&projection_labels(gone), *lanes);
        }
        gauged.clear();
        for s in &status.projections {
            // A projection that joined after the reading was taken has its gauges at the next.
            let Some(p) = members.iter().find(|m| m.name() == s.name) else { continue };
            gauged.push((s.name.clone(), p.vitals.lanes().map_or(0, |l| l.queued.len())));
            let l = projection_labels(&s.name);
            let set = |family: &prometheus_client::metrics::family::Family<Labels, prometheus_client::metrics::gauge::Gauge>, v: Option<u64>| match v {
                Some(v) => {
                    family.get_or_create(&l).set(v as i64);
                }
                None => {
                    family.remove(&l);
                }
            };
            set(&g.quarantined, Some(s.quarantined.is_some() as u64));
            set(&g.checkpoint, s.checkpoint);
            set(&g.head, s.head);
            set(&g.lag_events, s.lag_events);
            match s.lag_seconds {
                Some(v) => {
                    g.lag_seconds.get_or_create(&l).set(v);
                }
                None => {
                    g.lag_seconds.remove(&l);
                }
            }
            set(&g.parked_stored, s.parked);
            set(&g.retrying_keys, Some(s.retrying_keys as u64));
            for (lane, depth) in p.vitals.lanes().unwrap_or_default().queued.iter().enumerate() {
                let mut lane_labels = l.clone();
                lane_labels.push(("lane", lane.to_string()));
                g.queue_depth.get_or_create(&lane_labels).set(*depth as i64);
            }
            if let Some(stall) = p.slot.stalls().last() {
                g.last_stall.get_or_create(&l).set(stall.as_secs_f64());
            }
            // Counted by the slot: one started anew (the projection taken away and back) counts from 0.
            let slot = Arc::as_ptr(&p.slot) as usize;
            let mut seen = self.swaps_seen.lock().unwrap_or_else(|p| p.into_inner());
            let before = match seen.insert(s.name.clone(), (slot, s.swaps)) {
                Some((same, before)) if same == slot => before,
                _ => 0,
            };
            p.vitals.meter.swaps.inc_by(s.swaps.saturating_sub(before));
            let mut build = l.clone();
            build.push(("version", s.build.clone()));
            g.build.get_or_create(&build).set(1);
        }
    }
}

/// Reads the host every [`SAMPLE_EVERY`] until the monitor is gone.
fn watch(monitor: Weak<Monitor>) {
    loop {
        match monitor.upgrade() {
            Some(m) => m.refresh(),
            None => return,
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
}
