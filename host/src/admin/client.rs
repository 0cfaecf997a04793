//! The CLI's side of the admin endpoint.

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use serde_json::Value;

use super::access::Token;

/// How long the CLI waits for a running host's answer (a reload compiles).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

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
