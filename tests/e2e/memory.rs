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

#[test]
fn a_million_event_backlog_keeps_resident_memory_bounded() {
    let ws = Workspace::new(&["recorder"]);
    // A million events of ~600 bytes: were they all read ahead, they would not fit the bound.
    ws.log()
        .connection()
        .execute_batch(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last})
             INSERT INTO events (id, stream, revision, event_type, schema_version, data, metadata)
             SELECT 'e' || i, 'test-' || (i % 1000), i / 1000, 'Counted', 1,
                    json_object('n', i, 'pad', printf('%.500c', 'x')), '{{}}' FROM n;",
            last = BACKLOG - 1
        ))
        .unwrap();
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
