//! Poison isolation and replay: a plugin that fails on 1% of keys parks exactly
//! those keys' tails; after a fixed version is deployed, `parked replay --all`
//! gives the read model of a run that never failed.

use serde_json::json;

use crate::support::{event, plugin, Workspace};

const KEYS: usize = 300;
const PER_KEY: usize = 10;
/// Keys whose event number 4 fails permanently: 1% of them.
const POISONED: [usize; 3] = [17, 150, 299];
const FAILS_AT: usize = 4;

fn events() -> Vec<projector::source::NewEvent> {
    (0..PER_KEY)
        .flat_map(|n| {
            (0..KEYS).map(move |k| {
                let data = if n == FAILS_AT && POISONED.contains(&k) { json!({"fail": "permanent"}) } else { json!({"n": n}) };
                let mut e = event(&format!("test-{k}"), "Counted", 1, data);
                e.id = Some(uuid::Uuid::from_u128((k * PER_KEY + n) as u128));
                e
            })
        })
        .collect()
}

/// The export without the recorder's instance-local `previous` property, which
/// depends on which instance saw what, and without the `version` stamp, which
/// says which build handled an event: neither is the read model's content.
fn content(ws: &Workspace) -> Vec<String> {
    ws.export()
        .lines()
        .map(|line| {
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            let props = v["props"].as_object_mut().unwrap();
            props.remove("previous");
            props.remove("version");
            v.to_string()
        })
        .collect()
}

#[test]
fn poisoned_keys_park_their_tails_and_replay_after_a_fix_gives_the_clean_read_model() {
    let clean = Workspace::new(&["recorder-healed"]);
    clean.append(&events());
    clean.run();

    let ws = Workspace::new(&["recorder"]);
    ws.append(&events());
    let report = ws.run();
    let tail = PER_KEY - FAILS_AT;
    assert_eq!(report.parked as usize, POISONED.len() * tail);
    let parked = ws.parked();
    let mut parked_keys: Vec<String> = parked.iter().map(|p| p.key.clone()).collect();
    parked_keys.sort();
    parked_keys.dedup();
    let mut expected: Vec<String> = POISONED.iter().map(|k| format!("test-{k}")).collect();
    expected.sort();
    assert_eq!(parked_keys, expected, "exactly the poisoned keys are parked");
    assert_eq!(ws.nodes("Seen").len(), KEYS * PER_KEY - POISONED.len() * tail, "everything else is projected");

    // Replaying a tail event alone would apply it before its key's first failure.
    let tail_id = parked.iter().find(|p| p.behind.is_some()).unwrap().id.to_string();
    let refused = ws.command(&["parked", "replay", &tail_id]).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("parked behind"));

    // The unfixed version fails again: nothing is released.
    let again = ws.cli(&["parked", "replay", "--all"]);
    assert!(again.contains("replayed 0 events; 18 still parked"), "{again}");

    // Deploy the fixed version, replay.
    std::fs::remove_file(ws.config.plugins.join("recorder.wasm")).unwrap();
    std::fs::copy(plugin("recorder-healed"), ws.config.plugins.join("recorder-healed.wasm")).unwrap();
    let replayed = ws.cli(&["parked", "replay", "--all"]);
    assert!(replayed.contains("replayed 18 events; 0 still parked"), "{replayed}");
    assert!(ws.cli(&["parked", "list"]).contains("no parked events"));
    assert!(content(&ws) == content(&clean), "the replayed read model differs from the clean one");

    // New events of a released key flow again.
    ws.append(&[event("test-17", "Counted", 1, json!({"n": 99}))]);
    assert_eq!(ws.run().parked, 0);
}

#[test]
fn a_discarded_event_is_recorded_and_shown() {
    let ws = Workspace::new(&["recorder"]);
    ws.append(&[event("test-x", "Counted", 1, json!({"fail": "permanent"}))]);
    ws.run();
    let id = ws.parked()[0].id.to_string();
    let shown = ws.cli(&["parked", "show", &id]);
    assert!(shown.contains("asked to fail") && shown.contains("\"stream\": \"test-x\""), "{shown}");
    let discarded = ws.cli(&["parked", "discard", &id, "--reason", "test data"]);
    assert!(discarded.contains("discarded #1"), "{discarded}");
    assert!(ws.cli(&["parked", "list"]).contains("no parked events"));
    let all = ws.cli(&["parked", "list", "--all"]);
    assert!(all.contains("[discarded]"), "{all}");
    let record = &ws.parked()[0];
    assert_eq!((record.status.as_str(), record.note.as_deref()), ("discarded", Some("test data")));
    assert!(record.resolved_at.is_some());
}

/// In a running host, a replay from the admin endpoint while new events of the
/// parked key keep coming: every event of the key is applied once, in the end
/// none is parked, and the other keys flowed meanwhile.
#[test]
fn a_replay_in_a_running_host_while_the_key_s_new_events_arrive_applies_each_once() {
    use crate::swap::{deploy, follow, with_admin};
    use std::time::Duration;
    let ws = with_admin(Workspace::new(&["recorder"]));
    std::fs::write(ws.path("projector.toml"), "watch = false\n").unwrap();
    let counted = |stream: &str, n: usize| event(stream, "Counted", 1, json!({"n": n}));
    let mut first = vec![event("test-key", "Counted", 1, json!({"fail": "permanent"}))];
    first.extend((1..3).map(|n| counted("test-key", n)));
    first.extend((0..50).map(|n| counted(&format!("test-other-{}", n % 5), n)));
    ws.append(&first);
    let host = follow(&ws);
    let parked = |ws: &Workspace| ws.parked().into_iter().filter(|p| p.status == "parked").count();
    crate::support::wait_until("the key is parked, three events", Duration::from_secs(120), || parked(&ws) == 3);
    deploy(&plugin("recorder-healed"), &ws.config.plugins);
    ws.cli(&["plugins", "reload"]);
    let head = ws.parked().into_iter().min_by_key(|p| p.position).unwrap().id;
    let token = projector::admin::access::client_token(&ws.path(".projector/admin.token")).unwrap().expect("the host made its token");
    let answer = std::thread::scope(|scope| {
        let appending = scope.spawn(|| {
            for n in 3..40 {
                ws.append(&[counted("test-key", n), counted("test-other-0", 100 + n)]);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let answer = projector::admin::request(&ws.config.admin, "POST", &format!("/parked/replay?id={head}"), Some(&token)).unwrap();
        appending.join().unwrap();
        answer
    });
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert!(answer.1["done"].as_str().unwrap().starts_with("replayed 3 events; 0 still parked"), "{}", answer.1);
    crate::support::wait_until("every event of the key is applied", Duration::from_secs(120), || {
        ws.nodes("Seen").iter().filter(|n| n["stream"] == "test-key").count() >= 40
    });
    drop(host);
    let revisions: Vec<i64> = {
        let mut r: Vec<i64> = ws.nodes("Seen").iter().filter(|n| n["stream"] == "test-key").map(|n| n["revision"].as_i64().unwrap()).collect();
        r.sort();
        r
    };
    assert_eq!(revisions, (0..40).collect::<Vec<_>>(), "each event of the key once");
    assert_eq!(parked(&ws), 0, "{:?}", ws.parked());
}
