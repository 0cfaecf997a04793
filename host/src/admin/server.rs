//! The admin endpoint's server: it listens on its address and answers on
//! [`ADMIN_THREADS`] threads, each request checked by [`super::access`] first.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;

use super::access::{self, Access, Asked};
use super::routes::{answer, Reply};
use super::Host;

/// Threads that answer requests: a reload that compiles holds one, and a
/// replay or discard (one at a time) another, while the others answer
/// health checks and scrapes.
pub const ADMIN_THREADS: usize = 8;
/// How long a stopping host waits for requests under way to be answered.
pub const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Sent with every answer.
const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
];

pub struct Admin {
    server: Arc<tiny_http::Server>,
    threads: Vec<JoinHandle<()>>,
    pub addr: SocketAddr,
}

impl Admin {
    /// Listens on `addr`. Its token is the one `token_file` or the
    /// environment gives, or one made into `token_file`; an address that is not
    /// loopback needs one an operator gave.
    pub fn start(addr: &str, host: Host, token_file: &std::path::Path) -> Result<Self> {
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
            let (serving, access, host) = (server.clone(), access.clone(), host.clone());
            threads.push(std::thread::Builder::new().name("admin".into()).spawn(move || serve(&serving, &access, &host))?);
        }
        tracing::info!(addr = %bound, "admin endpoint listening");
        Ok(Self { server, threads, addr: bound })
    }
}

/// Answers requests until the server is unblocked.
fn serve(server: &tiny_http::Server, access: &Access, host: &Host) {
    for request in server.incoming_requests() {
        let reply = match access.check(&asked(&request)) {
            Ok(()) => answer(host, request.method(), request.url()),
            Err(refused) => {
                tracing::warn!(method = %request.method(), url = request.url(), status = refused.status, why = %refused.why, "admin request refused");
                Reply::json(refused.status, json!({"error": refused.why}))
            }
        };
        let response = tiny_http::Response::from_string(reply.body)
            .with_status_code(reply.status)
            .with_header(tiny_http::Header::from_bytes("Content-Type", reply.content_type).expect("a valid header"));
        // The console runs only its own script, and in no other site's frame.
        let response = SECURITY_HEADERS.iter().fold(response, |r, (name, value)| {
            r.with_header(tiny_http::Header::from_bytes(*name, *value).expect("a valid header"))
        });
        let _ = request.respond(response);
    }
}

/// What the access checks look at in `request`.
fn asked(request: &tiny_http::Request) -> Asked<'_> {
    let header = |name: &'static str| request.headers().iter().find(|h| h.field.equiv(name)).map(|h| h.value.as_str());
    Asked {
        needs_token: super::routes::needs_token(request.method(), request.url()),
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
        // A client that stops reading holds its thread: it is left behind, not waited for.
        let deadline = std::time::Instant::now() + STOP_WAIT;
        while self.threads.iter().any(|t| !t.is_finished()) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        for t in self.threads.drain(..).filter(|t| t.is_finished()) {
            let _ = t.join();
        }
    }
}

