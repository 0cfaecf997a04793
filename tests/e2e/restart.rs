//! Exactly-once effect across kill -9: the real binary is killed at random
//! moments and restarted; the final read model equals an uninterrupted run's.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use crate::support::Workspace;

/// Events in the log; the issue asks for at least 100,000.
const EVENTS: u64 = 100_000;
/// Times the host is killed; at least 20.
const KILLS: usize = 20;

fn import_sample(ws: &Workspace) {
    let file = ws.path("sample.jsonl");
    let sample = ws.command(&["sample", "--events", &EVENTS.to_string(), "--seed", "5"]).output().unwrap();
    std::fs::write(&file, sample.stdout).unwrap();
    let status = ws.command(&["import"]).arg(&file).stdout(Stdio::null()).status().unwrap();
    assert!(status.success());
}

fn run_to_end(ws: &Workspace) {
    ws.cli(&["run", "--quiet"]);
}

#[test]
fn kill_9_at_random_moments_then_restart_gives_the_uninterrupted_read_model() {
    let reference = Workspace::new(&["interview-graph", "interview-upcasters"]);
    import_sample(&reference);
    let started = Instant::now();
    run_to_end(&reference);
    let full_run = started.elapsed();

    let ws = Workspace::new(&["interview-graph", "interview-upcasters"]);
    import_sample(&ws);
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let mut kills = 0;
    for _ in 0..KILLS {
        let mut child: Child = ws.command(&["run", "--quiet"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        // Short runs, so that every kill lands before the work is done: startup,
        // mid-batch and mid-commit alike.
        let longest = (full_run / (2 * KILLS as u32)).max(Duration::from_millis(60));
        let wait = rng.random_range(Duration::from_millis(10)..longest);
        std::thread::sleep(wait);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    run_to_end(&ws);
    eprintln!("killed the host {kills} times mid-run (a full run takes {full_run:?})");
    assert!(kills >= KILLS - 2, "only {kills} of {KILLS} kills landed mid-run");
    assert!(ws.parked().is_empty());
    assert!(reference.export() == ws.export(), "the read model after kill -9 and restarts differs from the uninterrupted one");
}

#[test]
fn re_delivered_events_are_skipped_by_their_guards() {
    use serde_json::json;
    let ws = Workspace::new(&["recorder"]);
    let events: Vec<_> = (0..300).map(|n| crate::support::event(&format!("test-{}", n % 9), "Counted", 1, json!({"n": n}))).collect();
    ws.append(&events);
    ws.run();
    let before = ws.export();
    // As after a crash in which lanes had committed past the checkpoint: the
    // checkpoint is behind, the guards and the high-water mark are not.
    rusqlite::Connection::open(ws.path("graph.db"))
        .unwrap()
        .execute("UPDATE checkpoints SET position = 0 WHERE projection = 'recorder'", [])
        .unwrap();
    let again = ws.run();
    assert_eq!((again.handled, again.skipped, again.parked), (300, 300, 0));
    // The recorder's `previous` comes from instance memory: a re-applied event would change it.
    assert!(ws.export() == before, "a re-delivered event changed the read model");
}
