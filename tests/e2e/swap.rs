//! Hot swap: new builds taken up at batch boundaries while events flow, with
//! nothing lost and nothing handled twice; bad or incompatible builds refused
//! while the running one stays; the watcher, the admin endpoint and rollback.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use projector::app::Pipeline;
use projector::lanes::Progress;
use projector::router::Until;
use projector::source::embedded::EmbeddedLog;
use projector::source::NewEvent;
use serde_json::json;

use crate::support::{event, plugin, signal, wait_until, Reaped, Workspace};

const SWAPS: usize = 10;
const EVENTS_PER_ROUND: usize = 10_000;
const STREAMS: usize = 100;

/// Puts a build in place the way a deployment should: a copy, then a rename.
pub fn deploy(build: &Path, plugins: &Path) {
    let staged = plugins.join(".recorder.wasm.new");
    std::fs::copy(build, &staged).unwrap();
    std::fs::rename(staged, plugins.join("recorder.wasm")).unwrap();
}

fn round(ws: &Workspace, from: usize, count: usize) {
    let events: Vec<NewEvent> =
        (from..from + count).map(|i| event(&format!("test-{}", i % STREAMS), "Tick", 1, json!({"i": i}))).collect();
    ws.append(&events);
}

/// The workspace with an admin endpoint of its own, on a free loopback port.
pub fn with_admin(mut ws: Workspace) -> Workspace {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    ws.config.admin = format!("127.0.0.1:{port}");
    ws
}

/// A host following the workspace's log, logging into host.log.
pub fn follow(ws: &Workspace) -> Reaped {
    let log = std::fs::File::create(ws.path("host.log")).unwrap();
    let mut host = ws.command(&["run", "--follow", "--quiet"]);
    host.env("PROJECTOR_LOG", "info").stdout(std::process::Stdio::null()).stderr(log);
    Reaped(host.spawn().unwrap())
}

#[test]
fn ten_swaps_under_load_lose_nothing_and_handle_every_event_once_by_the_build_of_its_batch() {
    let mut ws = Workspace::new(&["recorder"]);
    ws.config.lanes.count = Some(4);
    ws.config.lanes.workers = Some(2);
    let builds = [plugin("recorder"), plugin("recorder-healed")];
    let versions = ["0.1.0", "0.1.0+healed"];
    let progress = Arc::new(Progress::default());
    let pipeline = Pipeline::start(&ws.config, &ws.plugins(), Arc::from(ws.graph()), progress.clone()).unwrap();
    let swapper = pipeline.swapper();
    let stop = Arc::new(AtomicBool::new(false));
    let log = ws.path("events.db");
    let stopping = stop.clone();
    let runner = std::thread::spawn(move || pipeline.run(&|_| Ok(Box::new(EmbeddedLog::open(&log)?)), Until::Stopped, &stopping).unwrap());

    let mut appended = 0;
    for swap in 1..=SWAPS {
        round(&ws, appended, EVENTS_PER_ROUND);
        appended += EVENTS_PER_ROUND;
        // Swap while the round is being handled.
        let mid = (appended - EVENTS_PER_ROUND / 2) as u64;
        wait_until("half the round is handled", Duration::from_secs(60), || progress.handled.load(Ordering::Relaxed) >= mid);
        deploy(&builds[swap % 2], &ws.config.plugins);
        let report = swapper.reload(Some("recorder")).unwrap();
        assert_eq!(report.swapped.len(), 1, "{report:?}");
    }
    // Events appended after the last swap meet only the last build.
    let after_last_swap = appended;
    round(&ws, appended, 1000);
    appended += 1000;
    wait_until("every event is handled", Duration::from_secs(120), || {
        progress.handled.load(Ordering::Relaxed) >= appended as u64
    });
    stop.store(true, Ordering::Relaxed);
    let report = runner.join().unwrap();

    assert_eq!((report.handled, report.parked, report.skipped), (appended as u64, 0, 0), "each event handled once");
    let seen = ws.nodes("Seen");
    assert_eq!(seen.len(), appended, "nothing lost");
    // Per stream, in revision order, the build changes only at swaps: each
    // batch was handled by one build, and a lane took up a new one between batches.
    let mut by_stream: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    let mut per_version: BTreeMap<String, usize> = BTreeMap::new();
    for n in &seen {
        let version = n["version"].as_str().unwrap().to_owned();
        assert!(versions.contains(&version.as_str()), "unknown build {version}");
        *per_version.entry(version.clone()).or_default() += 1;
        by_stream.entry(n["stream"].as_str().unwrap().to_owned()).or_default().push((n["revision"].as_i64().unwrap(), version));
    }
    assert!(per_version.values().all(|&n| n > 10_000), "both builds handled events: {per_version:?}");
    let last = versions[SWAPS % 2];
    for (stream, mut handled) in by_stream {
        handled.sort();
        let changes = handled.windows(2).filter(|w| w[0].1 != w[1].1).count();
        assert!(changes <= SWAPS, "{stream}: the build changed {changes} times over {SWAPS} swaps");
        let late = &handled[(after_last_swap / STREAMS)..];
        assert!(late.iter().all(|(_, v)| v == last), "{stream}: an event appended after the last swap met an old build");
    }
    let stalls = swapper.stalls();
    assert_eq!(stalls.len(), SWAPS * 2, "each of the 2 workers took up each swap once");
}

#[test]
fn the_watcher_swaps_the_admin_endpoint_refuses_bad_builds_and_rollback_returns() {
    let ws = with_admin(Workspace::new(&["recorder"]));
    let cli = |args: &[&str]| ws.command(args).output().unwrap();
    let status = || String::from_utf8(cli(&["plugins", "status"]).stdout).unwrap();
    let host = follow(&ws);
    wait_until("the admin endpoint answers", Duration::from_secs(30), || cli(&["plugins", "status"]).status.success());
    assert!(status().contains("0.1.0 "), "{}", status());

    // The watcher takes up a new build dropped into the plugins directory.
    deploy(&plugin("recorder-healed"), &ws.config.plugins);
    wait_until("the watcher swaps in the healed build", Duration::from_secs(30), || status().contains("0.1.0+healed"));
    ws.append(&[event("test-a", "Tick", 1, json!({}))]);
    wait_until("the event is handled", Duration::from_secs(30), || ws.nodes("Seen").len() == 1);
    assert_eq!(ws.nodes("Seen")[0]["version"], "0.1.0+healed");

    // Rollback returns to the build before.
    let out = cli(&["plugins", "rollback", "recorder"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(status().contains("0.1.0 "), "{}", status());

    // A file that is not a component is refused, with its name; the running build stays.
    std::fs::write(ws.config.plugins.join("broken.wasm"), b"not a component").unwrap();
    let out = cli(&["plugins", "reload"]);
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success() && said.contains("broken.wasm"), "{said}");
    std::fs::remove_file(ws.config.plugins.join("broken.wasm")).unwrap();

    // A build with a new read-model version is refused: the read model needs a rebuild.
    deploy(&plugin("recorder-read-model-2"), &ws.config.plugins);
    let out = cli(&["plugins", "reload", "recorder"]);
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success() && said.contains("needs a rebuild"), "{said}");
    assert!(status().contains("0.1.0 "), "the running build stays: {}", status());
    ws.append(&[event("test-b", "Tick", 1, json!({}))]);
    wait_until("the event is handled", Duration::from_secs(30), || ws.nodes("Seen").len() == 2);
    assert!(ws.nodes("Seen").iter().all(|n| n["version"] != "0.2.0"));

    let out = cli(&["plugins", "reload", "nonesuch"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && said.contains("nonesuch: no component in") && said.contains("no running projection is named `nonesuch`"), "{said}");

    signal(&host.0, "TERM");
    let mut host = host;
    assert!(host.0.wait().unwrap().success());
    let log = std::fs::read_to_string(ws.path("host.log")).unwrap();
    assert!(log.contains("swapped in a new build") && log.contains("new build refused"), "{log}");
}

#[test]
fn a_quarantined_projection_resumes_without_a_restart_when_a_fixed_build_is_swapped_in() {
    const EVENTS: usize = 200;
    let ws = with_admin(Workspace::new(&["recorder", "adversary"]));
    std::fs::write(ws.path("projector.toml"), "watch = false\n[lanes]\ncount = 2\nbatch_size = 4\nquarantine_after = 10\n").unwrap();
    let failing: Vec<NewEvent> = (0..EVENTS).map(|i| event(&format!("test-{i}"), "Poke", 1, json!({"fail": "permanent"}))).collect();
    ws.append(&failing);
    let cli = |args: &[&str]| ws.command(args).output().unwrap();
    let status = || String::from_utf8(cli(&["plugins", "status"]).stdout).unwrap();
    let host = follow(&ws);

    wait_until("the recorder is quarantined", Duration::from_secs(60), || status().contains("QUARANTINED"));
    wait_until("the other projection handles every event", Duration::from_secs(60), || ws.nodes("Mark").len() == EVENTS);
    let parked = ws.parked().len();
    assert!((10..EVENTS / 4).contains(&parked), "{parked} parked");
    assert_eq!(ws.nodes("Seen").len(), 0);

    // The fixed build, swapped in: the projection resumes from its held checkpoint.
    deploy(&plugin("recorder-healed"), &ws.config.plugins);
    let reload = cli(&["plugins", "reload", "recorder"]);
    assert!(reload.status.success(), "{}", String::from_utf8_lossy(&reload.stderr));
    wait_until("the held events are handled", Duration::from_secs(60), || ws.nodes("Seen").len() == EVENTS - parked);
    assert!(!status().contains("QUARANTINED"), "{}", status());
    let more: Vec<NewEvent> = (EVENTS..EVENTS + 50).map(|i| event(&format!("test-{i}"), "Poke", 1, json!({"n": i}))).collect();
    ws.append(&more);
    wait_until("new events flow", Duration::from_secs(60), || ws.nodes("Seen").len() == EVENTS + 50 - parked);

    signal(&host.0, "TERM");
    let mut host = host;
    assert!(host.0.wait().unwrap().success(), "{}", std::fs::read_to_string(ws.path("host.log")).unwrap());
    let replayed = ws.cli(&["parked", "replay", "--all"]);
    assert!(replayed.contains(&format!("replayed {parked} events; 0 still parked")), "{replayed}");
    assert_eq!(ws.nodes("Seen").len(), EVENTS + 50);
    assert_eq!(ws.nodes("Mark").len(), EVENTS + 50);
}
