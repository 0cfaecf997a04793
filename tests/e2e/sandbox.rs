//! The sandbox: a hostile plugin cannot crash, hang or starve the host. Each
//! attack fails its own event, which is parked with the reason, while another
//! projection over the same events keeps flowing.

use serde_json::json;

use crate::support::{event, Workspace};

/// Attacks, and what the parked event's error must say (one of `|`-separated
/// phrases: deep recursion exhausts either the engine's stack or the guest's
/// own stack in linear memory, which ends in an out-of-bounds access).
const ATTACKS: [(&str, &str); 10] = [
    ("loop", "deadline exceeded"),
    ("alloc", "memory"),
    ("recurse", "stack overflow|out of bounds memory access"),
    ("trap", "panic"),
    ("flood", "output bound: 20000 mutations"),
    ("huge-value", "output bound: property `blob`"),
    ("wide", "output bound: 12583"),
    ("foreign-label", "label `Seen` is not declared"),
    ("mixed-list", "property `tags`: a list holds values of one type, and this one mixes text and integer"),
    ("null-in-list", "property `scores`: a list may not hold null"),
];

const INJECTION: &str = "'\"`}) DETACH DELETE n //";

#[test]
fn every_attack_fails_only_its_own_event_and_the_other_projection_flows() {
    let mut ws = Workspace::new(&["adversary", "recorder"]);
    ws.config.lanes.count = Some(2);
    ws.config.lanes.call_deadline_ms = Some(300);
    ws.config.lanes.retry_attempts = Some(2);
    ws.config.lanes.retry_base_ms = Some(1);
    let mut events = Vec::new();
    for (i, (attack, _)) in ATTACKS.iter().enumerate() {
        events.push(event(&format!("test-calm-{i}"), "Poke", 1, json!({"n": i})));
        events.push(event(&format!("test-{attack}"), "Poke", 1, json!({"attack": attack})));
    }
    events.push(event("test-injection", "Poke", 1, json!({"attack": "injection", "text": INJECTION})));
    ws.append(&events);

    let report = ws.run();
    assert_eq!(report.parked as usize, ATTACKS.len(), "{:#?}", ws.parked());
    assert_eq!(ws.nodes("Seen").len(), events.len(), "the recorder handled every event");
    for (attack, reason) in ATTACKS {
        let parked = ws.parked().into_iter().find(|p| p.stream == format!("test-{attack}"));
        let parked = parked.unwrap_or_else(|| panic!("the {attack} event was not parked"));
        assert_eq!(parked.projection, "adversary");
        assert!(reason.split('|').any(|r| parked.error.contains(r)), "{attack}: `{reason}` not in: {}", parked.error);
    }
    let marks = ws.nodes("Mark");
    assert_eq!(marks.len(), ATTACKS.len() + 1, "calm events and the injection are handled: {marks:?}");
    assert!(marks.iter().any(|m| m["text"] == INJECTION), "a value that looks like Cypher is stored literally");
    assert!(!ws.nodes("Seen").iter().any(|n| n["by"] == "adversary"), "a foreign label was written");
}
