//! What each admin request does. Changes (`POST`) and reads of data (parked
//! events, the read model) need the token; the host's own state does not
//! ([`needs_token`], checked by [`super::access`]).

use std::collections::HashMap;

use serde_json::{json, Value};

use super::{console, svg, Host};
use crate::parking::Job;

/// How many relationships of a node the explorer shows at most.
pub const EXPLORER_EDGES: usize = 24;
/// How long a history the rate chart draws, in seconds.
pub const CHART_WINDOW: f64 = 600.0;

/// An answer: status, body and its type.
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub content_type: &'static str,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Self { status, body: body.to_string(), content_type: "application/json" }
    }

    fn of(status: u16, body: String, content_type: &'static str) -> Self {
        Self { status, body, content_type }
    }
}

/// The requests there are, for an answer to one there is not.
const REQUESTS: &str = "GET /, /status, /metrics, /health/live, /health/ready, /parked, /parked/show?id=N, /graph/labels, /graph/node?label=L&key=K, /graph/node.svg?label=L&key=K, /console/rate.svg; POST /plugins/reload, /plugins/rollback?name=NAME, /parked/replay?id=N, /parked/discard?id=N&reason=TEXT";

/// Whether a request needs the admin token: a change, or a read of events
/// or of the read model.
pub fn needs_token(method: &tiny_http::Method, url: &str) -> bool {
    let path = url.split_once('?').map_or(url, |(p, _)| p);
    *method != tiny_http::Method::Get || path.starts_with("/parked") || path.starts_with("/graph/")
}

pub fn answer(host: &Host, method: &tiny_http::Method, url: &str) -> Reply {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let q: HashMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().filter(|(_, v)| !v.is_empty()).collect();
    let arg = |name: &str| q.get(name).map(String::as_str);
    let failed = |e: anyhow::Error| Reply::json(409, json!({"error": format!("{e:#}")}));
    let missing = |what: &str| Reply::json(400, json!({"error": format!("say which: {path}?{what}")}));
    use tiny_http::Method::{Get, Post};
    match (method, path) {
        (Get, "/" | "/console") => Reply::of(200, console::PAGE.into(), "text/html; charset=utf-8"),
        (Get, "/console.js") => Reply::of(200, console::SCRIPT.into(), "text/javascript; charset=utf-8"),
        (Get, "/console.css") => Reply::of(200, console::STYLE.into(), "text/css; charset=utf-8"),
        (Get, "/metrics") => Reply::of(200, host.monitor.metrics_text(), crate::metrics::CONTENT_TYPE),
        (Get, "/health/live") => Reply::json(200, json!({"live": true})),
        (Get, "/health/ready") => {
            let readiness = host.monitor.readiness();
            Reply::json(readiness.status_code(), json!(readiness))
        }
        (Get, "/status") => Reply::json(200, json!({"projections": host.swapper.status(), "host": host.monitor.status()})),
        (Get, "/console/rate.svg") => Reply::of(200, svg::rate_chart(&host.monitor.history(), CHART_WINDOW), "image/svg+xml"),
        (Post, "/plugins/reload") => match host.swapper.reload(arg("name")) {
            Ok(report) => Reply::json(if report.refused.is_empty() { 200 } else { 409 }, json!(report)),
            Err(e) => failed(e),
        },
        (Post, "/plugins/rollback") => match arg("name") {
            None => missing("name=NAME"),
            Some(name) => match host.swapper.rollback(name) {
                Ok(line) => Reply::json(200, json!({"rolled_back": line})),
                Err(e) => failed(e),
            },
        },
        (Get, "/parked") => match host.sink.parked(arg("projection")) {
            Ok(mut parked) => {
                parked.retain(|p| (arg("all").is_some() || p.status == "parked") && arg("key").is_none_or(|k| p.key.contains(k)));
                Reply::json(200, json!({"parked": parked}))
            }
            Err(e) => failed(e),
        },
        (Get, "/parked/show") => match id(arg("id")) {
            None => missing("id=N"),
            Some(n) => match host.sink.parked(None).map(|all| all.into_iter().find(|p| p.id == n)) {
                Ok(Some(record)) => Reply::json(200, json!(record)),
                Ok(None) => Reply::json(404, json!({"error": format!("no parked event #{n}")})),
                Err(e) => failed(e),
            },
        },
        (Post, "/parked/replay") => match id(arg("id")) {
            None => missing("id=N"),
            Some(n) => resolve(host, Job::Replay(n)),
        },
        (Post, "/parked/discard") => match (id(arg("id")), arg("reason")) {
            (Some(n), Some(reason)) => resolve(host, Job::Discard(n, reason.to_owned())),
            _ => missing("id=N&reason=TEXT (a discard says why)"),
        },
        (Get, "/graph/labels") => match host.sink.stats() {
            Ok(stats) => Reply::json(200, json!(stats)),
            Err(e) => failed(e),
        },
        (Get, "/graph/node" | "/graph/node.svg") => match (arg("label"), arg("key")) {
            (Some(label), Some(key)) => match host.sink.neighbours(label, key, EXPLORER_EDGES) {
                Ok(Some(n)) if path.ends_with(".svg") => Reply::of(200, svg::neighbourhood(&n), "image/svg+xml"),
                Ok(Some(n)) => Reply::json(200, json!(n)),
                Ok(None) => Reply::json(404, json!({"error": format!("no {label} node has the key `{key}`")})),
                Err(e) => failed(e),
            },
            _ => missing("label=LABEL&key=KEY"),
        },
        _ => Reply::json(404, json!({"error": format!("no such admin request: {method} {path} ({REQUESTS})")})),
    }
}

fn id(arg: Option<&str>) -> Option<i64> {
    arg?.parse().ok()
}

/// Hands a parked event to its projection's router, and says what became of it.
fn resolve(host: &Host, job: Job) -> Reply {
    let record = match host.sink.parked(None) {
        Ok(all) => all.into_iter().find(|p| p.id == job.id() && p.status == "parked"),
        Err(e) => return Reply::json(409, json!({"error": format!("{e:#}")})),
    };
    let Some(record) = record else {
        return Reply::json(404, json!({"error": format!("no parked event #{} waits for a replay or a discard", job.id())}));
    };
    match host.desk.ask(&record.projection, job) {
        Ok(done) => Reply::json(200, json!({"done": done})),
        Err(e) => Reply::json(409, json!({"error": format!("{e:#}")})),
    }
}
