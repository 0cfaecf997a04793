//! `just bench` (third part): how long the pipeline stalls when a projection's
//! build is swapped while events flow. Ten swaps between two builds of the
//! recorder test projection over 100,000 events into the null sink; the stall
//! is each lane's pause to take up the new build at its batch boundary (the
//! compile and the checks happen before, off the hot path).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use projector::app::Pipeline;
use projector::config::Config;
use projector::lanes::Progress;
use projector::plugins::Plugins;
use projector::router::Until;
use projector::sink::null::NullSink;
use projector::source::embedded::EmbeddedLog;
use projector::source::{ExpectedRevision, NewEvent};

const SWAPS: usize = 10;
const EVENTS: usize = 100_000;

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let plugins_dir = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins_dir).unwrap();
    let builds = [repo.join("target/test-plugins/recorder.wasm"), repo.join("target/test-plugins/recorder-healed.wasm")];
    let deploy = |build: &Path| {
        std::fs::copy(build, plugins_dir.join(".staged")).unwrap();
        std::fs::rename(plugins_dir.join(".staged"), plugins_dir.join("recorder.wasm")).unwrap();
    };
    deploy(&builds[0]);
    let config = Config { plugins: plugins_dir.clone(), cache: repo.join("target/test-cache"), ..Config::default() };
    let plugins = Plugins::load_dir(&plugins_dir, &config.cache).expect("the test plugins: run `just plugins` first");
    let log_path = dir.path().join("events.db");
    let events: Vec<NewEvent> = (0..EVENTS)
        .map(|i| NewEvent {
            id: None,
            stream: format!("test-{}", i % 1000),
            event_type: "Tick".into(),
            schema_version: 1,
            data: serde_json::json!({"i": i}),
            metadata: serde_json::json!({}),
        })
        .collect();
    let mut log = EmbeddedLog::open(&log_path).unwrap();
    log.append(&events, ExpectedRevision::Any).unwrap();

    let progress = Arc::new(Progress::default());
    let pipeline = Pipeline::start(&config, &plugins, Arc::new(NullSink), progress.clone()).unwrap();
    let swapper = pipeline.swapper();
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let runner = std::thread::spawn(move || pipeline.run(&|_| Ok(Box::new(EmbeddedLog::open(&log_path)?)), Until::Stopped, &stopping).unwrap());
    for swap in 1..=SWAPS {
        let at = (swap * EVENTS / (SWAPS + 1)) as u64;
        while progress.handled.load(Ordering::Relaxed) < at {
            std::thread::sleep(Duration::from_millis(1));
        }
        deploy(&builds[swap % 2]);
        assert_eq!(swapper.reload(Some("recorder")).unwrap().swapped.len(), 1);
    }
    while progress.handled.load(Ordering::Relaxed) < EVENTS as u64 {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    let report = runner.join().unwrap();
    let mut stalls = swapper.stalls();
    stalls.sort();
    let pick = |q: f64| stalls[((stalls.len() - 1) as f64 * q).round() as usize];
    println!("\n9. hot swap: {SWAPS} swaps while {EVENTS} events flow (recorder -> null sink, {} lanes)\n", config.lane_settings("recorder").lanes);
    println!("| figure | value |\n|---|---:|");
    println!("| lane stalls measured | {} |", stalls.len());
    println!("| stall p50 | {:.3} ms |", pick(0.5).as_secs_f64() * 1e3);
    println!("| stall p99 | {:.3} ms |", pick(0.99).as_secs_f64() * 1e3);
    println!("| stall max | {:.3} ms |", stalls.last().unwrap().as_secs_f64() * 1e3);
    println!("| events handled (each once) | {} |", report.handled);
    println!("\ngoal: under 10 ms");
}
