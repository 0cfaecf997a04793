//! Watching a running host: its metrics parse as Prometheus text and agree
//! with the run's own report, its lag falls to zero when caught up and rises
//! while a projection is held, `/health/ready` says why it is not ready, and
//! `projector status` tells each projection's state.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{event, plugin, signal, wait_until, Reaped, Workspace};
use crate::swap::{deploy, with_admin};

const LIMIT: Duration = Duration::from_secs(120);

/// GET `path` from the admin endpoint at `addr`: the status code and the body.
pub fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let code = answer.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("not an HTTP answer: {answer}"));
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (code, body)
}

/// The metrics, parsed by a Prometheus text parser: each series (name and
/// sorted labels) with its value.
pub fn scrape(addr: &str) -> HashMap<String, f64> {
    let (code, body) = get(addr, "/metrics");
    assert_eq!(code, 200, "{body}");
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("the metrics parse as Prometheus text");
    let mut series = HashMap::new();
    for sample in scrape.samples {
        let mut labels: Vec<String> = sample.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        labels.sort();
        let value = match sample.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => continue,
        };
        series.insert(format!("{}{{{}}}", sample.metric, labels.join(",")), value);
    }
    series
}

fn value(series: &HashMap<String, f64>, name: &str) -> f64 {
    let key = format!("{name}{{projection=recorder}}");
    *series.get(&key).unwrap_or_else(|| panic!("no series {key} among {:?}", series.keys().collect::<Vec<_>>()))
}

/// `projector status --json`: the recorder's status.
fn status(ws: &Workspace) -> Value {
    let host: Value = serde_json::from_str(&ws.cli(&["status", "--json"])).unwrap();
    host["projections"].as_array().unwrap().iter().find(|p| p["name"] == "recorder").cloned().expect("the recorder is listed")
}

/// A host following the workspace's log, its report in run.out, its log in host.log.
fn follow(ws: &Workspace) -> Reaped {
    let mut host = ws.command(&["run", "--follow", "--quiet"]);
    host.stdout(std::fs::File::create(ws.path("run.out")).unwrap()).stderr(std::fs::File::create(ws.path("host.log")).unwrap());
    Reaped(host.spawn().unwrap())
}

/// Whether a host answers `projector status`.
fn answers(ws: &Workspace) -> bool {
    ws.command(&["status", "--json"]).output().is_ok_and(|o| o.status.success())
}

fn ready(addr: &str) -> (u16, Value) {
    let (code, body) = get(addr, "/health/ready");
    (code, serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}")))
}

#[test]
fn the_metrics_agree_with_the_report_and_lag_falls_to_zero_then_rises_while_the_projection_is_held() {
    let ws = with_admin(Workspace::new(&["recorder"]));
    std::fs::write(ws.path("projector.toml"), "watch = false\n[lanes]\ncount = 2\nquarantine_after = 3\n").unwrap();
    let addr = ws.config.admin.clone();
    // 100 events, two of them parked (the last of their streams, so none behind them); applied once, then delivered again from
    // the start, so that the guards skip what was applied.
    let events: Vec<_> = (0..100)
        .map(|n| {
            let fail = if n == 93 || n == 97 { json!({"n": n, "fail": "permanent"}) } else { json!({"n": n}) };
            event(&format!("test-{}", n % 7), "Counted", 1, fail)
        })
        .collect();
    ws.append(&events);
    let first = ws.run();
    assert_eq!(first.parked, 2);
    ws.graph();
    rusqlite::Connection::open(ws.path("graph.db")).unwrap().execute("UPDATE checkpoints SET position = 1", []).unwrap();

    let mut host = follow(&ws);
    wait_until("the host catches up", LIMIT, || answers(&ws) && status(&ws)["state"] == "running");
    let caught_up = status(&ws);
    assert_eq!((caught_up["checkpoint"].as_u64(), caught_up["head"].as_u64()), (Some(101), Some(100)), "{caught_up}");
    assert_eq!((caught_up["lag_events"].as_u64(), caught_up["lag_seconds"].as_f64()), (Some(0), Some(0.0)), "{caught_up}");
    let series = scrape(&addr);
    assert_eq!(value(&series, "projector_lag_events"), 0.0);
    assert_eq!(value(&series, "projector_lag_seconds"), 0.0);
    assert_eq!(value(&series, "projector_checkpoint_position"), 101.0);
    assert_eq!(value(&series, "projector_source_head_position"), 100.0);
    assert!(value(&series, "projector_events_skipped_total") > 0.0, "the guards skipped the re-deliveries");
    assert_eq!(ready(&addr).0, 200, "{}", ready(&addr).1);

    // Three failures in a row quarantine it; what comes after waits behind its held checkpoint.
    // Each of its own key: a later event of a key with a parked one is parked behind it, not counted.
    let bad: Vec<_> = (0..3).map(|n| event(&format!("test-bad-{n}"), "Counted", 1, json!({"n": n, "fail": "permanent"}))).collect();
    ws.append(&bad);
    wait_until("the projection is quarantined", LIMIT, || status(&ws)["state"] == "quarantined");
    ws.append(&(0..5).map(|n| event("test-later", "Counted", 1, json!({"n": n}))).collect::<Vec<_>>());
    wait_until("the head moves on", LIMIT, || status(&ws)["head"].as_u64() == Some(108));
    let held = status(&ws);
    let (lag, checkpoint) = (held["lag_events"].as_u64().unwrap(), held["checkpoint"].as_u64().unwrap());
    assert!((101..=104).contains(&checkpoint), "the checkpoint is held at a bad event: {held}");
    assert_eq!(lag, 109 - checkpoint, "the lag counts every event from the held checkpoint to the head: {held}");
    let before = held["lag_seconds"].as_f64().unwrap();
    wait_until("the lag in seconds grows while the projection is held", LIMIT, || value(&scrape(&addr), "projector_lag_seconds") > before);
    let series = scrape(&addr);
    assert_eq!(value(&series, "projector_quarantined"), 1.0);
    assert_eq!(value(&series, "projector_lag_events"), lag as f64);
    let (code, why) = ready(&addr);
    assert_eq!(code, 503, "{why}");
    let failed: Vec<&Value> = why["checks"].as_array().unwrap().iter().filter(|c| c["ok"] == false).collect();
    assert_eq!(failed.len(), 1, "{why}");
    assert_eq!(failed[0]["check"], "projection recorder");
    assert!(failed[0]["why"].as_str().unwrap().starts_with("quarantined: "), "{why}");
    assert_eq!(get(&addr, "/health/live").0, 200, "a held projection does not make the process dead");

    // A fixed build lifts the quarantine: ready again, caught up again.
    deploy(&plugin("recorder-healed"), &ws.config.plugins);
    ws.cli(&["plugins", "reload"]);
    wait_until("the host is ready again", LIMIT, || ready(&addr).0 == 200);
    wait_until("it catches up again", LIMIT, || status(&ws)["lag_events"] == 0);
    assert_eq!(value(&scrape(&addr), "projector_quarantined"), 0.0);

    // The counters agree with what the run reports when it stops.
    let series = scrape(&addr);
    signal(&host.0, "TERM");
    host.0.wait().unwrap();
    let report = std::fs::read_to_string(ws.path("run.out")).unwrap();
    let counted = format!(
        "projected {} events ({} parked, {} already applied)",
        value(&series, "projector_events_handled_total"),
        value(&series, "projector_events_parked_total"),
        value(&series, "projector_events_skipped_total")
    );
    assert!(report.starts_with(&counted), "the metrics say `{counted}`, the run: {report}");
    let applied = value(&series, "projector_events_applied_total");
    assert_eq!(
        applied + value(&series, "projector_events_parked_total") + value(&series, "projector_events_skipped_total"),
        value(&series, "projector_events_handled_total"),
        "every event handled was applied, parked or skipped"
    );
}

#[test]
fn status_shows_a_key_that_is_retrying_and_the_sink_going_away_makes_the_host_unready_until_it_is_back() {
    let ws = with_admin(Workspace::new(&["recorder"]));
    // A try a long way off: the key waits for it for the whole test.
    std::fs::write(ws.path("projector.toml"), "watch = false\n[lanes]\nretry_attempts = 5\nretry_base_ms = 600000\n").unwrap();
    let addr = ws.config.admin.clone();
    ws.append(&(0..20).map(|n| event(&format!("test-{}", n % 4), "Counted", 1, json!({"n": n}))).collect::<Vec<_>>());
    let host = follow(&ws);
    wait_until("the host catches up", LIMIT, || answers(&ws) && status(&ws)["state"] == "running");
    ws.append(&[event("test-slow", "Counted", 1, json!({"fail": "transient"}))]);
    wait_until("the key retries", LIMIT, || status(&ws)["state"] == "retrying");
    let retrying = status(&ws);
    assert_eq!(retrying["retrying_keys"], 1, "{retrying}");
    assert_eq!(retrying["lag_events"], 1, "the waiting event holds the checkpoint: {retrying}");
    let table = ws.cli(&["status"]);
    assert!(table.contains("retrying 1 key"), "{table}");
    let series = scrape(&addr);
    assert_eq!(value(&series, "projector_retrying_keys"), 1.0);
    assert!(value(&series, "projector_events_retried_total") >= 1.0);
    assert_eq!(ready(&addr).0, 200, "a key that retries does not make the host unready: {}", ready(&addr).1);

    // Another process holds the graph's write lock: the next commit finds the sink unavailable.
    let blocker = ws.lock_graph();
    ws.append(&[event("test-0", "Counted", 1, json!({"n": "after"}))]);
    wait_until("the host is unready", LIMIT, || ready(&addr).0 == 503);
    let (_, why) = ready(&addr);
    let sink = why["checks"].as_array().unwrap().iter().find(|c| c["check"] == "sink").cloned().unwrap();
    assert_eq!(sink["ok"], false, "{why}");
    assert!(sink["why"].as_str().unwrap().contains("locked") || sink["why"].as_str().unwrap().contains("busy"), "{why}");
    blocker.execute_batch("COMMIT").unwrap();
    drop(blocker);
    wait_until("the host is ready again", LIMIT, || ready(&addr).0 == 200);
    drop(host);
}

#[test]
fn status_without_a_host_names_the_address_and_what_to_do() {
    let ws = with_admin(Workspace::new(&["recorder"]));
    let out = ws.command(&["status"]).stdout(Stdio::null()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&ws.config.admin) && stderr.contains("is `projector run` running"), "{stderr}");
}

#[test]
fn a_host_waiting_for_a_read_model_another_holds_is_standby_and_ready() {
    let mut ws = with_admin(Workspace::new(&["recorder"]));
    std::fs::write(ws.path("projector.toml"), "watch = false\n").unwrap();
    ws.append(&(0..10).map(|n| event("test-1", "Counted", 1, json!({"n": n}))).collect::<Vec<_>>());
    let first = follow(&ws);
    wait_until("the first host runs", LIMIT, || answers(&ws) && status(&ws)["state"] == "running");
    // A second host on the same files, with an admin endpoint of its own.
    ws = with_admin(ws);
    let mut second = ws.command(&["run", "--follow", "--quiet", "--wait"]);
    second.stdout(Stdio::null()).stderr(std::fs::File::create(ws.path("second.log")).unwrap());
    let second = Reaped(second.spawn().unwrap());
    wait_until("the second host waits", LIMIT, || answers(&ws) && status(&ws)["state"] == "standby");
    let standby = status(&ws);
    assert_eq!(standby["checkpoint"], 11, "a standby shows where the read model stands: {standby}");
    let (code, why) = ready(&ws.config.admin);
    assert_eq!(code, 200, "a standby waits its turn, ready (a rolling update waits for it): {why}");
    drop((first, second));
}

/// Imports `events` through the CLI, into whatever source the workspace reads.
fn import(ws: &Workspace, events: &[Value]) {
    let file = ws.path("more.jsonl");
    std::fs::write(&file, events.iter().map(|e| format!("{e}\n")).collect::<String>()).unwrap();
    let out = ws.command(&["import"]).arg(&file).stdout(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "import: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn over_eventstoredb_the_lag_is_told_in_seconds_from_the_servers_record_times() {
    use esdb_standin::{StandIn, Version};
    for version in [Version::V22_10, Version::V24_10] {
        let standin = StandIn::start(version).unwrap();
        let mut ws = with_admin(Workspace::new(&["recorder"]));
        ws.config.source = standin.url();
        std::fs::write(ws.path("projector.toml"), "watch = false\n[lanes]\nquarantine_after = 3\n").unwrap();
        let counted = |stream: String, data: Value| json!({"stream": stream, "type": "Counted", "data": data});
        import(&ws, &(0..20).map(|n| counted(format!("test-{}", n % 3), json!({"n": n}))).collect::<Vec<_>>());
        let host = follow(&ws);
        wait_until("the host catches up", LIMIT, || answers(&ws) && status(&ws)["state"] == "running");
        let caught_up = status(&ws);
        assert!(caught_up["head"].as_u64().is_some(), "{version}: {caught_up}");
        assert_eq!(caught_up["lag_seconds"].as_f64(), Some(0.0), "{version}: {caught_up}");
        assert_eq!(caught_up["lag_events"], 0, "{version}: {caught_up}");

        import(&ws, &(0..3).map(|n| counted(format!("test-bad-{n}"), json!({"fail": "permanent"}))).collect::<Vec<_>>());
        wait_until("the projection is quarantined", LIMIT, || status(&ws)["state"] == "quarantined");
        import(&ws, &[counted("test-later".into(), json!({"n": 1}))]);
        wait_until("the lag shows", LIMIT, || status(&ws)["lag_seconds"].as_f64().is_some_and(|s| s >= 1.0));
        let held = status(&ws);
        assert_eq!(held["lag_events"], Value::Null, "{version}: positions in $all do not count events: {held}");
        let (code, why) = ready(&ws.config.admin);
        assert_eq!(code, 503, "{version}: {why}");
        drop(host);
    }
}
