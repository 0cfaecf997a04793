//! The Neo4j sink against a real Bolt/Cypher server: the server that
//! `tests/servers/bolt.sh` installs and starts on loopback (ArcadeDB), or the
//! Neo4j that `PROJECTOR_TEST_NEO4J_URI` names (with `PROJECTOR_TEST_NEO4J_USER`
//! and `PROJECTOR_TEST_NEO4J_PASSWORD`). The tests empty that database.

use std::process::Stdio;
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{event, repo, Reaped, Workspace};

/// The server the script starts, and its credentials.
const LOCAL_URI: &str = "bolt://127.0.0.1:17687";
const LOCAL_USER: &str = "root";
const LOCAL_PASSWORD: &str = "projector-test";

/// The tests share one database, so they take turns.
static SERVER: Mutex<()> = Mutex::new(());

fn given_uri() -> Option<String> {
    std::env::var("PROJECTOR_TEST_NEO4J_URI").ok().filter(|u| !u.is_empty())
}

fn bolt_script(command: &str) {
    let status = std::process::Command::new(repo().join("tests/servers/bolt.sh")).arg(command).status().unwrap();
    assert!(status.success(), "tests/servers/bolt.sh {command} failed");
}

/// A workspace whose sink is the test server's (emptied) database, and the turn to use it.
fn neo4j_workspace(plugins: &[&str]) -> (Workspace, MutexGuard<'static, ()>) {
    static STARTED: Once = Once::new();
    // `just test` starts the server before and stops it after; a bare `cargo test` starts it here.
    STARTED.call_once(|| bolt_script("start"));
    let turn = SERVER.lock().unwrap_or_else(|p| p.into_inner());
    let mut ws = Workspace::new(plugins);
    let (uri, user, password) = match given_uri() {
        Some(uri) => (
            uri,
            std::env::var("PROJECTOR_TEST_NEO4J_USER").unwrap_or_else(|_| "neo4j".into()),
            std::env::var("PROJECTOR_TEST_NEO4J_PASSWORD").unwrap_or_default(),
        ),
        None => (LOCAL_URI.into(), LOCAL_USER.into(), LOCAL_PASSWORD.into()),
    };
    // The CLI in this workspace reads the same settings from its projector.toml.
    std::fs::write(ws.path("password"), &password).unwrap();
    std::fs::write(
        ws.path("projector.toml"),
        format!("[neo4j]\nuser = \"{user}\"\npassword_file = \"password\"\ntimeout_ms = 5000\n"),
    )
    .unwrap();
    ws.config.sink = uri;
    ws.config.neo4j.user = user;
    ws.config.neo4j.password_file = Some(ws.path("password"));
    ws.config.neo4j.timeout_ms = 5000;
    empty(&ws);
    (ws, turn)
}

/// Deletes everything in the test database.
fn empty(ws: &Workspace) {
    let settings = &ws.config.neo4j;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let config = neo4rs::ConfigBuilder::default()
            .uri(&ws.config.sink)
            .user(settings.user.as_str())
            .password(std::fs::read_to_string(settings.password_file.as_ref().unwrap()).unwrap())
            .build()
            .unwrap();
        let graph = neo4rs::Graph::connect(config).unwrap();
        graph.run(neo4rs::query("MATCH (n) DETACH DELETE n")).await.unwrap();
    });
}

fn import_sample(ws: &Workspace, events: u64) {
    let file = ws.path("sample.jsonl");
    let sample = ws.command(&["sample", "--events", &events.to_string(), "--seed", "3"]).output().unwrap();
    std::fs::write(&file, sample.stdout).unwrap();
    let status = ws.command(&["import"]).arg(&file).stdout(Stdio::null()).status().unwrap();
    assert!(status.success());
}

const INTERVIEW: [&str; 2] = ["interview-graph", "interview-upcasters"];

/// The read model of the sample in the embedded sink, for comparison.
fn embedded_reference(events: u64) -> std::collections::BTreeSet<String> {
    let reference = Workspace::new(&INTERVIEW);
    import_sample(&reference, events);
    reference.cli(&["run", "--quiet"]);
    reference.graph_set()
}

fn assert_same(neo4j: &std::collections::BTreeSet<String>, embedded: &std::collections::BTreeSet<String>) {
    let missing: Vec<_> = embedded.difference(neo4j).take(5).collect();
    let extra: Vec<_> = neo4j.difference(embedded).take(5).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing from Neo4j: {missing:#?}\nonly in Neo4j: {extra:#?}");
}

#[test]
fn the_interview_projection_gives_the_same_graph_in_neo4j_as_in_the_embedded_sink() {
    const EVENTS: u64 = 1500;
    let (mut ws, _turn) = neo4j_workspace(&INTERVIEW);
    // Several lanes, so that transactions touching the same keyword race.
    ws.config.lanes.count = Some(4);
    import_sample(&ws, EVENTS);
    let report = ws.run();
    assert_eq!((report.handled, report.parked), (EVENTS, 0), "{:#?}", ws.parked());
    let neo4j = ws.graph_set();
    assert!(neo4j.len() > EVENTS as usize);
    let reference = Workspace::new(&INTERVIEW);
    import_sample(&reference, EVENTS);
    reference.cli(&["run", "--quiet"]);
    assert_same(&neo4j, &reference.graph_set());
    assert!(ws.cli(&["graph", "stats"]).contains("Interview"), "graph stats reads Neo4j");
    // The console's explorer finds the same neighbours in both.
    let shape = |n: projector::sink::Neighbourhood| {
        let edges: std::collections::BTreeSet<_> = n.edges.into_iter().map(|e| (e.rel, e.outgoing, e.other.label, e.other.key)).collect();
        (n.node.props, edges)
    };
    for interview in reference.nodes("Interview").iter().take(3) {
        let key = interview["id"].as_str().unwrap();
        let (embedded, neo4j) = (reference.graph().neighbours("Interview", key, 100).unwrap(), ws.graph().neighbours("Interview", key, 100).unwrap());
        assert_eq!(shape(neo4j.expect("Neo4j has the node")), shape(embedded.expect("the embedded graph has the node")));
    }
    assert!(ws.graph().neighbours("Interview", "no-such-key", 10).unwrap().is_none());
}

#[test]
fn a_second_host_on_a_held_neo4j_read_model_refuses_and_with_wait_takes_over_when_it_stops() {
    let (ws, _turn) = neo4j_workspace(&INTERVIEW);
    crate::writers::with_sample(&ws, 1_000);
    crate::writers::a_second_host_refuses_and_with_wait_takes_over(&ws);
}

#[test]
fn a_stopped_host_whose_neo4j_lease_was_taken_over_writes_nothing_when_it_wakes_and_stops() {
    let (ws, _turn) = neo4j_workspace(&INTERVIEW);
    crate::writers::with_sample(&ws, 1_500);
    crate::writers::a_stopped_host_whose_lease_was_taken_over_writes_nothing(&ws);
}

#[test]
fn neo4j_fences_commits_under_a_lease_taken_over() {
    let (ws, _turn) = neo4j_workspace(&INTERVIEW);
    crate::writers::a_lease_taken_over_fences_the_old_holders_commits(ws.graph().as_ref());
}

#[test]
fn values_that_look_like_cypher_are_stored_literally_and_bad_names_are_refused() {
    const EVIL: [&str; 3] = ["'\"`}) DETACH DELETE n //", "x` }) MATCH (m) DETACH DELETE m //", "$rows"];
    let (ws, _turn) = neo4j_workspace(&["recorder", "adversary"]);
    let mut events = vec![event("test-calm", "Poke", 1, json!({}))];
    for text in EVIL {
        events.push(event(&format!("test-{text}"), "Poke", 1, json!({"attack": "injection", "text": text})));
    }
    ws.append(&events);
    let report = ws.run();
    assert_eq!(report.parked, 0, "{:#?}", ws.parked());
    let seen = ws.nodes("Seen");
    assert_eq!(seen.len(), events.len(), "every event's node is there: nothing was deleted");
    let texts: Vec<_> = ws.nodes("Mark").iter().filter_map(|m| m["text"].as_str().map(str::to_owned)).collect();
    for text in EVIL {
        assert!(seen.iter().any(|n| n["stream"] == format!("test-{text}")), "stream name `{text}` kept literally");
        assert!(texts.iter().any(|t| t == text), "value `{text}` kept literally: {texts:?}");
    }
    let out = ws.command(&["graph", "nodes", "Seen`) DETACH DELETE n //"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a valid label"), "{err}");
    assert_eq!(ws.nodes("Seen").len(), events.len());
}

#[test]
fn a_server_restart_mid_run_loses_nothing_and_duplicates_nothing() {
    const EVENTS: u64 = 4000;
    if given_uri().is_some() {
        crate::support::skipped(
            "a_server_restart_mid_run_loses_nothing_and_duplicates_nothing",
            "PROJECTOR_TEST_NEO4J_URI names a server this test did not start, so it cannot restart it",
        );
        return;
    }
    let (ws, _turn) = neo4j_workspace(&INTERVIEW);
    import_sample(&ws, EVENTS);
    let log = std::fs::File::create(ws.path("host.log")).unwrap();
    let mut host = Reaped(ws.command(&["run", "--quiet", "--lanes", "2"]).stdout(Stdio::null()).stderr(log).spawn().unwrap());
    let started = Instant::now();
    while ws.graph().checkpoint("interview-graph").unwrap() == 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "no progress in 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    bolt_script("restart");
    let status = host.0.wait().unwrap();
    let stderr = std::fs::read_to_string(ws.path("host.log")).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("sink unavailable"), "the host saw the outage: {stderr}");
    let parked = ws.parked();
    assert!(parked.is_empty(), "nothing is parked for an outage, but {} were: {}", parked.len(), parked[0].error);
    assert_eq!(ws.graph().checkpoint("interview-graph").unwrap(), EVENTS + 1);
    assert_same(&ws.graph_set(), &embedded_reference(EVENTS));
}
