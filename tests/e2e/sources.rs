//! The source conformance suite: what every source must do for the router to
//! rely on it: global order, resume from a checkpoint (inside an append too),
//! server-side filters that lose nothing, a live tail, and reconnection.
//!
//! It runs against the embedded log and against the EventStoreDB stand-in
//! (`tests/servers/esdb-standin`, as a 22.10 and as a 24.10 server) always, and
//! against EventStoreDB/KurrentDB when `ESDB_CONNECTION_STRING` names one (each run writes streams of its own,
//! so a server with other data will do). The reconnect case restarts the
//! server with the command in `PROJECTOR_TEST_ESDB_RESTART` (e.g. `docker
//! restart esdb`); `just test-live` sets both for a server in Docker. What
//! cannot run says so on stderr.

use std::time::{Duration, Instant};

use projector::source::{self, ExpectedRevision, Interest, NewEvent, Source, Wants};
use projector::Event;
use serde_json::json;

use esdb_standin::{StandIn, Version};

use crate::support::skipped;

/// How long a check waits for events that must arrive.
const PATIENCE: Duration = Duration::from_secs(30);

/// A source under test.
struct Target {
    name: &'static str,
    url: String,
    /// Whether the source filters on its server (the embedded log filters nothing).
    filters_on_server: bool,
    /// How to restart the server, for the reconnect case.
    restart: Option<Restart>,
    _dir: Option<tempfile::TempDir>,
}

enum Restart {
    /// A command (e.g. `docker restart esdb`).
    Command(String),
    /// The stand-in, restarted in place.
    StandIn(std::sync::Mutex<StandIn>),
}

impl Restart {
    /// Restarts the stand-in after it was down for `down`; a command restarts as it does.
    fn run_down(&self, down: Duration) {
        match self {
            Restart::StandIn(standin) => standin.lock().unwrap().restart_after(down).unwrap(),
            Restart::Command(_) => self.run(),
        }
    }

    fn run(&self) {
        match self {
            Restart::Command(command) => {
                let status = std::process::Command::new("sh").args(["-c", command]).status().unwrap();
                assert!(status.success(), "`{command}` failed");
            }
            Restart::StandIn(standin) => standin.lock().unwrap().restart().unwrap(),
        }
    }
}

/// A stand-in for an EventStoreDB server of `version` (see `tests/servers/esdb-standin`).
fn standin(name: &'static str, version: Version) -> Target {
    let standin = StandIn::start(version).unwrap();
    Target { name, url: standin.url(), filters_on_server: true, restart: Some(Restart::StandIn(std::sync::Mutex::new(standin))), _dir: None }
}

fn targets(case: &str) -> Vec<Target> {
    let dir = tempfile::tempdir().unwrap();
    let mut targets = vec![Target {
        name: "embedded",
        url: format!("embedded:{}", dir.path().join("events.db").display()),
        filters_on_server: false,
        restart: None,
        _dir: Some(dir),
    }];
    // Servers up to 23.10 and from 24.2 on differ where a subscription starts
    // and in whether it says it has caught up.
    targets.push(standin("esdb-standin-22.10", Version::V22_10));
    targets.push(standin("esdb-standin-24.10", Version::V24_10));
    match std::env::var("ESDB_CONNECTION_STRING") {
        Ok(url) if !url.trim().is_empty() => targets.push(Target {
            name: "esdb",
            url,
            filters_on_server: true,
            restart: std::env::var("PROJECTOR_TEST_ESDB_RESTART").ok().filter(|c| !c.trim().is_empty()).map(Restart::Command),
            _dir: None,
        }),
        _ => skipped(
            &format!("source conformance `{case}` against EventStoreDB/KurrentDB"),
            "ESDB_CONNECTION_STRING is not set (no server runs in this build; set it, e.g. to esdb://localhost:2113?tls=false, to run the suite against one)",
        ),
    }
    targets
}

/// Streams and event types no other run uses, so a shared server does not disturb a check.
fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

fn new(stream: &str, event_type: &str, n: u64) -> NewEvent {
    NewEvent {
        id: None,
        stream: stream.into(),
        event_type: event_type.into(),
        schema_version: 1,
        data: json!({"n": n}),
        metadata: json!({"actor": "conformance", "correlation_id": stream}),
    }
}

fn write(target: &Target, events: &[NewEvent]) -> u64 {
    source::open_writer(&target.url).unwrap().write(events, ExpectedRevision::Any).unwrap().expect("a position")
}

/// Reads from `from` until the source is caught up; only events of `run` are kept.
fn drain(source: &mut dyn Source, mut from: u64, run: &str) -> Vec<Event> {
    let started = Instant::now();
    let mut got = Vec::new();
    loop {
        let events = source.read(from, 100).unwrap();
        if let Some(last) = events.last() {
            from = last.position + 1;
        } else if source.caught_up() {
            return got;
        }
        assert!(started.elapsed() < PATIENCE, "not caught up after {PATIENCE:?}");
        got.extend(events.into_iter().filter(|e| e.stream.contains(run)));
    }
}

/// Reads from `from` until `n` events of `run` have come.
fn wait_for(source: &mut dyn Source, mut from: u64, run: &str, n: usize) -> Vec<Event> {
    let started = Instant::now();
    let mut got = Vec::new();
    while got.len() < n {
        assert!(started.elapsed() < PATIENCE, "{} of {n} events came within {PATIENCE:?}", got.len());
        let events = source.read(from, 100).unwrap();
        match events.last() {
            Some(last) => from = last.position + 1,
            None => std::thread::sleep(Duration::from_millis(50)),
        }
        got.extend(events.into_iter().filter(|e| e.stream.contains(run)));
    }
    got
}

fn everything(url: &str) -> Box<dyn Source> {
    source::open(url, &Interest::everything()).unwrap()
}

/// (stream, n) of each event, to compare with what was written.
fn seen(events: &[Event]) -> Vec<(String, u64)> {
    events.iter().map(|e| (e.stream.clone(), serde_json::from_str::<serde_json::Value>(&e.data).unwrap()["n"].as_u64().unwrap())).collect()
}

/// Three streams written interleaved, in appends of several events each.
fn interleaved(run: &str) -> Vec<Vec<NewEvent>> {
    let mut n = 0;
    let mut append = |stream: &str, count: usize| {
        (0..count)
            .map(|_| {
                n += 1;
                new(&format!("Conf{run}-{stream}"), "Counted", n)
            })
            .collect::<Vec<_>>()
    };
    vec![append("a", 5), append("b", 1), append("c", 3), append("a", 2), append("b", 4), append("c", 1), append("a", 1)]
}

#[test]
fn a_source_gives_every_event_in_the_order_written_with_increasing_positions() {
    for target in targets("global order") {
        let run = run_id();
        let start = write(&target, &[new(&format!("Conf{run}-start"), "Marker", 0)]);
        let appends = interleaved(&run);
        for append in &appends {
            write(&target, append);
        }
        let events = drain(everything(&target.url).as_mut(), start + 1, &run);
        let written: Vec<(String, u64)> = appends.iter().flatten().map(|e| (e.stream.clone(), e.data["n"].as_u64().unwrap())).collect();
        assert_eq!(seen(&events), written, "{}", target.name);
        assert!(events.windows(2).all(|w| w[0].position < w[1].position), "{}: positions must increase", target.name);
        for stream in ["a", "b", "c"] {
            let revisions: Vec<u64> = events.iter().filter(|e| e.stream.ends_with(&format!("-{stream}"))).map(|e| e.revision).collect();
            assert_eq!(revisions, (0..revisions.len() as u64).collect::<Vec<_>>(), "{}: revisions of {stream}", target.name);
        }
        let first = &events[0];
        assert_eq!((first.event_type.as_str(), first.schema_version), ("Counted", 1), "{}", target.name);
        let envelope: serde_json::Value = serde_json::from_str(&first.metadata).unwrap();
        assert_eq!(envelope["actor"], "conformance", "{}: the envelope travels with the event", target.name);
    }
}

#[test]
fn a_source_resumes_at_any_checkpoint_even_inside_an_append() {
    for target in targets("resume from checkpoint") {
        let run = run_id();
        let start = write(&target, &[new(&format!("Conf{run}-start"), "Marker", 0)]);
        for append in interleaved(&run) {
            write(&target, &append);
        }
        let all = drain(everything(&target.url).as_mut(), start + 1, &run);
        // Every checkpoint a host can hold: an event not yet handled, or one past
        // the last handled. One source reads from each in turn: it subscribes
        // again for each, as a host's source does when its reader moves.
        let mut source = everything(&target.url);
        for (k, event) in all.iter().enumerate() {
            for (from, expected) in [(event.position, &all[k..]), (event.position + 1, &all[k + 1..])] {
                let resumed = drain(source.as_mut(), from, &run);
                assert_eq!(seen(&resumed), seen(expected), "{}: resuming from {from} (event {k})", target.name);
            }
        }
    }
}

/// A checkpoint's event may be gone from the log (scavenged after a
/// `$maxAge`, a truncation): a server up to 23.10 would then skip the event
/// after it, were the subscription started at the position of the one gone.
#[test]
fn a_source_resumes_after_a_checkpoint_whose_event_was_scavenged() {
    for version in [Version::V22_10, Version::V24_10] {
        let mut target = standin("esdb-standin", version);
        let run = run_id();
        let start = write(&target, &[new(&format!("Conf{run}-start"), "Marker", 0)]);
        // One append: the record after the first event is the second event.
        write(&target, &(1..=3).map(|n| new(&format!("Conf{run}-s"), "Counted", n)).collect::<Vec<_>>());
        let all = drain(everything(&target.url).as_mut(), start + 1, &run);
        assert_eq!(all.len(), 3, "{version}");
        let Some(Restart::StandIn(standin)) = &mut target.restart else { unreachable!() };
        let gone = esdb_standin_position(all[0].position);
        standin.get_mut().unwrap().log.scavenge(gone);
        let resumed = drain(everything(&target.url).as_mut(), all[0].position + 1, &run);
        assert_eq!(seen(&resumed), seen(&all[1..]), "{version}: resuming after the scavenged event");
    }
}

/// The stand-in's record offset of a host position (a self-committed record's).
fn esdb_standin_position(host: u64) -> u64 {
    projector::source::esdb::position::to_esdb(host).commit
}

#[test]
fn a_filtered_source_loses_no_event_a_projection_wants() {
    for target in targets("filters") {
        let run = run_id();
        let wanted = format!("Wanted{run}");
        let start = write(&target, &[new(&format!("Conf{run}-start"), "Marker", 0)]);
        let mut written = Vec::new();
        for i in 0..30 {
            let event_type = if i % 3 == 0 { wanted.as_str() } else { "Unwanted" };
            written.push(new(&format!("Conf{run}-{}", i % 4), event_type, i));
        }
        write(&target, &written);
        for (interest, what) in [
            (Interest { projections: vec![Wants { event_types: vec![wanted.clone()], stream_prefixes: vec![] }] }, "event types"),
            (Interest { projections: vec![Wants { event_types: vec![], stream_prefixes: vec![format!("Conf{run}-0")] }] }, "stream prefixes"),
        ] {
            let wants = &interest.projections[0];
            let matches = |stream: &str, event_type: &str| {
                (wants.event_types.is_empty() || wants.event_types.iter().any(|t| t == event_type))
                    && (wants.stream_prefixes.is_empty() || wants.stream_prefixes.iter().any(|p| stream.starts_with(p.as_str())))
            };
            let events = drain(source::open(&target.url, &interest).unwrap().as_mut(), start + 1, &run);
            let want: Vec<(String, u64)> = written.iter().filter(|e| matches(&e.stream, &e.event_type)).map(|e| (e.stream.clone(), e.data["n"].as_u64().unwrap())).collect();
            let got: Vec<(String, u64)> = seen(&events).into_iter().filter(|(s, n)| matches(s, &written[*n as usize].event_type)).collect();
            assert_eq!(got, want, "{}: filtered on {what}", target.name);
            if target.filters_on_server {
                assert_eq!(events.len(), want.len(), "{}: the server sent events the filter on {what} leaves out", target.name);
            }
        }
    }
}

#[test]
fn a_caught_up_source_follows_new_events() {
    for target in targets("live tail") {
        let run = run_id();
        let start = write(&target, &[new(&format!("Conf{run}-start"), "Marker", 0)]);
        let mut source = everything(&target.url);
        assert!(drain(source.as_mut(), start + 1, &run).is_empty());
        let later: Vec<NewEvent> = (1..=3).map(|n| new(&format!("Conf{run}-live"), "Counted", n)).collect();
        let writer = {
            let url = target.url.clone();
            let later = later.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                for e in later {
                    source::open_writer(&url).unwrap().write(&[e], ExpectedRevision::Any).unwrap();
                }
            })
        };
        let got = wait_for(source.as_mut(), start + 1, &run, 3);
        writer.join().unwrap();
        assert_eq!(seen(&got), later.iter().map(|e| (e.stream.clone(), e.data["n"].as_u64().unwrap())).collect::<Vec<_>>(), "{}", target.name);
    }
}

#[test]
fn a_source_reads_on_after_its_server_restarts() {
    for target in targets("reconnect") {
        let Some(restart) = &target.restart else {
            if target.name == "embedded" {
                // The embedded log has no server to lose; its case is the live tail.
            } else {
                skipped(
                    &format!("source conformance `reconnect` against {}", target.name),
                    "PROJECTOR_TEST_ESDB_RESTART (a command that restarts the server, e.g. `docker restart esdb`) is not set",
                );
            }
            continue;
        };
        let run = run_id();
        let start = write(&target, &[new(&format!("Conf{run}-start"), "Marker", 0)]);
        let mut source = everything(&target.url);
        assert!(drain(source.as_mut(), start + 1, &run).is_empty());
        restart.run();
        let later: Vec<NewEvent> = (1..=3).map(|n| new(&format!("Conf{run}-after"), "Counted", n)).collect();
        let started = Instant::now();
        while source::open_writer(&target.url).and_then(|mut w| w.write(&later, ExpectedRevision::Any)).is_err() {
            assert!(started.elapsed() < PATIENCE, "the server did not come back within {PATIENCE:?}");
            std::thread::sleep(Duration::from_millis(500));
        }
        let got = wait_for(source.as_mut(), start + 1, &run, 3);
        assert_eq!(seen(&got).len(), 3, "{}: the events written after the restart", target.name);
    }
}

#[test]
fn an_unreachable_or_misnamed_server_is_a_clear_error_and_writes_nothing() {
    let ws = crate::support::Workspace::new(&["interview-graph"]);
    let try_with = |source: &str, env: Option<&str>, args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_projector"));
        cmd.args(args)
            .args(["--source", source, "--sink", &ws.config.sink, "--admin", ""])
            .arg("--plugins")
            .arg(&ws.config.plugins)
            .env("PROJECTOR_CACHE", &ws.config.cache)
            .env_remove("ESDB_CONNECTION_STRING")
            .current_dir(ws.dir.path());
        if let Some(url) = env {
            cmd.env("ESDB_CONNECTION_STRING", url);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{args:?} against {source} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // Nothing listens on port 1 of the loopback.
    let unreachable = "esdb://127.0.0.1:1?tls=false";
    for args in [&["run", "--quiet"][..], &["append", "--stream", "s", "--type", "T", "--data", "{}"]] {
        let err = try_with(unreachable, None, args);
        assert!(err.contains("cannot reach EventStoreDB/KurrentDB at esdb://127.0.0.1:1?tls=false: is it running?"), "{err}");
        let via_env = try_with("esdb:", Some(unreachable), args);
        assert!(via_env.contains("cannot reach EventStoreDB/KurrentDB at esdb://127.0.0.1:1"), "{via_env}");
    }
    let missing = try_with("esdb:", None, &["run", "--quiet"]);
    assert!(missing.contains("ESDB_CONNECTION_STRING, which is not set"), "{missing}");
    let invalid = try_with("esdb://bad host", None, &["run", "--quiet"]);
    assert!(invalid.contains("is not a valid connection string"), "{invalid}");
    let password = try_with("esdb://admin:secret@127.0.0.1:1?tls=false", None, &["run", "--quiet"]);
    assert!(password.contains("esdb://admin:***@127.0.0.1:1") && !password.contains("secret"), "{password}");
    assert!(!ws.path("graph.db").exists() || ws.graph().stats().unwrap().nodes.is_empty(), "nothing was written");
}

/// A persistent subscription's side of the server: an event the host parks is
/// parked on the server, and the server's replay of its parked stream (links
/// to the parked events, sent with the event's own positions by 21.x, none by
/// 22.x and 23.x, the link's by 24.x) brings the event itself back, at its own
/// position, settled by the link.
#[test]
fn a_group_replays_a_parked_event_as_the_event_itself_at_its_own_position() {
    let mut servers: Vec<Target> = targets("persistent subscription replay").into_iter().filter(|t| t.name != "embedded").collect();
    servers.push(standin("esdb-standin-21.10", Version { major: 21, minor: 10 }));
    for target in servers {
        replay_parked_case(&target);
    }
}

#[test]
fn a_source_asked_to_read_from_elsewhere_while_its_server_is_down_reads_once_it_is_back() {
    for version in [Version::V22_10, Version::V24_10] {
        let target = standin("esdb-standin", version);
        let run = run_id();
        write(&target, &(0..3).map(|n| new(&format!("Conf{run}-late"), "Counted", n)).collect::<Vec<_>>());
        let restart = target.restart.as_ref().expect("the stand-in restarts");
        let mut source = everything(&target.url);
        assert_eq!(wait_for(source.as_mut(), 0, &run, 3).len(), 3);
        let got = std::thread::scope(|scope| {
            let down = scope.spawn(|| restart.run_down(Duration::from_secs(2)));
            std::thread::sleep(Duration::from_millis(300));
            // A read from the start again subscribes anew while nothing answers:
            // it waits for the server, it does not fail.
            let got = wait_for(source.as_mut(), 0, &run, 3);
            down.join().unwrap();
            got
        });
        assert_eq!(seen(&got).len(), 3, "{version:?}: the events, once the server is back");
    }
}

#[test]
fn a_group_joins_again_after_its_server_was_down_long_enough_for_the_client_to_give_up() {
    use projector::source::esdb::persistent::GroupSource;
    use projector::source::settle::{Settled, Settlement};
    let target = standin("esdb-standin-24.10", Version::V24_10);
    let run = run_id();
    let (stream, event_type) = (format!("Conf{run}-down"), format!("Down{run}"));
    write(&target, &(0..3).map(|n| new(&stream, &event_type, n)).collect::<Vec<_>>());
    let interest = Interest { projections: vec![Wants { event_types: vec![event_type.clone()], stream_prefixes: vec![] }] };
    let mut group_source = GroupSource::open(&target.url, &format!("down-{run}"), &interest).unwrap();
    let settler = group_source.settler().expect("a group settles");
    let settle = |event: &Event| {
        settler.send(Settled { position: event.position, settlement: Settlement::Dispatched(1) }).unwrap();
        settler.send(Settled { position: event.position, settlement: Settlement::Done }).unwrap();
    };
    let before = wait_for(&mut group_source, 0, &run, 3);
    before.iter().for_each(settle);
    // The acknowledgements go out on the source's own time.
    std::thread::sleep(Duration::from_millis(500));
    // Down for longer than the client tries to find it: it closes its connection for good.
    target.restart.as_ref().expect("the stand-in restarts").run_down(Duration::from_secs(6));
    write(&target, &(3..6).map(|n| new(&stream, &event_type, n)).collect::<Vec<_>>());
    let after = wait_for(&mut group_source, 0, &run, 3);
    let numbers: Vec<u64> = seen(&after).into_iter().map(|(_, n)| n).collect();
    assert_eq!(numbers, [3, 4, 5], "the events written while it was away, once each");
}

fn replay_parked_case(target: &Target) {
    use projector::source::esdb::persistent::{replay_parked, GroupSource};
    use projector::source::settle::{Settled, Settlement};
    let run = run_id();
    let event_type = format!("Grouped{run}");
    let stream = format!("Conf{run}-group");
    write(target, &(0..3).map(|n| new(&stream, &event_type, n)).collect::<Vec<_>>());
    let interest = Interest { projections: vec![Wants { event_types: vec![event_type.clone()], stream_prefixes: vec![] }] };
    let group = format!("conformance-{run}");
    let mut group_source = GroupSource::open(&target.url, &group, &interest).unwrap();
    let settler = group_source.settler().expect("a group settles");
    let settle = |event: &Event, settlement: Settlement| {
        settler.send(Settled { position: event.position, settlement: Settlement::Dispatched(1) }).unwrap();
        settler.send(Settled { position: event.position, settlement }).unwrap();
    };
    let delivered = wait_for(&mut group_source, 0, &run, 3);
    assert_eq!(delivered.len(), 3, "{}: {delivered:?}", target.name);
    settle(&delivered[0], Settlement::Done);
    settle(&delivered[1], Settlement::Parked("parked by the conformance suite".into()));
    settle(&delivered[2], Settlement::Done);
    // The server writes the parked stream on its own time: replay until it comes.
    let started = Instant::now();
    let again = loop {
        assert!(started.elapsed() < PATIENCE, "{}: the parked event did not come back within {PATIENCE:?}", target.name);
        replay_parked(&target.url, &group).unwrap();
        let events: Vec<Event> = group_source.read(0, 10).unwrap().into_iter().filter(|e| e.stream.contains(&run)).collect();
        if !events.is_empty() {
            break events;
        }
    };
    assert_eq!(again.len(), 1, "{}: only the parked event comes back: {again:?}", target.name);
    let (back, parked) = (&again[0], &delivered[1]);
    assert_eq!(
        (&back.id, &back.event_type, back.position, &back.data),
        (&parked.id, &parked.event_type, parked.position, &parked.data),
        "{}",
        target.name
    );
    settle(back, Settlement::Done);
    drop(group_source);

    // The group keeps the filter it was created with: a projection that now
    // wants another type is refused, by name, rather than never get it.
    let wider = Interest { projections: vec![Wants { event_types: vec![event_type.clone(), format!("Other{run}")], stream_prefixes: vec![] }] };
    let refused = GroupSource::open(&target.url, &group, &wider).err().expect("a group with another filter is refused").to_string();
    assert!(refused.contains(&format!("group `{group}` was created with the filter")), "{}: {refused}", target.name);
    assert!(GroupSource::open(&target.url, &group, &interest).is_ok(), "{}: the same filter joins the group", target.name);
}
