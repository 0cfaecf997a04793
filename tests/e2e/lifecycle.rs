//! Projections come and go in a running host: a component dropped into the
//! plugins directory starts its projection beside the others, from its
//! checkpoint; one taken away stops its projection and keeps its read model.

use std::time::Duration;

use serde_json::json;

use crate::monitor::scrape;
use crate::support::{event, plugin, signal, wait_until, Reaped, Workspace};
use crate::swap::{follow, with_admin};

const LIMIT: Duration = Duration::from_secs(120);
const STREAMS: usize = 20;

fn pokes(ws: &Workspace, from: usize, to: usize) {
    let events: Vec<_> = (from..to).map(|i| event(&format!("test-{}", i % STREAMS), "Poke", 1, json!({"n": i}))).collect();
    ws.append(&events);
}

/// Drops a component into the plugins directory the way a deployment should: a copy, then a rename.
fn drop_in(ws: &Workspace, name: &str) {
    let staged = ws.config.plugins.join(format!(".{name}.wasm.new"));
    std::fs::copy(plugin(name), &staged).unwrap();
    std::fs::rename(staged, ws.config.plugins.join(format!("{name}.wasm"))).unwrap();
}

/// The projections `projector plugins status` lists.
fn running(ws: &Workspace) -> Vec<String> {
    let out = ws.command(&["plugins", "status"]).output().unwrap();
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    // A quarantined projection has a second line, indented.
    listed.lines().filter(|l| !l.starts_with(' ')).filter_map(|l| l.split_whitespace().next()).map(str::to_owned).collect()
}

/// How many events a projection's plugin handled in this host, from `/metrics`.
fn handled(ws: &Workspace, projection: &str) -> Option<f64> {
    scrape(&ws.config.admin).get(&format!("projector_events_handled_total{{projection={projection}}}")).copied()
}

#[test]
fn a_projection_added_to_a_running_host_catches_up_while_the_others_flow_and_one_taken_away_stops_and_keeps_its_read_model() {
    let ws = with_admin(Workspace::new(&["adversary"]));
    pokes(&ws, 0, 400);
    let host = follow(&ws);
    wait_until("the first projection handles the log", LIMIT, || ws.nodes("Mark").len() == 400);

    // The recorder is added while events keep arriving for both.
    let writer = std::thread::scope(|scope| {
        let appending = scope.spawn(|| {
            for round in 0..10 {
                pokes(&ws, 400 + round * 40, 440 + round * 40);
                std::thread::sleep(Duration::from_millis(30));
            }
        });
        drop_in(&ws, "recorder");
        wait_until("the watcher starts the recorder", LIMIT, || running(&ws).contains(&"recorder".to_owned()));
        appending.join()
    });
    writer.unwrap();
    wait_until("both projections have every event", LIMIT, || ws.nodes("Seen").len() == 800 && ws.nodes("Mark").len() == 800);
    // Each event handled once by the projection added in the middle of the stream, and once by the other.
    wait_until("the metrics are read again", LIMIT, || handled(&ws, "recorder") == Some(800.0));
    assert_eq!(handled(&ws, "adversary"), Some(800.0));

    // Taken away: the recorder stops, keeping its read model and checkpoint; the other flows on.
    std::fs::remove_file(ws.config.plugins.join("recorder.wasm")).unwrap();
    wait_until("the watcher stops the recorder", LIMIT, || !running(&ws).contains(&"recorder".to_owned()));
    pokes(&ws, 800, 900);
    wait_until("the other projection flows on", LIMIT, || ws.nodes("Mark").len() == 900);
    assert_eq!(ws.nodes("Seen").len(), 800, "the stopped projection's read model is kept, and takes nothing more");
    let stopped_at = ws.graph().checkpoint("recorder").unwrap();
    assert!(stopped_at > 0, "its checkpoint is kept");
    wait_until("its series leave the metrics", LIMIT, || !scrape(&ws.config.admin).keys().any(|k| k.starts_with("projector_checkpoint_position{projection=recorder")));
    let status: serde_json::Value = serde_json::from_str(&ws.cli(&["status", "--json"])).unwrap();
    let listed: Vec<&str> = status["projections"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(listed, ["adversary"]);

    // Back again, by `plugins reload`: it resumes from its checkpoint, handling only what it missed.
    let staged = ws.config.plugins.join(".recorder.wasm.new");
    std::fs::copy(plugin("recorder"), &staged).unwrap();
    std::fs::rename(staged, ws.config.plugins.join("recorder.wasm")).unwrap();
    let reload = ws.command(&["plugins", "reload", "recorder"]).output().unwrap();
    let said = String::from_utf8_lossy(&reload.stdout).into_owned();
    // The watcher may have started it first; then the reload finds it unchanged.
    assert!(reload.status.success() && (said.contains("started    recorder 0.1.0") || said.contains("unchanged  recorder")), "{said}{}", String::from_utf8_lossy(&reload.stderr));
    wait_until("the recorder catches up again", LIMIT, || ws.nodes("Seen").len() == 900);
    wait_until("the metrics are read again", LIMIT, || handled(&ws, "recorder") == Some(900.0));

    signal(&host.0, "TERM");
    let mut host: Reaped = host;
    assert!(host.0.wait().unwrap().success(), "{}", std::fs::read_to_string(ws.path("host.log")).unwrap());
    let log = std::fs::read_to_string(ws.path("host.log")).unwrap();
    assert!(log.contains("a projection was added to the running host") && log.contains("stopping it, its read model kept"), "{log}");
}

#[test]
fn a_broken_component_stops_nothing_and_a_quarantined_projection_taken_away_leaves_the_host_to_stop_cleanly() {
    let ws = with_admin(Workspace::new(&["recorder", "adversary"]));
    std::fs::write(ws.path("projector.toml"), "watch = false\n[lanes]\ncount = 2\nquarantine_after = 10\n").unwrap();
    let failing: Vec<_> = (0..100).map(|i| event(&format!("test-{i}"), "Poke", 1, json!({"fail": "permanent"}))).collect();
    ws.append(&failing);
    let host = follow(&ws);
    let reload = || {
        let out = ws.command(&["plugins", "reload"]).output().unwrap();
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    };
    wait_until("the recorder is quarantined", LIMIT, || {
        String::from_utf8_lossy(&ws.command(&["plugins", "status"]).output().unwrap().stdout).contains("QUARANTINED")
    });

    // While a component fails to load, no projection is stopped: it may be the new build.
    std::fs::write(ws.config.plugins.join("broken.wasm"), b"not a component").unwrap();
    std::fs::remove_file(ws.config.plugins.join("recorder.wasm")).unwrap();
    let said = reload();
    assert!(said.contains("recorder: not stopped") && said.contains("broken.wasm"), "{said}");
    assert_eq!(running(&ws), ["adversary", "recorder"]);

    std::fs::remove_file(ws.config.plugins.join("broken.wasm")).unwrap();
    let said = reload();
    assert!(said.contains("stopped    recorder: stopped at checkpoint"), "{said}");
    assert_eq!(running(&ws), ["adversary"]);
    wait_until("the other projection has every event", LIMIT, || ws.nodes("Mark").len() == 100);

    // The quarantine went with the projection: the host stops cleanly.
    signal(&host.0, "TERM");
    let mut host: Reaped = host;
    assert!(host.0.wait().unwrap().success(), "{}", std::fs::read_to_string(ws.path("host.log")).unwrap());
}

#[test]
fn an_upcaster_changed_in_a_running_host_is_taken_up_at_a_read_and_each_event_is_upcast_by_one_chain() {
    let ws = with_admin(Workspace::new(&["recorder"]));
    std::fs::write(ws.path("projector.toml"), "watch = false\n").unwrap();
    let splits = |from: usize, to: usize| -> Vec<_> { (from..to).map(|i| event("test-s", "Split", 1, json!({"parts": 3, "i": i}))).collect() };
    let reload = || {
        let out = ws.command(&["plugins", "reload"]).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    // Seen nodes of split events are `ID#PART`; an event not upcast keeps its own id.
    let seen = || {
        let nodes = ws.nodes("Seen");
        let split = nodes.iter().filter(|n| n["id"].as_str().unwrap().contains('#')).count();
        (nodes.len() - split, split)
    };
    ws.append(&splits(0, 4));
    let host = follow(&ws);
    wait_until("the events are handled as they are", LIMIT, || seen() == (4, 0));

    drop_in(&ws, "shaper");
    let (ok, said) = reload();
    assert!(ok && said.contains("upcasters  recorder: none -> shaper 0.1.0, from its next read"), "{said}");
    ws.append(&splits(4, 8));
    wait_until("the new events are split by the new chain, the old ones left as they were", LIMIT, || seen() == (4, 12));

    // A set that does not hold together is refused; the one in effect stays.
    std::fs::copy(plugin("shaper"), ws.config.plugins.join("shaper-again.wasm")).unwrap();
    let (ok, said) = reload();
    assert!(!ok && said.contains("upcasters: ") && said.contains("upcasters `shaper` and `shaper` both upgrade"), "{said}");
    std::fs::remove_file(ws.config.plugins.join("shaper-again.wasm")).unwrap();
    ws.append(&splits(8, 9));
    wait_until("the chain in effect stays", LIMIT, || seen() == (4, 15));

    std::fs::remove_file(ws.config.plugins.join("shaper.wasm")).unwrap();
    let (ok, said) = reload();
    assert!(ok && said.contains("upcasters  recorder: shaper 0.1.0 -> none"), "{said}");
    ws.append(&splits(9, 11));
    wait_until("without the upcaster, events are handled as they are again", LIMIT, || seen() == (6, 15));

    signal(&host.0, "TERM");
    let mut host: Reaped = host;
    assert!(host.0.wait().unwrap().success(), "{}", std::fs::read_to_string(ws.path("host.log")).unwrap());
    assert!(ws.parked().is_empty(), "{:?}", ws.parked());
}

#[test]
fn a_projection_dropped_in_with_the_upcaster_it_needs_reads_its_first_event_through_it() {
    let ws = with_admin(Workspace::new(&["adversary"]));
    std::fs::write(ws.path("projector.toml"), "watch = false\n").unwrap();
    ws.append(&(0..5).map(|i| event("test-s", "Split", 1, json!({"parts": 2, "i": i}))).collect::<Vec<_>>());
    let host = follow(&ws);
    wait_until("the first projection has the log", LIMIT, || ws.nodes("Mark").len() == 5);
    drop_in(&ws, "shaper");
    drop_in(&ws, "recorder");
    let out = ws.command(&["plugins", "reload"]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() && said.contains("started    recorder"), "{said}");
    // Every event split in two from the first: the new set was in effect before the recorder read.
    wait_until("the recorder has every part", LIMIT, || ws.nodes("Seen").len() == 10);
    assert!(ws.nodes("Seen").iter().all(|n| n["id"].as_str().unwrap().contains('#')), "{:?}", ws.nodes("Seen"));
    signal(&host.0, "TERM");
    let mut host: Reaped = host;
    assert!(host.0.wait().unwrap().success(), "{}", std::fs::read_to_string(ws.path("host.log")).unwrap());
}

#[test]
fn a_projection_its_upcaster_quarantined_resumes_in_the_running_host_when_the_upcaster_is_fixed() {
    const LOOPED: usize = 5;
    let ws = with_admin(Workspace::new(&["recorder", "shaper"]));
    std::fs::write(ws.path("projector.toml"), "watch = false\n[projections.recorder]\ncall_deadline_ms = 200\nquarantine_after = 2\n").unwrap();
    ws.append(&(0..LOOPED).map(|n| event(&format!("test-loop-{n}"), "Looped", 1, json!({}))).collect::<Vec<_>>());
    let host = follow(&ws);
    let status = || String::from_utf8_lossy(&ws.command(&["plugins", "status"]).output().unwrap().stdout).into_owned();
    wait_until("the looping upcaster quarantines the recorder", LIMIT, || status().contains("QUARANTINED"));
    let parked = ws.parked().len();
    assert_eq!(parked, 2, "parked until it had failed twice in a row");

    // The upcaster taken away (its fix): the chain changes and the quarantine lifts; the held events flow as they are.
    std::fs::remove_file(ws.config.plugins.join("shaper.wasm")).unwrap();
    let out = ws.command(&["plugins", "reload"]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() && said.contains("upcasters  recorder: shaper 0.1.0 -> none"), "{said}");
    wait_until("the held events are handled", LIMIT, || ws.nodes("Seen").len() == LOOPED - parked);
    assert!(!status().contains("QUARANTINED"), "{}", status());
    ws.append(&[event("test-after", "Split", 1, json!({"parts": 2}))]);
    wait_until("new events flow", LIMIT, || ws.nodes("Seen").len() == LOOPED - parked + 1);

    signal(&host.0, "TERM");
    let mut host: Reaped = host;
    assert!(host.0.wait().unwrap().success(), "{}", std::fs::read_to_string(ws.path("host.log")).unwrap());
    // The two it parked replay through the chain in effect now.
    let replayed = ws.cli(&["parked", "replay", "--all"]);
    assert!(replayed.contains("replayed 2 events; 0 still parked"), "{replayed}");
    assert_eq!(ws.nodes("Seen").len(), LOOPED + 1);
}

#[test]
fn a_projection_refused_because_another_host_held_it_starts_once_that_host_lets_it_go() {
    let ws = with_admin(Workspace::new(&["adversary"]));
    ws.append(&(0..20).map(|i| event(&format!("test-{}", i % 4), "Poke", 1, json!({"n": i}))).collect::<Vec<_>>());
    // Another host runs the recorder on the same read model, from a plugins directory of its own.
    let other_plugins = ws.path("other-plugins");
    std::fs::create_dir_all(&other_plugins).unwrap();
    std::fs::copy(plugin("recorder"), other_plugins.join("recorder.wasm")).unwrap();
    let mut other = std::process::Command::new(env!("CARGO_BIN_EXE_projector"));
    other.args(["run", "--follow", "--quiet", "--source", &ws.config.source, "--sink", &ws.config.sink, "--admin", ""]);
    other.arg("--plugins").arg(&other_plugins).env("PROJECTOR_CACHE", &ws.config.cache).current_dir(ws.dir.path());
    other.stdout(std::process::Stdio::null()).stderr(std::fs::File::create(ws.path("other.log")).unwrap());
    let other = Reaped(other.spawn().unwrap());
    wait_until("the other host has the recorder's events", LIMIT, || ws.nodes("Seen").len() == 20);

    let host = follow(&ws);
    wait_until("this host runs its own projection", LIMIT, || ws.nodes("Mark").len() == 20);
    drop_in(&ws, "recorder");
    wait_until("the watcher tries the recorder and is refused", LIMIT, || {
        std::fs::read_to_string(ws.path("host.log")).unwrap_or_default().contains("a plugin was not taken up")
    });
    wait_until("the refused projection is not listed", LIMIT, || running(&ws) == ["adversary"]);

    // The other host stops: the watcher tries again and takes the recorder over, where it was left.
    signal(&other.0, "TERM");
    let mut other = other;
    assert!(other.0.wait().unwrap().success(), "{}", std::fs::read_to_string(ws.path("other.log")).unwrap());
    wait_until("the watcher starts the recorder here", LIMIT, || running(&ws).contains(&"recorder".to_owned()));
    ws.append(&[event("test-9", "Poke", 1, json!({"n": 99}))]);
    wait_until("it follows from where the other host left it", LIMIT, || ws.nodes("Seen").len() == 21);
    signal(&host.0, "TERM");
    let mut host: Reaped = host;
    assert!(host.0.wait().unwrap().success(), "{}", std::fs::read_to_string(ws.path("host.log")).unwrap());
}
