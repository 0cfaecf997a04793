//! The admin endpoint: a small HTTP server, on loopback by default, through
//! which the CLI (or curl) asks a running host to reload or roll back a
//! plugin. Every request passes [`super::access`] first: the Host and Origin
//! checks, and the token for a request that changes something.
//!
//! | request | does |
//! |---|---|
//! | `GET /status` | each projection's build, state, checkpoint, lag, rate, parked events ([`crate::monitor::HostStatus`]) |
//! | `GET /metrics` | the metrics, in the OpenMetrics text format Prometheus reads |
//! | `GET /health/live` | 200 while the host answers |
//! | `GET /health/ready` | 200 when every projection runs and source and sink answer, else 503, with each check |
//! | `POST /plugins/reload` (`?name=NAME`) | reload every (or one) projection; 409 if a build was refused |
//! | `POST /plugins/rollback?name=NAME` | return to the build before the last swap |

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use super::access::{self, Access, Asked, Token};
use super::Swapper;
use crate::monitor::Monitor;

/// How long the CLI waits for a running host's answer (a reload compiles).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Threads that answer requests: a reload that compiles holds one, while
/// the others answer health checks and scrapes.
pub const ADMIN_THREADS: usize = 4;

pub struct Admin {
    server: Arc<tiny_http::Server>,
    threads: Vec<JoinHandle<()>>,
    pub addr: SocketAddr,
}

impl Admin {
    /// Listens on `addr`. Its token is the one `token_file` or the
    /// environment gives, or one made into `token_file`; an address that is not
    /// loopback needs one an operator gave.
    pub fn start(addr: &str, swapper: Arc<Swapper>, monitor: Arc<Monitor>, token_file: &std::path::Path) -> Result<Self> {
        let parsed: SocketAddr = addr.parse().with_context(|| format!("admin address `{addr}` is not HOST:PORT (e.g. 127.0.0.1:7931)"))?;
        if parsed.ip().is_unspecified() {
            bail!("admin address {addr} listens on every interface, and requests must name the endpoint in their Host header: give the one address clients use (e.g. 192.0.2.10:7931)");
        }
        if !parsed.ip().is_loopback() && access::client_token(token_file)?.is_none() {
            bail!(
                "admin address {addr} is not a loopback address: give the endpoint a token first ({} or a file {} of mode 0600), since anyone who can reach it could swap plugins",
                access::TOKEN_ENV,
                token_file.display()
            );
        }
        let (token, _) = access::host_token(token_file)?;
        let server = tiny_http::Server::http(parsed)
            .map_err(|e| anyhow!("cannot listen on {addr} for the admin endpoint: {e} (set `admin` in projector.toml to another port, or \"\" for none)"))?;
        let bound = server.server_addr().to_ip().unwrap_or(parsed);
        let access = Arc::new(Access::new(token, addr, bound));
        let server = Arc::new(server);
        let mut threads = Vec::new();
        for _ in 0..ADMIN_THREADS {
            let (serving, access, swapper, monitor) = (server.clone(), access.clone(), swapper.clone(), monitor.clone());
            threads.push(std::thread::Builder::new().name("admin".into()).spawn(move || serve(&serving, &access, &swapper, &monitor))?);
        }
        tracing::info!(addr = %bound, "admin endpoint listening");
        Ok(Self { server, threads, addr: bound })
    }
}

/// Answers requests until the server is unblocked.
fn serve(server: &tiny_http::Server, access: &Access, swapper: &Swapper, monitor: &Monitor) {
    for request in server.incoming_requests() {
        let reply = match access.check(&asked(&request)) {
            Ok(()) => answer(swapper, monitor, request.method(), request.url()),
            Err(refused) => {
                tracing::warn!(method = %request.method(), url = request.url(), status = refused.status, why = %refused.why, "admin request refused");
                Reply::json(refused.status, json!({"error": refused.why}))
            }
        };
        let response = tiny_http::Response::from_string(reply.body)
            .with_status_code(reply.status)
            .with_header(tiny_http::Header::from_bytes("Content-Type", reply.content_type).expect("a valid header"));
        let _ = request.respond(response);
    }
}

/// What the access checks look at in `request`.
fn asked(request: &tiny_http::Request) -> Asked<'_> {
    let header = |name: &'static str| request.headers().iter().find(|h| h.field.equiv(name)).map(|h| h.value.as_str());
    Asked {
        changes: *request.method() != tiny_http::Method::Get,
        host: header("Host"),
        origin: header("Origin"),
        authorization: header("Authorization"),
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        // Each unblock ends one thread's wait.
        for _ in &self.threads {
            self.server.unblock();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// An answer: status, body and its type.
struct Reply {
    status: u16,
    body: String,
    content_type: &'static str,
}

impl Reply {
    fn json(status: u16, body: Value) -> Self {
        Self { status, body: body.to_string(), content_type: "application/json" }
    }
}

fn answer(swapper: &Swapper, monitor: &Monitor, method: &tiny_http::Method, url: &str) -> Reply {
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

/// Sends an admin request, with `token` when there is one, to the host
/// listening on `addr`; the status and the JSON answer.
pub fn request(addr: &str, method: &str, path: &str, token: Option<&Token>) -> Result<(u16, Value)> {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(REQUEST_TIMEOUT)).build().into();
    let url = format!("http://{addr}{path}");
    let response = match (method, token) {
        ("POST", Some(token)) => agent.post(&url).header("Authorization", token.header()).send_empty(),
        ("POST", None) => agent.post(&url).send_empty(),
        (_, Some(token)) => agent.get(&url).header("Authorization", token.header()).call(),
        (_, None) => agent.get(&url).call(),
    };
    let mut response = response.map_err(|e| {
        anyhow!("no Projector host answers at {addr} ({e}): is `projector run` running, with `admin` set to this address?")
    })?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().context("reading the host's answer")?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}
