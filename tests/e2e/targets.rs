//! Wrong targets are refused, naming the path, and nothing is created: an empty
//! path, the source and the sink swapped, a directory, a file that is not
//! Projector's, a read model that does not exist.

use serde_json::json;

use crate::support::{event, Workspace};

/// Runs the binary on the workspace's plugins with these source and sink URLs.
fn with_targets(ws: &Workspace, source: &str, sink: &str, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(args)
        .args(["--source", source, "--sink", sink, "--admin", ""])
        .arg("--plugins")
        .arg(&ws.config.plugins)
        .env("PROJECTOR_CACHE", &ws.config.cache)
        .env("PROJECTOR_LOG", "warn")
        .current_dir(ws.dir.path())
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn wrong_targets_are_refused_naming_the_path_and_nothing_is_created() {
    let ws = Workspace::new(&["recorder"]);
    ws.append(&[event("test-1", "Counted", 1, json!({"n": 1}))]);
    let (log, graph) = (ws.config.source.clone(), ws.config.sink.clone());
    let entries = || std::fs::read_dir(ws.dir.path()).unwrap().count();
    let before = entries();

    let (ok, err) = with_targets(&ws, &log, "embedded:", &["run", "--quiet"]);
    assert!(!ok && err.contains("no path for a graph"), "{err}");

    let (ok, err) = with_targets(&ws, &log, &log, &["run", "--quiet"]);
    assert!(!ok && err.contains("events.db is an event log, not a graph") && err.contains("swap"), "{err}");

    let dir = ws.dir.path().display().to_string();
    let (ok, err) = with_targets(&ws, &log, &format!("embedded:{dir}"), &["run", "--quiet"]);
    assert!(!ok && err.contains("is a directory, not a graph"), "{err}");

    std::fs::write(ws.path("notes.txt"), "some words, long enough to fill an SQLite header and more").unwrap();
    let notes = format!("embedded:{}", ws.path("notes.txt").display());
    let (ok, err) = with_targets(&ws, &notes, &graph, &["run", "--quiet"]);
    assert!(!ok && err.contains("notes.txt is not an event log"), "{err}");

    for read in [&["graph", "stats"][..], &["graph", "export"], &["parked", "list"]] {
        let (ok, err) = with_targets(&ws, &log, &graph, read);
        assert!(!ok && err.contains("no read model at") && err.contains("graph.db") && err.contains("projector run"), "{read:?}: {err}");
    }
    assert_eq!(entries(), before + 1, "only notes.txt was added: no graph was created");

    // The right targets still work, and then the graph is refused as a source.
    assert!(with_targets(&ws, &log, &graph, &["run", "--quiet"]).0);
    let (ok, err) = with_targets(&ws, &graph, &log, &["run", "--quiet"]);
    assert!(!ok && err.contains("graph.db is a graph, not an event log"), "{err}");
}
