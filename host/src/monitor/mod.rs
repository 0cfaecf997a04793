//! The monitor: what a running host shows the people and tools that watch
//! it. It reads each projection's [`Vitals`], slot and stored parked events,
//! asks the source where its log ends ([`Probe`]), and turns that into
//! `projector status` ([`status`]), the Prometheus metrics ([`crate::metrics`])
//! and the health checks ([`health`]) of the admin endpoint. It is never on
//! the path events take: everything is read when someone asks.

pub mod health;
mod rates;
pub mod status;
mod table;

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use anyhow::Result;

pub use health::Readiness;
pub use status::{HostStatus, ProjectionStatus, State};
pub use table::render as render_table;

use crate::lanes::Vitals;
use crate::metrics::{projection_labels, Metrics};
use crate::plugins::Slot;
use crate::sink::Sink;
use crate::source::Probe;
use rates::Rates;

/// How often the monitor samples each projection's count of handled events.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// One projection as the monitor sees it.
pub struct Watched {
    pub slot: Arc<Slot>,
    pub vitals: Arc<Vitals>,
}

pub struct Monitor {
    metrics: Arc<Metrics>,
    projections: Vec<Watched>,
    sink: Arc<dyn Sink>,
    /// Where the source is, and the probe opened on it (again after a failure).
    source: Option<String>,
    probe: Mutex<Option<Box<dyn Probe>>>,
    rates: Mutex<Rates>,
    /// Lag past which the host is not ready (`None`: lag never makes it unready).
    ready_max_lag: Option<Duration>,
}

impl Monitor {
    /// A monitor of `projections`; `source` is the source's URL, when the host
    /// reads one a probe can open. It samples rates on a thread of its own
    /// for as long as it lives.
    pub fn start(
        metrics: Arc<Metrics>,
        projections: Vec<Watched>,
        sink: Arc<dyn Sink>,
        source: Option<String>,
        ready_max_lag: Option<Duration>,
    ) -> Arc<Self> {
        let names = projections.iter().map(|p| p.slot.name().to_owned()).collect();
        let monitor = Arc::new(Self {
            metrics,
            projections,
            sink,
            source,
            probe: Mutex::new(None),
            rates: Mutex::new(Rates::new(names)),
            ready_max_lag,
        });
        let weak = Arc::downgrade(&monitor);
        let _ = std::thread::Builder::new().name("monitor".into()).spawn(move || sample(weak));
        monitor
    }

    fn sample(&self) {
        let counts: Vec<u64> = self.projections.iter().map(|p| p.vitals.meter.handled.get()).collect();
        self.rates.lock().unwrap_or_else(|p| p.into_inner()).add(counts);
    }

    /// The head of the source, or why it cannot be told.
    fn head(&self) -> (Option<u64>, Result<(), String>, bool) {
        let Some(url) = &self.source else { return (None, Ok(()), false) };
        let mut probe = self.probe.lock().unwrap_or_else(|p| p.into_inner());
        if probe.is_none() {
            match crate::source::probe(url) {
                Ok(p) => *probe = Some(p),
                Err(e) => return (None, Err(format!("{e:#}")), false),
            }
        }
        let p = probe.as_mut().expect("opened above");
        let counts = p.counts_events();
        match p.head() {
            Ok(head) => (head, Ok(()), counts),
            Err(e) => {
                *probe = None;
                (None, Err(format!("{e:#}")), counts)
            }
        }
    }

    fn recorded_at(&self, position: u64) -> Option<SystemTime> {
        let mut probe = self.probe.lock().unwrap_or_else(|p| p.into_inner());
        probe.as_mut()?.recorded_at(position).ok().flatten()
    }

    /// Every projection now, and whether source and sink answer.
    pub fn status(&self) -> HostStatus {
        let (head, source, counts_events) = self.head();
        let rates = self.rates.lock().unwrap_or_else(|p| p.into_inner()).per_second();
        let mut sink = Ok(());
        let projections = self
            .projections
            .iter()
            .zip(rates)
            .map(|(p, rate)| {
                let lanes = p.vitals.lanes().unwrap_or_default();
                let parked = self.sink.parked_count(p.slot.name());
                if let Err(e) = &parked {
                    sink = Err(format!("{e:#}"));
                }
                if let Some(e) = p.vitals.sink_error() {
                    sink = Err(e);
                }
                // Nothing left: every event up to the head is done, or the
                // router found nothing more for it (a filtered tail) and holds none.
                let idle = p.vitals.is_idle() && lanes.in_flight == 0 && p.slot.quarantined().is_none();
                let caught_up = idle || head.is_some_and(|h| lanes.checkpoint > h) || (self.source.is_some() && head.is_none() && source.is_ok());
                let lag_events = match head {
                    _ if caught_up => Some(0),
                    Some(h) if counts_events => Some((h + 1).saturating_sub(lanes.checkpoint)),
                    _ => None,
                };
                let lag_seconds = if caught_up {
                    Some(0.0)
                } else {
                    self.recorded_at(lanes.checkpoint).map(|t| SystemTime::now().duration_since(t).unwrap_or_default().as_secs_f64())
                };
                status::of(p, lanes, head, lag_events, lag_seconds, rate, parked.ok())
            })
            .collect();
        HostStatus { projections, source_error: source.err(), sink_error: sink.err() }
    }

    /// Whether the host is ready, check by check.
    pub fn readiness(&self) -> Readiness {
        health::readiness(&self.status(), self.ready_max_lag)
    }

    /// The metrics in the OpenMetrics text format, the gauges read now.
    pub fn metrics_text(&self) -> String {
        let status = self.status();
        let g = self.metrics.gauges();
        // The builds running now, not the ones swapped out.
        g.build.clear();
        for (p, s) in self.projections.iter().zip(&status.projections) {
            let l = projection_labels(&s.name);
            let set = |family: &prometheus_client::metrics::family::Family<_, prometheus_client::metrics::gauge::Gauge>, v: u64| {
                family.get_or_create(&l).set(v as i64);
            };
            set(&g.quarantined, s.quarantined.is_some() as u64);
            set(&g.checkpoint, s.checkpoint);
            s.head.inspect(|h| set(&g.head, *h));
            s.lag_events.inspect(|v| set(&g.lag_events, *v));
            s.lag_seconds.inspect(|v| {
                g.lag_seconds.get_or_create(&l).set(*v);
            });
            s.parked.inspect(|v| set(&g.parked_stored, *v));
            set(&g.retrying_keys, s.retrying_keys as u64);
            for (lane, depth) in p.vitals.lanes().unwrap_or_default().queued.iter().enumerate() {
                let mut lane_labels = l.clone();
                lane_labels.push(("lane", lane.to_string()));
                g.queue_depth.get_or_create(&lane_labels).set(*depth as i64);
            }
            if let Some(stall) = p.slot.stalls().last() {
                g.last_stall.get_or_create(&l).set(stall.as_secs_f64());
            }
            let swaps = &p.vitals.meter.swaps;
            swaps.inc_by(s.swaps.saturating_sub(swaps.get()));
            let mut build = l.clone();
            build.push(("version", s.build.clone()));
            g.build.get_or_create(&build).set(1);
        }
        self.metrics.render()
    }
}

/// Samples the monitor's rates until it is gone.
fn sample(monitor: Weak<Monitor>) {
    loop {
        std::thread::sleep(SAMPLE_EVERY);
        match monitor.upgrade() {
            Some(m) => m.sample(),
            None => return,
        }
    }
}
