//! Upcasters as units of failure: a looping upcaster fails only the events it
//! takes, for the projections that need it, and once it keeps failing it
//! quarantines them while the others flow.

use projector::source::Source;
use serde_json::json;

use crate::support::{event, Workspace};

/// Counted events of the recorder before the looping ones, and how many loop.
const BEFORE: usize = 200;
const LOOPED: usize = 6;
const QUARANTINE_AFTER: u32 = 3;

#[test]
fn a_looping_upcaster_parks_its_events_at_the_deadline_and_quarantines_only_the_projection_that_needs_it() {
    let ws = Workspace::new(&["recorder", "interview-graph", "interview-upcasters", "shaper"]);
    // The interview projection subscribes by event type, none of them `Looped`: it does not need the shaper.
    std::fs::write(ws.path("sample.jsonl"), ws.cli(&["sample", "--events", "2000"])).unwrap();
    ws.cli(&["import", "sample.jsonl"]);
    let mut events: Vec<_> = (0..BEFORE).map(|n| event(&format!("test-k{}", n % 20), "Counted", 1, json!({"n": n}))).collect();
    events.extend((0..LOOPED).map(|n| event(&format!("test-loop-{n}"), "Looped", 1, json!({}))));
    events.extend((0..BEFORE).map(|n| event(&format!("test-k{}", n % 20), "Counted", 1, json!({"n": BEFORE + n}))));
    ws.append(&events);
    let first_looped = ws.log().read(0, usize::MAX).unwrap().iter().find(|e| e.event_type == "Looped").unwrap().position;
    let settings = format!("[projections.recorder]\ncall_deadline_ms = 200\nquarantine_after = {QUARANTINE_AFTER}\n");
    std::fs::write(ws.path("projector.toml"), settings).unwrap();

    let out = ws.command(&["run", "--quiet"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A quarantine ends the run with an error that names the projection and why.
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("quarantined, its checkpoint held where it stopped: recorder (its upcasters failed 3 events in a row"), "{stderr}");

    // The projection that does not need the shaper handled everything.
    let reference = Workspace::new(&["interview-graph", "interview-upcasters"]);
    std::fs::copy(ws.path("sample.jsonl"), reference.path("sample.jsonl")).unwrap();
    reference.cli(&["import", "sample.jsonl"]);
    reference.cli(&["run", "--quiet"]);
    let interview = |ws: &Workspace| ws.graph_set().into_iter().filter(|l| !l.contains("\"Seen\"")).collect::<Vec<_>>();
    assert_eq!(interview(&ws), interview(&reference), "the interview read model is whole");

    // The recorder's looping events were parked at the deadline, one after
    // another, until the upcaster had failed QUARANTINE_AFTER in a row.
    let parked = ws.parked();
    assert_eq!(parked.len(), QUARANTINE_AFTER as usize, "{parked:#?}");
    for p in &parked {
        assert_eq!((p.projection.as_str(), p.event_type.as_str()), ("recorder", "Looped"));
        assert!(p.error.contains("upcaster `shaper` trapped") && p.error.contains("deadline"), "{}", p.error);
    }
    // Nothing after the first looping event was applied, and the checkpoint waits before the held ones.
    let seen = ws.nodes("Seen");
    assert!(seen.len() <= BEFORE, "{} Seen nodes", seen.len());
    assert!(seen.iter().all(|n| n["position"].as_u64().unwrap() < first_looped));
    assert!(ws.graph().checkpoint("recorder").unwrap() <= first_looped + u64::from(QUARANTINE_AFTER));
}

#[test]
fn events_behind_a_parked_event_of_their_key_are_parked_without_an_upcast() {
    let ws = Workspace::new(&["recorder", "shaper"]);
    std::fs::write(ws.path("projector.toml"), "[projections.recorder]\ncall_deadline_ms = 200\n").unwrap();
    ws.append(&[event("test-k", "Counted", 1, json!({"fail": "permanent"}))]);
    ws.cli(&["run", "--quiet"]);
    let head = ws.parked()[0].position;
    // Later events of the parked key that the shaper would loop on, and one of another key that it does.
    let mut later: Vec<_> = (0..5).map(|_| event("test-k", "Looped", 1, json!({}))).collect();
    later.push(event("test-other", "Looped", 1, json!({})));
    ws.append(&later);

    let out = ws.command(&["run", "--quiet"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.matches("plugin trapped").count(), 1, "only the other key's event reached the upcaster: {stderr}");
    let parked = ws.parked();
    let behind: Vec<_> = parked.iter().filter(|p| p.key == "test-k" && p.position != head).collect();
    assert_eq!(behind.len(), 5, "{parked:#?}");
    assert!(behind.iter().all(|p| p.behind == Some(head) && p.attempts == 0 && p.event_type == "Looped"), "{behind:#?}");
    let other: Vec<_> = parked.iter().filter(|p| p.key == "test-other").collect();
    assert!(other.len() == 1 && other[0].error.contains("deadline"), "{other:#?}");
}
