//! The interview projection, end to end: hand-written events give exactly the
//! expected graph; v1 and v2 events give the same graph.

use std::collections::BTreeSet;

use projector::sample::sentence_uuid;
use projector::source::NewEvent;
use serde_json::json;

use crate::support::{by, event, node, rel, Workspace};

const I: &str = "a0000000-0000-4000-8000-000000000001";
const P: &str = "b0000000-0000-4000-8000-000000000002";

/// One interview: two sentences, analyses, an edit, an override and a clear.
/// `v1` writes SentenceCreated and AnalysisGenerated in their legacy schema.
fn interview(v1: bool) -> Vec<NewEvent> {
    let (s0, s1) = (sentence_uuid(I, 0), sentence_uuid(I, 1));
    let id = |index: u32, uuid: &str| if v1 { json!(index) } else { json!(uuid) };
    let version = if v1 { 1 } else { 2 };
    let sentence = |index: u32, uuid: &str, text: &str, speaker: &str| {
        let mut data = json!({"interview_id": I, "sentence_id": id(index, uuid), "text": text, "speaker": speaker});
        if !v1 {
            data["index"] = json!(index);
        }
        event(&format!("Sentence-{uuid}"), "SentenceCreated", version, data)
    };
    let analysis = |index: u32, uuid: &str, keywords: &[&str], topic: &str, class: [&str; 3]| {
        let data = json!({
            "interview_id": I, "sentence_id": id(index, uuid), "model": "m", "model_version": "1", "confidence": 0.5,
            "classification": {"function_type": class[0], "structure_type": class[1], "purpose": class[2]},
            "keywords": keywords, "topics": [topic], "domain_keywords": ["saas"],
        });
        event(&format!("Sentence-{uuid}"), "AnalysisGenerated", version, data)
    };
    vec![
        event(&format!("Interview-{I}"), "InterviewCreated", 1, json!({"interview_id": I, "project_id": P, "title": "Kickoff", "source": "kickoff.txt", "language": "en"})),
        sentence(0, &s0, "Hello there.", "A"),
        sentence(1, &s1, "We need better pricing?", "B"),
        analysis(0, &s0, &["greeting"], "intro", ["declarative", "simple", "statement"]),
        analysis(1, &s1, &["pricing", "cost"], "cost", ["interrogative", "compound", "question"]),
        by(event(&format!("Sentence-{s0}"), "SentenceEdited", 1, json!({"interview_id": I, "sentence_id": s0, "new_text": "Hello!"})), "ana"),
        by(event(&format!("Sentence-{s1}"), "AnalysisOverridden", 1, json!({"interview_id": I, "sentence_id": s1, "keywords": ["pricing"]})), "ben"),
        by(event(&format!("Sentence-{s0}"), "AnalysisCleared", 1, json!({"interview_id": I, "sentence_id": s0})), "ana"),
        event(&format!("Interview-{I}"), "InterviewStatusChanged", 1, json!({"interview_id": I, "status": "completed"})),
    ]
}

fn expected_graph() -> BTreeSet<String> {
    let (s0, s1) = (sentence_uuid(I, 0), sentence_uuid(I, 1));
    let (s0, s1) = (s0.as_str(), s1.as_str());
    let named = |label: &str, name: &str| node(label, name, json!({"name": name}));
    let a1 = ("Analysis", s1);
    [
        node("Project", P, json!({"id": P})),
        node("Interview", I, json!({"id": I, "title": "Kickoff", "source": "kickoff.txt", "language": "en", "status": "completed", "project_id": P})),
        node("Sentence", s0, json!({"id": s0, "text": "Hello!", "index": 0, "speaker": "A", "interview_id": I, "edited": true, "edited_by": "ana"})),
        node("Sentence", s1, json!({"id": s1, "text": "We need better pricing?", "index": 1, "speaker": "B", "interview_id": I, "edited": false})),
        node("Analysis", s1, json!({"id": s1, "model": "m", "model_version": "1", "confidence": 0.5, "overridden": true, "overridden_by": "ben"})),
        named("Keyword", "greeting"),
        named("Keyword", "pricing"),
        named("Keyword", "cost"),
        named("Topic", "intro"),
        named("Topic", "cost"),
        named("DomainKeyword", "saas"),
        named("FunctionType", "declarative"),
        named("FunctionType", "interrogative"),
        named("StructureType", "simple"),
        named("StructureType", "compound"),
        named("Purpose", "statement"),
        named("Purpose", "question"),
        rel("CONTAINS_INTERVIEW", ("Project", P), ("Interview", I)),
        rel("HAS_SENTENCE", ("Interview", I), ("Sentence", s0)),
        rel("HAS_SENTENCE", ("Interview", I), ("Sentence", s1)),
        rel("FOLLOWS", ("Sentence", s0), ("Sentence", s1)),
        rel("HAS_ANALYSIS", ("Sentence", s1), a1),
        rel("MENTIONS_KEYWORD", a1, ("Keyword", "pricing")),
        rel("MENTIONS_TOPIC", a1, ("Topic", "cost")),
        rel("MENTIONS_DOMAIN_KEYWORD", a1, ("DomainKeyword", "saas")),
        rel("HAS_FUNCTION_TYPE", a1, ("FunctionType", "interrogative")),
        rel("HAS_STRUCTURE_TYPE", a1, ("StructureType", "compound")),
        rel("HAS_PURPOSE", a1, ("Purpose", "question")),
    ]
    .into_iter()
    .map(|line| serde_json::from_str::<serde_json::Value>(&line).unwrap().to_string())
    .collect()
}

fn assert_same(actual: &BTreeSet<String>, expected: &BTreeSet<String>) {
    let missing: Vec<_> = expected.difference(actual).collect();
    let extra: Vec<_> = actual.difference(expected).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing from the graph: {missing:#?}\nnot expected: {extra:#?}");
}

#[test]
fn a_hand_written_interview_gives_exactly_the_expected_graph() {
    let ws = Workspace::new(&["interview-graph", "interview-upcasters"]);
    ws.append(&interview(false));
    let report = ws.run();
    assert_eq!((report.handled, report.parked), (9, 0));
    assert_same(&ws.graph_set(), &expected_graph());
}

#[test]
fn v1_events_give_the_same_graph_as_v2_events() {
    let v1 = Workspace::new(&["interview-graph", "interview-upcasters"]);
    v1.append(&interview(true));
    v1.run();
    let v2 = Workspace::new(&["interview-graph", "interview-upcasters"]);
    v2.append(&interview(false));
    v2.run();
    assert_eq!(v1.export(), v2.export());
    assert!(v1.parked().is_empty());
}

#[test]
fn without_the_upcaster_v1_events_are_parked_with_a_hint() {
    let ws = Workspace::new(&["interview-graph"]);
    ws.append(&interview(true));
    ws.run();
    let parked = ws.parked();
    assert!(!parked.is_empty());
    let first = &parked[0];
    assert_eq!(first.event_type, "SentenceCreated");
    assert!(first.error.contains("interview-upcasters"), "{}", first.error);
    // Key-tail parking: the rest of the interview waits behind the first failure.
    assert!(parked[1..].iter().all(|p| p.behind == Some(first.position)), "{parked:#?}");
}

#[test]
fn one_lane_and_twelve_lanes_export_byte_identical_graphs() {
    let sample: Vec<NewEvent> = projector::sample::Sample::new(3000, 11)
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    let mut exports = Vec::new();
    for lanes in [1, 12] {
        let mut ws = Workspace::new(&["interview-graph", "interview-upcasters"]);
        ws.config.lanes.count = Some(lanes);
        ws.append(&sample);
        let report = ws.run();
        assert_eq!((report.handled, report.parked), (3000, 0));
        exports.push(ws.export());
    }
    assert!(exports[0].lines().count() > 3000);
    assert!(exports[0] == exports[1], "the graphs differ between 1 and 12 lanes");
}
