//! The web console, in a real browser against a running host with sample
//! data: the projections page shows each projection and its lag, a parked
//! event is replayed from the page and leaves the list, and the explorer
//! draws a node with its neighbours, and a build is rolled back from the
//! plugins page. A screenshot of each page is kept in target/test-output/console/.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::browser::{screenshots, Browser};
use crate::support::{event, plugin, wait_until, Reaped, Workspace};
use crate::swap::{deploy, with_admin};

const LIMIT: Duration = Duration::from_secs(120);

fn status(ws: &Workspace) -> Option<serde_json::Value> {
    let out = ws.command(&["status", "--json"]).output().ok()?;
    out.status.success().then(|| serde_json::from_slice(&out.stdout).ok()).flatten()
}

#[test]
fn the_console_shows_the_projections_replays_a_parked_event_and_draws_a_node_with_its_neighbours() {
    let ws = with_admin(Workspace::new(&["interview-graph", "interview-upcasters", "recorder"]));
    std::fs::write(ws.path("projector.toml"), "watch = false\n").unwrap();
    let sample = ws.command(&["sample", "--events", "400", "--seed", "5"]).output().unwrap();
    std::fs::write(ws.path("sample.jsonl"), sample.stdout).unwrap();
    ws.cli(&["import", "sample.jsonl"]);
    let poison = |stream: &str| event(stream, "Counted", 1, json!({"fail": "permanent"}));
    ws.append(&[event("test-1", "Counted", 1, json!({"n": 1})), poison("test-poison"), poison("test-spoiled")]);
    let host = ws.command(&["run", "--follow", "--quiet"]).stdout(Stdio::null()).stderr(std::fs::File::create(ws.path("host.log")).unwrap()).spawn().unwrap();
    let host = Reaped(host);
    wait_until("both projections run, one event parked", LIMIT, || {
        status(&ws).is_some_and(|s| {
            let projections = s["projections"].as_array().unwrap();
            projections.iter().all(|p| p["state"] == "running") && projections.iter().any(|p| p["parked"] == 2)
        })
    });
    let browser = Browser::start();
    let (dir, base) = (screenshots(), format!("http://{}", ws.config.admin));

    browser.open(&format!("{base}/#projections"));
    browser.wait_until("the projections page shows each projection caught up", |b| {
        ["interview-graph", "recorder"].iter().all(|p| b.texts(&format!("#projection-table tr[data-projection='{p}'] td.lag")) == ["0"])
    });
    assert_eq!(browser.texts("#projection-table td.state"), ["running", "running"]);
    assert_eq!(browser.texts("#projection-table tr[data-projection='recorder'] td.parked"), ["2"]);
    browser.wait_until("the rate chart is drawn", |b| !b.texts("#rate-chart svg text.series").is_empty());
    browser.screenshot(&dir, "projections");
    // The parked events and the read model are data: the page sends the token for them too.
    let token = std::fs::read_to_string(ws.path(".projector/admin.token")).unwrap();
    browser.type_into("#token", token.trim());

    // A fixed build first, so that the replay passes.
    deploy(&plugin("recorder-healed"), &ws.config.plugins);
    ws.cli(&["plugins", "reload"]);
    browser.open(&format!("{base}/#parked"));
    // Listed by id: the two lanes parked them in either order.
    let keys = |b: &Browser| {
        let mut keys = b.texts("#parked-table tbody td.key");
        keys.sort();
        keys
    };
    browser.wait_until("the parked events are listed", |b| keys(b) == ["test-poison", "test-spoiled"]);
    // Filtered by key, shown in full, discarded with a reason.
    browser.type_into("#parked-key", "spoiled");
    browser.click("#parked-filter button");
    browser.wait_until("the filter leaves one", |b| keys(b) == ["test-spoiled"]);
    browser.click("#parked-table tbody tr");
    browser.wait_until("it is shown in full", |b| b.texts("#parked-title").first().is_some_and(|t| t.contains("test-spoiled")));
    browser.click("#discard");
    browser.wait_until("a discard without a reason is refused by the page", |b| b.texts("#message")[0].contains("say why"));
    browser.type_into("#discard-reason", "written by a broken client");
    browser.click("#discard");
    browser.wait_until("the discard is done and the event leaves the list", |b| b.texts("#message")[0].starts_with("discarded #") && keys(b).is_empty());
    browser.type_into("#parked-key", "");
    browser.click("#parked-filter button");
    browser.wait_until("the other is listed", |b| keys(b) == ["test-poison"]);
    browser.click("#parked-table tbody tr");
    browser.type_into("#token", "");
    browser.wait_until("the parked event is shown in full", |b| b.texts("#parked-title").first().is_some_and(|t| t.contains("test-poison")));
    assert!(browser.texts("#parked-json")[0].contains("asked to fail"), "the record shows its error");
    browser.click("#replay");
    browser.wait_until("a replay without the token is refused by the page", |b| b.texts("#message")[0].contains("give the admin token"));
    browser.type_into("#token", token.trim());
    browser.screenshot(&dir, "parked");
    browser.click("#replay");
    browser.wait_until("the replay is done and the event leaves the list", |b| {
        b.texts("#message")[0].starts_with("replayed 1 events") && b.texts("#parked-table tbody td.key").is_empty()
    });
    browser.screenshot(&dir, "parked-replayed");
    let mut statuses: Vec<(String, String, Option<String>)> = ws.parked().into_iter().map(|p| (p.key, p.status, p.note)).collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [("test-poison".into(), "replayed".into(), None), ("test-spoiled".into(), "discarded".into(), Some("written by a broken client".into()))]
    );
    assert!(ws.nodes("Seen").iter().any(|n| n["stream"] == "test-poison"), "the replayed event is in the read model");

    let interview = ws.nodes("Interview")[0]["id"].as_str().unwrap().to_owned();
    browser.open(&format!("{base}/#explorer?label=Interview&key={interview}"));
    let drawn = |b: &Browser| b.texts("#graph svg g.node title");
    browser.wait_until("the explorer draws the interview and its neighbours", |b| drawn(b).len() > 2);
    let titles = drawn(&browser);
    assert_eq!(titles.last().unwrap(), &format!("Interview {interview}"), "the node is drawn in the middle, last");
    assert!(titles.iter().any(|t| t.starts_with("Sentence ")) && titles.iter().any(|t| t.starts_with("Project ")), "{titles:?}");
    assert!(browser.texts("#node-json")[0].contains(&interview), "its properties are shown");
    browser.screenshot(&dir, "explorer");
    // A neighbour opens where it is clicked.
    let neighbour = titles[0].clone();
    browser.click("#graph svg g.node");
    browser.wait_until("the explorer moves to the neighbour", |b| drawn(b).last() == Some(&neighbour));

    // The builds, and a rollback from the page.
    browser.open(&format!("{base}/#plugins"));
    let build = |b: &Browser| b.texts("#plugin-table tr[data-projection='recorder'] td.build");
    browser.wait_until("the plugins page shows the swapped-in build", |b| build(b) == ["0.1.0+healed"]);
    browser.screenshot(&dir, "plugins");
    browser.click("#plugin-table tr[data-projection='recorder'] button.rollback");
    browser.wait_until("the rollback is done", |b| b.texts("#message")[0].contains("rolled back") && build(b) == ["0.1.0"]);
    drop(host);
}
