//! Health as load balancers and Kubernetes ask for it: live (the process
//! answers) and ready (the monitor's reading is fresh, source and sink
//! answer, every projection runs unquarantined, lag under the configured
//! bound), each failed check with why.

use std::time::Duration;

use serde::Serialize;

use super::status::{HostStatus, State};
use super::STALE_AFTER;

#[derive(Debug, Serialize)]
pub struct Check {
    pub check: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub checks: Vec<Check>,
}

impl Readiness {
    /// 200 when ready, 503 when not.
    pub fn status_code(&self) -> u16 {
        if self.ready {
            200
        } else {
            503
        }
    }
}

/// Readiness from the monitor's last reading (how old, and what it read).
pub fn readiness(reading: Option<(Duration, &HostStatus)>, max_lag: Option<Duration>) -> Readiness {
    let mut checks = Vec::new();
    let mut check = |name: &str, why: Option<String>| checks.push(Check { check: name.to_owned(), ok: why.is_none(), why });
    let Some((age, status)) = reading else {
        check("monitor", Some("the host has not been read yet (it is starting)".into()));
        return Readiness { ready: false, checks };
    };
    check(
        "monitor",
        (age > STALE_AFTER).then(|| format!("the last reading of the host is {:.0} s old: the source or the sink is slow to answer", age.as_secs_f64())),
    );
    check("source", status.source_error.clone().map(|e| format!("the source does not answer: {e}")));
    check("sink", status.sink_error.clone().map(|e| format!("the sink does not answer: {e}")));
    for p in &status.projections {
        let why = match p.state {
            State::Quarantined => Some(format!("quarantined: {}", p.quarantined.as_deref().unwrap_or("no reason given"))),
            State::Stopped => Some("stopped: it takes no more events in this run".into()),
            State::Starting => Some("starting: its lanes have not started".into()),
            // A standby waits its turn: it is doing its job (and a rolling update waits for it).
            State::Standby => None,
            _ => match (max_lag, p.lag_seconds) {
                (Some(max), Some(lag)) if lag > max.as_secs_f64() => {
                    Some(format!("lag {lag:.1} s is more than the {:.1} s `ready_max_lag_ms` allows", max.as_secs_f64()))
                }
                (Some(_), None) => Some("its lag cannot be told (the source does not say when its events were recorded), and `ready_max_lag_ms` asks for it".into()),
                _ => None,
            },
        };
        check(&format!("projection {}", p.name), why);
    }
    Readiness { ready: checks.iter().all(|c| c.ok), checks }
}
