//! The admin endpoint: a small HTTP server, on loopback by default, through
//! which the CLI, curl, Prometheus, a load balancer or the web console ask a
//! running host for its status, metrics and health, swap its builds and
//! resolve its parked events. Every request passes [`access`] first: the Host
//! and Origin checks, and the token for a change or a read of data.
//!
//! | request | does |
//! |---|---|
//! | `GET /`, `/console.js`, `/console.css` | the web console ([`console`]) |
//! | `GET /status` | each projection's build, state, checkpoint, lag, rate, parked events ([`crate::monitor::HostStatus`]) |
//! | `GET /metrics` | the metrics, in the OpenMetrics text format Prometheus reads |
//! | `GET /health/live`, `/health/ready` | 200 while the host answers; 200 when ready, else 503 with each check |
//! | `GET /console/rate.svg` | the rate chart |
//! | `GET /parked`, `/parked/show?id=N` (token) | parked events |
//! | `GET /graph/labels`, `/graph/node(.svg)?label=L&key=K` (token) | the read model: labels, a node with its neighbours |
//! | `POST /plugins/reload` (`?name=NAME`), `/plugins/rollback?name=NAME` (token) | swap builds |
//! | `POST /parked/replay?id=N`, `/parked/discard?id=N&reason=TEXT` (token) | resolve a parked event in the running host |
//!
//! Files: [`server`] listens and answers on a few threads, [`routes`] says what
//! each request does, [`client`] is the CLI's side.

pub mod access;
mod client;
mod console;
mod routes;
mod server;
mod svg;

pub use client::{request, REQUEST_TIMEOUT};
pub use server::{Admin, ADMIN_THREADS};

use std::sync::Arc;

/// What the admin endpoint reaches a running pipeline through.
#[derive(Clone)]
pub struct Host {
    pub swapper: Arc<crate::swap::Swapper>,
    pub monitor: Arc<crate::monitor::Monitor>,
    pub desk: Arc<crate::parking::Desk>,
    pub sink: Arc<dyn crate::sink::Sink>,
}
