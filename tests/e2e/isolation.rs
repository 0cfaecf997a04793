//! Isolation in time: a key whose event fails for now, and waits for its next
//! try, holds up neither the other keys of its projection nor the other
//! projections, and the events behind it are parked without handler calls.
//! A stop is honoured while a key waits and while the sink is unavailable.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use projector::source::Source;
use serde_json::json;

use crate::support::{event, plugin, signal, wait_until, Reaped, Workspace};

/// Keys of good events, and how often an event of the bad key comes.
const KEYS: usize = 500;
const BAD_EVERY: usize = 100;

/// `good` events over `KEYS` keys, with an event of `test-bad` (which the
/// recorder fails for now, every time) after every `BAD_EVERY`th.
fn events_with_a_bad_key(ws: &Workspace, good: usize) -> usize {
    let mut events = Vec::new();
    let mut bad = 0;
    for n in 0..good {
        events.push(event(&format!("test-k{}", n % KEYS), "Counted", 1, json!({"n": n})));
        if n % BAD_EVERY == BAD_EVERY - 1 {
            events.push(event("test-bad", "Counted", 1, json!({"fail": "transient"})));
            bad += 1;
        }
    }
    for chunk in events.chunks(10_000) {
        ws.append(chunk);
    }
    bad
}

/// The positions the recorder was asked to handle for the bad key, with how
/// often each, from the lines it logs.
fn calls(stderr: &str) -> BTreeMap<u64, usize> {
    let mut calls = BTreeMap::new();
    for line in stderr.lines() {
        if let Some(at) = line.split("failing for now at position ").nth(1) {
            let position: u64 = at.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap();
            *calls.entry(position).or_default() += 1;
        }
    }
    calls
}

#[test]
fn a_key_failing_for_now_holds_up_no_other_key_and_its_tail_is_parked_without_calls() {
    const GOOD: usize = 50_000;
    let ws = Workspace::new(&["recorder", "adversary"]);
    let bad = events_with_a_bad_key(&ws, GOOD);
    // Default settings: 12 lanes, 5 tries of the failing event.
    let out = ws.command(&["run", "--quiet"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    assert_eq!(ws.nodes("Mark").len(), GOOD + bad, "the other projection handled every event");
    assert_eq!(ws.nodes("Seen").len(), GOOD, "every other key of the failing projection was applied");
    let parked = ws.parked();
    assert_eq!(parked.len(), bad, "the bad key's events, and no other");
    let head = parked.iter().min_by_key(|p| p.position).unwrap();
    assert_eq!(head.attempts, 5, "{}", head.error);
    assert!(head.error.contains("after 5 attempts"), "{}", head.error);
    for p in parked.iter().filter(|p| p.position != head.position) {
        assert_eq!((p.behind, p.attempts), (Some(head.position), 0), "{p:?}");
    }
    // The failing event is tried five times; the events behind it at most once
    // (when they shared its first batch), not five times each.
    let calls = calls(&stderr);
    assert_eq!(calls.get(&head.position), Some(&5), "{calls:?}");
    let again: Vec<_> = calls.iter().filter(|(p, n)| **p != head.position && **n > 1).collect();
    assert!(again.is_empty(), "events behind the failing one were tried again: {again:?}");
    assert!(calls.len() < bad / 2, "{} of the {bad} bad events reached the handler", calls.len());
}

/// Waits at most `limit` for the child to exit.
fn exits_within(child: &mut Reaped, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.0.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn spawn_run(ws: &Workspace, log: &str) -> Reaped {
    let stderr = std::fs::File::create(ws.path(log)).unwrap();
    Reaped(ws.command(&["run", "--quiet"]).stdout(Stdio::null()).stderr(stderr).spawn().unwrap())
}

/// How long a stopping host may take: the longest single wait it may be in
/// (a sink backoff step, a poll) and a commit, with room for a loaded machine.
const PROMPTLY: Duration = Duration::from_secs(20);

#[test]
fn a_stop_while_a_key_waits_for_its_retry_ends_the_run_promptly_and_the_next_run_completes() {
    const GOOD: usize = 5_000;
    let ws = Workspace::new(&["recorder", "adversary"]);
    // The bad key's first retry is ten minutes away.
    std::fs::write(ws.path("projector.toml"), "[lanes]\nretry_base_ms = 600000\n").unwrap();
    let bad = events_with_a_bad_key(&ws, GOOD);
    let mut child = spawn_run(&ws, "run.log");
    // Everything else is done while the bad key waits: nothing is parked yet.
    wait_until("every other event is applied", Duration::from_secs(120), || {
        ws.nodes("Seen").len() == GOOD && ws.nodes("Mark").len() == GOOD + bad
    });
    assert!(ws.parked().is_empty(), "the bad key is still waiting for its retry");
    assert!(child.0.try_wait().unwrap().is_none(), "the run waits for the bad key");

    signal(&child.0, "TERM");
    let status = exits_within(&mut child, PROMPTLY).expect("the run ended promptly after SIGTERM");
    let log = std::fs::read_to_string(ws.path("run.log")).unwrap();
    assert!(status.success(), "exit status {status}: {log}");
    assert!(log.contains("delivered again at the next start"), "the log says what was left: {log}");
    let first_bad = ws.log().read(0, usize::MAX >> 1).unwrap().into_iter().find(|e| e.stream == "test-bad").unwrap();
    assert!(ws.graph().checkpoint("recorder").unwrap() <= first_bad.position, "the checkpoint stays before the waiting key");

    // The fixed build takes up the bad key where the stop left it.
    std::fs::copy(plugin("recorder-healed"), ws.config.plugins.join("recorder.wasm")).unwrap();
    let report = ws.run();
    assert_eq!(report.parked, 0);
    assert!(ws.parked().is_empty());
    assert_eq!(ws.nodes("Seen").len(), GOOD + bad, "the read model of a run that never failed");
}

#[test]
fn a_stop_while_the_sink_is_unavailable_ends_the_run_promptly_and_loses_nothing() {
    let ws = Workspace::new(&["recorder"]);
    ws.append(&(0..2_000).map(|n| event(&format!("test-{}", n % 13), "Counted", 1, json!({"n": n}))).collect::<Vec<_>>());
    // Another process holds the graph's write lock for as long as the test wants.
    let blocker = ws.lock_graph();
    let mut child = spawn_run(&ws, "run.log");
    wait_until("the host waits for the sink", Duration::from_secs(120), || {
        std::fs::read_to_string(ws.path("run.log")).unwrap().contains("sink unavailable")
    });
    signal(&child.0, "TERM");
    let status = exits_within(&mut child, PROMPTLY).expect("the run ended promptly after SIGTERM");
    let log = std::fs::read_to_string(ws.path("run.log")).unwrap();
    assert!(status.success(), "exit status {status}: {log}");
    blocker.execute_batch("COMMIT").unwrap();
    drop(blocker);

    let report = ws.run();
    assert_eq!(report.parked, 0);
    let seen: BTreeSet<(String, i64)> =
        ws.nodes("Seen").iter().map(|n| (n["stream"].as_str().unwrap().to_owned(), n["revision"].as_i64().unwrap())).collect();
    assert_eq!(seen.len(), 2_000, "every event applied once");
}

#[test]
fn a_plugin_that_floods_the_log_writes_a_bounded_amount_and_says_what_it_dropped() {
    let ws = Workspace::new(&["adversary"]);
    ws.append(&[event("test-1", "Poke", 1, json!({"attack": "log-flood"})), event("test-2", "Poke", 1, json!({}))]);
    let out = ws.command(&["run", "--quiet"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}", &stderr[..stderr.len().min(2000)]);
    // 1,000 lines of 64 KiB were logged: what reaches the host's log is cut to size.
    assert!(out.stderr.len() < 512 << 10, "{} bytes of log", out.stderr.len());
    assert!(stderr.contains("more bytes cut"), "a cut line says so");
    assert!(stderr.contains("dropped_lines=936"), "the dropped lines are counted: {}", &stderr[stderr.len().saturating_sub(600)..]);
    assert_eq!(ws.nodes("Mark").len(), 2, "the flooding event was handled");
}
