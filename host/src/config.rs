//! Configuration: `projector.toml` (optional), then `PROJECTOR_*` environment
//! variables, then command-line flags, each overriding the one before.
//! A missing file gives working defaults for the demo.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::lanes::{LaneSettings, RetryPolicy};
use crate::parking::ParkMode;
use crate::runtime::limits::{DEFAULT_CALL_DEADLINE, DEFAULT_QUARANTINE_AFTER, DEFAULT_QUARANTINE_AFTER_FAILING};

/// The default config file, looked for in the working directory.
pub const CONFIG_FILE: &str = "projector.toml";

/// Where a running host listens for admin requests.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:7931";
/// Where the admin endpoint's token is kept, beside the default data.
pub const DEFAULT_ADMIN_TOKEN_FILE: &str = ".projector/admin.token";

/// Lanes per projection, as in the deployment Projector grew out of.
pub const DEFAULT_LANES: usize = 12;
/// Workers per projection: as many as the machine has cores (and no more
/// than it has lanes).
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Events per handler call and per sink transaction.
pub const DEFAULT_BATCH_SIZE: usize = 256;
/// How long a lane waits for a batch to fill once it has one event.
pub const DEFAULT_BATCH_WAIT: Duration = Duration::from_millis(2);
/// Tries of a failing event before it is parked.
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 5;
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_millis(100);
pub const DEFAULT_RETRY_CAP: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where events come from: `embedded:PATH`.
    pub source: String,
    /// Where read models go: `embedded:PATH` or `neo4j://HOST:PORT`.
    pub sink: String,
    /// How to reach Neo4j when the sink is `neo4j://...`.
    pub neo4j: crate::sink::neo4j::Settings,
    /// The directory of plugin components (`*.wasm`).
    pub plugins: PathBuf,
    /// Where compiled plugins are cached.
    pub cache: PathBuf,
    /// The admin endpoint (`projector plugins reload`): on loopback unless a
    /// token is given (`admin::access`); "" for none.
    pub admin: String,
    /// The admin endpoint's token: a host makes it here (mode 0600) when it is
    /// missing, and the CLI reads it here (`PROJECTOR_ADMIN_TOKEN` overrides it).
    pub admin_token_file: PathBuf,
    /// Whether a running host reloads plugins when their files change.
    pub watch: bool,
    /// Lane settings for every projection.
    pub lanes: LaneConfig,
    /// Per-projection overrides of `lanes`, by projection name.
    pub projections: BTreeMap<String, LaneConfig>,
    /// How long the lease on a projection's read model lasts unless renewed:
    /// a host that died without giving it up holds up the next this long.
    pub lease_ms: u64,
    /// Whether `run` waits for a read model another host holds (`--wait`)
    /// instead of refusing to start.
    pub wait_for_lease: bool,
    /// `GET /health/ready` answers 503 while a projection's lag is longer
    /// than this many milliseconds (0: lag never makes the host unready).
    pub ready_max_lag_ms: u64,
}

/// Lane settings; in `[projections.NAME]` every field is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneConfig {
    pub count: Option<usize>,
    /// Threads that run the projection's lanes [default: the machine's cores].
    pub workers: Option<usize>,
    pub batch_size: Option<usize>,
    pub batch_wait_ms: Option<u64>,
    pub call_deadline_ms: Option<u64>,
    pub retry_attempts: Option<u32>,
    pub retry_base_ms: Option<u64>,
    pub retry_cap_ms: Option<u64>,
    pub park: Option<ParkMode>,
    pub quarantine_after: Option<u32>,
    /// Milliseconds of failing events in a row that quarantine the projection too (0: never).
    pub quarantine_after_failing_ms: Option<u64>,
    /// Only in `[projections.NAME]`, with an EventStoreDB source: the
    /// projection consumes this group of a persistent subscription to `$all`
    /// (created if missing, consumer strategy Pinned) instead of the shared
    /// catch-up subscription, so that several hosts can share its events.
    pub group: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            source: "embedded:.projector/events.db".into(),
            sink: "embedded:.projector/graph.db".into(),
            neo4j: Default::default(),
            plugins: "target/plugins".into(),
            cache: ".projector/cache".into(),
            admin: DEFAULT_ADMIN.into(),
            admin_token_file: DEFAULT_ADMIN_TOKEN_FILE.into(),
            watch: true,
            lanes: LaneConfig::default(),
            projections: BTreeMap::new(),
            lease_ms: crate::sink::lease::DEFAULT_LEASE.as_millis() as u64,
            wait_for_lease: false,
            ready_max_lag_ms: 0,
        }
    }
}

impl Config {
    /// Reads `path`, or `projector.toml` if it exists, or gives the defaults.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let path = match path {
            Some(p) => p.to_owned(),
            None if Path::new(CONFIG_FILE).exists() => PathBuf::from(CONFIG_FILE),
            None => return Ok(Self::default()),
        };
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read config {}", path.display()))?;
        let config: Self = toml::from_str(&text).with_context(|| format!("config {} is not valid", path.display()))?;
        config.check().with_context(|| format!("config {} is not valid", path.display()))?;
        Ok(config)
    }

    /// What the types alone cannot refuse.
    pub fn check(&self) -> Result<()> {
        if self.lease_ms < 300 {
            anyhow::bail!("`lease_ms` = {} is too short to be renewed in time: use 300 or more (the default is {})", self.lease_ms, crate::sink::lease::DEFAULT_LEASE.as_millis());
        }
        if self.lanes.group.is_some() {
            anyhow::bail!("`group` belongs in `[projections.NAME]`: a group is one projection's persistent subscription");
        }
        for (name, own) in &self.projections {
            if own.group.as_deref().is_some_and(|g| g.trim().is_empty()) {
                anyhow::bail!("projection `{name}` has an empty `group`");
            }
        }
        Ok(())
    }

    /// The persistent-subscription group a projection consumes, if any.
    pub fn group(&self, projection: &str) -> Option<&str> {
        self.projections.get(projection).and_then(|p| p.group.as_deref())
    }

    /// The lane settings of one projection: its overrides over the defaults.
    pub fn lane_settings(&self, projection: &str) -> LaneSettings {
        let own = self.projections.get(projection).cloned().unwrap_or_default();
        let pick = |f: fn(&LaneConfig) -> Option<u64>| f(&own).or(f(&self.lanes));
        let ms = Duration::from_millis;
        LaneSettings {
            lanes: own.count.or(self.lanes.count).unwrap_or(DEFAULT_LANES).max(1),
            workers: own.workers.or(self.lanes.workers).unwrap_or_else(default_workers).max(1),
            batch_size: own.batch_size.or(self.lanes.batch_size).unwrap_or(DEFAULT_BATCH_SIZE).max(1),
            batch_wait: pick(|c| c.batch_wait_ms).map_or(DEFAULT_BATCH_WAIT, ms),
            call_deadline: pick(|c| c.call_deadline_ms).map_or(DEFAULT_CALL_DEADLINE, ms),
            retry: RetryPolicy {
                attempts: own.retry_attempts.or(self.lanes.retry_attempts).unwrap_or(DEFAULT_RETRY_ATTEMPTS).max(1),
                base: pick(|c| c.retry_base_ms).map_or(DEFAULT_RETRY_BASE, ms),
                cap: pick(|c| c.retry_cap_ms).map_or(DEFAULT_RETRY_CAP, ms),
            },
            park_mode: own.park.or(self.lanes.park).unwrap_or_default(),
            quarantine_after: own.quarantine_after.or(self.lanes.quarantine_after).unwrap_or(DEFAULT_QUARANTINE_AFTER),
            quarantine_after_failing: pick(|c| c.quarantine_after_failing_ms).map_or(DEFAULT_QUARANTINE_AFTER_FAILING, ms),
            settle: None,
            lease: None,
            vitals: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_overrides_win_over_defaults() {
        let config: Config = toml::from_str(
            "[lanes]\ncount = 4\nretry_attempts = 2\n[projections.p]\ncount = 1\npark = \"event\"\n",
        )
        .unwrap();
        let p = config.lane_settings("p");
        assert_eq!((p.lanes, p.retry.attempts, p.park_mode), (1, 2, ParkMode::Event));
        let other = config.lane_settings("other");
        assert_eq!((other.lanes, other.park_mode), (4, ParkMode::KeyTail));
    }

    #[test]
    fn a_group_belongs_to_one_projection() {
        let config: Config = toml::from_str("[projections.p]\ngroup = \"p-hosts\"\n").unwrap();
        assert_eq!((config.group("p"), config.group("q")), (Some("p-hosts"), None));
        config.check().unwrap();
        let shared: Config = toml::from_str("[lanes]\ngroup = \"all\"\n").unwrap();
        assert!(shared.check().unwrap_err().to_string().contains("[projections.NAME]"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<Config>("sorce = \"x\"").unwrap_err().to_string();
        assert!(err.contains("sorce"), "{err}");
    }
}
