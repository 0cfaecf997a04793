//! Sinks: where mutations are applied, together with guards, parked events and
//! the checkpoint, in one transaction per batch.

pub mod embedded;
pub mod lease;
pub mod neo4j;
pub mod null;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::parking::{Parked, ParkedRecord, Resolution};
use crate::plugins::WriteScope;
use crate::Mutation;

/// Per label, the property its nodes are keyed by, as the projections declared it.
pub type KeyProperties = HashMap<String, String>;

/// Records the key properties a projection declares, refusing a label that
/// `keys` (of the graph at `place`) already keys by another property.
pub fn register_keys(keys: &mut KeyProperties, projection: &str, scope: &WriteScope, place: &str) -> Result<()> {
    for (label, key) in &scope.labels {
        match keys.get(label) {
            Some(other) if other != key => {
                bail!("projection {projection} keys label `{label}` by `{key}`, but {place} keys it by `{other}`")
            }
            _ => {
                keys.insert(label.clone(), key.clone());
            }
        }
    }
    Ok(())
}

/// Which event a guard names: its position in the log, and its index among
/// the events an upcaster made of the one at that position (0 when it made
/// one). Ordered by position, then part, so that a split committed in part
/// resumes at the first part not applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Identity {
    pub position: u64,
    pub part: u32,
}

/// One event's effect in a commit.
#[derive(Debug)]
pub struct Applied<'a> {
    pub key: &'a str,
    pub position: u64,
    /// Its index among the events an upcaster made of the one at `position`.
    pub part: u32,
    pub mutations: &'a [Mutation],
}

/// Everything a lane commits for one batch, atomically.
#[derive(Debug)]
pub struct Commit<'a> {
    pub projection: &'a str,
    pub applied: Vec<Applied<'a>>,
    pub parked: Vec<Parked>,
    /// Every position below this is done (the sink keeps the highest it was given).
    pub checkpoint: u64,
    /// The token of the lease the committing host holds on the projection's
    /// read model; the commit is refused (`SinkError::Fenced`) unless it is
    /// still the lease's. `None` for a projection that takes no lease.
    pub lease: Option<&'a str>,
}

/// A parked event resolved by an operator, written in one transaction.
#[derive(Debug)]
pub struct Resolved<'a> {
    pub projection: &'a str,
    /// The parked record's id.
    pub id: i64,
    pub resolution: Resolution,
    pub note: Option<&'a str>,
    /// What replaying it applies (none for a discard, or when its guard skipped it).
    pub applied: Option<Applied<'a>>,
    /// The token of the projection's lease, which fences the write.
    pub lease: Option<&'a str>,
}

/// A node of the read model as the console draws it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeView {
    pub label: String,
    pub key: String,
    pub props: serde_json::Value,
}

/// One relationship of a node, and the node at its other end.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EdgeView {
    pub rel: String,
    /// From the node (`true`) or to it.
    pub outgoing: bool,
    pub other: NodeView,
}

/// A node and its relationships.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Neighbourhood {
    pub node: NodeView,
    pub edges: Vec<EdgeView>,
    /// Whether it has more relationships than were asked for.
    pub more: bool,
}

/// Why a commit failed, which decides what the lane does next.
#[derive(Debug)]
pub enum SinkError {
    /// The sink cannot be reached or is busy: not the events' fault. Back off
    /// and try again, for as long as it takes; never park for this.
    Unavailable(anyhow::Error),
    /// The sink refused what was asked of it: one of the events is at fault.
    Rejected(anyhow::Error),
    /// The commit's lease is not the read model's lease any more: another host
    /// took over. Nothing was written; this host must stop writing.
    Fenced(String),
}

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SinkError::Unavailable(e) => write!(f, "sink unavailable: {e:#}"),
            SinkError::Rejected(e) => write!(f, "sink rejected the write: {e:#}"),
            SinkError::Fenced(holder) => write!(f, "sink refused the write: the read model's lease is held by {holder} now"),
        }
    }
}

/// What a projection resumes from.
#[derive(Debug, Default, Clone)]
pub struct ProjectionState {
    /// Every position below this is done.
    pub checkpoint: u64,
    /// The highest position ever committed; events at or below it may have
    /// been applied already, so their guards are checked.
    pub high_water: u64,
    /// Keys with a parked event -> its position: their later events are parked behind it.
    pub blocked_keys: HashMap<String, u64>,
}

/// Counts per label and per relationship type.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct GraphStats {
    pub nodes: BTreeMap<String, u64>,
    pub relationships: BTreeMap<String, u64>,
}

/// A read model store.
pub trait Sink: Send + Sync {
    /// Gets ready for a projection that writes within `scope`, and says where it resumes.
    fn prepare(&self, projection: &str, scope: &WriteScope) -> Result<ProjectionState>;

    /// The last event applied for `key`, if any.
    fn guard(&self, projection: &str, key: &str) -> Result<Option<Identity>, SinkError>;

    /// Applies a batch atomically: mutations in order, guards, parked events, checkpoint.
    fn commit(&self, commit: &Commit) -> Result<(), SinkError>;

    fn stats(&self) -> Result<GraphStats>;

    /// The whole read model as JSON lines in a deterministic order.
    fn export(&self, out: &mut dyn Write) -> Result<()>;

    /// Up to `limit` nodes with this label, as JSON objects, ordered by key.
    fn nodes(&self, label: &str, limit: usize) -> Result<Vec<serde_json::Value>>;

    /// The node of `label` with this key and up to `limit` of its
    /// relationships (both ways) with the nodes at their other ends; `None`
    /// when there is no such node.
    fn neighbours(&self, label: &str, key: &str, limit: usize) -> Result<Option<Neighbourhood>>;

    /// Parked events (all statuses), oldest first.
    fn parked(&self, projection: Option<&str>) -> Result<Vec<ParkedRecord>>;

    /// How many of a projection's parked events wait for a replay or a discard.
    fn parked_count(&self, projection: &str) -> Result<u64> {
        Ok(self.parked(Some(projection))?.iter().filter(|r| r.status == "parked").count() as u64)
    }

    /// Marks a parked event replayed or discarded, applying `applied` (its
    /// mutations and guard) in the same transaction; with a lease token, only
    /// while that token holds the projection's lease (as `commit`).
    fn resolve_parked(&self, resolved: &Resolved) -> Result<(), SinkError>;

    /// The stored checkpoint of a projection (0 when it never ran).
    fn checkpoint(&self, projection: &str) -> Result<u64>;

    /// Takes the lease on a projection's read model, when it is free, expired
    /// or the claim's already; or, with `renew`, extends it only while it is
    /// still the claim's (taken over or given up since: `Taken::Lost`).
    fn take_lease(&self, claim: &lease::Claim, renew: bool) -> Result<lease::Taken, SinkError>;

    /// Gives up the lease, if `token` still holds it.
    fn release_lease(&self, projection: &str, token: &str) -> Result<(), SinkError>;
}

/// Opens a sink that must hold a read model already, for commands that read it:
/// an embedded graph that does not exist is an error, not a new empty file.
pub fn open_existing(url: &str, neo4j: &neo4j::Settings) -> Result<Box<dyn Sink>> {
    if let Some(("embedded", path)) = url.split_once(':') {
        crate::store_file::check_path(path.as_ref(), crate::store_file::Kind::Graph)?;
        if !std::path::Path::new(path).exists() {
            bail!("no read model at {path}: `projector run` makes one (or name another with --sink or PROJECTOR_SINK)");
        }
    }
    open(url, neo4j)
}

/// Opens the sink a URL names: `embedded:PATH`, `neo4j://HOST:PORT` (also
/// `bolt://`, `neo4j+s://`, `bolt+s://`, with `neo4j` settings), or `null:` (keeps nothing).
pub fn open(url: &str, neo4j: &neo4j::Settings) -> Result<Box<dyn Sink>> {
    match url.split_once(':') {
        Some(("embedded", path)) => Ok(Box::new(embedded::EmbeddedGraph::open(path.as_ref())?)),
        Some(("null", _)) => Ok(Box::new(null::NullSink)),
        Some(("neo4j" | "neo4j+s" | "neo4j+ssc" | "bolt" | "bolt+s" | "bolt+ssc", _)) => {
            Ok(Box::new(neo4j::Neo4jSink::open(url, neo4j)?))
        }
        _ => bail!(
            "sink `{url}` is not a sink URL: use `embedded:PATH` (e.g. `embedded:.projector/graph.db`) or `neo4j://HOST:7687`"
        ),
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn a_label_keeps_the_key_property_it_was_first_declared_with() {
        let scope = |key: &str| WriteScope { labels: [("Interview".to_owned(), key.to_owned())].into(), ..WriteScope::default() };
        let mut keys = KeyProperties::new();
        register_keys(&mut keys, "graph", &scope("id"), "the graph").unwrap();
        register_keys(&mut keys, "audit", &scope("id"), "the graph").unwrap();
        let refused = register_keys(&mut keys, "other", &scope("uuid"), "the graph").unwrap_err().to_string();
        assert!(refused.contains("keys label `Interview` by `uuid`, but the graph keys it by `id`"), "{refused}");
    }
}
