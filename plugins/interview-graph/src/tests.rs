//! The projection's logic, tested natively.

use projector_sdk::testing::{event, mutations};
use projector_sdk::*;
use serde_json::json;

use crate::sentence::sentence_id;
use crate::InterviewGraph;

const INTERVIEW: &str = "6f1c2c1e-0000-4000-8000-000000000001";

fn v2(e: Event) -> Event {
    let version = crate::schema_version(&e.event_type);
    e.at_version(version)
}

#[test]
fn sentence_after_the_first_follows_its_predecessor() {
    let s1 = sentence_id(INTERVIEW, 1);
    let created = v2(event(
        "SentenceCreated",
        &format!("Sentence-{s1}"),
        0,
        json!({"interview_id": INTERVIEW, "sentence_id": s1, "index": 1, "text": "Hi."}),
    ));
    let out = mutations::<InterviewGraph>(&[created]);
    let follows = merge_edge(node("Sentence", sentence_id(INTERVIEW, 0)), "FOLLOWS", node("Sentence", &s1));
    assert!(out.contains(&follows.into()), "{out:?}");
}

#[test]
fn override_replaces_only_the_dimensions_it_gives() {
    let s0 = sentence_id(INTERVIEW, 0);
    let overridden = v2(event(
        "AnalysisOverridden",
        &format!("Sentence-{s0}"),
        2,
        json!({"interview_id": INTERVIEW, "sentence_id": s0, "keywords": ["pricing"]}),
    ))
    .with_metadata(json!({"actor": {"actor_type": "user", "user_id": "ana"}}));
    let out = mutations::<InterviewGraph>(&[overridden]);
    let analysis = node("Analysis", &s0);
    assert!(out.contains(&delete_edges(analysis.clone(), "MENTIONS_KEYWORD")));
    assert!(!out.contains(&delete_edges(analysis.clone(), "MENTIONS_TOPIC")));
    let Mutation::MergeNode(m) = &out[0] else { panic!("{out:?}") };
    assert!(m.set.contains(&Property { name: "overridden_by".into(), value: "ana".into() }));
}

#[test]
fn v1_events_are_refused_with_a_hint() {
    let old = event("SentenceCreated", "Sentence-x", 0, json!({"sentence_id": 3}));
    let err = InterviewGraph::handle(&old).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permanent);
    assert!(err.message.contains("interview-upcasters"), "{}", err.message);
}

#[test]
fn a_missing_field_is_a_permanent_error_that_names_it() {
    let e = v2(event("InterviewCreated", "Interview-x", 0, json!({"interview_id": "x"})));
    let err = InterviewGraph::handle(&e).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permanent);
    assert!(err.message.contains("project_id"), "{}", err.message);
}
