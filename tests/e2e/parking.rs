//! Failures: malformed events, transient errors, traps and sink outages. A bad
//! event is parked with its context and never blocks other keys; an outage of
//! the sink parks nothing.

use std::time::Duration;

use projector::parking::ParkMode;
use serde_json::json;

use crate::support::{event, Workspace};

fn fast_retries(ws: &mut Workspace, attempts: u32) {
    ws.config.lanes.retry_attempts = Some(attempts);
    ws.config.lanes.retry_base_ms = Some(1);
    ws.config.lanes.retry_cap_ms = Some(5);
}

#[test]
fn malformed_events_are_parked_with_projection_stream_revision_and_position() {
    let ws = Workspace::new(&["recorder", "interview-graph"]);
    ws.append(&[
        event("test-a", "Counted", 1, json!({"n": 0})),
        event("Interview-1", "InterviewCreated", 1, json!({"interview_id": "1", "title": "no project"})),
        event("Interview-2", "InterviewCreated", 1, json!({"interview_id": "2", "project_id": "p", "title": "ok"})),
    ]);
    // A log written by another tool may hold data that is not JSON.
    ws.log()
        .connection()
        .execute(
            "INSERT INTO events (id, stream, revision, event_type, schema_version, data, metadata)
             VALUES ('bad', 'test-b', 0, 'Counted', 1, 'not json {', '{}')",
            [],
        )
        .unwrap();
    ws.append(&[event("test-c", "Counted", 1, json!({"n": 1}))]);
    let report = ws.run();
    assert_eq!(report.parked, 2);
    let parked = ws.parked();
    let missing = parked.iter().find(|p| p.projection == "interview-graph").unwrap();
    for needle in ["projection interview-graph", "stream Interview-1", "revision 0", "position 2", "project_id"] {
        assert!(missing.error.contains(needle), "`{needle}` not in: {}", missing.error);
    }
    let not_json = parked.iter().find(|p| p.projection == "recorder").unwrap();
    for needle in ["projection recorder", "stream test-b", "position 4", "data"] {
        assert!(not_json.error.contains(needle), "`{needle}` not in: {}", not_json.error);
    }
    assert_eq!(ws.nodes("Seen").len(), 2, "the good recorder events are projected");
    assert_eq!(ws.nodes("Interview").len(), 1, "the good interview is projected");
}

#[test]
fn a_transient_failure_is_retried_then_parked_with_its_key_tail_while_other_keys_flow() {
    let mut ws = Workspace::new(&["recorder"]);
    fast_retries(&mut ws, 3);
    ws.append(&[
        event("test-poison", "Counted", 1, json!({"n": 0})),
        event("test-poison", "Counted", 1, json!({"fail": "transient"})),
        event("test-ok", "Counted", 1, json!({"n": 0})),
        event("test-poison", "Counted", 1, json!({"n": 2})),
        event("test-ok", "Counted", 1, json!({"n": 1})),
    ]);
    let report = ws.run();
    assert_eq!(report.parked, 2);
    let parked = ws.parked();
    assert_eq!(parked[0].attempts, 3);
    assert!(parked[0].error.contains("asked to fail for now") && parked[0].error.contains("after 3 attempts"), "{}", parked[0].error);
    assert_eq!((parked[1].revision, parked[1].behind), (2, Some(parked[0].position)));
    let seen: Vec<_> = ws.nodes("Seen").iter().map(|n| (n["stream"].as_str().unwrap().to_owned(), n["revision"].as_i64().unwrap())).collect();
    assert_eq!(seen.len(), 3, "{seen:?}");
    // A later run keeps the key parked: nothing is applied on top of a missing event.
    ws.append(&[event("test-poison", "Counted", 1, json!({"n": 3}))]);
    assert_eq!(ws.run().parked, 1);
}

#[test]
fn in_event_mode_only_the_failing_event_is_parked() {
    let mut ws = Workspace::new(&["recorder"]);
    fast_retries(&mut ws, 1);
    ws.config.lanes.park = Some(ParkMode::Event);
    ws.append(&[
        event("test-p", "Counted", 1, json!({"fail": "permanent"})),
        event("test-p", "Counted", 1, json!({"n": 1})),
    ]);
    let report = ws.run();
    assert_eq!(report.parked, 1);
    assert_eq!(ws.parked()[0].attempts, 1, "a permanent error is not retried");
    assert_eq!(ws.nodes("Seen").len(), 1);
}

#[test]
fn in_event_mode_a_replayed_event_runs_though_its_key_s_later_events_moved_the_guard_past_it() {
    let mut ws = Workspace::new(&["recorder"]);
    fast_retries(&mut ws, 1);
    ws.config.lanes.park = Some(ParkMode::Event);
    std::fs::write(ws.path("projector.toml"), "[lanes]\npark = \"event\"\n").unwrap();
    ws.append(&[
        event("test-p", "Counted", 1, json!({"fail": "permanent"})),
        event("test-p", "Counted", 1, json!({"n": 1})),
    ]);
    ws.run();
    assert_eq!((ws.parked().len(), ws.nodes("Seen").len()), (1, 1));
    let failed = ws.parked()[0].event["id"].as_str().unwrap().to_owned();

    // The fixed build replays it: it runs, though its key's guard is past it.
    std::fs::copy(crate::support::plugin("recorder-healed"), ws.config.plugins.join("recorder.wasm")).unwrap();
    let replayed = ws.cli(&["parked", "replay", "--all"]);
    assert!(replayed.contains("replayed 1 events; 0 still parked"), "{replayed}");
    let seen = ws.nodes("Seen");
    assert!(seen.iter().any(|n| n["id"] == failed.as_str()), "the replayed event was applied, not skipped: {seen:?}");
    assert_eq!(seen.len(), 2);
}

#[test]
fn a_trapping_event_is_parked_and_the_replaced_instance_handles_the_rest() {
    let mut ws = Workspace::new(&["recorder"]);
    fast_retries(&mut ws, 2);
    ws.config.lanes.count = Some(1);
    let mut events = vec![event("test-t", "Counted", 1, json!({"fail": "trap"}))];
    events.extend((0..20).map(|n| event(&format!("test-{n}"), "Counted", 1, json!({"n": n}))));
    ws.append(&events);
    let report = ws.run();
    assert_eq!((report.handled, report.parked), (21, 1));
    let trap = &ws.parked()[0];
    assert!(trap.error.contains("trap") && trap.error.contains("panic"), "{}", trap.error);
    assert_eq!(ws.nodes("Seen").len(), 20);
}

#[test]
fn a_sink_outage_parks_nothing_and_loses_nothing() {
    let ws = Workspace::new(&["recorder"]);
    ws.append(&(0..500).map(|n| event(&format!("test-{}", n % 7), "Counted", 1, json!({"n": n}))).collect::<Vec<_>>());
    // Another process holds the graph's write lock for longer than the sink waits.
    let blocker = ws.lock_graph();
    let release = std::thread::spawn(move || {
        std::thread::sleep(projector::sink::embedded::LOCK_WAIT * 2 + Duration::from_millis(500));
        blocker.execute_batch("COMMIT").unwrap();
    });
    let report = ws.run();
    release.join().unwrap();
    assert_eq!((report.handled, report.parked), (500, 0));
    assert!(ws.parked().is_empty());
    assert_eq!(ws.nodes("Seen").len(), 500);
}

#[test]
fn a_plugin_that_keeps_failing_is_quarantined_while_the_others_flow_and_a_fixed_build_resumes_it() {
    const EVENTS: usize = 200;
    const LIMIT: u32 = 10;
    let mut ws = Workspace::new(&["recorder", "adversary"]);
    (ws.config.lanes.count, ws.config.lanes.batch_size, ws.config.lanes.quarantine_after) = (Some(2), Some(4), Some(LIMIT));
    let settings = format!("[lanes]\ncount = 2\nbatch_size = 4\nquarantine_after = {LIMIT}\n");
    std::fs::write(ws.path("projector.toml"), settings).unwrap();
    // Every event makes this recorder build fail; the adversary just marks it.
    let events: Vec<_> = (0..EVENTS).map(|i| event(&format!("test-{i}"), "Poke", 1, json!({"fail": "permanent"}))).collect();
    ws.append(&events);

    let out = ws.command(&["run", "--quiet"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a quarantine is reported as a failure of the run");
    assert!(stderr.contains("quarantined") && stderr.contains("recorder") && stderr.contains("failed 10 events in a row"), "{stderr}");
    let parked = ws.parked().len();
    assert!((LIMIT as usize..EVENTS / 4).contains(&parked), "the recorder stopped soon after {LIMIT} failures, not after {parked}");
    assert_eq!(ws.nodes("Mark").len(), EVENTS, "the other projection handled every event");
    assert_eq!(ws.nodes("Seen").len(), 0);

    // A fixed build resumes from the held checkpoint: nothing is lost.
    std::fs::remove_file(ws.config.plugins.join("recorder.wasm")).unwrap();
    std::fs::copy(crate::support::plugin("recorder-healed"), ws.config.plugins.join("recorder.wasm")).unwrap();
    let report = ws.run();
    assert!(report.quarantined.is_empty(), "{:?}", report.quarantined);
    assert_eq!(ws.nodes("Seen").len(), EVENTS - parked);
    let replayed = ws.cli(&["parked", "replay", "--all"]);
    assert!(replayed.contains(&format!("replayed {parked} events; 0 still parked")), "{replayed}");
    assert_eq!(ws.nodes("Seen").len(), EVENTS);
    assert_eq!(ws.nodes("Mark").len(), EVENTS);
}

#[test]
fn parked_replay_runs_each_projection_under_its_configured_call_deadline() {
    let ws = Workspace::new(&["adversary"]);
    std::fs::write(ws.path("projector.toml"), "[projections.adversary]\ncall_deadline_ms = 300\n").unwrap();
    ws.append(&[event("test-loop", "Poke", 1, json!({"attack": "loop"}))]);
    let out = ws.command(&["run", "--quiet"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let parked = ws.parked();
    assert_eq!(parked.len(), 1);
    assert!(parked[0].error.contains("ran longer than 300ms"), "{}", parked[0].error);
    assert_eq!(parked[0].attempts, projector::lanes::DEADLINE_TRIES, "a deadline is tried twice, not five times");
    // The replay gives the plugin the same 300 ms, not the default 5 s.
    let replayed = ws.cli(&["parked", "replay", "--all"]);
    assert!(replayed.contains("0 events; 1 still parked") && replayed.contains("ran longer than 300ms"), "{replayed}");
}

#[test]
fn a_plugin_whose_every_call_runs_to_its_deadline_is_quarantined_by_the_time_it_fails() {
    const EVENTS: usize = 100;
    let ws = Workspace::new(&["adversary", "recorder"]);
    // Far more failures than this run has events would be needed by count; 1.5 s of them suffices.
    let settings = "[projections.adversary]\ncall_deadline_ms = 200\nquarantine_after = 1000\nquarantine_after_failing_ms = 1500\n";
    std::fs::write(ws.path("projector.toml"), settings).unwrap();
    ws.append(&(0..EVENTS).map(|i| event(&format!("test-{i}"), "Poke", 1, json!({"attack": "loop"}))).collect::<Vec<_>>());
    let out = ws.command(&["run", "--quiet"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a quarantine fails the run");
    assert!(stderr.contains("adversary") && stderr.contains("failed every call for"), "{stderr}");
    let parked = ws.parked().len();
    // Each event costs two 200 ms tries: all of them would take 20 s on two workers.
    assert!(parked < EVENTS / 2, "quarantined after {parked} slow failures, not at the end");
    assert_eq!(ws.nodes("Seen").len(), EVENTS, "the other projection handled every event");
}
