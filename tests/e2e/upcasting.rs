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

/// Parts one event is split into, and how often the host is killed while it works on them.
const PARTS: u64 = 100_000;
const KILLS: usize = 10;

/// The recorder's nodes by stream, revision and part, without what differs
/// between runs (event ids, `previous` from instance memory).
fn seen(ws: &Workspace) -> std::collections::BTreeSet<String> {
    let part = |n: &serde_json::Value| n["id"].as_str().and_then(|id| id.split_once('#')).map(|(_, p)| p.to_owned());
    ws.nodes("Seen").iter().map(|n| format!("{} {} {:?}", n["stream"], n["revision"], part(n))).collect()
}

#[test]
fn an_event_split_into_many_resumes_where_kill_9_stopped_it_and_nothing_is_lost_or_doubled() {
    use rand::{Rng, SeedableRng};
    use std::process::Stdio;
    use std::time::Instant;
    let events = |ws: &Workspace| {
        let mut events: Vec<_> = (0..50).map(|n| event(&format!("test-k{}", n % 5), "Counted", 1, json!({"n": n}))).collect();
        events.push(event("test-split", "Split", 1, json!({"parts": PARTS})));
        events.extend((50..100).map(|n| event(&format!("test-k{}", n % 5), "Counted", 1, json!({"n": n}))));
        events.push(event("test-split", "Counted", 1, json!({"after": true})));
        ws.append(&events);
    };
    let reference = Workspace::new(&["recorder", "shaper"]);
    events(&reference);
    let started = Instant::now();
    // Small batches: many commits inside the split, for the kills to land between.
    let run = ["run", "--quiet", "--batch-size", "8"];
    reference.cli(&run);
    let full_run = started.elapsed();
    let expected = seen(&reference);
    assert_eq!(expected.len() as u64, PARTS + 101, "every part has a node of its own");

    let ws = Workspace::new(&["recorder", "shaper"]);
    events(&ws);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let parts = |ws: &Workspace| seen(ws).iter().filter(|n| n.contains("Some(")).count() as u64;
    // Each run upcasts the split again and applies some of its parts: the wait
    // adapts so that every kill lands inside the applying, at a random moment.
    let (mut kills, mut wait) = (0, full_run / 4);
    for _ in 0..KILLS * 4 {
        if kills == KILLS {
            break;
        }
        let before = parts(&ws);
        let mut child = ws.command(&run).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(wait.mul_f64(rng.random_range(0.8..1.2)));
        let landed = child.try_wait().unwrap().is_none();
        if landed {
            child.kill().unwrap(); // SIGKILL
        }
        child.wait().unwrap();
        let step = parts(&ws) - before;
        if landed && step < PARTS {
            kills += 1;
        }
        // Aim at about a twentieth of the parts per run.
        wait = if step == 0 { wait.mul_f64(1.25) } else if step > PARTS / 10 { wait.mul_f64(0.8) } else { wait }.min(full_run * 2);
    }
    let parts_before_the_last_run = seen(&ws).iter().filter(|n| n.contains("Some(")).count() as u64;
    ws.cli(&run);
    eprintln!("killed the host {kills} times while it applied a split of {PARTS} (a full run takes {full_run:?}); {parts_before_the_last_run} parts were applied before the last run");
    assert!(ws.parked().is_empty(), "{:?}", ws.parked().first());
    let got = seen(&ws);
    assert_eq!(got.len(), expected.len(), "nodes after kill -9 and restarts");
    let (missing, extra): (Vec<_>, Vec<_>) = (expected.difference(&got).take(3).collect(), got.difference(&expected).take(3).collect());
    assert!(missing.is_empty() && extra.is_empty(), "after kill -9 and restarts, missing: {missing:?}, extra: {extra:?}");
    assert_eq!(kills, KILLS, "kills that landed while the split was applied");
    assert!((1..PARTS).contains(&parts_before_the_last_run), "the kills did not land inside the split");
}
