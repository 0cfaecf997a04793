//! Projections in any Wasm language: the audit trail written in Rust, Python
//! (componentize-py) and JavaScript (componentize-qjs), each built from source
//! in this run, gives the hand-written read model and the same read model as
//! the others; a plugin scaffolded by `projector new` in each language
//! builds, loads and handles an event as generated; and the examples of
//! docs/authoring.md build and agree.

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

#[test]
fn the_audit_trail_hangs_its_changes_on_the_interview_graph_s_shared_interview_nodes() {
    let ws = Workspace::new(&["interview-graph", "interview-upcasters", "audit-trail"]);
    let sample = ws.cli(&["sample", "--events", "3000"]);
    std::fs::write(ws.path("sample.jsonl"), sample).unwrap();
    ws.cli(&["import", "sample.jsonl"]);
    assert_eq!(ws.run().parked, 0);
    let titled: BTreeSet<String> =
        ws.nodes("Interview").iter().filter(|n| n["title"].is_string()).map(|n| n["id"].as_str().unwrap().to_owned()).collect();
    let concerned: BTreeSet<String> = ws
        .export()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["rel"] == "CONCERNS")
        .map(|v| v["to"][1].as_str().unwrap().to_owned())
        .collect();
    assert!(!concerned.is_empty());
    assert!(concerned.is_subset(&titled), "changes concern interviews the interview graph made: {:?}", concerned.difference(&titled).collect::<Vec<_>>());
}

/// A scratch directory inside the checkout, where `projector new` works.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = repo().join("target").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        crate::support::plugin("audit-trail-py"); // the language toolchains, installed once
        Scratch(dir)
    }

    /// `projector new NAME --lang LANG` here; the plugin's directory.
    fn scaffold(&self, ws: &Workspace, name: &str, lang: &str) -> PathBuf {
        let made = ws.cli(&["new", name, "--lang", lang, "--dir", self.0.to_str().unwrap()]);
        assert!(made.contains("made"), "{made}");
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a script of a scaffolded plugin with the host under test; its standard output.
fn script(path: &std::path::Path) -> String {
    let out = std::process::Command::new(path)
        .env("PROJECTOR", env!("CARGO_BIN_EXE_projector"))
        // The scripts run the host beside the plugin: its cache goes there too, not into the checkout.
        .current_dir(path.parent().unwrap())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}: {}{stdout}", path.display(), String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn a_scaffolded_plugin_of_each_language_builds_loads_and_handles_an_event() {
    let scratch = Scratch::new("scaffold-test");
    for lang in ["rust", "python", "js"] {
        let name = format!("hello-{lang}");
        let ws = Workspace::new(&[]);
        let dir = scratch.scaffold(&ws, &name, lang);

        // Its own test: build, then the sample event gives the expected mutations.
        let stdout = script(&dir.join("test.sh"));
        assert!(stdout.contains("the mutations are the ones"), "{stdout}");

        // Loaded by a host, it projects the sample event.
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

/// The code block of `lang` that follows `heading` in docs/authoring.md.
fn guide_example(heading: &str, lang: &str) -> String {
    let guide = std::fs::read_to_string(repo().join("docs/authoring.md")).unwrap();
    let from = guide.find(heading).unwrap_or_else(|| panic!("docs/authoring.md has no {heading}"));
    let fence = format!("```{lang}\n");
    let start = from + guide[from..].find(&fence).unwrap() + fence.len();
    let end = start + guide[start..].find("```").unwrap();
    guide[start..end].to_owned()
}

#[test]
fn the_authoring_guide_s_example_builds_and_behaves_the_same_in_each_language() {
    let scratch = Scratch::new("guide-test");
    let ws = Workspace::new(&[]);
    let rust = format!("{}\n#[cfg(test)]\nmod tests {{\n    use super::*;\n{}}}\n", guide_example("### Rust", "rust"), guide_example("The SDK's `testing` module", "rust"));
    let sources = [
        ("rust", "src/lib.rs", rust.replace("\"audit\"", "\"audit-rust\"")),
        ("python", "app.py", guide_example("### Python", "python").replace("name=\"audit\"", "name=\"audit-python\"")),
        ("js", "projection.js", guide_example("### JavaScript", "js").replace("name: \"audit\"", "name: \"audit-js\"")),
    ];
    let edit = |actor_type: &str| {
        let event = json!({"id": uuid::Uuid::from_u128(1), "stream": "Sentence-s1", "type": "SentenceEdited", "data": {"interview_id": "i1"},
            "metadata": {"actor": {"actor_type": actor_type, "user_id": "dara"}}});
        let path = ws.path(&format!("{actor_type}.json"));
        std::fs::write(&path, event.to_string()).unwrap();
        path
    };
    let (by_user, by_system) = (edit("user"), edit("system"));
    let change = uuid::Uuid::from_u128(1).to_string();
    let expected = json!([
        {"merge_edge": [["User", "dara"], "MADE", ["Change", change]], "set": {}},
        {"merge_edge": [["Change", change], "CONCERNS", ["Interview", "i1"]], "set": {}},
    ]);
    for (lang, file, source) in sources {
        let name = format!("audit-{lang}");
        let dir = scratch.scaffold(&ws, &name, lang);
        std::fs::write(dir.join(file), source).unwrap();
        script(&dir.join("build.sh"));
        let wasm = dir.join(format!("{name}.wasm"));
        let tried = |event: &PathBuf| -> serde_json::Value { serde_json::from_str(&ws.cli(&["plugins", "try", wasm.to_str().unwrap(), "--event", event.to_str().unwrap()])).unwrap() };
        assert_eq!(tried(&by_user)["mutations"], expected, "{name}");
        assert_eq!(tried(&by_system)["mutations"], json!([]), "{name}: the system's changes are not audited");
    }
}
