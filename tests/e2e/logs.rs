//! Logs for log shippers: `--log-format json` (or `PROJECTOR_LOG_FORMAT=json`)
//! writes one JSON object per line, with the fields of each log event
//! (projection, lane, stream, position, ...) beside timestamp, level and
//! message, and an error that ends the command as such a line too.

use serde_json::Value;

use crate::support::Workspace;

fn lines(stderr: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stderr)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}")))
        .collect()
}

#[test]
fn json_logs_are_one_object_per_line_with_the_projection_and_its_position() {
    let ws = Workspace::new(&["interview-graph", "interview-upcasters"]);
    let sample = ws.command(&["sample", "--events", "300"]).output().unwrap();
    std::fs::write(ws.path("sample.jsonl"), sample.stdout).unwrap();
    ws.cli(&["import", "sample.jsonl"]);

    let out = ws.command(&["--log-format", "json", "run"]).env("PROJECTOR_LOG", "info").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let logs = lines(&out.stderr);
    assert!(logs.len() >= 2, "{logs:?}");
    for line in &logs {
        assert!(line["timestamp"].is_string() && line["level"].is_string() && line["message"].is_string(), "{line}");
    }
    let started = logs.iter().find(|l| l["message"] == "projection started").expect("a projection started line");
    assert_eq!(started["projection"], "interview-graph", "{started}");
    let stopped = logs.iter().find(|l| l["message"] == "projection stopped").expect("a projection stopped line");
    assert!(stopped["checkpoint"].as_u64().is_some_and(|c| c > 0), "{stopped}");

    // The variable does the same, and a failing command ends with an error line.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["graph", "stats", "--sink", "embedded:missing/graph.db"])
        .env("PROJECTOR_LOG_FORMAT", "json")
        .current_dir(ws.dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let logs = lines(&out.stderr);
    let last = logs.last().expect("an error line");
    assert_eq!(last["level"], "ERROR", "{last}");
    assert!(last["error"].as_str().is_some_and(|e| e.contains("missing/graph.db")), "{last}");
}
