//! `just bench` (languages): what a projection costs per event in each
//! language, on the same events — the audit trail written in Rust, Python
//! (componentize-py) and JavaScript (componentize-qjs), called through the
//! sandbox in batches of 256, beside the Rust crate compiled natively. Also the
//! first load of each component (compiled) and a later one (from the cache).
//!
//! `PROJECTOR_BENCH_EVENTS` sets how many sample events are drawn (50,000);
//! the audit trail reads the people's changes among them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use projector::plugins::Plugins;
use projector::sample::Sample;
use projector::source::NewEvent;
use projector::Event;

mod common;

const RUNS: usize = 3;
const BATCH: usize = 256;
const PLUGINS: [(&str, &str); 3] = [("Rust", "audit-trail"), ("Python", "audit-trail-py"), ("JavaScript", "audit-trail-js")];

fn main() {
    let count = std::env::var("PROJECTOR_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(50_000);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let cache = tempfile::tempdir().unwrap();
    let file = |name: &str| -> PathBuf {
        let path = repo.join("target/examples").join(format!("{name}.wasm"));
        assert!(path.exists(), "no {}: run plugins/build.sh audit-trail and plugins/build-lang.sh first", path.display());
        path
    };

    let mut loaded = Vec::new();
    println!("{:<12} {:>14} {:>14}", "plugin", "first load", "cached load");
    for (language, name) in PLUGINS {
        let (first, plugins) = timed(|| Plugins::load_files(&[file(name)], cache.path()).unwrap());
        let (cached, _) = timed(|| Plugins::load_files(&[file(name)], cache.path()).unwrap());
        println!("{language:<12} {:>11.0} ms {:>11.0} ms", ms(first), ms(cached));
        loaded.push((language, plugins));
    }

    let events: Vec<Event> = Sample::new(count, 42)
        .map(|v| serde_json::from_value::<NewEvent>(v).unwrap())
        .enumerate()
        .map(|(i, e)| Event {
            id: uuid::Uuid::from_u128(i as u128).to_string(),
            stream: e.stream,
            event_type: e.event_type,
            schema_version: e.schema_version,
            revision: 0,
            position: i as u64 + 1,
            data: e.data.to_string(),
            metadata: e.metadata.to_string(),
        })
        .filter(|e| loaded[0].1.projections[0].subscribes(e))
        .collect();
    println!("\n{} of {count} sample events are people's changes the audit trail reads; median of {RUNS} runs, batches of {BATCH}\n", events.len());

    let native = median(|| {
        let native: Vec<projector_sdk::Event> = events.iter().map(common::to_sdk).collect();
        timed(|| {
            for batch in native.chunks(BATCH) {
                std::hint::black_box(<audit_trail::AuditTrail as projector_sdk::Projection>::handle_batch(batch));
            }
        })
        .0
    });
    let per_event = |d: Duration| d.as_secs_f64() * 1e6 / events.len() as f64;
    println!("{:<24} {:>10} {:>10} {:>14}", "handler", "µs/event", "events/s", "x Rust Wasm");
    let mut rust_wasm = None;
    for (language, plugins) in &loaded {
        let mut instance = plugins.projections[0].instantiate(Duration::from_secs(30)).unwrap();
        let time = median(|| {
            timed(|| {
                for batch in events.chunks(BATCH) {
                    for outcome in instance.handle(batch).unwrap() {
                        assert!(outcome.is_ok(), "{language}: {outcome:?}");
                    }
                }
            })
            .0
        });
        let base = *rust_wasm.get_or_insert(time);
        println!("{:<24} {:>10.2} {:>10.0} {:>14.1}", format!("{language} (Wasm)"), per_event(time), rate(events.len(), time), ratio(time, base));
    }
    let base = rust_wasm.unwrap();
    println!("{:<24} {:>10.2} {:>10.0} {:>14.2}", "Rust (native)", per_event(native), rate(events.len(), native), ratio(native, base));
}

fn timed<T>(run: impl FnOnce() -> T) -> (Duration, T) {
    let started = Instant::now();
    let value = run();
    (started.elapsed(), value)
}

fn median(mut run: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS).map(|_| run()).collect();
    times.sort();
    times[RUNS / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn rate(events: usize, d: Duration) -> f64 {
    events as f64 / d.as_secs_f64()
}

fn ratio(d: Duration, base: Duration) -> f64 {
    d.as_secs_f64() / base.as_secs_f64()
}
