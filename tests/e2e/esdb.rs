//! The EventStoreDB source through the real binary and the real client,
//! against the stand-in (`tests/servers/esdb-standin`) playing a 22.10 server
//! (a subscription skips the first record at or after where it starts, and
//! never says it has caught up) and a 24.10 one: the events imported into it
//! and projected from it, with kill -9 at random moments, give the read model
//! a run over the embedded log gives.

use std::process::Stdio;
use std::time::Duration;

use esdb_standin::{StandIn, Version};
use rand::{Rng, SeedableRng};

use crate::support::Workspace;

const EVENTS: u64 = 3_000;
const KILLS: usize = 6;
const PLUGINS: [&str; 2] = ["interview-graph", "interview-upcasters"];

fn import_sample(ws: &Workspace) {
    let file = ws.path("sample.jsonl");
    let sample = ws.command(&["sample", "--events", &EVENTS.to_string(), "--seed", "11"]).output().unwrap();
    std::fs::write(&file, sample.stdout).unwrap();
    let out = ws.command(&["import"]).arg(&file).stdout(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "import: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_run_from_eventstoredb_of_either_kind_with_kill_9_builds_what_a_run_from_the_embedded_log_builds() {
    let reference = Workspace::new(&PLUGINS);
    import_sample(&reference);
    reference.cli(&["run", "--quiet"]);
    let expected = reference.export();
    assert!(expected.lines().count() > 1_000, "the sample builds a read model");

    for version in [Version::V22_10, Version::V24_10] {
        let standin = StandIn::start(version).unwrap();
        let mut ws = Workspace::new(&PLUGINS);
        ws.config.source = standin.url();
        import_sample(&ws);
        let mut rng = rand::rngs::StdRng::seed_from_u64(u64::from(version.major));
        for _ in 0..KILLS {
            let mut child = ws.command(&["run", "--quiet"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
            std::thread::sleep(Duration::from_millis(rng.random_range(100..900)));
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap();
            }
            child.wait().unwrap();
        }
        // Without --follow the run ends once caught up, which a 22.10 server never says.
        ws.cli(&["run", "--quiet"]);
        assert!(ws.parked().is_empty(), "{version}: {:?}", ws.parked());
        assert!(ws.export() == expected, "{version}: the read model projected from EventStoreDB differs from the embedded log's");
    }
}

#[test]
fn a_server_older_than_21_10_is_refused_with_its_version_named() {
    let standin = StandIn::start(Version { major: 20, minor: 10 }).unwrap();
    let mut ws = Workspace::new(&PLUGINS);
    ws.config.source = standin.url();
    let out = ws.command(&["run"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("EventStoreDB 20.10 is older than 21.10") && stderr.contains("upgrade the server"), "{stderr}");
}

/// A subscription stream the server ends cleanly makes the client read the
/// ended stream again and again without yielding, which holds the source's
/// runtime: the host says so and stops, rather than wait for events forever.
#[test]
fn a_subscription_the_server_ends_cleanly_stops_the_host_with_the_reason() {
    let standin = StandIn::start(Version::V24_10).unwrap();
    let mut ws = Workspace::new(&PLUGINS);
    ws.config.source = standin.url();
    import_sample(&ws);
    standin.log.end_subscriptions();
    let started = std::time::Instant::now();
    let child = ws.command(&["run", "--follow"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut child = crate::support::Reaped(child);
    crate::support::wait_until("the host stops", Duration::from_secs(60), || child.0.try_wait().unwrap().is_some());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!child.0.wait().unwrap().success(), "{stderr}");
    assert!(stderr.contains("has run none of its tasks") && stderr.contains("restart the host"), "{stderr}");
    eprintln!("the host stopped {:?} after it started", started.elapsed());
}
