//! Logging: `tracing` to standard error, filtered by `PROJECTOR_LOG` (e.g.
//! `PROJECTOR_LOG=debug` or `PROJECTOR_LOG=projector=debug`), `info` by default.

use tracing_subscriber::EnvFilter;

pub fn init(default_level: &str) {
    let filter = EnvFilter::try_from_env("PROJECTOR_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
}
