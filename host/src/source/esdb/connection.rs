//! The connection: a client for one EventStoreDB/KurrentDB server, with the
//! tokio runtime it runs on (the rest of the host is threads, not async).

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use eventstore::{Client, ClientSettings, Position, ReadAllOptions, StreamPosition};
use eventstore::ReadEvent;

/// The variable a bare `esdb:` source reads its connection string from, as the
/// system Projector grew out of did.
pub const CONNECTION_VARIABLE: &str = "ESDB_CONNECTION_STRING";
/// How long opening a source waits for the server to answer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Connection {
    /// The connection string without its password, for logs and errors.
    pub server: String,
    pub client: Client,
    pub runtime: tokio::runtime::Runtime,
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
        let client = Client::with_runtime_handle(runtime.handle().clone(), settings)
            .map_err(|e| anyhow!("cannot make a client for {server}: {e}"))?;
        let connection = Self { server, client, runtime };
        connection.last_position().with_context(|| {
            format!(
                "cannot reach EventStoreDB/KurrentDB at {}: is it running? (a local one: `docker run -d -p 2113:2113 docker.kurrent.io/kurrent-latest/kurrentdb --insecure`, then `esdb://localhost:2113?tls=false`)",
                connection.server
            )
        })?;
        Ok(connection)
    }

    /// The position of the last record in `$all`, `None` for an empty log.
    pub fn last_position(&self) -> Result<Option<Position>> {
        let options = ReadAllOptions::default().position(StreamPosition::End).max_count(1);
        let read = async {
            let mut stream = self.client.read_all(&options).await?;
            while let Some(item) = stream.next_read_event().await? {
                if let ReadEvent::Event(e) = item {
                    return Ok(Some(e.get_original_event().position));
                }
            }
            Ok::<_, eventstore::Error>(None)
        };
        match self.runtime.block_on(async { tokio::time::timeout(CONNECT_TIMEOUT, read).await }) {
            Ok(result) => Ok(result?),
            Err(_) => bail!("no answer within {CONNECT_TIMEOUT:?}"),
        }
    }
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
    fn passwords_never_reach_logs() {
        assert_eq!(redact("esdb://admin:changeit@localhost:2113?tls=false"), "esdb://admin:***@localhost:2113?tls=false");
        assert_eq!(redact("esdb+discover://ops:p@ss@a:2113,b:2113/x"), "esdb+discover://ops:***@a:2113,b:2113/x");
        assert_eq!(redact("esdb://localhost:2113?tls=false"), "esdb://localhost:2113?tls=false");
    }
}
