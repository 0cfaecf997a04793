//! Per-key order, filters and checkpoints, with the recorder test plugin.

use projector::source::NewEvent;
use serde_json::json;

use crate::support::{event, Workspace};

/// `streams` streams of `per_stream` events each, interleaved round-robin.
fn interleaved(streams: usize, per_stream: usize) -> Vec<NewEvent> {
    (0..per_stream)
        .flat_map(|n| (0..streams).map(move |s| event(&format!("test-{s}"), "Counted", 1, json!({"n": n}))))
        .collect()
}

#[test]
fn events_of_a_key_reach_the_handler_in_stream_order_under_many_lanes() {
    let mut ws = Workspace::new(&["recorder"]);
    ws.config.lanes.count = Some(5);
    ws.config.lanes.workers = Some(3);
    ws.config.lanes.batch_size = Some(7);
    ws.append(&interleaved(40, 50));
    let report = ws.run();
    assert_eq!(report.handled, 2000);
    let seen = ws.nodes("Seen");
    assert_eq!(seen.len(), 2000);
    for node in seen {
        let revision = node["revision"].as_i64().unwrap();
        let previous = node["previous"].as_i64();
        let expected = (revision > 0).then(|| revision - 1);
        assert_eq!(previous, expected, "out of order: {node}");
    }
}

#[test]
fn unsubscribed_events_never_reach_the_handler_and_the_checkpoint_passes_them() {
    let ws = Workspace::new(&["recorder"]);
    ws.append(&interleaved(2, 3));
    ws.append(&[event("other-1", "Counted", 1, json!({"n": 0})), event("other-2", "Counted", 1, json!({"fail": "trap"}))]);
    let report = ws.run();
    assert_eq!((report.handled, report.parked), (6, 0));
    assert!(ws.nodes("Seen").iter().all(|n| n["stream"].as_str().unwrap().starts_with("test-")));
    assert_eq!(ws.graph().checkpoint("recorder").unwrap(), 9, "the checkpoint covers all 8 positions");
}

#[test]
fn a_second_run_resumes_from_the_checkpoint() {
    let ws = Workspace::new(&["recorder"]);
    ws.append(&interleaved(3, 10));
    assert_eq!(ws.run().handled, 30);
    assert_eq!(ws.run().handled, 0);
    ws.append(&interleaved(1, 2));
    assert_eq!(ws.run().handled, 2);
    assert_eq!(ws.nodes("Seen").len(), 32);
}
