//! `just bench`, figure 11: isolation in time. Two projections over the same
//! 50,500 events into the embedded sink, default settings: the adversary test
//! plugin (healthy: a node per event) and the recorder, which fails for now on
//! every event of one key (500 of them). How fast does the healthy projection
//! go beside the failing key, against the same run where that key does not fail?
//! Median of `RUNS` runs each.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use projector::app::run_with;
use projector::config::Config;
use projector::plugins::Plugins;
use projector::router::Until;
use projector::sink::embedded::EmbeddedGraph;
use projector::sink::Sink;
use projector::source::embedded::EmbeddedLog;
use projector::source::{ExpectedRevision, NewEvent};

const RUNS: usize = 3;
const GOOD: usize = 50_000;
const KEYS: usize = 500;
const BAD_EVERY: usize = 100;

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let cache = repo.join("target/test-cache");
    let plugin = |name: &str| repo.join("target/test-plugins").join(format!("{name}.wasm"));
    let plugins = Plugins::load_files(&[plugin("adversary"), plugin("recorder")], &cache).expect("run `just plugins` first");
    let dir = tempfile::tempdir().unwrap();
    let config = Config { cache, ..Config::default() };

    let mut times = Vec::new();
    for failing in [false, true] {
        let log = dir.path().join(format!("events-{failing}.db"));
        let head = import(&log, failing);
        let mut runs: Vec<Duration> = (0..RUNS).map(|run| healthy_done(&config, &plugins, &log, &dir.path().join(format!("graph-{failing}-{run}.db")), head)).collect();
        runs.sort();
        times.push(runs[RUNS / 2]);
    }
    let events = (GOOD + GOOD / BAD_EVERY) as f64;
    println!("\n11. isolation: a healthy projection beside one that fails for now on one key ({} events, default settings)\n", events);
    println!("| run | healthy projection done in | events/s |\n|---|---:|---:|");
    for (what, time) in [("the key does not fail", times[0]), ("the key fails for now (5 tries, then parked)", times[1])] {
        println!("| {what} | {:.2} s | {:.0} |", time.as_secs_f64(), events / time.as_secs_f64());
    }
    println!("\nratio (throughput beside the failing key / without it): {:.2} (goal >= 0.9)", times[0].as_secs_f64() / times[1].as_secs_f64());
}

/// The log of the figure: `GOOD` events over `KEYS` keys and, after every
/// `BAD_EVERY`th, an event of `test-bad`, which the recorder fails for now
/// when `failing`. Returns the position after the last event.
fn import(path: &Path, failing: bool) -> u64 {
    let event = |stream: String, data| NewEvent { id: None, stream, event_type: "Counted".into(), schema_version: 1, data, metadata: serde_json::json!({}) };
    let mut events = Vec::new();
    for n in 0..GOOD {
        events.push(event(format!("test-k{}", n % KEYS), serde_json::json!({"n": n})));
        if n % BAD_EVERY == BAD_EVERY - 1 {
            let data = if failing { serde_json::json!({"fail": "transient"}) } else { serde_json::json!({"n": n}) };
            events.push(event("test-bad".into(), data));
        }
    }
    let mut log = EmbeddedLog::open(path).unwrap();
    let mut last = 0;
    for chunk in events.chunks(10_000) {
        last = log.append(chunk, ExpectedRevision::Any).unwrap().last().copied().unwrap_or(last);
    }
    last + 1
}

/// How long until the healthy projection's checkpoint reaches `head`.
fn healthy_done(config: &Config, plugins: &Plugins, log: &Path, graph: &Path, head: u64) -> Duration {
    let sink = Arc::new(EmbeddedGraph::open(graph).unwrap());
    let watch = EmbeddedGraph::open(graph).unwrap();
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    std::thread::scope(|scope| {
        let runner = scope.spawn(|| run_with(config, plugins, &|_| Ok(Box::new(EmbeddedLog::open(log)?)), sink, Until::CaughtUp, &stop, Arc::default()));
        while watch.checkpoint("adversary").unwrap() < head {
            std::thread::sleep(Duration::from_millis(5));
        }
        let done = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        runner.join().unwrap().unwrap();
        done
    })
}
