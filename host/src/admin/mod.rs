//! The admin endpoint: a small HTTP server, on loopback by default, through
//! which the CLI (or curl) asks a running host to reload or roll back a
//! plugin, and reads its status, metrics and health. Every request passes [`access`] first: the Host and Origin
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
