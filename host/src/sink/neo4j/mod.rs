//! The Neo4j sink: read models in Neo4j (or any server that speaks Bolt and
//! Cypher), through `neo4rs`. A lane's batch (its mutations as `UNWIND`
//! statements, its guards and the checkpoint) is one explicit transaction.
//!
//! The host keeps its own records beside the read model, under labels that
//! start with `_Projector` (guards, checkpoints, parked events, and which
//! property keys each label), so that the read model and the bookkeeping
//! commit together.
//!
//! The sink's calls are synchronous (lanes are threads); it owns a small
//! tokio runtime and blocks on it.

pub mod cypher;
mod read;
mod settings;

use std::collections::HashMap;
use std::future::Future;
use std::sync::RwLock;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use neo4rs::{Graph, Query, Txn};

use self::cypher::{CHECKPOINT, GUARD, LABEL, LEASE, PARKED, SEQUENCE};
use super::lease::{now_ms, Claim, Taken};
use super::KeyProperties;
use super::{Commit, GraphStats, Identity, ProjectionState, Resolved, Sink, SinkError};
use crate::parking::{event_to_json, Parked, ParkedRecord};
use crate::plugins::WriteScope;
pub use settings::{Settings, PASSWORD_ENV, USER_ENV};

/// Worker threads of the sink's runtime: it only waits on sockets.
const RUNTIME_THREADS: usize = 2;

/// Tries of a transaction that lost a race with another lane's (a deadlock, a
/// concurrent modification, a uniqueness check against a node created at the
/// same moment) before the lane is told, with a short random pause between.
/// Lanes share nodes (a keyword, a topic), so such races are routine.
pub const CONFLICT_TRIES: u32 = 8;
/// The longest pause between two such tries.
pub const CONFLICT_PAUSE_CAP: Duration = Duration::from_millis(200);
/// How long a schema change (a uniqueness constraint, which builds its index
/// over the nodes the label has) may take: longer than a statement.
pub const SCHEMA_TIMEOUT: Duration = Duration::from_secs(600);
/// The oldest Neo4j the sink writes to: 4.4 brought the constraint syntax it
/// uses (`CREATE CONSTRAINT IF NOT EXISTS FOR ... REQUIRE`).
pub const OLDEST_NEO4J: (u32, u32) = (4, 4);

pub struct Neo4jSink {
    runtime: tokio::runtime::Runtime,
    graph: Graph,
    uri: String,
    settings: Settings,
    keys: RwLock<KeyProperties>,
    /// Whether the lease label's uniqueness constraint was made in this process.
    lease_constraint: std::sync::atomic::AtomicBool,
}

impl Neo4jSink {
    /// Connects to `uri` (`neo4j://`, `bolt://`, `neo4j+s://`, `bolt+s://`) and checks that it answers.
    pub fn open(uri: &str, settings: &Settings) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_THREADS)
            .thread_name("neo4j-sink")
            .enable_all()
            .build()
            .context("cannot start the Neo4j sink's runtime")?;
        let config = settings.driver_config(uri)?;
        let graph = {
            let _entered = runtime.enter();
            Graph::connect(config).with_context(|| format!("sink {uri}: cannot connect"))?
        };
        let sink = Self { runtime, graph, uri: uri.to_owned(), settings: settings.clone(), keys: RwLock::new(HashMap::new()), lease_constraint: Default::default() };
        sink.block(async { sink.graph.run(neo4rs::query("RETURN 1")).await })
            .map_err(|e| anyhow!("{e:#}"))
            .with_context(|| {
                format!(
                    "cannot reach Neo4j at {uri} as user `{}`: is the server running, and are ${USER_ENV} / ${PASSWORD_ENV} (or [neo4j] in projector.toml) right?",
                    settings.user()
                )
            })?;
        sink.check_version()?;
        sink.load_keys()?;
        Ok(sink)
    }

    /// Refuses a Neo4j older than [`OLDEST_NEO4J`]; a server that does not
    /// say (another that speaks Bolt) is written to, with a note.
    fn check_version(&self) -> Result<()> {
        let asked = self.rows(neo4rs::query("CALL dbms.components() YIELD name, versions RETURN name, versions[0] AS version"));
        let (name, version) = match asked.as_deref().map(|rows| rows.first()) {
            Ok(Some(row)) => (row.get::<String>("name").unwrap_or_default(), row.get::<String>("version").unwrap_or_default()),
            _ => (String::new(), String::new()),
        };
        match neo4j_support(&name, &version) {
            Ok(None) => {
                tracing::info!(sink = %self.uri, server = %name, version = %version, "connected to Neo4j");
                Ok(())
            }
            Ok(Some(note)) => {
                tracing::info!(sink = %self.uri, "{note}");
                Ok(())
            }
            Err(refusal) => Err(anyhow!("sink {}: {refusal}", self.uri)),
        }
    }

    /// Runs a schema change, within [`SCHEMA_TIMEOUT`]. The driver holds
    /// every answer to its connection's timeout, so a schema change gets a
    /// connection of its own that waits as long.
    fn run_schema(&self, statement: &str) -> Result<(), SinkError> {
        let config = self.settings.driver_config_waiting(&self.uri, SCHEMA_TIMEOUT).map_err(SinkError::Unavailable)?;
        let graph = {
            let _entered = self.runtime.enter();
            Graph::connect(config).map_err(|e| classify(e, &self.uri))?
        };
        self.block_within(SCHEMA_TIMEOUT, async { graph.run(neo4rs::query(statement)).await })
    }

    /// Runs `work` on the sink's runtime, within the configured timeout.
    fn block<T>(&self, work: impl Future<Output = Result<T, neo4rs::Error>>) -> Result<T, SinkError> {
        self.block_within(self.settings.timeout(), work)
    }

    fn block_within<T>(&self, timeout: Duration, work: impl Future<Output = Result<T, neo4rs::Error>>) -> Result<T, SinkError> {
        self.runtime.block_on(async {
            match tokio::time::timeout(timeout, work).await {
                Ok(result) => result.map_err(|e| classify(e, &self.uri)),
                Err(_) => Err(SinkError::Unavailable(anyhow!("{}: no answer within {timeout:?}", self.uri))),
            }
        })
    }

    /// Reads the label -> key property records that earlier runs stored.
    fn load_keys(&self) -> Result<()> {
        let rows = self.rows(neo4rs::query(&format!("MATCH (l:`{LABEL}`) RETURN l.label AS label, l.key AS key")))?;
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        for row in rows {
            keys.insert(row.get("label")?, row.get("key")?);
        }
        Ok(())
    }

    fn keys(&self) -> KeyProperties {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Runs a read query, collecting its rows.
    fn rows(&self, query: Query) -> Result<Vec<neo4rs::Row>> {
        self.block(async {
            let mut stream = self.graph.execute(query).await?;
            let mut rows = Vec::new();
            while let Some(row) = stream.next().await? {
                rows.push(row);
            }
            Ok(rows)
        })
        .map_err(|e| anyhow!("{e}"))
    }

    fn run(&self, query: Query) -> Result<()> {
        self.block(async { self.graph.run(query).await.map(drop) }).map_err(|e| anyhow!("{e}"))
    }

    /// Runs statements in one transaction, then parks `parked` in it, and
    /// commits; with a lease token, only while that token holds the
    /// projection's lease. A transaction that lost a race is tried again at once.
    fn transaction(&self, statements: &[Query], parked: &[Parked], projection: &str, lease: Option<&str>) -> Result<(), SinkError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let error = match self.block(self.try_transaction(statements, parked, projection, lease)) {
                Ok(None) => return Ok(()),
                Ok(Some(holder)) => return Err(SinkError::Fenced(holder)),
                Err(error) => error,
            };
            if tries >= CONFLICT_TRIES || !is_conflict(&error) {
                return Err(error);
            }
            let cap = CONFLICT_PAUSE_CAP.as_millis() as u64;
            let pause = rand::random_range(1..=(5 << tries).min(cap));
            std::thread::sleep(Duration::from_millis(pause));
        }
    }

    /// Commits, or returns the lease's holder when `lease` no longer holds it.
    async fn try_transaction(&self, statements: &[Query], parked: &[Parked], projection: &str, lease: Option<&str>) -> Result<Option<String>, neo4rs::Error> {
        let mut txn = self.graph.start_txn().await?;
        for statement in statements {
            txn.run(statement.clone()).await?;
        }
        for p in parked {
            park(&mut txn, projection, p).await?;
        }
        if let Some(token) = lease {
            // Last, so that commits of one projection overlap until here:
            // writing to the lease node locks it until this transaction ends,
            // so a takeover waits for this commit instead of slipping in under it.
            let fence = neo4rs::query(&format!(
                "OPTIONAL MATCH (l:`{LEASE}` {{projection: $projection}}) SET l.checked_at = $now
                 RETURN coalesce(l.token, '') AS token, coalesce(l.holder, 'nobody (it was given up after this host lost it)') AS holder"
            ))
            .param("projection", projection)
            .param("now", now_ms());
            let row = single(&mut txn, fence).await?;
            if row.get::<String>("token").ok().as_deref() != Some(token) {
                let holder = row.get::<String>("holder").unwrap_or_else(|_| "another host".into());
                txn.rollback().await?;
                return Ok(Some(holder));
            }
        }
        txn.commit().await?;
        Ok(None)
    }
}

/// Whether a failed commit lost a race with another transaction, so that
/// trying again may well succeed.
fn is_conflict(error: &SinkError) -> bool {
    let cause = match error {
        SinkError::Unavailable(e) | SinkError::Rejected(e) => e,
        SinkError::Fenced(_) => return false,
    };
    cause.chain().any(|c| match c.downcast_ref::<neo4rs::Error>() {
        Some(neo4rs::Error::Neo4j(e)) => {
            (e.kind() == neo4rs::Neo4jErrorKind::Transient && !is_over_transaction_memory(e.code(), e.message()))
                || e.code() == "Neo.ClientError.Schema.ConstraintValidationFailed"
        }
        _ => false,
    })
}

/// Parks one event, once: an event re-delivered after a restart is not parked twice.
async fn park(txn: &mut Txn, projection: &str, p: &Parked) -> Result<(), neo4rs::Error> {
    let existing = neo4rs::query(&format!(
        "MATCH (p:`{PARKED}` {{projection: $projection, position: $position, key: $key, status: 'parked'}})
         WHERE coalesce(p.part, 0) = $part RETURN count(p) AS n"
    ))
    .param("projection", projection)
    .param("position", p.event.position as i64)
    .param("part", i64::from(p.part))
    .param("key", p.key.as_str());
    if single(txn, existing).await?.get::<i64>("n").unwrap_or(0) > 0 {
        return Ok(());
    }
    let next = neo4rs::query(&format!(
        "MERGE (s:`{SEQUENCE}` {{name: 'parked'}}) SET s.value = coalesce(s.value, 0) + 1 RETURN s.value AS id"
    ));
    let id: i64 = single(txn, next).await?.get("id").map_err(|e| neo4rs::Error::UnexpectedMessage(e.to_string()))?;
    let create = neo4rs::query(&format!(
        "CREATE (:`{PARKED}` {{id: $id, projection: $projection, key: $key, position: $position, event: $event,
                 error: $error, attempts: $attempts, plugin_version: $plugin_version, behind: $behind,
                 parked_at: $parked_at, status: 'parked', part: $part}})"
    ))
    .param("part", i64::from(p.part))
    .param("id", id)
    .param("projection", projection)
    .param("key", p.key.as_str())
    .param("position", p.event.position as i64)
    .param("event", event_to_json(&p.event).to_string())
    .param("error", p.error.as_str())
    .param("attempts", i64::from(p.attempts))
    .param("plugin_version", p.plugin_version.as_str())
    .param("behind", p.behind.map(|b| b as i64))
    .param("parked_at", crate::parking::now());
    txn.run(create).await?;
    Ok(())
}

async fn single(txn: &mut Txn, query: Query) -> Result<neo4rs::Row, neo4rs::Error> {
    let mut stream = txn.execute(query).await?;
    let row = stream.next(txn.handle()).await?.ok_or(neo4rs::Error::NoMoreRows)?;
    while stream.next(txn.handle()).await?.is_some() {}
    Ok(row)
}

/// Whether the sink writes to a server that calls itself `name`, of
/// `version` (empty where the server does not say: another that speaks Bolt).
/// `Ok(Some(..))`: a note for the log.
pub fn neo4j_support(name: &str, version: &str) -> Result<Option<String>, String> {
    if name.is_empty() || version.is_empty() {
        return Ok(Some("the server does not tell its version (`dbms.components()`): written to as Neo4j 5 would be; Projector is tested on ArcadeDB's Bolt and written for Neo4j 4.4 and 5.x".into()));
    }
    let mut parts = version.split(['.', '-']).map(|p| p.parse::<u32>().ok());
    let (Some(Some(major)), Some(Some(minor))) = (parts.next(), parts.next()) else {
        return Ok(Some(format!("{name} reports version `{version}`, which the sink cannot read; written to as Neo4j 5 would be")));
    };
    // Calendar versions (2025.01 and later) follow 5.26.
    if (major, minor) < OLDEST_NEO4J {
        return Err(format!(
            "{name} {version} is older than {}.{}, the oldest the sink writes to (its uniqueness constraints need 4.4's syntax): upgrade the server",
            OLDEST_NEO4J.0, OLDEST_NEO4J.1
        ));
    }
    Ok(None)
}

/// What to do about a schema change that failed with `error`.
fn schema_hint(error: &str, label: &str, key: &str) -> String {
    if ["IndexAlreadyExists", "EquivalentSchemaRuleAlreadyExists", "already exists an index"].iter().any(|c| error.contains(c)) {
        format!(
            " (an index on {label}.{key} exists already, and a uniqueness constraint brings its own: drop that index, `DROP INDEX name`, with the name `SHOW INDEXES` gives, and start the host again)"
        )
    } else if error.contains("no answer within") || error.contains("TransactionTimedOut") {
        format!(
            " (building the constraint's index over the {label} nodes the graph holds took longer than allowed: create it yourself, `CREATE CONSTRAINT IF NOT EXISTS FOR (n:{label}) REQUIRE n.{key} IS UNIQUE`, then start the host again)"
        )
    } else {
        String::new()
    }
}

/// Whether the server's error `code` (with its `message`) says that the
/// transaction itself cannot succeed, however often it is tried: an error in a
/// statement (its syntax, its types, a constraint it breaks), a statement the
/// server could not execute for what it holds (a key too large for the
/// uniqueness constraint's index), a transaction over the per-transaction
/// memory limit, or one that ran past its time limit. The lane then commits
/// the batch's events one by one, so that only the event at fault is parked.
/// Anything else (lost connections, deadlocks, leader switches, the server's
/// memory pool shared by all transactions, a server still starting up) is an
/// outage: the lane waits and tries again, and parks nothing for it.
pub fn is_data_fault(code: &str, message: &str) -> bool {
    ["Neo.ClientError.Statement.", "Neo.ClientError.Schema."].iter().any(|c| code.starts_with(c))
        || code == "Neo.DatabaseError.Statement.ExecutionFailed"
        || code.starts_with("Neo.ClientError.Transaction.TransactionTimedOut")
        || is_over_transaction_memory(code, message)
}

/// The per-transaction memory limit (`db.memory.transaction.max` in Neo4j 5,
/// `dbms.memory.transaction.max_size` in 4.4), not the pool all transactions
/// share (`dbms.memory.transaction.total.max`; 4.4:
/// `dbms.memory.transaction.global_max_size`), which another transaction may free.
fn is_over_transaction_memory(code: &str, message: &str) -> bool {
    const PER_TRANSACTION: [&str; 2] = ["db.memory.transaction.max threshold", "dbms.memory.transaction.max_size threshold"];
    code.ends_with(".General.MemoryPoolOutOfMemoryError") && PER_TRANSACTION.iter().any(|limit| message.contains(limit))
}

fn classify(error: neo4rs::Error, uri: &str) -> SinkError {
    use neo4rs::Error as E;
    let rejected = match &error {
        E::Neo4j(e) => is_data_fault(e.code(), e.message()),
        E::ConversionError
        | E::StringTooLong
        | E::MapTooBig
        | E::BytesTooBig
        | E::ListTooLong
        | E::DeserializationError(_)
        | E::UnknownType(_) => true,
        _ => false,
    };
    let follower = matches!(&error, E::Neo4j(e) if e.code() == "Neo.ClientError.Cluster.NotALeader");
    let error = anyhow::Error::new(error).context(format!("Neo4j at {uri}"));
    let error = if follower {
        error.context(
            "the server is a follower of its cluster, and this driver does not route writes to the leader: connect to the leader (bolt://LEADER), or use Neo4j 5, whose servers route writes themselves (server-side routing, on by default); the lane waits and tries again",
        )
    } else {
        error
    };
    if rejected {
        SinkError::Rejected(error)
    } else {
        SinkError::Unavailable(error)
    }
}

impl Sink for Neo4jSink {
    fn prepare(&self, projection: &str, scope: &WriteScope) -> Result<ProjectionState> {
        let place = format!("the graph at {}", self.uri);
        super::register_keys(&mut self.keys.write().unwrap_or_else(|p| p.into_inner()), projection, scope, &place)?;
        let mut unique = vec![(GUARD, "id"), (CHECKPOINT, "projection"), (PARKED, "id"), (SEQUENCE, "name"), (LABEL, "label")];
        unique.extend(scope.labels.iter().map(|(l, k)| (l.as_str(), k.as_str())));
        for (label, key) in unique {
            let (label_q, key_q) = (cypher::ident(label)?, cypher::ident(key)?);
            if let Err(e) = self.run_schema(&format!("CREATE CONSTRAINT IF NOT EXISTS FOR (n:{label_q}) REQUIRE n.{key_q} IS UNIQUE")) {
                let error = e.to_string();
                return Err(anyhow!("cannot create the uniqueness constraint on {label}.{key}: {error}{}", schema_hint(&error, label, key)));
            }
        }
        for (label, key) in &scope.labels {
            self.run(
                neo4rs::query(&format!("MERGE (l:`{LABEL}` {{label: $label}}) SET l.key = $key"))
                    .param("label", label.as_str())
                    .param("key", key.as_str()),
            )?;
        }
        let state = self.rows(
            neo4rs::query(&format!(
                "MATCH (c:`{CHECKPOINT}` {{projection: $projection}}) RETURN coalesce(c.position, 0) AS position, coalesce(c.high_water, 0) AS high_water"
            ))
            .param("projection", projection),
        )?;
        let (checkpoint, high_water) = match state.first() {
            Some(row) => (row.get::<i64>("position")? as u64, row.get::<i64>("high_water")? as u64),
            None => (0, 0),
        };
        let blocked = self.rows(
            neo4rs::query(&format!(
                "MATCH (p:`{PARKED}` {{projection: $projection, status: 'parked'}}) RETURN p.key AS key, min(p.position) AS position"
            ))
            .param("projection", projection),
        )?;
        let blocked_keys = blocked
            .iter()
            .map(|row| Ok((row.get::<String>("key")?, row.get::<i64>("position")? as u64)))
            .collect::<Result<_>>()?;
        Ok(ProjectionState { checkpoint, high_water, blocked_keys })
    }

    fn guard(&self, projection: &str, key: &str) -> Result<Option<Identity>, SinkError> {
        let query = neo4rs::query(&format!("MATCH (g:`{GUARD}` {{id: $id}}) RETURN g.position AS position, coalesce(g.part, 0) AS part"))
            .param("id", cypher::guard_id(projection, key));
        self.block(async {
            let mut stream = self.graph.execute(query).await?;
            let mut found = None;
            while let Some(row) = stream.next().await? {
                let part = row.get::<i64>("part").unwrap_or(0) as u32;
                found = row.get::<i64>("position").ok().map(|p| Identity { position: p as u64, part });
            }
            Ok(found)
        })
    }

    fn commit(&self, commit: &Commit) -> Result<(), SinkError> {
        let high_water = commit
            .applied
            .iter()
            .map(|a| a.position)
            .chain(commit.parked.iter().map(|p| p.event.position))
            .max()
            .unwrap_or(0);
        let statements = cypher::commit(commit.projection, &commit.applied, commit.checkpoint, high_water, &self.keys())
            .map_err(SinkError::Rejected)?;
        self.transaction(&statements, &commit.parked, commit.projection, commit.lease)
    }

    fn stats(&self) -> Result<GraphStats> {
        read::stats(self)
    }

    fn export(&self, out: &mut dyn std::io::Write) -> Result<()> {
        read::export(self, out)
    }

    fn nodes(&self, label: &str, limit: usize) -> Result<Vec<serde_json::Value>> {
        read::nodes(self, label, limit)
    }

    fn parked(&self, projection: Option<&str>) -> Result<Vec<ParkedRecord>> {
        read::parked(self, projection)
    }

    fn parked_count(&self, projection: &str) -> Result<u64> {
        read::parked_count(self, projection)
    }

    fn neighbours(&self, label: &str, key: &str, limit: usize) -> Result<Option<crate::sink::Neighbourhood>> {
        read::neighbours(self, label, key, limit)
    }

    fn resolve_parked(&self, resolved: &Resolved) -> Result<(), SinkError> {
        let mut statements = Vec::new();
        if let Some(applied) = &resolved.applied {
            let applied = std::slice::from_ref(applied);
            statements = cypher::mutations(applied.iter().flat_map(|a| a.mutations), &self.keys()).map_err(SinkError::Rejected)?;
            statements.extend(cypher::guards(resolved.projection, applied));
        }
        statements.push(
            neo4rs::query(&format!(
                "MATCH (p:`{PARKED}` {{projection: $projection, id: $id}})
                 SET p.status = $status, p.note = $note, p.resolved_at = $resolved_at"
            ))
            .param("projection", resolved.projection)
            .param("id", resolved.id)
            .param("status", resolved.resolution.status())
            .param("note", resolved.note)
            .param("resolved_at", crate::parking::now()),
        );
        self.transaction(&statements, &[], resolved.projection, resolved.lease)
    }

    fn take_lease(&self, claim: &Claim, renew: bool) -> Result<Taken, SinkError> {
        use std::sync::atomic::Ordering;
        if !self.lease_constraint.load(Ordering::Relaxed) {
            self.run_schema(&format!("CREATE CONSTRAINT IF NOT EXISTS FOR (n:`{LEASE}`) REQUIRE n.projection IS UNIQUE"))?;
            self.lease_constraint.store(true, Ordering::Relaxed);
        }
        self.block(async {
            let mut txn = self.graph.start_txn().await?;
            let now = now_ms();
            let held = neo4rs::query(&format!(
                "MERGE (l:`{LEASE}` {{projection: $projection}}) SET l.locked_at = $now
                 WITH l RETURN coalesce(l.token, '') AS token, coalesce(l.holder, '') AS holder, coalesce(l.expires_at, 0) AS expires_at"
            ))
            .param("projection", claim.projection.as_str())
            .param("now", now);
            let row = single(&mut txn, held).await?;
            let (token, holder, expires_at) = (
                row.get::<String>("token").unwrap_or_default(),
                row.get::<String>("holder").unwrap_or_default(),
                row.get::<i64>("expires_at").unwrap_or(0),
            );
            if renew && token != claim.token {
                txn.rollback().await?;
                let holder = if token.is_empty() { "nobody (it was given up)".to_owned() } else { holder };
                return Ok(Taken::Lost { holder });
            }
            if !token.is_empty() && token != claim.token && expires_at > now && claim.replaces.as_ref() != Some(&holder) {
                txn.rollback().await?;
                return Ok(Taken::HeldBy { holder, expires_in: Duration::from_millis((expires_at - now) as u64) });
            }
            let take = neo4rs::query(&format!(
                "MATCH (l:`{LEASE}` {{projection: $projection}}) SET l.token = $token, l.holder = $holder, l.expires_at = $expires_at"
            ))
            .param("projection", claim.projection.as_str())
            .param("token", claim.token.as_str())
            .param("holder", claim.holder.as_str())
            .param("expires_at", now + claim.length.as_millis() as i64);
            txn.run(take).await?;
            txn.commit().await?;
            Ok(Taken::Yes)
        })
    }

    fn release_lease(&self, projection: &str, token: &str) -> Result<(), SinkError> {
        let release = neo4rs::query(&format!("MATCH (l:`{LEASE}` {{projection: $projection, token: $token}}) DELETE l"))
            .param("projection", projection)
            .param("token", token);
        self.block(async { self.graph.run(release).await })
    }

    fn checkpoint(&self, projection: &str) -> Result<u64> {
        let rows = self.rows(
            neo4rs::query(&format!("MATCH (c:`{CHECKPOINT}` {{projection: $projection}}) RETURN coalesce(c.position, 0) AS position"))
                .param("projection", projection),
        )?;
        Ok(rows.first().map(|r| r.get::<i64>("position")).transpose()?.unwrap_or(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::{is_data_fault, neo4j_support, schema_hint};

    #[test]
    fn neo4j_older_than_4_4_is_refused_and_a_server_that_does_not_say_is_noted() {
        for ok in ["4.4.41", "5.26.2", "2025.01.0", "5.0.0-drop04.0"] {
            assert_eq!(neo4j_support("Neo4j Kernel", ok), Ok(None), "{ok}");
        }
        let old = neo4j_support("Neo4j Kernel", "4.3.23").unwrap_err();
        assert!(old.contains("Neo4j Kernel 4.3.23 is older than 4.4"), "{old}");
        assert!(neo4j_support("Neo4j Kernel", "3.5.35").is_err());
        assert!(neo4j_support("", "").unwrap().unwrap().contains("does not tell its version"));
    }

    #[test]
    fn a_constraint_that_meets_an_index_or_a_timeout_says_what_to_do() {
        let index = "sink rejected the write: Neo4j at neo4j://db: Neo.ClientError.Schema.IndexAlreadyExists: There already exists an index (:Sentence {id}).";
        assert!(schema_hint(index, "Sentence", "id").contains("DROP INDEX"), "{}", schema_hint(index, "Sentence", "id"));
        let slow = "sink unavailable: neo4j://db: no answer within 600s";
        assert!(schema_hint(slow, "Sentence", "id").contains("CREATE CONSTRAINT IF NOT EXISTS FOR (n:Sentence) REQUIRE n.id IS UNIQUE"));
        assert_eq!(schema_hint("Neo.ClientError.Security.Forbidden", "Sentence", "id"), "");
    }

    #[test]
    fn what_retrying_cannot_change_is_the_data_s_fault_and_the_rest_an_outage() {
        let fault = [
            ("Neo.ClientError.Statement.SyntaxError", "Invalid input"),
            ("Neo.ClientError.Statement.TypeError", "Collections containing mixed types can not be stored in properties."),
            ("Neo.ClientError.Schema.ConstraintValidationFailed", "already exists with label"),
            // A key too large for the uniqueness constraint's index.
            ("Neo.DatabaseError.Statement.ExecutionFailed", "Property value is too large to index, please see index documentation for limitations."),
            ("Neo.ClientError.Transaction.TransactionTimedOut", "The transaction has been terminated."),
            ("Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration", "The transaction has been terminated."),
            (
                "Neo.TransientError.General.MemoryPoolOutOfMemoryError",
                "The allocation of an extra 2.0 MiB would use more than the limit 10.0 MiB. Currently using 9.0 MiB. db.memory.transaction.max threshold reached",
            ),
            // Neo4j 4.4 names the same limit otherwise.
            (
                "Neo.TransientError.General.MemoryPoolOutOfMemoryError",
                "The allocation of an extra 2.0 MiB would use more than the limit 10.0 MiB. Currently using 9.0 MiB. dbms.memory.transaction.max_size threshold reached",
            ),
        ];
        for (code, message) in fault {
            assert!(is_data_fault(code, message), "{code} is the batch's fault");
        }
        let outage = [
            ("Neo.TransientError.Transaction.DeadlockDetected", "ForsetiClient can't acquire ExclusiveLock"),
            ("Neo.TransientError.General.DatabaseUnavailable", "Database 'neo4j' is unavailable."),
            ("Neo.ClientError.Cluster.NotALeader", "No write operations are allowed on this database."),
            (
                "Neo.TransientError.General.MemoryPoolOutOfMemoryError",
                "The allocation of an extra 2.0 MiB would use more than the limit 2.0 GiB. Currently using 2.0 GiB. dbms.memory.transaction.total.max threshold reached",
            ),
            (
                "Neo.TransientError.General.MemoryPoolOutOfMemoryError",
                "The allocation of an extra 2.0 MiB would use more than the limit 2.0 GiB. Currently using 2.0 GiB. dbms.memory.transaction.global_max_size threshold reached",
            ),
            ("Neo.DatabaseError.General.UnknownError", "An unknown error occurred."),
            ("Neo.ClientError.Security.Unauthorized", "The client is unauthorized due to authentication failure."),
        ];
        for (code, message) in outage {
            assert!(!is_data_fault(code, message), "{code} is an outage");
        }
    }
}
