//! `just bench` (second part): the interview projection into a Bolt server,
//! beside the raw driver sending the same `UNWIND` statements in the same run.
//! The difference is what the host adds: handler calls, lanes, guards and the
//! checkpoint.
//!
//! The server is the one `tests/servers/bolt.sh` starts, or the Neo4j that
//! `PROJECTOR_TEST_NEO4J_URI` (`_USER`, `_PASSWORD`) names; its database is
//! emptied. `PROJECTOR_BENCH_NEO4J_EVENTS` sets the event count (3,000).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use projector::app::run_with;
use projector::config::Config;
use projector::plugins::{Plugins, UpcasterChain};
use projector::router::Until;
use projector::sample::Sample;
use projector::sink::neo4j::{cypher, Neo4jSink, Settings};
use projector::source::embedded::EmbeddedLog;
use projector::source::{ExpectedRevision, NewEvent, Source};

/// Runs of each, alternating, so that both see the same server warmth.
const RUNS: usize = 3;
/// Events per transaction, as a lane's default batch.
const BATCH: usize = 256;

fn main() {
    let events: u64 = std::env::var("PROJECTOR_BENCH_NEO4J_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let uri = std::env::var("PROJECTOR_TEST_NEO4J_URI").unwrap_or_else(|_| "bolt://127.0.0.1:17687".into());
    let user = std::env::var("PROJECTOR_TEST_NEO4J_USER").unwrap_or_else(|_| "root".into());
    let password = std::env::var("PROJECTOR_TEST_NEO4J_PASSWORD").unwrap_or_else(|_| "projector-test".into());
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("password"), &password).unwrap();
    let settings = Settings { user: user.clone(), password_file: Some(dir.path().join("password")), ..Settings::default() };
    let cache = repo.join("target/test-cache");
    let plugins = Plugins::load_files(
        &[repo.join("target/plugins/interview-graph.wasm"), repo.join("target/plugins/interview-upcasters.wasm")],
        &cache,
    )
    .expect("the interview plugins: run `just plugins` first");
    let log = dir.path().join("events.db");
    let all: Vec<NewEvent> = Sample::new(events, 42).map(|v| serde_json::from_value(v).unwrap()).collect();
    EmbeddedLog::open(&log).unwrap().append(&all, ExpectedRevision::Any).unwrap();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = neo4rs::ConfigBuilder::default().uri(&uri).user(user.as_str()).password(password.as_str()).build().unwrap();
    let graph = neo4rs::Graph::connect(config).unwrap();
    let empty = || runtime.block_on(graph.run(neo4rs::query("MATCH (n) DETACH DELETE n"))).unwrap();

    // The host, one lane (concurrent lanes merging the same keyword conflict on some servers).
    let mut host_config = Config { cache, sink: uri.clone(), neo4j: settings.clone(), ..Config::default() };
    host_config.lanes.count = Some(1);
    let host = || {
        empty();
        let sink = Arc::new(Neo4jSink::open(&uri, &settings).unwrap());
        let started = Instant::now();
        let report = run_with(&host_config, &plugins, &|_| Ok(Box::new(EmbeddedLog::open(&log)?)), sink, Until::CaughtUp, &AtomicBool::new(false), Arc::default()).unwrap();
        assert_eq!((report.handled, report.parked), (events, 0));
        started.elapsed()
    };
    host(); // creates the constraints, and warms the server up

    // The raw driver: the same statements, built before the clock starts, one transaction per batch.
    let keys: HashMap<String, String> = plugins.projections[0].scope.labels.clone().into_iter().collect();
    let statements = raw_statements(&plugins, &log, &keys);
    let raw = || {
        empty();
        let started = Instant::now();
        runtime.block_on(async {
            for batch in &statements {
                let mut txn = graph.start_txn().await.unwrap();
                for q in batch {
                    txn.run(q.clone()).await.unwrap();
                }
                txn.commit().await.unwrap();
            }
        });
        started.elapsed()
    };
    let (mut hosts, mut raws) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        raws.push(raw());
        hosts.push(host());
    }
    let (host, raw) = (median(hosts), median(raws));
    let rate = |t: Duration| events as f64 / t.as_secs_f64();
    println!("\n8. interview projection -> Bolt server at {uri} ({events} events, median of {RUNS})\n");
    println!("| figure | time | events/s |\n|---|---:|---:|");
    println!("| 8a. raw neo4rs: the same UNWIND statements, one transaction per {BATCH} events | {:.2} s | {:.0} |", raw.as_secs_f64(), rate(raw));
    println!("| 8b. Projector, 1 lane, batch {BATCH}, with guards and checkpoints | {:.2} s | {:.0} |", host.as_secs_f64(), rate(host));
    println!("\nhost/raw time ratio: {:.2} (goal: < 1.20)", host.as_secs_f64() / raw.as_secs_f64());
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The statements the sink would send for the sample's mutations, batch by batch.
fn raw_statements(plugins: &Plugins, log: &Path, keys: &HashMap<String, String>) -> Vec<Vec<neo4rs::Query>> {
    let mut chain = UpcasterChain::new(&plugins.upcasters, &plugins.upcasters, projector::runtime::limits::DEFAULT_CALL_DEADLINE, projector::plugins::KeepsFailing::NEVER).unwrap();
    let events: Vec<_> =
        EmbeddedLog::open(log).unwrap().read(0, usize::MAX >> 1).unwrap().into_iter().flat_map(|e| chain.upcast(e).unwrap()).collect();
    let mut instance = plugins.projections[0].instantiate(Duration::from_secs(5)).unwrap();
    events
        .chunks(BATCH)
        .map(|batch| {
            let mutations: Vec<_> = instance.handle(batch).unwrap().into_iter().flat_map(|r| r.unwrap()).collect();
            cypher::mutations(mutations.iter(), keys).unwrap()
        })
        .collect()
}
