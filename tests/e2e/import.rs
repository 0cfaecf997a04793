//! `projector import`: a file goes in whole or not at all, once however often it
//! is imported, and every error names the file and the line.

use std::process::Stdio;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::support::{Reaped, Workspace};

fn lines(count: usize) -> Vec<String> {
    (0..count).map(|n| json!({"stream": format!("s-{}", n % 97), "type": "Counted", "data": {"n": n}}).to_string()).collect()
}

fn events_in_log(ws: &Workspace) -> u64 {
    projector::source::count(&ws.config.source).unwrap().unwrap()
}

#[test]
fn a_bad_line_in_the_middle_imports_nothing_and_the_error_names_the_file_and_line() {
    let ws = Workspace::new(&[]);
    let mut file = lines(25_000);
    file[15_000] = json!({"stream": "s", "type": "T", "data": {}, "metadata": [1]}).to_string();
    std::fs::write(ws.path("events.jsonl"), file.join("\n")).unwrap();
    let out = ws.command(&["import", "events.jsonl"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("events.jsonl line 15001") && stderr.contains("`metadata` must be a JSON object"), "{stderr}");
    assert_eq!(events_in_log(&ws), 0, "nothing of the file was written");

    let mut bytes = b"{\"stream\": \"s\", \"type\": \"T\", \"data\": {}}\n".to_vec();
    bytes.extend(b"{\"stream\": \"s\xff\", \"type\": \"T\", \"data\": {}}\n");
    std::fs::write(ws.path("latin1.jsonl"), bytes).unwrap();
    let out = ws.command(&["import", "latin1.jsonl"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("latin1.jsonl line 2 is not UTF-8"), "{stderr}");
    assert_eq!(events_in_log(&ws), 0);
}

#[test]
fn importing_a_file_twice_appends_it_once_and_equal_lines_stay_two_events() {
    let ws = Workspace::new(&[]);
    let mut file = lines(25_000);
    file.push(file[0].clone()); // the same event written twice, on purpose
    std::fs::write(ws.path("events.jsonl"), file.join("\n")).unwrap();
    let first = ws.cli(&["import", "events.jsonl"]);
    assert!(first.contains("imported 25001 events (0 already present)"), "{first}");
    let again = ws.cli(&["import", "events.jsonl"]);
    assert!(again.contains("imported 0 events (25001 already present)"), "{again}");
    assert_eq!(events_in_log(&ws), 25_001);
}

#[test]
fn kill_9_during_imports_then_importing_again_leaves_each_event_once() {
    const EVENTS: usize = 200_000;
    let ws = Workspace::new(&[]);
    std::fs::write(ws.path("events.jsonl"), ws.cli(&["sample", "--events", &EVENTS.to_string()])).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut kills = 0;
    for _ in 0..12 {
        let mut child = Reaped(ws.command(&["import", "events.jsonl"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
        std::thread::sleep(Duration::from_millis(rng.random_range(20..1500)));
        if child.0.try_wait().unwrap().is_none() {
            child.0.kill().unwrap();
            kills += 1;
        }
        child.0.wait().unwrap();
        let held = events_in_log(&ws);
        assert!(held == 0 || held == EVENTS as u64, "a killed import left {held} of {EVENTS} events");
    }
    assert!(kills >= 10, "only {kills} imports were killed while they ran");
    let last = ws.cli(&["import", "events.jsonl"]);
    assert!(last.contains("events ("), "{last}");
    assert_eq!(events_in_log(&ws), EVENTS as u64, "each event once");
    let distinct: i64 = ws.log().connection().query_row("SELECT count(DISTINCT id) FROM events", [], |r| r.get(0)).unwrap();
    assert_eq!(distinct, EVENTS as i64);
}
