//! Logging: `tracing` to standard error, filtered by `PROJECTOR_LOG` (e.g.
//! `PROJECTOR_LOG=debug` or `PROJECTOR_LOG=projector=debug`), `info` by default
//! (the Neo4j driver's own chatter from `warn`; the EventStoreDB client's none,
//! since the source reports its errors itself with more context).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init(default_level: &str) {
    let filter = EnvFilter::try_from_env("PROJECTOR_LOG").unwrap_or_else(|_| EnvFilter::new(format!("{default_level},neo4rs=warn,eventstore=off")));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// The process's peak resident memory in bytes (Linux; `None` elsewhere).
pub fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
