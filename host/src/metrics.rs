//! The host's instruments, in the Prometheus registry that `GET /metrics`
//! writes out. Every name and unit is here, once; docs/operations.md lists
//! them with their meaning.
//!
//! Two kinds: what the hot path counts as it goes ([`Meter`], one per
//! projection, cloned handles onto atomic counters and per-batch
//! histograms), and what is read when someone asks ([`Gauges`]: positions,
//! lag, queues, set by the monitor just before it writes the registry out).

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

/// Label pairs of one series.
pub type Labels = Vec<(&'static str, String)>;
/// A counter of seconds.
pub type Seconds = Counter<f64, AtomicU64>;
type FloatGauge = Gauge<f64, AtomicU64>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// The content type of what [`Metrics::render`] writes (OpenMetrics text,
/// which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Bounds of the duration histograms: 100 µs to about 26 s.
fn duration_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 4.0, 10))
}

/// Bounds of the batch-size histogram: 1 to 4,096 events.
fn size_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 13))
}

/// Every family of the registry.
struct Families {
    handled: Family<Labels, Counter>,
    applied: Family<Labels, Counter>,
    skipped: Family<Labels, Counter>,
    parked: Family<Labels, Counter>,
    retried: Family<Labels, Counter>,
    outage: Family<Labels, Seconds>,
    busy: Family<Labels, Seconds>,
    swaps: Family<Labels, Counter>,
    batch_events: Histograms,
    batch_seconds: Histograms,
    call_seconds: Histograms,
    commit_seconds: Histograms,
    gauges: Gauges,
}

/// The values read when someone asks, one series per projection (per lane for queues).
#[derive(Clone, Default)]
pub struct Gauges {
    pub quarantined: Family<Labels, Gauge>,
    pub checkpoint: Family<Labels, Gauge>,
    pub head: Family<Labels, Gauge>,
    pub lag_events: Family<Labels, Gauge>,
    pub lag_seconds: Family<Labels, FloatGauge>,
    pub parked_stored: Family<Labels, Gauge>,
    pub retrying_keys: Family<Labels, Gauge>,
    pub queue_depth: Family<Labels, Gauge>,
    pub last_stall: Family<Labels, FloatGauge>,
    pub build: Family<Labels, Gauge>,
}

impl Gauges {
    /// Removes the series of a projection that stopped running, and of its `lanes` lanes.
    pub fn forget(&self, labels: &Labels, lanes: usize) {
        for family in [&self.quarantined, &self.checkpoint, &self.head, &self.lag_events, &self.parked_stored, &self.retrying_keys] {
            family.remove(labels);
        }
        self.lag_seconds.remove(labels);
        self.last_stall.remove(labels);
        for lane in 0..lanes {
            let mut lane_labels = labels.clone();
            lane_labels.push(("lane", lane.to_string()));
            self.queue_depth.remove(&lane_labels);
        }
    }
}

/// The registry and its families.
pub struct Metrics {
    registry: Mutex<Registry>,
    families: Families,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("projector");
        let counter = |r: &mut Registry, name: &str, help: &str| {
            let f = Family::<Labels, Counter>::default();
            r.register(name, help, f.clone());
            f
        };
        let seconds = |r: &mut Registry, name: &str, help: &str| {
            let f = Family::<Labels, Seconds>::default();
            r.register_with_unit(name, help, Unit::Seconds, f.clone());
            f
        };
        let histogram = |r: &mut Registry, name: &str, help: &str, unit: Option<Unit>, buckets: fn() -> Histogram| {
            let f: Histograms = Family::new_with_constructor(buckets);
            match unit {
                Some(unit) => r.register_with_unit(name, help, unit, f.clone()),
                None => r.register(name, help, f.clone()),
            }
            f
        };
        let families = Families {
            handled: counter(&mut r, "events_handled", "Events a lane finished with, whatever the outcome"),
            applied: counter(&mut r, "events_applied", "Events whose mutations were committed to the sink"),
            skipped: counter(&mut r, "events_skipped", "Re-deliveries a guard showed were applied before"),
            parked: counter(&mut r, "events_parked", "Events parked (stored with the reason, for replay)"),
            retried: counter(&mut r, "events_retried", "Handler tries that failed for now; the key waits for another"),
            outage: seconds(&mut r, "sink_outage", "Time workers spent waiting for an unavailable sink"),
            busy: seconds(&mut r, "worker_busy", "Time a worker spent on batches; its rate is the worker's busy ratio"),
            swaps: counter(&mut r, "swaps", "Builds swapped in (and rollbacks) while running"),
            batch_events: histogram(&mut r, "batch_events", "Events in one batch a worker took", None, size_buckets),
            batch_seconds: histogram(&mut r, "batch_duration", "Time from taking a batch to its commit", Some(Unit::Seconds), duration_buckets),
            call_seconds: histogram(&mut r, "plugin_call_duration", "Time of one handler call (a batch of events)", Some(Unit::Seconds), duration_buckets),
            commit_seconds: histogram(&mut r, "sink_commit_duration", "Time of one commit to the sink", Some(Unit::Seconds), duration_buckets),
            gauges: Gauges::default(),
        };
        let g = &families.gauges;
        let gauge = |r: &mut Registry, name: &str, help: &str, f: &Family<Labels, Gauge>| r.register(name, help, f.clone());
        gauge(&mut r, "quarantined", "1 while the projection is quarantined (the reason is in `projector status`)", &g.quarantined);
        gauge(&mut r, "checkpoint_position", "Where the projection resumes: every position below it is done", &g.checkpoint);
        gauge(&mut r, "source_head_position", "The position of the last event in the source", &g.head);
        gauge(&mut r, "lag_events", "Events from the checkpoint to the head (sources whose positions count events)", &g.lag_events);
        r.register_with_unit("lag", "Age of the oldest event not yet done, from its recorded time; 0 when caught up", Unit::Seconds, g.lag_seconds.clone());
        gauge(&mut r, "parked_events", "Parked events stored and not yet resolved", &g.parked_stored);
        gauge(&mut r, "retrying_keys", "Keys waiting for another try", &g.retrying_keys);
        gauge(&mut r, "lane_queue_depth", "Events queued on a lane", &g.queue_depth);
        r.register_with_unit("last_swap_stall", "How long a lane paused to take up the last build swapped in", Unit::Seconds, g.last_stall.clone());
        gauge(&mut r, "projection_build", "1 for the build a projection runs", &g.build);
        let info: Labels = vec![
            ("version", env!("CARGO_PKG_VERSION").to_owned()),
            ("wasmtime", env!("PROJECTOR_WASMTIME_VERSION").to_owned()),
            ("contract", env!("PROJECTOR_CONTRACT").to_owned()),
        ];
        r.register("build", "The host's version, its wasmtime and the plugin contract it speaks", Info::new(info));
        Self { registry: Mutex::new(r), families }
    }

    /// The hot-path instruments of one projection.
    pub fn meter(&self, projection: &str) -> Meter {
        let f = &self.families;
        let l = projection_labels(projection);
        Meter {
            projection: projection.to_owned(),
            handled: f.handled.get_or_create_owned(&l),
            applied: f.applied.get_or_create_owned(&l),
            skipped: f.skipped.get_or_create_owned(&l),
            parked: f.parked.get_or_create_owned(&l),
            retried: f.retried.get_or_create_owned(&l),
            outage: f.outage.get_or_create_owned(&l),
            swaps: f.swaps.get_or_create_owned(&l),
            batch_events: f.batch_events.get_or_create_owned(&l),
            batch_seconds: f.batch_seconds.get_or_create_owned(&l),
            call_seconds: f.call_seconds.get_or_create_owned(&l),
            commit_seconds: f.commit_seconds.get_or_create_owned(&l),
            busy: f.busy.clone(),
        }
    }

    /// The series set when someone asks.
    pub fn gauges(&self) -> &Gauges {
        &self.families.gauges
    }

    /// The registry in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        encode(&mut out, &registry).expect("writing into a String cannot fail");
        out
    }
}

/// The labels of a projection's series.
pub fn projection_labels(projection: &str) -> Labels {
    vec![("projection", projection.to_owned())]
}

/// One projection's hot-path instruments: handles onto the registry's
/// series, cheap to clone and to count with.
#[derive(Clone)]
pub struct Meter {
    pub projection: String,
    pub handled: Counter,
    pub applied: Counter,
    pub skipped: Counter,
    pub parked: Counter,
    pub retried: Counter,
    pub outage: Seconds,
    pub swaps: Counter,
    pub batch_events: Histogram,
    pub batch_seconds: Histogram,
    pub call_seconds: Histogram,
    pub commit_seconds: Histogram,
    busy: Family<Labels, Seconds>,
}

impl Meter {
    /// A worker's busy-time counter.
    pub fn worker_busy(&self, worker: usize) -> Seconds {
        self.busy.get_or_create_owned(&vec![("projection", self.projection.clone()), ("worker", worker.to_string())])
    }
}

impl Default for Meter {
    /// Instruments counted into a registry of their own, for a pipeline nobody watches.
    fn default() -> Self {
        Metrics::new().meter("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_names_its_series_by_the_prometheus_conventions() {
        let metrics = Metrics::new();
        let meter = metrics.meter("graph");
        meter.handled.inc_by(3);
        meter.outage.inc_by(0.5);
        meter.call_seconds.observe(0.002);
        meter.worker_busy(1).inc_by(1.0);
        metrics.gauges().lag_seconds.get_or_create(&projection_labels("graph")).set(2.5);
        let text = metrics.render();
        for line in [
            "projector_events_handled_total{projection=\"graph\"} 3",
            "projector_sink_outage_seconds_total{projection=\"graph\"} 0.5",
            "projector_worker_busy_seconds_total{projection=\"graph\",worker=\"1\"} 1.0",
            "projector_lag_seconds{projection=\"graph\"} 2.5",
            "projector_plugin_call_duration_seconds_count{projection=\"graph\"} 1",
            "# TYPE projector_build info",
        ] {
            assert!(text.contains(line), "no `{line}` in\n{text}");
        }
        assert!(text.contains("projector_build_info{version=\""), "{text}");
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
    }
}
