//! How to reach Neo4j: `[neo4j]` in projector.toml, the user and password also
//! from the environment. The password is read from the environment or a file,
//! never from the config itself, and never logged.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

/// The user, over `[neo4j] user`.
pub const USER_ENV: &str = "PROJECTOR_NEO4J_USER";
/// The password, over `[neo4j] password_file`.
pub const PASSWORD_ENV: &str = "PROJECTOR_NEO4J_PASSWORD";

/// Connections in the pool: one per lane of a default projection, and a few for reads.
pub const DEFAULT_POOL_SIZE: usize = 16;
/// How long one request may wait for the server before the sink counts as
/// unavailable (neo4rs applies its own connection timeout per response, too).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub user: String,
    /// A file whose first line is the password.
    pub password_file: Option<PathBuf>,
    /// The database; the server's default when unset.
    pub database: Option<String>,
    pub pool_size: usize,
    pub timeout_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            user: "neo4j".into(),
            password_file: None,
            database: None,
            pool_size: DEFAULT_POOL_SIZE,
            timeout_ms: DEFAULT_TIMEOUT.as_millis() as u64,
        }
    }
}

impl Settings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }

    pub fn user(&self) -> String {
        std::env::var(USER_ENV).unwrap_or_else(|_| self.user.clone())
    }

    fn password(&self) -> Result<String> {
        if let Ok(password) = std::env::var(PASSWORD_ENV) {
            return Ok(password);
        }
        match &self.password_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the Neo4j password file {}", path.display()))?;
                Ok(text.lines().next().unwrap_or_default().to_owned())
            }
            None => Ok(String::new()),
        }
    }

    pub fn driver_config(&self, uri: &str) -> Result<neo4rs::Config> {
        self.config(uri, self.pool_size.max(1), self.timeout())
    }

    /// The driver's settings for one connection that waits up to `timeout` for each answer.
    pub fn driver_config_waiting(&self, uri: &str, timeout: Duration) -> Result<neo4rs::Config> {
        self.config(uri, 1, timeout)
    }

    fn config(&self, uri: &str, connections: usize, timeout: Duration) -> Result<neo4rs::Config> {
        let mut config = neo4rs::ConfigBuilder::default()
            .uri(uri)
            .user(self.user())
            .password(self.password()?)
            .max_connections(connections)
            .connection_timeout(timeout);
        if let Some(db) = &self.database {
            config = config.db(db.as_str());
        }
        config.build().with_context(|| format!("sink {uri}: not a valid Neo4j address"))
    }
}
