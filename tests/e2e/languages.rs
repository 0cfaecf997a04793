//! Projections in any Wasm language: the audit trail written in Rust, Python
//! (componentize-py) and JavaScript (componentize-qjs), each built from source
//! in this run, gives the hand-written read model and the same read model as
//! the others; and a plugin scaffolded by `projector new` in each language
//! builds, loads and handles an event as generated.

use std::collections::BTreeSet;
use std::path::PathBuf;

use projector::source::NewEvent;
use serde_json::json;

use crate::support::{event, node, rel, repo, Workspace};

const LANGUAGES: [&str; 3] = ["audit-trail", "audit-trail-py", "audit-trail-js"];
const I: &str = "interview-1";

fn change(n: u128, stream: &str, event_type: &str, data: serde_json::Value, actor: serde_json::Value) -> NewEvent {
    let mut e = event(stream, event_type, 1, data);
    e.id = Some(uuid::Uuid::from_u128(n));
    e.metadata = json!({"actor": actor, "occurred_at": format!("2026-01-0{n}T10:00:00Z")});
    e
}

fn user(id: &str) -> serde_json::Value {
    json!({"actor_type": "user", "user_id": id})
}

/// Two people's edits and overrides, the analysis pipeline's own change (not
/// audited), an event the projection does not read, and two unusable events.
fn events() -> Vec<NewEvent> {
    let sentence = json!({"interview_id": I, "sentence_id": "s1"});
    vec![
        event(&format!("Interview-{I}"), "InterviewCreated", 1, json!({"interview_id": I, "title": "Kickoff"})),
        change(1, "Sentence-s1", "SentenceEdited", json!({"interview_id": I, "sentence_id": "s1", "new_text": "Hi."}), user("ana")),
        change(2, "Sentence-s1", "AnalysisOverridden", sentence.clone(), user("ben")),
        change(3, "Sentence-s1", "AnalysisOverridden", sentence.clone(), json!({"actor_type": "system", "service": "analysis"})),
        change(4, "Sentence-s1", "AnalysisCleared", sentence.clone(), user("ana")),
        change(5, &format!("Interview-{I}"), "InterviewMetadataUpdated", json!({"interview_id": I, "title": "Kick-off"}), user("ben")),
        change(6, "Sentence-s2", "SentenceEdited", json!({"sentence_id": "s2", "new_text": "no interview"}), user("ana")),
        change(7, "Sentence-s3", "SentenceEdited", json!({"interview_id": "interview-2", "sentence_id": "s3"}), json!({"actor_type": "user"})),
    ]
}

fn expected_graph() -> BTreeSet<String> {
    let changes = [(1, "SentenceEdited", "Sentence-s1", 0, "ana"), (2, "AnalysisOverridden", "Sentence-s1", 1, "ben"), (4, "AnalysisCleared", "Sentence-s1", 3, "ana"), (5, "InterviewMetadataUpdated", &*format!("Interview-{I}"), 1, "ben")];
    let mut graph: BTreeSet<String> =
        [node("User", "ana", json!({"id": "ana"})), node("User", "ben", json!({"id": "ben"})), node("Interview", I, json!({"id": I}))].into();
    for (n, event_type, stream, revision, who) in changes {
        let id = uuid::Uuid::from_u128(n).to_string();
        let at = format!("2026-01-0{n}T10:00:00Z");
        graph.insert(node("Change", &id, json!({"id": id, "type": event_type, "stream": stream, "revision": revision, "at": at})));
        graph.insert(rel("MADE", ("User", who), ("Change", &id)));
        graph.insert(rel("CONCERNS", ("Change", &id), ("Interview", I)));
    }
    graph
}

#[test]
fn the_audit_trail_in_rust_python_and_javascript_gives_the_expected_read_model() {
    for plugin in LANGUAGES {
        let ws = Workspace::new(&[plugin]);
        ws.append(&events());
        let report = ws.run();
        let got = ws.graph_set();
        let expected = expected_graph();
        assert!(
            got == expected,
            "{plugin}: missing {:#?}\nunexpected {:#?}",
            expected.difference(&got).collect::<Vec<_>>(),
            got.difference(&expected).collect::<Vec<_>>()
        );
        // The event without an interview and the user without an id are parked, nothing else.
        assert_eq!(report.parked, 2, "{plugin}: {:?}", ws.parked().iter().map(|p| &p.error).collect::<Vec<_>>());
        assert!(ws.parked().iter().all(|p| p.error.contains("interview_id") || p.error.contains("user_id")), "{plugin}: {:?}", ws.parked());
    }
}

#[test]
fn the_three_languages_give_byte_identical_exports_over_sample_data() {
    let exports: Vec<String> = LANGUAGES
        .iter()
        .map(|plugin| {
            let ws = Workspace::new(&[plugin]);
            let sample = ws.cli(&["sample", "--events", "3000"]);
            std::fs::write(ws.path("sample.jsonl"), sample).unwrap();
            ws.cli(&["import", "sample.jsonl"]);
            assert_eq!(ws.run().parked, 0, "{plugin} parked sample events");
            ws.export()
        })
        .collect();
    let changes = exports[0].lines().filter(|l| l.contains("\"node\":\"Change\"")).count();
    assert!(changes > 50, "the sample has people's changes to audit: {changes}");
    for (plugin, export) in LANGUAGES.iter().zip(&exports).skip(1) {
        assert!(export == &exports[0], "{plugin}'s read model differs from the Rust one");
    }
}

/// A scratch directory inside the checkout, where `projector new` works.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_scaffolded_plugin_of_each_language_builds_loads_and_handles_an_event() {
    let scratch = Scratch(repo().join("target/scaffold-test"));
    let _ = std::fs::remove_dir_all(&scratch.0);
    crate::support::plugin("audit-trail-py"); // the language toolchains, installed once
    for lang in ["rust", "python", "js"] {
        let name = format!("hello-{lang}");
        let ws = Workspace::new(&[]);
        let made = ws.cli(&["new", &name, "--lang", lang, "--dir", scratch.0.to_str().unwrap()]);
        assert!(made.contains("made"), "{made}");
        let dir = scratch.0.join(&name);

        // Its own test: build, then the sample event gives the expected mutations.
        let test = std::process::Command::new(dir.join("test.sh")).env("PROJECTOR", env!("CARGO_BIN_EXE_projector")).output().unwrap();
        let stdout = String::from_utf8_lossy(&test.stdout);
        assert!(test.status.success(), "{name}/test.sh: {}{stdout}", String::from_utf8_lossy(&test.stderr));
        assert!(stdout.contains("the mutations are the ones"), "{stdout}");

        // Loaded by a host among other plugins' files, it projects the sample event.
        std::fs::copy(dir.join(format!("{name}.wasm")), ws.config.plugins.join(format!("{name}.wasm"))).unwrap();
        let listed = ws.cli(&["plugins", "list"]);
        assert!(listed.contains(&name), "{listed}");
        ws.cli(&["import", dir.join("sample-event.json").to_str().unwrap()]);
        assert_eq!(ws.run().parked, 0);
        let nodes = ws.nodes("Interview");
        assert_eq!(nodes.len(), 1, "{name}: {nodes:?}");
        assert_eq!(nodes[0]["title"], "Kick-off", "{name}: {nodes:?}");
    }
}
