//! Bounded memory: with a backlog of a million events, the host's resident
//! memory stays under a fixed bound, because lane queues are bounded and the
//! router waits for them (backpressure) instead of reading ahead.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{signal, Reaped, Workspace};

const BACKLOG: u64 = 1_000_000;
/// The bound: the peak the issue set for a 1M-event backlog.
const MAX_RESIDENT: u64 = 256 << 20;
/// How long the host works through the backlog before it is stopped.
const WORK: Duration = Duration::from_secs(6);

fn resident_peak(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib << 10)
}

/// Writes `count` events straight into the workspace's log, over `streams`
/// streams, each with a `pad` of that many bytes (faster than appending them).
fn insert_padded(ws: &Workspace, count: usize, streams: usize, pad: usize) {
    ws.log()
        .connection()
        .execute_batch(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last})
             INSERT INTO events (id, stream, revision, event_type, schema_version, data, metadata)
             SELECT 'e' || i, 'test-' || (i % {streams}), i / {streams}, 'Counted', 1,
                    json_object('n', i, 'pad', printf('%.{pad}c', 'x')), '{{}}' FROM n;",
            last = count - 1
        ))
        .unwrap();
}

#[test]
fn a_million_event_backlog_keeps_resident_memory_bounded() {
    let ws = Workspace::new(&["recorder"]);
    // A million events of ~600 bytes: were they all read ahead, they would not fit the bound.
    insert_padded(&ws, BACKLOG as usize, 1000, 500);
    let mut child = Reaped(ws.command(&["run", "--quiet"]).stdout(Stdio::null()).spawn().unwrap());
    let started = Instant::now();
    let mut peak = 0;
    while started.elapsed() < WORK {
        peak = peak.max(resident_peak(child.0.id()).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(100));
    }
    peak = peak.max(resident_peak(child.0.id()).unwrap_or(0));
    signal(&child.0, "INT");
    assert!(child.0.wait().unwrap().success());
    let handled = ws.nodes("Seen").len() as u64;
    eprintln!("peak resident memory {} MiB with {} of {BACKLOG} events still waiting", peak >> 20, BACKLOG - handled);
    assert!(handled < BACKLOG * 9 / 10, "the backlog was gone too soon to prove anything ({handled} handled)");
    assert!(peak > 0, "no memory figure could be read");
    assert!(peak < MAX_RESIDENT, "peak resident memory {} MiB is over the bound of {} MiB", peak >> 20, MAX_RESIDENT >> 20);
}

/// Large events: memory is bounded by bytes as well as by count.
const LARGE: usize = 6 << 20;
const LARGE_EVENTS: usize = 60;

#[test]
fn large_events_keep_resident_memory_bounded_by_bytes_and_a_line_over_the_largest_event_is_refused() {
    let ws = Workspace::new(&["recorder"]);
    // 60 events of 6 MiB: 360 MiB of data, more than the bound below.
    insert_padded(&ws, LARGE_EVENTS, 5, LARGE);
    let out = ws.command(&["run", "--quiet"]).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{said}");
    let peak: u64 = said.split("peak memory ").nth(1).and_then(|s| s.split(' ').next()).and_then(|n| n.parse().ok()).expect(&said);
    eprintln!("peak resident memory {peak} MiB for {LARGE_EVENTS} events of {} MiB", LARGE >> 20);
    assert_eq!(ws.nodes("Seen").len(), LARGE_EVENTS);
    assert!(peak < (MAX_RESIDENT >> 20), "peak resident memory {peak} MiB is over the bound of {} MiB", MAX_RESIDENT >> 20);

    // A line longer than the largest event is refused, naming it, and nothing is written.
    let line = |n: usize, pad: usize| format!("{{\"stream\":\"test-x\",\"type\":\"Counted\",\"data\":{{\"n\":{n},\"pad\":\"{}\"}}}}\n", "y".repeat(pad));
    let file = format!("{}{}{}", line(0, 10), line(1, projector::runtime::limits::MAX_EVENT_BYTES + (64 << 10)), line(2, 10));
    std::fs::write(ws.path("huge.jsonl"), file).unwrap();
    let out = ws.command(&["import", "huge.jsonl"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("huge.jsonl line 2 is longer than") && stderr.contains("nothing was written"), "{stderr}");
    assert_eq!(ws.log().connection().query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0)).unwrap(), LARGE_EVENTS as i64);

    // One that reached the log another way is parked with the reason, not handed to a plugin.
    ws.log()
        .connection()
        .execute_batch(&format!(
            "INSERT INTO events (id, stream, revision, event_type, schema_version, data, metadata)
             VALUES ('huge', 'test-huge', 0, 'Counted', 1, json_object('pad', printf('%.{}c', 'x')), '{{}}');",
            projector::runtime::limits::MAX_EVENT_BYTES + 1
        ))
        .unwrap();
    ws.cli(&["run", "--quiet"]);
    let parked = ws.parked();
    assert!(parked.len() == 1 && parked[0].error.contains("more than the largest event Projector takes (8 MiB)"), "{:?}", parked.iter().map(|p| &p.error).collect::<Vec<_>>());
}
