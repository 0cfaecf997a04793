//! The connection: a client for one EventStoreDB/KurrentDB server, with the
//! tokio runtime it runs on (the rest of the host is threads, not async).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use eventstore::{Client, ClientSettings, Position, ReadAllOptions, ReadEvent, StreamPosition};

/// The variable a bare `esdb:` source reads its connection string from, as the
/// system Projector grew out of did.
pub const CONNECTION_VARIABLE: &str = "ESDB_CONNECTION_STRING";
/// How long opening a source waits for the server to answer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the client's runtime shows that it still runs its tasks.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long the runtime may show nothing before the source stops: its one
/// thread is held by a task that never yields (the client does that when a
/// server ends a subscription cleanly), so no event would come again.
pub const STALL: Duration = Duration::from_secs(10);
/// The oldest servers the source reads: 21.10 brought persistent
/// subscriptions to `$all`; the differences of servers up to 23.10 (where a
/// subscription starts, no word when it has caught up) are handled.
pub const OLDEST_SERVER: (usize, usize) = (21, 10);

pub struct Connection {
    /// The connection string without its password, for logs and errors.
    pub server: String,
    pub client: Client,
    /// What the client was made from, to make it anew.
    pub settings: ClientSettings,
    /// Taken only when the connection closes ([`Drop`]).
    runtime: Option<tokio::runtime::Runtime>,
    /// Milliseconds since `started` at the runtime's last heartbeat.
    beat: Arc<AtomicU64>,
    started: Instant,
}

impl Connection {
    /// Connects to the server `url` names (`esdb://...`, `esdb+discover://...`,
    /// `kurrentdb://...`, or `esdb:` for the one in `ESDB_CONNECTION_STRING`),
    /// and checks that it answers.
    pub fn open(url: &str) -> Result<Self> {
        let connection_string = connection_string(url, std::env::var(CONNECTION_VARIABLE).ok())?;
        let server = redact(&connection_string);
        let settings: ClientSettings = connection_string
            .parse()
            .map_err(|e| anyhow!("source {server} is not a valid connection string: {e} (e.g. esdb://localhost:2113?tls=false)"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("esdb")
            .enable_all()
            .build()
            .context("cannot start the EventStoreDB client's runtime")?;
        let client = Client::with_runtime_handle(runtime.handle().clone(), settings.clone())
            .map_err(|e| anyhow!("cannot make a client for {server}: {e}"))?;
        let (beat, started) = (Arc::new(AtomicU64::new(0)), Instant::now());
        let heart = beat.clone();
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                heart.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            }
        });
        let connection = Self { server, client, settings, runtime: Some(runtime), beat, started };
        connection.last_position().with_context(|| {
            format!(
                "cannot reach EventStoreDB/KurrentDB at {}: is it running? (a local one: `docker run -d -p 2113:2113 docker.kurrent.io/kurrent-latest/kurrentdb --insecure`, then `esdb://localhost:2113?tls=false`)",
                connection.server
            )
        })?;
        let info = connection.runtime().block_on(connection.client.server_info());
        let version = info.map(|i| i.version()).map_err(|e| anyhow!("cannot ask {} for its version: {e}", connection.server))?;
        supported((version.major(), version.minor(), version.patch())).map_err(|why| anyhow!("source {}: {why}", connection.server))?;
        tracing::info!(server = %connection.server, version = %version, "connected to EventStoreDB/KurrentDB");
        Ok(connection)
    }

    /// The runtime the client runs on.
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("taken only on drop")
    }

    /// The position of the last record in `$all`, `None` for an empty log.
    pub fn last_position(&self) -> Result<Option<Position>> {
        match self.runtime().block_on(async { tokio::time::timeout(CONNECT_TIMEOUT, last_position(&self.client)).await }) {
            Ok(result) => Ok(result?),
            Err(_) => bail!("no answer within {CONNECT_TIMEOUT:?}"),
        }
    }

    /// An error once the client's runtime has stopped running its tasks ([`STALL`]).
    pub fn check_running(&self) -> Result<()> {
        let silent = self.started.elapsed().saturating_sub(Duration::from_millis(self.beat.load(Ordering::Relaxed)));
        if silent > STALL + HEARTBEAT {
            bail!(
                "the EventStoreDB client for {} has run none of its tasks for {silent:.0?}: a subscription's stream ended without an error, \
                 which the client cannot recover from; restart the host (it resumes from its checkpoint)",
                self.server
            );
        }
        Ok(())
    }
}

impl Drop for Connection {
    /// Stops the runtime without waiting for its threads: one held by a task
    /// that never yields ([`STALL`]) would hold the host's exit too.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The position of the last record in `$all`, `None` for an empty log.
pub async fn last_position(client: &Client) -> eventstore::Result<Option<Position>> {
    let options = ReadAllOptions::default().position(StreamPosition::End).backwards().max_count(1);
    let mut read = client.read_all(&options).await?;
    while let Some(item) = read.next_read_event().await? {
        if let ReadEvent::Event(e) = item {
            return Ok(Some(e.get_original_event().position));
        }
    }
    Ok(None)
}

/// Whether the source reads a server of `version` (0.0.0: older than 21.6,
/// which does not tell its version).
pub fn supported(version: (usize, usize, usize)) -> Result<(), String> {
    let (major, minor, _) = version;
    if version == (0, 0, 0) {
        return Err(format!(
            "the server does not tell its version, so it is older than 21.6; this source reads EventStoreDB {}.{} and later (KurrentDB 24.2 and later is best): upgrade the server",
            OLDEST_SERVER.0, OLDEST_SERVER.1
        ));
    }
    if (major, minor) < OLDEST_SERVER {
        return Err(format!(
            "EventStoreDB {major}.{minor} is older than {}.{}, the oldest this source reads (persistent subscriptions to $all came in 21.10): upgrade the server",
            OLDEST_SERVER.0, OLDEST_SERVER.1
        ));
    }
    Ok(())
}

/// The connection string a source URL stands for.
pub fn connection_string(url: &str, from_env: Option<String>) -> Result<String> {
    if url == "esdb:" || url == "kurrentdb:" {
        return from_env
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| anyhow!("source `{url}` takes its connection string from {CONNECTION_VARIABLE}, which is not set (e.g. {CONNECTION_VARIABLE}=esdb://localhost:2113?tls=false)"));
    }
    // The client knows the `esdb` schemes; KurrentDB's are the same protocol.
    Ok(match url.strip_prefix("kurrentdb") {
        Some(rest) => format!("esdb{rest}"),
        None => url.to_owned(),
    })
}

/// The connection string with any password replaced by `***`.
pub fn redact(connection_string: &str) -> String {
    let Some((scheme, rest)) = connection_string.split_once("://") else { return connection_string.to_owned() };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***@{hosts}{tail}")
        }
        None => connection_string.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_esdb_source_reads_the_variable_and_says_so_when_it_is_missing() {
        let url = "esdb://localhost:2113?tls=false";
        assert_eq!(connection_string("esdb:", Some(url.into())).unwrap(), url);
        let missing = connection_string("esdb:", None).unwrap_err().to_string();
        assert!(missing.contains("ESDB_CONNECTION_STRING, which is not set"), "{missing}");
        assert_eq!(connection_string("kurrentdb+discover://a:2113", None).unwrap(), "esdb+discover://a:2113");
        assert_eq!(connection_string(url, Some("esdb://other".into())).unwrap(), url, "an explicit URL wins");
    }

    #[test]
    fn servers_older_than_21_10_are_refused_with_their_version_named() {
        for ok in [(21, 10, 0), (22, 10, 4), (23, 10, 1), (24, 2, 0), (25, 0, 0)] {
            assert!(supported(ok).is_ok(), "{ok:?}");
        }
        let old = supported((20, 10, 5)).unwrap_err();
        assert!(old.contains("EventStoreDB 20.10 is older than 21.10"), "{old}");
        let unknown = supported((0, 0, 0)).unwrap_err();
        assert!(unknown.contains("older than 21.6"), "{unknown}");
    }

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(redact("esdb://admin:changeit@localhost:2113?tls=false"), "esdb://admin:***@localhost:2113?tls=false");
        assert_eq!(redact("esdb+discover://ops:p@ss@a:2113,b:2113/x"), "esdb+discover://ops:***@a:2113,b:2113/x");
        assert_eq!(redact("esdb://localhost:2113?tls=false"), "esdb://localhost:2113?tls=false");
    }
}
