//! What each admin request does.

use serde_json::{json, Value};

use crate::monitor::Monitor;
use crate::swap::Swapper;

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
}

pub fn answer(swapper: &Swapper, monitor: &Monitor, method: &tiny_http::Method, url: &str) -> Reply {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let name = query.split('&').find_map(|kv| kv.strip_prefix("name=")).filter(|n| !n.is_empty());
    let (status, body) = match (method, path) {
        (tiny_http::Method::Get, "/metrics") => {
            return Reply { status: 200, body: monitor.metrics_text(), content_type: crate::metrics::CONTENT_TYPE };
        }
        (tiny_http::Method::Get, "/health/live") => (200, json!({"live": true})),
        (tiny_http::Method::Get, "/health/ready") => {
            let readiness = monitor.readiness();
            (readiness.status_code(), json!(readiness))
        }
        _ => answer_plugins(swapper, monitor, method, path, name),
    };
    Reply::json(status, body)
}

fn answer_plugins(swapper: &Swapper, monitor: &Monitor, method: &tiny_http::Method, path: &str, name: Option<&str>) -> (u16, Value) {
    let failed = |e: anyhow::Error| (409, json!({"error": format!("{e:#}")}));
    match (method, path) {
        (tiny_http::Method::Get, "/status") => (200, json!({"projections": swapper.status(), "host": monitor.status()})),
        (tiny_http::Method::Post, "/plugins/reload") => match swapper.reload(name) {
            Ok(report) => (if report.refused.is_empty() { 200 } else { 409 }, json!(report)),
            Err(e) => failed(e),
        },
        (tiny_http::Method::Post, "/plugins/rollback") => match name {
            None => (400, json!({"error": "say which projection: /plugins/rollback?name=NAME"})),
            Some(name) => match swapper.rollback(name) {
                Ok(line) => (200, json!({"rolled_back": line})),
                Err(e) => failed(e),
            },
        },
        _ => (
            404,
            json!({"error": format!("no such admin request: {method} {path} (GET /status, /metrics, /health/live, /health/ready; POST /plugins/reload, /plugins/rollback?name=NAME)")}),
        ),
    }
}

