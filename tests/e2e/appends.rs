//! Appends to the embedded log from several processes at once.

use std::process::Stdio;

use serde_json::json;

use crate::support::Workspace;

#[test]
fn two_imports_at_once_both_succeed_and_the_log_holds_every_event_once() {
    const EACH: usize = 20_000;
    let ws = Workspace::new(&[]);
    for name in ["a", "b"] {
        let lines: Vec<String> = (0..EACH)
            .map(|n| json!({"stream": format!("{name}-{}", n % 50), "type": "Counted", "data": {"n": n}}).to_string())
            .collect();
        std::fs::write(ws.path(&format!("{name}.jsonl")), lines.join("\n")).unwrap();
    }
    // Both open a transaction on the same log and write in chunks; neither may fail.
    let children: Vec<_> = ["a", "b"]
        .iter()
        .map(|name| {
            let mut cmd = ws.command(&["import", &format!("{name}.jsonl")]);
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(projector::source::count(&ws.config.source).unwrap(), Some(2 * EACH as u64));
}
