//! Graceful shutdown: SIGTERM or SIGINT finishes in-flight batches, commits,
//! and exits 0; the next run resumes where it stopped.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{event, signal, Reaped, Workspace};

fn start(ws: &Workspace, follow: bool) -> Reaped {
    let mut cmd = ws.command(&["run", "--quiet"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    if follow {
        cmd.arg("--follow");
    }
    Reaped(cmd.spawn().unwrap())
}

#[test]
fn sigterm_while_following_commits_and_exits_zero() {
    let ws = Workspace::new(&["recorder"]);
    ws.append(&(0..200).map(|n| event(&format!("test-{}", n % 5), "Counted", 1, json!({"n": n}))).collect::<Vec<_>>());
    let mut child = start(&ws, true);
    let deadline = Instant::now() + Duration::from_secs(60);
    while ws.graph().checkpoint("recorder").unwrap() < 201 {
        assert!(Instant::now() < deadline, "the follower never caught up");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Events appended while it follows are projected too.
    ws.append(&[event("test-new", "Counted", 1, json!({"n": 1}))]);
    while ws.graph().checkpoint("recorder").unwrap() < 202 {
        assert!(Instant::now() < deadline, "the follower missed a new event");
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(&child.0, "TERM");
    let status = child.0.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    assert_eq!(ws.nodes("Seen").len(), 201);
}

#[test]
fn sigint_mid_run_stops_cleanly_and_the_next_run_finishes_the_work() {
    let ws = Workspace::new(&["recorder"]);
    ws.append(&(0..30_000).map(|n| event(&format!("test-{}", n % 97), "Counted", 1, json!({"n": n}))).collect::<Vec<_>>());
    let mut child = start(&ws, false);
    // A lane's batch can be committed while the lane holding the first event
    // has not begun: wait for the checkpoint itself, not for a node.
    let deadline = Instant::now() + Duration::from_secs(120);
    while ws.graph().checkpoint("recorder").unwrap() <= 1 {
        assert!(Instant::now() < deadline, "the checkpoint never moved");
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&child.0, "INT");
    let status = child.0.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    let done = ws.graph().checkpoint("recorder").unwrap();
    assert!(done > 1, "nothing was committed before the stop");
    let report = ws.run();
    assert_eq!(ws.nodes("Seen").len(), 30_000);
    assert!(report.handled < 30_000 || done == 30_001, "the second run started over");
}
