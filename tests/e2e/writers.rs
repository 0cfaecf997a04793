//! One writer per read model: a second host on a held read model refuses to
//! start, naming the holder, or waits for it with `--wait`; a host that lost
//! its lease while it was stopped (SIGSTOP) writes nothing when it wakes up.
//! The scenarios are functions of a workspace, run on Neo4j too (`neo4j.rs`).

use std::process::Stdio;
use std::time::{Duration, Instant};

use projector::sink::lease::{Claim, Taken};
use projector::sink::{Commit, Sink, SinkError};

use crate::support::{signal, wait_until, Reaped, Workspace};

/// How long a test waits for a host to get somewhere, on a loaded machine.
const LIMIT: Duration = Duration::from_secs(60);

/// A workspace with the interview projection and `events` sample events imported.
fn interview(events: usize) -> Workspace {
    let ws = Workspace::new(&["interview-graph", "interview-upcasters"]);
    with_sample(&ws, events);
    ws
}

/// Imports lines `from..to` of the workspace's sample.
fn import_lines(ws: &Workspace, name: &str, from: usize, to: usize) {
    let all = std::fs::read_to_string(ws.path("all.jsonl")).unwrap();
    let part: String = all.lines().skip(from).take(to - from).map(|l| format!("{l}\n")).collect();
    std::fs::write(ws.path(name), part).unwrap();
    ws.cli(&["import", name]);
}

fn spawn(ws: &Workspace, args: &[&str], log: &str) -> Reaped {
    let stderr = std::fs::File::create(ws.path(log)).unwrap();
    Reaped(ws.command(args).env("PROJECTOR_LOG", "info").stdout(Stdio::null()).stderr(stderr).spawn().unwrap())
}

fn head(ws: &Workspace) -> u64 {
    use projector::source::Source;
    ws.log().read(0, usize::MAX).unwrap().last().map_or(0, |e| e.position + 1)
}

fn caught_up(ws: &Workspace) -> bool {
    ws.graph().checkpoint("interview-graph").unwrap() >= head(ws)
}

/// A host that follows the log, once it has caught up with it.
fn following(ws: &Workspace, log: &str) -> Reaped {
    let host = spawn(ws, &["run", "--follow", "--quiet"], log);
    wait_until("the first host caught up", LIMIT, || caught_up(ws));
    host
}

fn exit_of(child: &mut Reaped) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status;
        }
        assert!(started.elapsed() < LIMIT, "the host did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The read model a single host makes of every event of the sample.
fn reference(ws: &Workspace) -> std::collections::BTreeSet<String> {
    let single = Workspace::new(&["interview-graph", "interview-upcasters"]);
    std::fs::copy(ws.path("all.jsonl"), single.path("all.jsonl")).unwrap();
    single.cli(&["import", "all.jsonl"]);
    single.cli(&["run", "--quiet"]);
    single.graph_set()
}

#[test]
fn a_second_host_on_a_held_read_model_refuses_naming_the_holder_and_with_wait_takes_over_when_it_stops() {
    a_second_host_refuses_and_with_wait_takes_over(&interview(4_000));
}

#[test]
fn a_stopped_host_whose_lease_was_taken_over_writes_nothing_when_it_wakes_and_stops() {
    a_stopped_host_whose_lease_was_taken_over_writes_nothing(&interview(6_000));
}

/// Writes `events` sample events to the workspace's `all.jsonl`, for the
/// tests below to import in parts.
pub fn with_sample(ws: &Workspace, events: usize) {
    let sample = ws.cli(&["sample", "--events", &events.to_string()]);
    std::fs::write(ws.path("all.jsonl"), &sample).unwrap();
}

fn events_of(ws: &Workspace) -> usize {
    std::fs::read_to_string(ws.path("all.jsonl")).unwrap().lines().count()
}

/// A host follows the first half of the sample; a second refuses, naming it;
/// a second with `--wait` waits, takes over when the first stops, and projects
/// the second half: the read model of a single host.
pub fn a_second_host_refuses_and_with_wait_takes_over(ws: &Workspace) {
    let n = events_of(ws);
    import_lines(ws, "first.jsonl", 0, n / 2);
    let mut first = following(ws, "first.log");

    let out = ws.command(&["run", "--quiet"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second host must not run on a held read model: {stderr}");
    let holder = format!("pid {}", first.0.id());
    assert!(stderr.contains("is held by") && stderr.contains(&holder) && stderr.contains("--wait"), "{stderr}");

    // With --wait, it waits while the first runs, and takes over when it stops.
    let mut second = spawn(ws, &["run", "--wait", "--quiet"], "second.log");
    import_lines(ws, "second.jsonl", n / 2, n);
    wait_until("the second host waits for the lease", LIMIT, || {
        std::fs::read_to_string(ws.path("second.log")).unwrap().contains("held by another host; waiting")
    });
    signal(&first.0, "TERM");
    assert!(exit_of(&mut first).success());
    let status = exit_of(&mut second);
    assert!(status.success(), "{}", std::fs::read_to_string(ws.path("second.log")).unwrap());
    assert!(std::fs::read_to_string(ws.path("second.log")).unwrap().contains("took over the read model's lease"));
    assert!(caught_up(ws));
    assert_eq!(ws.graph_set(), reference(ws), "two hosts one after the other make a single host's read model");
}

/// A host follows the first third of the sample and is stopped (SIGSTOP);
/// another takes over once its lease expired and projects the second third;
/// the stopped host wakes up (SIGCONT) with the last third in the log: it
/// writes none of it and stops with an error; the next host completes the
/// read model of a single host.
pub fn a_stopped_host_whose_lease_was_taken_over_writes_nothing(ws: &Workspace) {
    let n = events_of(ws);
    let config = std::fs::read_to_string(ws.path("projector.toml")).unwrap_or_default();
    // Before any table, so that it is a top-level setting.
    std::fs::write(ws.path("projector.toml"), format!("lease_ms = 1000\n{config}")).unwrap();
    import_lines(ws, "first.jsonl", 0, n / 3);
    let mut paused = following(ws, "paused.log");
    signal(&paused.0, "STOP");

    // Another host takes over once the lease has expired, and ends (giving it up).
    import_lines(ws, "second.jsonl", n / 3, 2 * n / 3);
    let out = ws.command(&["run", "--wait", "--quiet"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(caught_up(ws));
    let after_takeover = ws.graph_set();

    // New events, then the stopped host wakes up: it must not write them.
    import_lines(ws, "third.jsonl", 2 * n / 3, n);
    signal(&paused.0, "CONT");
    let status = exit_of(&mut paused);
    let log = std::fs::read_to_string(ws.path("paused.log")).unwrap();
    assert!(!status.success(), "a host that lost its lease stops with an error: {log}");
    assert!(log.contains("lost the read model's lease"), "{log}");
    assert_eq!(ws.graph_set(), after_takeover, "the host that lost its lease wrote nothing");

    // The next host completes the read model: the same as a single host's.
    ws.cli(&["run", "--quiet"]);
    assert!(caught_up(ws));
    assert_eq!(ws.graph_set(), reference(ws));
}

/// The sink's own guarantee, whatever the host does: a commit under a lease
/// that another host took over is refused and writes nothing; a renewal of it
/// is told it was lost; the new holder commits.
pub fn a_lease_taken_over_fences_the_old_holders_commits(sink: &dyn Sink) {
    let claim = |token: &str, holder: &str| Claim {
        projection: "fenced".into(),
        token: token.into(),
        holder: holder.into(),
        length: Duration::from_millis(300),
        replaces: None,
    };
    let (old, new) = (claim("token-old", "the old host"), claim("token-new", "the new host"));
    let commit = |token: &str, checkpoint: u64| {
        sink.commit(&Commit { projection: "fenced", applied: Vec::new(), parked: Vec::new(), checkpoint, lease: Some(token) })
    };
    assert_eq!(sink.take_lease(&old, false).unwrap(), Taken::Yes);
    commit("token-old", 10).unwrap();
    match sink.take_lease(&new, false).unwrap() {
        Taken::HeldBy { holder, .. } => assert_eq!(holder, "the old host"),
        other => panic!("a held lease was given away: {other:?}"),
    }
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(sink.take_lease(&new, false).unwrap(), Taken::Yes, "an expired lease is taken over");
    match commit("token-old", 20) {
        Err(SinkError::Fenced(holder)) => assert_eq!(holder, "the new host"),
        other => panic!("the old holder's commit was not fenced: {other:?}"),
    }
    assert_eq!(sink.checkpoint("fenced").unwrap(), 10, "the fenced commit wrote nothing");
    assert_eq!(sink.take_lease(&old, true).unwrap(), Taken::Lost { holder: "the new host".into() });
    commit("token-new", 30).unwrap();
    sink.release_lease("fenced", "token-new").unwrap();
    assert!(matches!(commit("token-new", 40), Err(SinkError::Fenced(_))), "a lease given up fences its own commits too");
    assert_eq!(sink.checkpoint("fenced").unwrap(), 30);
}

#[test]
fn the_embedded_sink_fences_commits_under_a_lease_taken_over() {
    let ws = Workspace::new(&[]);
    a_lease_taken_over_fences_the_old_holders_commits(ws.graph().as_ref());
}

#[test]
fn after_kill_9_the_next_host_on_the_same_machine_takes_over_at_once() {
    let ws = interview(1_000);
    import_lines(&ws, "first.jsonl", 0, 1_000);
    let mut killed = following(&ws, "killed.log");
    killed.0.kill().unwrap();
    killed.0.wait().unwrap();
    // Its lease has most of its 10 s to run, but its holder is gone: no wait, no --wait needed.
    let out = ws.command(&["run", "--quiet"]).env("PROJECTOR_LOG", "info").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("held by a process of this host that is gone; taking it over"), "{stderr}");
}

#[test]
fn replaying_or_discarding_parked_events_while_a_host_runs_the_projection_is_refused_and_with_wait_waits() {
    use serde_json::json;
    let ws = Workspace::new(&["interview-graph"]);
    ws.append(&[crate::support::event("Interview-1", "InterviewCreated", 1, json!({"interview_id": "1", "title": "no project"}))]);
    let mut host = following(&ws, "host.log");
    let id = ws.parked().first().expect("the event without a project is parked").id.to_string();

    let holder = format!("pid {}", host.0.id());
    for args in [vec!["parked", "replay", "--all"], vec!["parked", "discard", &id]] {
        let out = ws.command(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains("is held by") && stderr.contains(&holder), "{args:?}: {stderr}");
    }
    assert_eq!(ws.parked()[0].status, "parked", "a refused command wrote nothing");

    // With --wait, the discard waits for the host, then goes through.
    let mut discard = spawn(&ws, &["parked", "discard", &id, "--wait"], "discard.log");
    wait_until("the discard waits for the lease", LIMIT, || {
        std::fs::read_to_string(ws.path("discard.log")).unwrap().contains("held by another host; waiting")
    });
    assert_eq!(ws.parked()[0].status, "parked");
    signal(&host.0, "TERM");
    assert!(exit_of(&mut host).success());
    assert!(exit_of(&mut discard).success(), "{}", std::fs::read_to_string(ws.path("discard.log")).unwrap());
    assert_eq!(ws.parked()[0].status, "discarded");
}
